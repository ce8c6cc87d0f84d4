//! What ops deploy is what the tests run: every `${…FunctionArn}` in the ASL files is substituted by the SAM
//! template with a function of the template, every function is used, and every Task maps to a local handler.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Yaml {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// `!GetAtt X.Arn` → `X`.
fn get_att_target(v: &Yaml) -> Option<String> {
    match v {
        Yaml::Tagged(t) if t.tag == "GetAtt" => t.value.as_str().and_then(|s| s.strip_suffix(".Arn")).map(String::from),
        _ => None,
    }
}

fn resources(t: &Yaml, ty: &str) -> BTreeMap<String, Yaml> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .map(|(k, r)| (k.as_str().unwrap().to_string(), r.clone()))
        .collect()
}

/// Every Task `Resource` in a definition, recursively (Map and Parallel branches included).
fn task_resources(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::Object(m) => {
            if m.get("Type").and_then(Json::as_str) == Some("Task") {
                if let Some(r) = m.get("Resource").and_then(Json::as_str) {
                    out.push(r.to_string());
                }
            }
            m.values().for_each(|x| task_resources(x, out));
        }
        Json::Array(a) => a.iter().for_each(|x| task_resources(x, out)),
        _ => {}
    }
}

fn substitutions_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let tail = &rest[i + 2..];
        let end = tail.find('}').unwrap();
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// The only substitutions that are not functions: the data bucket (`!Ref` of the template's bucket) and the key
/// prefix of the Lambdas' store, which is empty (`CPO_STORE=s3://<bucket>`), given as `""` or an empty `!Join`.
fn check_data_substitution(name: &str, uri: &str, var: &str, value: Option<&Yaml>, t: &Yaml) {
    let value = value.unwrap_or_else(|| panic!("{uri}: ${{{var}}} has no substitution in {name}"));
    match var {
        "DataBucket" => {
            let Yaml::Tagged(tag) = value else { panic!("{name}: DataBucket must be !Ref DataBucket, got {value:?}") };
            assert!(tag.tag == "Ref" && tag.value.as_str() == Some("DataBucket"), "{name}: DataBucket: {value:?}");
            assert_eq!(t["Resources"]["DataBucket"]["Type"].as_str(), Some("AWS::S3::Bucket"), "{name}: DataBucket");
        }
        "DataPrefix" => {
            let empty = match value {
                Yaml::String(s) => s.is_empty(),
                Yaml::Tagged(tag) if tag.tag == "Join" => tag
                    .value
                    .as_sequence()
                    .is_some_and(|a| a.len() == 2 && a[1].as_sequence().is_some_and(|v| v.is_empty())),
                _ => false,
            };
            assert!(empty, "{name}: DataPrefix must be empty (the Lambdas' store has no key prefix), got {value:?}");
        }
        other => panic!("{uri}: ${{{other}}} is neither a …FunctionArn nor DataBucket/DataPrefix"),
    }
}

#[test]
fn asl_substitutions_template_functions_and_local_handlers_agree() {
    let t = template();
    let functions = resources(&t, "AWS::Serverless::Function");
    let machines = resources(&t, "AWS::Serverless::StateMachine");
    assert_eq!(machines.len(), 2, "campaign and analysis state machines");
    let mut used = BTreeSet::new();
    for (name, m) in &machines {
        let props = &m["Properties"];
        let uri = props["DefinitionUri"].as_str().unwrap_or_else(|| panic!("{name}: DefinitionUri"));
        let text = std::fs::read_to_string(root().join("infra").join(uri)).unwrap();
        let subs = props["DefinitionSubstitutions"].as_mapping().unwrap();
        for var in substitutions_in(&text) {
            let value = subs.get(Yaml::from(var.as_str()));
            if !var.ends_with("FunctionArn") {
                check_data_substitution(name, uri, &var, value, &t);
                continue;
            }
            let target = value
                .and_then(get_att_target)
                .unwrap_or_else(|| panic!("{uri}: ${{{var}}} has no !GetAtt substitution in {name}"));
            assert!(functions.contains_key(&target), "{name}: {var} → {target} is not a function of the template");
            used.insert(target);
        }
        let local = cpo::local::substitute(&text);
        let left: Vec<String> = substitutions_in(&local).into_iter().filter(|v| !v.ends_with("FunctionArn")).collect();
        assert!(left.is_empty(), "{uri}: the local runner leaves {left:?} unsubstituted");
        for (k, _) in subs {
            let k = k.as_str().unwrap();
            assert!(text.contains(&format!("${{{k}}}")), "{name}: substitution {k} is not used by {uri}");
        }
        let def: Json = serde_json::from_str(&text).unwrap();
        let mut tasks = Vec::new();
        task_resources(&def, &mut tasks);
        assert!(!tasks.is_empty());
        for r in tasks {
            let f = cpo::tasks::function_name(&r).unwrap_or_else(|| panic!("{uri}: Task {r} maps to no local handler"));
            let logical = format!("{}{}Function", f[..1].to_uppercase(), &f[1..]);
            assert!(functions.contains_key(&logical), "{uri}: Task {r} → {logical} missing from the template");
        }
    }
    for (name, f) in &functions {
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or_else(|| panic!("{name}: Binary"));
        assert_eq!(f["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name}");
        let crate_dir = root().join("functions").join(binary);
        assert!(crate_dir.join("Cargo.toml").exists(), "{name}: no function crate at {}", crate_dir.display());
        let event_driven = f["Properties"]["Events"].as_mapping().is_some_and(|e| !e.is_empty());
        assert!(used.contains(name) || event_driven, "{name} is neither used by a state machine nor event-driven");
    }
}

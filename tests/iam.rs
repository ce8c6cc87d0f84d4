//! IAM proven against real access: the pipelines run end to end (campaign with simulated outcomes, the
//! analysis of a dropped outcomes file, a re-delivered event, the weekly schedule, the sharded campaign) with
//! network providers served locally (so the provider caches are used), every store operation recorded per
//! function, state machine and the trigger. Each is then evaluated, as IAM would, against the policies of that
//! principal's role in the CloudFormation the SAM template expands to (`scripts/lint-infra.sh --translate`).
//! Any access the policy denies fails the test; grants no recorded access uses are reported.
//!
//! The emulators do not enforce IAM, so without this a missing grant is found only in AWS.
//! `CPO_IAM_TEMPLATE=path/to/template.yaml` checks another template (its `statemachine/` beside it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use cpo::local::LocalStarter;
use cpo_common::keys::Key;
use cpo_common::store::recording::{Access, AccessLog, Op};
use cpo_common::store::DynStore;
use cpo_common::Ctx;
use cpo_e2e::*;
use cpo_trigger::handler::{handle_value, Deps};
use cpo_trigger::Starter;
use serde_json::{json, Value};

const BUCKET: &str = "cpo-data";

// ------------------------------------------------------------------------------------------------ the runs

async fn completions(Json(req): Json<Value>) -> Json<Value> {
    Json(chat_completion("test-1", &grounded_draft(last_prompt(&req), "")))
}

async fn moderations(Json(_): Json<Value>) -> Json<Value> {
    let names = [
        "hate",
        "hate/threatening",
        "harassment",
        "harassment/threatening",
        "self-harm",
        "self-harm/intent",
        "self-harm/instructions",
        "sexual",
        "sexual/minors",
        "violence",
        "violence/graphic",
        "illicit",
        "illicit/violent",
    ];
    let cats: serde_json::Map<String, Value> = names.iter().map(|n| (n.to_string(), json!(false))).collect();
    let scores: serde_json::Map<String, Value> = names.iter().map(|n| (n.to_string(), json!(0.001))).collect();
    Json(json!({"id": "modr-1", "model": "omni-moderation-latest",
                "results": [{"flagged": false, "categories": cats, "category_scores": scores}]}))
}

/// An OpenAI-compatible server for generation and moderation, so both provider caches are exercised.
async fn provider_server() -> String {
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(completions))
        .route("/v1/moderations", axum::routing::post(moderations));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn object_created(key: &str) -> Value {
    json!({
        "version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3", "account": "111122223333",
        "time": "2026-11-23T06:00:00Z", "region": "eu-west-1", "resources": [format!("arn:aws:s3:::{BUCKET}")],
        "detail": {"version": "0", "bucket": {"name": BUCKET}, "object": {"key": key}, "reason": "PutObject"},
    })
}

struct Harness {
    store: DynStore,
    log: Arc<AccessLog>,
    starter: Arc<LocalStarter>,
    deps: Deps,
}

impl Harness {
    fn new(store: DynStore) -> Self {
        let log = AccessLog::new();
        let starter = Arc::new(LocalStarter::new(Ctx::new(store.clone()), None).with_access_log(log.clone()));
        let trigger_store = log.wrap(store.clone(), "function:trigger");
        let mut deps = Deps::for_store(trigger_store, starter.clone() as Arc<dyn Starter>, Some(BUCKET.into()))
            .expect("trigger deps");
        deps.opts.simulate_outcomes = true;
        Self { store, log, starter, deps }
    }

    fn executions(&self) -> usize {
        self.starter.finished.lock().unwrap().len()
    }

    /// Every execution started since `from` succeeded.
    fn check_since(&self, from: usize) {
        for f in self.starter.finished.lock().unwrap().iter().skip(from) {
            if let Err(e) = &f.result {
                panic!("execution {} failed: {}: {}", f.start.name, e.error, e.cause);
            }
        }
    }

    /// Deliver a trigger event, then an "Object Created" for every outcomes object the executions wrote (as the
    /// bucket notifications would). Returns the run ids started.
    async fn deliver(&self, event: Value) -> Vec<String> {
        let from = self.executions();
        let out = handle_value(event, &self.deps).await.expect("trigger handler");
        self.check_since(from);
        let runs: Vec<String> =
            out.started.iter().map(|s| s.execution.split("-o").next().unwrap_or_default().to_string()).collect();
        for run in &runs {
            let prefix = Key::new(format!("runs/{run}/outcomes/")).unwrap();
            for o in self.store.list(&prefix).await.unwrap() {
                let from = self.executions();
                handle_value(object_created(&o.key), &self.deps).await.expect("trigger handler (outcomes)");
                self.check_since(from);
            }
        }
        runs
    }
}

/// Runs every path of the system once with recording on; returns what each principal did.
async fn record_accesses() -> Vec<Access> {
    let url = provider_server().await;
    for (name, value) in [
        ("CPO_LLM_PROVIDER", "openai"),
        ("CPO_LLM_BASE_URL", url.as_str()),
        ("CPO_LLM_MODEL", "test-1"),
        ("CPO_LLM_API_KEY", "sk-test"),
        ("CPO_SAFETY_PROVIDERS", "offline,openai-moderation"),
        ("OPENAI_BASE_URL", url.as_str()),
        ("OPENAI_API_KEY", "sk-test"),
    ] {
        std::env::set_var(name, value);
    }
    let s = Scratch::new();
    let h = Harness::new(s.store());
    let put = |key: &str, body: Vec<u8>| {
        let store = h.store.clone();
        let key = Key::new(key).unwrap();
        async move { store.put(&key, body.into()).await.unwrap() }
    };

    // A drop under incoming/: campaign (simulated outcomes) → analysis, as the bucket notification starts them.
    put("incoming/weekly/customers.csv", cpo_segment::synth::customers_csv(300, 3)).await;
    let runs = h.deliver(object_created("incoming/weekly/customers.csv")).await;
    assert_eq!(runs.len(), 1, "one campaign run");
    let run = &runs[0];
    // The same event delivered again: every step finds its record.
    h.deliver(object_created("incoming/weekly/customers.csv")).await;
    // Real outcomes dropped by the email service: the analysis machine again.
    let sim = h.store.list(&Key::new(format!("runs/{run}/outcomes/")).unwrap()).await.unwrap();
    let body = h.store.get(&Key::new(sim[0].key.clone()).unwrap()).await.unwrap();
    put(&format!("runs/{run}/outcomes/esp-export.csv"), body.to_vec()).await;
    h.deliver(object_created(&format!("runs/{run}/outcomes/esp-export.csv"))).await;

    // An operator's own campaign, policy, prompts and approved content in the bucket (the first runs used the
    // bundled defaults, as a fresh deployment does).
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for dir in ["campaigns", "policy", "prompts", "content"] {
        for entry in std::fs::read_dir(examples.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let key = if dir == "content" { format!("content/approved/{name}") } else { format!("{dir}/{name}") };
            put(&key, std::fs::read(&path).unwrap()).await;
        }
    }

    // The weekly schedule on a newer drop (provider answers now come from cache/llm/).
    put("incoming/weekly/customers-2.csv", cpo_segment::synth::customers_csv(250, 4)).await;
    let runs = h.deliver(json!({"campaign": "weekly"})).await;
    assert_eq!(runs.len(), 1, "the schedule starts one run");

    // The sharded campaign (Distributed Maps, the machine's own ItemReader).
    put("incoming/weekly/customers-3.csv", cpo_segment::synth::customers_csv(400, 5)).await;
    let from = h.executions();
    cpo_trigger::start_for_key_sharded(
        h.deps.store.as_ref(),
        h.starter.as_ref(),
        "incoming/weekly/customers-3.csv",
        &h.deps.opts,
        true,
    )
    .await
    .expect("sharded start");
    h.check_since(from);
    let sharded = h.starter.finished.lock().unwrap().last().unwrap().start.input["sharded"].clone();
    assert_eq!(sharded, json!(true));

    // `digests/` records content digests only where ETags are not content digests (the `file://` store these
    // scenarios run on, docs/architecture.md "Run identity"); on S3 the ETag is the version and nothing under
    // `digests/` is read or written, so the deployed roles need no grant for it.
    let accesses: Vec<Access> = h.log.accesses().into_iter().filter(|a| !a.key.starts_with("digests/")).collect();
    for p in ["trigger", "segment", "retrieve", "generate", "safety", "experiment", "report"] {
        assert!(accesses.iter().any(|a| a.principal == format!("function:{p}")), "no access recorded for {p}");
    }
    assert!(accesses.iter().any(|a| a.principal == "function:safety" && a.key.starts_with("cache/")));
    assert!(accesses.iter().any(|a| a.principal == "machine:campaign"), "the sharded ItemReader");
    accesses
}

// ------------------------------------------------------------------------------------------------ CloudFormation

/// The CloudFormation of a SAM template, expanded by the project's own translator (cached venv).
fn translate(template: &Path) -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = std::process::Command::new(root.join("scripts/lint-infra.sh"))
        .arg("--translate")
        .arg(template)
        .arg(out.path())
        .status()
        .expect("running scripts/lint-infra.sh --translate");
    assert!(status.success(), "scripts/lint-infra.sh --translate {} failed", template.display());
    serde_json::from_slice(&std::fs::read(out.path()).unwrap()).expect("translated template is JSON")
}

fn template_path() -> PathBuf {
    std::env::var_os("CPO_IAM_TEMPLATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"))
}

/// Intrinsic functions resolved the way CloudFormation would for given parameter values. ARNs are symbolic:
/// a bucket `B` is `arn:aws:s3:::B` whatever its name, which is all a policy comparison needs.
pub struct Cfn {
    t: Value,
    params: BTreeMap<String, String>,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Cfn {
    pub fn new(t: Value, overrides: &[(&str, &str)]) -> Self {
        let mut params: BTreeMap<String, String> = t["Parameters"]
            .as_object()
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.get("Default").map(scalar).unwrap_or_default())).collect())
            .unwrap_or_default();
        for (k, v) in overrides {
            params.insert(k.to_string(), v.to_string());
        }
        Self { t, params }
    }

    fn resource(&self, id: &str) -> &Value {
        &self.t["Resources"][id]
    }

    fn ref_value(&self, name: &str) -> Option<String> {
        match name {
            "AWS::NoValue" => None,
            "AWS::Partition" => Some("aws".into()),
            "AWS::Region" => Some("eu-west-1".into()),
            "AWS::AccountId" => Some("111122223333".into()),
            "AWS::StackName" => Some("cpo".into()),
            "AWS::URLSuffix" => Some("amazonaws.com".into()),
            _ => Some(self.params.get(name).cloned().unwrap_or_else(|| name.to_string())),
        }
    }

    fn get_att(&self, id: &str, attr: &str) -> String {
        match (self.resource(id)["Type"].as_str(), attr) {
            (Some("AWS::S3::Bucket"), "Arn") => format!("arn:aws:s3:::{id}"),
            _ => format!("arn:aws:cfn:::{id}.{attr}"),
        }
    }

    fn sub(&self, text: &str, vars: &serde_json::Map<String, Value>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let tail = &rest[i + 2..];
            let end = tail.find('}').expect("unclosed ${ in Fn::Sub");
            let name = &tail[..end];
            if let Some(stripped) = name.strip_prefix('!') {
                out.push_str(&format!("${{{stripped}}}"));
            } else if let Some(v) = vars.get(name) {
                out.push_str(&self.resolve(v).map(|v| scalar(&v)).unwrap_or_default());
            } else if let Some((id, attr)) = name.split_once('.') {
                out.push_str(&self.get_att(id, attr));
            } else {
                out.push_str(&self.ref_value(name).unwrap_or_default());
            }
            rest = &tail[end + 1..];
        }
        out.push_str(rest);
        out
    }

    pub fn condition(&self, name: &str) -> bool {
        self.truth(&self.t["Conditions"][name])
    }

    fn truth(&self, v: &Value) -> bool {
        let (op, arg) = single(v).unwrap_or_else(|| panic!("not a condition: {v}"));
        let args = arg.as_array();
        match op {
            "Fn::Equals" => {
                let a = args.unwrap();
                self.resolve(&a[0]).map(|v| scalar(&v)) == self.resolve(&a[1]).map(|v| scalar(&v))
            }
            "Fn::Not" => !self.truth(&args.unwrap()[0]),
            "Fn::And" => args.unwrap().iter().all(|c| self.truth(c)),
            "Fn::Or" => args.unwrap().iter().any(|c| self.truth(c)),
            "Condition" => self.condition(arg.as_str().unwrap()),
            other => panic!("unsupported condition function {other}"),
        }
    }

    /// `None` for `AWS::NoValue`.
    pub fn resolve(&self, v: &Value) -> Option<Value> {
        if let Some((op, arg)) = single(v) {
            match op {
                "Ref" => return self.ref_value(arg.as_str().unwrap()).map(Value::String),
                "Fn::GetAtt" => {
                    let (id, attr) = match arg {
                        Value::Array(a) => (scalar(&a[0]), scalar(&a[1])),
                        Value::String(s) => {
                            let (a, b) = s.split_once('.').unwrap();
                            (a.to_string(), b.to_string())
                        }
                        _ => panic!("bad Fn::GetAtt {arg}"),
                    };
                    return Some(Value::String(self.get_att(&id, &attr)));
                }
                "Fn::Sub" => {
                    return Some(Value::String(match arg {
                        Value::String(s) => self.sub(s, &serde_json::Map::new()),
                        Value::Array(a) => self.sub(a[0].as_str().unwrap(), a[1].as_object().unwrap()),
                        _ => panic!("bad Fn::Sub {arg}"),
                    }))
                }
                "Fn::If" => {
                    let a = arg.as_array().unwrap();
                    let branch = if self.condition(a[0].as_str().unwrap()) { &a[1] } else { &a[2] };
                    return self.resolve(branch);
                }
                "Fn::Join" => {
                    let a = arg.as_array().unwrap();
                    let parts = self.resolve(&a[1]).unwrap();
                    let parts: Vec<String> = parts.as_array().unwrap().iter().map(scalar).collect();
                    return Some(Value::String(parts.join(a[0].as_str().unwrap())));
                }
                op if op.starts_with("Fn::") && op != "Fn::Transform" => {
                    return Some(Value::String(format!("<{op}>")));
                }
                _ => {}
            }
        }
        Some(match v {
            Value::Object(m) => {
                Value::Object(m.iter().filter_map(|(k, v)| Some((k.clone(), self.resolve(v)?))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().filter_map(|v| self.resolve(v)).collect()),
            other => other.clone(),
        })
    }

    /// The statements of the role a function or state machine runs as.
    pub fn role_statements(&self, principal_id: &str) -> Vec<Value> {
        let props = &self.resource(principal_id)["Properties"];
        let role_ref = props.get("Role").or_else(|| props.get("RoleArn")).unwrap_or_else(|| {
            panic!("{principal_id}: no Role/RoleArn (is it a function or state machine of the template?)")
        });
        let role = role_ref["Fn::GetAtt"][0].as_str().unwrap_or_else(|| panic!("{principal_id}: role is not a GetAtt"));
        let policies = self.resolve(&self.resource(role)["Properties"]["Policies"]).unwrap_or(Value::Null);
        policies
            .as_array()
            .map(|ps| {
                ps.iter()
                    .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Deny statements of bucket policies that apply to every principal.
    pub fn bucket_denies(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (_, r) in self.t["Resources"].as_object().unwrap() {
            if r["Type"] == "AWS::S3::BucketPolicy" {
                let doc = self.resolve(&r["Properties"]["PolicyDocument"]).unwrap();
                for s in doc["Statement"].as_array().cloned().unwrap_or_default() {
                    let everyone = s["Principal"] == "*" || s["Principal"]["AWS"] == "*";
                    if s["Effect"] == "Deny" && everyone {
                        out.push(s);
                    }
                }
            }
        }
        out
    }
}

fn single(v: &Value) -> Option<(&str, &Value)> {
    let m = v.as_object()?;
    (m.len() == 1).then(|| m.iter().next().map(|(k, v)| (k.as_str(), v))).flatten()
}

// ------------------------------------------------------------------------------------------------ IAM evaluation

/// IAM wildcard match: `*` any run of characters (`/` included), `?` one character.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(scalar).collect(),
        Value::Null => Vec::new(),
        other => vec![scalar(other)],
    }
}

/// One S3 request as IAM sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    pub action: &'static str,
    pub resource: String,
    pub context: BTreeMap<String, String>,
}

/// The requests a recorded access becomes in S3 (bucket `bucket`, the store at the bucket's root).
pub fn requests(a: &Access, bucket: &str) -> Vec<Request> {
    let object = format!("arn:aws:s3:::{bucket}/{}", a.key);
    let base = BTreeMap::from([("aws:SecureTransport".to_string(), "true".to_string())]);
    let req = |action, resource: &str, extra: Option<(&str, String)>| {
        let mut context = base.clone();
        if let Some((k, v)) = extra {
            context.insert(k.to_string(), v);
        }
        Request { action, resource: resource.to_string(), context }
    };
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    match a.op {
        Op::Get | Op::GetRange | Op::Head => {
            let mut out = vec![req("s3:GetObject", &object, None)];
            // S3 answers 404 (not 403) for a missing key only to a caller allowed to list it.
            if !a.found {
                out.push(req("s3:ListBucket", &bucket_arn, Some(("s3:prefix", a.key.clone()))));
            }
            out
        }
        Op::Put => vec![req("s3:PutObject", &object, None)],
        Op::PutIfAbsent => vec![req("s3:PutObject", &object, Some(("s3:if-none-match", "*".into())))],
        // A failed multipart upload is aborted (nothing left behind), which needs its own grant.
        Op::PutLarge => vec![req("s3:PutObject", &object, None), req("s3:AbortMultipartUpload", &object, None)],
        Op::List => {
            let prefix = format!("{}/", a.key.trim_end_matches('/'));
            vec![req("s3:ListBucket", &bucket_arn, Some(("s3:prefix", prefix)))]
        }
    }
}

fn condition_holds(cond: &Value, ctx: &BTreeMap<String, String>) -> bool {
    let Some(ops) = cond.as_object() else { return true };
    ops.iter().all(|(op, kv)| {
        kv.as_object().unwrap().iter().all(|(key, vals)| {
            let vals = strings(vals);
            let (op, if_exists) = match op.strip_suffix("IfExists") {
                Some(o) => (o, true),
                None => (op.as_str(), false),
            };
            let Some(actual) = ctx.get(key) else {
                return match op {
                    "Null" => vals.iter().any(|v| v == "true"),
                    o if o.contains("Not") => true,
                    _ => if_exists,
                };
            };
            match op {
                "StringLike" | "ArnLike" => vals.iter().any(|v| wildcard(v, actual)),
                "StringEquals" | "ArnEquals" => vals.iter().any(|v| v == actual),
                "StringNotLike" | "ArnNotLike" => !vals.iter().any(|v| wildcard(v, actual)),
                "StringNotEquals" | "ArnNotEquals" => !vals.iter().any(|v| v == actual),
                "Bool" => vals.iter().any(|v| v.eq_ignore_ascii_case(actual)),
                "Null" => vals.iter().any(|v| v == "false"),
                other => panic!("the IAM check does not evaluate condition operator {other}; add it to tests/iam.rs"),
            }
        })
    })
}

/// Which (action pattern, resource pattern) of `stmt` grant `r`, if the statement applies at all.
fn grants(stmt: &Value, r: &Request) -> Option<(String, String)> {
    assert!(
        stmt.get("NotAction").is_none() && stmt.get("NotResource").is_none(),
        "NotAction/NotResource are not evaluated"
    );
    let action = strings(&stmt["Action"])
        .into_iter()
        .find(|a| wildcard(&a.to_ascii_lowercase(), &r.action.to_ascii_lowercase()))?;
    let resource = strings(&stmt["Resource"]).into_iter().find(|p| wildcard(p, &r.resource))?;
    condition_holds(stmt.get("Condition").unwrap_or(&Value::Null), &r.context).then_some((action, resource))
}

/// The template's logical id of a recorded principal.
fn logical_id(principal: &str) -> String {
    let (kind, name) = principal.split_once(':').unwrap();
    let mut cap = name[..1].to_ascii_uppercase();
    cap.push_str(&name[1..]);
    match kind {
        "function" => format!("{cap}Function"),
        "machine" => format!("{cap}StateMachine"),
        _ => panic!("unknown principal {principal}"),
    }
}

/// A key with run ids, hashes and sequence numbers replaced, so one line stands for many accesses.
fn shape(key: &str) -> String {
    key.split('/')
        .map(|seg| {
            if seg.len() > 20 && seg.matches('-').count() >= 2 && seg.starts_with("weekly-") {
                "<run>".to_string()
            } else if seg.len() >= 32 && seg.chars().take(32).all(|c| c.is_ascii_hexdigit()) {
                "<sha256>.json".to_string()
            } else if seg.len() == 18 && seg.ends_with(".jsonl") && seg[..12].bytes().all(|b| b.is_ascii_digit()) {
                "<seq>.jsonl".to_string()
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub struct Verdict {
    pub denied: BTreeSet<String>,
    pub unused: BTreeSet<String>,
}

/// Evaluate every access against its principal's policies (explicit bucket-policy denies first).
pub fn evaluate(cfn: &Cfn, accesses: &[Access]) -> Verdict {
    let bucket = "DataBucket";
    let denies = cfn.bucket_denies();
    let mut denied = BTreeSet::new();
    let mut used: BTreeSet<(String, usize, String, String)> = BTreeSet::new();
    let mut used_prefixes: BTreeSet<(String, usize, String)> = BTreeSet::new();
    let principals: BTreeSet<&str> = accesses.iter().map(|a| a.principal.as_str()).collect();
    let statements: BTreeMap<&str, Vec<Value>> =
        principals.iter().map(|p| (*p, cfn.role_statements(&logical_id(p)))).collect();
    let unique: BTreeSet<&Access> = accesses.iter().collect();
    for a in unique {
        let stmts = &statements[a.principal.as_str()];
        for r in requests(a, bucket) {
            let what = format!(
                "{} ({}): {:?} {}{} needs {} on {}{}",
                a.principal,
                logical_id(&a.principal),
                a.op,
                shape(&a.key),
                if a.found { "" } else { " (absent)" },
                r.action,
                shape(&r.resource),
                r.context.get("s3:prefix").map(|p| format!(" with s3:prefix={}", shape(p))).unwrap_or_default(),
            );
            if denies.iter().any(|d| grants(d, &r).is_some()) {
                denied.insert(format!("{what} — explicitly denied by the bucket policy"));
                continue;
            }
            if stmts.iter().any(|s| s["Effect"] == "Deny" && grants(s, &r).is_some()) {
                denied.insert(format!("{what} — explicitly denied by its role"));
                continue;
            }
            let allowing: Vec<(usize, (String, String))> = stmts
                .iter()
                .enumerate()
                .filter(|(_, s)| s["Effect"] == "Allow")
                .filter_map(|(i, s)| grants(s, &r).map(|g| (i, g)))
                .collect();
            if allowing.is_empty() {
                denied.insert(format!("{what} — no statement allows it"));
            }
            for (i, (action, resource)) in allowing {
                // A listing grant is used per s3:prefix pattern of its condition.
                if let Some(prefix) = r.context.get("s3:prefix") {
                    for p in strings(&stmts[i]["Condition"]["StringLike"]["s3:prefix"]) {
                        if wildcard(&p, prefix) {
                            used_prefixes.insert((a.principal.clone(), i, p));
                        }
                    }
                }
                used.insert((a.principal.clone(), i, action, resource));
            }
        }
    }
    let mut unused = BTreeSet::new();
    for (p, stmts) in &statements {
        for (i, s) in stmts.iter().enumerate().filter(|(_, s)| s["Effect"] == "Allow") {
            for action in strings(&s["Action"]).into_iter().filter(|a| a.starts_with("s3:")) {
                for resource in strings(&s["Resource"]) {
                    if !used.contains(&(p.to_string(), i, action.clone(), resource.clone())) {
                        let cond = s.get("Condition").map(|c| format!(" if {c}")).unwrap_or_default();
                        unused.insert(format!("{p} ({}): {action} on {resource}{cond}", logical_id(p)));
                    }
                    for prefix in strings(&s["Condition"]["StringLike"]["s3:prefix"]) {
                        if !used_prefixes.contains(&(p.to_string(), i, prefix.clone())) {
                            unused.insert(format!("{p} ({}): {action} with s3:prefix {prefix}", logical_id(p)));
                        }
                    }
                }
            }
        }
    }
    Verdict { denied, unused }
}

// ------------------------------------------------------------------------------------------------ the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_store_access_is_allowed_by_the_deployed_policies() {
    let accesses = record_accesses().await;
    let template = template_path();
    let cfn = Cfn::new(translate(&template), &[]);
    let verdict = evaluate(&cfn, &accesses);

    let mut report =
        format!("IAM check of {} against {} recorded store accesses\n", template.display(), accesses.len());
    report.push_str(&format!("\n{} denied:\n", verdict.denied.len()));
    verdict.denied.iter().for_each(|d| report.push_str(&format!("  DENIED  {d}\n")));
    report.push_str(&format!("\n{} granted but never used (least privilege):\n", verdict.unused.len()));
    verdict.unused.iter().for_each(|u| report.push_str(&format!("  UNUSED  {u}\n")));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("iam");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("report.txt"), &report).unwrap();
    std::fs::write(dir.join("accesses.json"), serde_json::to_vec_pretty(&accesses).unwrap()).unwrap();
    println!("{report}");
    // The audit trail's bucket policy is evaluated too: a plain overwrite of a chain object is refused for
    // everyone, only a create-if-absent passes.
    let overwrite = |op| Access {
        principal: "function:safety".into(),
        op,
        key: "audit/safety/chain/000000000000.jsonl".into(),
        found: true,
    };
    assert!(
        evaluate(&cfn, &[overwrite(Op::Put)]).denied.iter().any(|d| d.contains("bucket policy")),
        "an overwrite of an audit object must be denied by the bucket policy"
    );
    assert!(evaluate(&cfn, &[overwrite(Op::PutIfAbsent)]).denied.is_empty());
    assert!(
        verdict.denied.is_empty(),
        "the template denies {} access(es) the code performs (listed above; report in {})",
        verdict.denied.len(),
        dir.display()
    );
}

#[test]
fn the_evaluator_matches_like_iam() {
    assert!(wildcard("arn:aws:s3:::b/runs/*", "arn:aws:s3:::b/runs/x/steps/a.json"));
    assert!(wildcard("runs/*/steps/*", "runs/x/steps/a.json"));
    assert!(!wildcard("runs/*/steps/*", "runs/x/variants/a.json"));
    assert!(wildcard("a?c", "abc") && !wildcard("a?c", "ac"));
    assert!(wildcard("runs/*", "runs/"));
    let stmt = json!({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                      "Condition": {"StringLike": {"s3:prefix": ["runs/*"]}}});
    let list = |key: &str, found| Access { principal: "function:x".into(), op: Op::List, key: key.into(), found };
    assert!(grants(&stmt, &requests(&list("runs/r/steps/", true), "b")[0]).is_some());
    assert!(grants(&stmt, &requests(&list("audit/safety/chain/", true), "b")[0]).is_none());
    // A missing object: GetObject, plus ListBucket for the key (else S3 answers 403).
    let head = Access { principal: "function:x".into(), op: Op::Head, key: "campaigns/w.yaml".into(), found: false };
    let rs = requests(&head, "b");
    assert_eq!(rs.len(), 2);
    assert!(grants(&stmt, &rs[1]).is_none());
}

// ------------------------------------------------------------------------------------------------ secrets

const SECRET: &str = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:cpo/key-AbCdEf";
const LAYER: &str = "arn:aws:lambda:eu-west-1:015030872274:layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:12";

/// The assertions of the template's `Rules` that fail for these parameter values (what CloudFormation refuses
/// before creating anything).
fn failed_rules(cfn: &Cfn) -> Vec<String> {
    let mut failed = Vec::new();
    for (name, rule) in cfn.t["Rules"].as_object().cloned().unwrap_or_default() {
        if rule.get("RuleCondition").is_some_and(|c| !cfn.truth(c)) {
            continue;
        }
        for a in rule["Assertions"].as_array().unwrap() {
            if !cfn.truth(&a["Assert"]) {
                failed.push(name.clone());
            }
        }
    }
    failed
}

#[test]
fn the_template_refuses_a_secret_without_the_extension_layer() {
    let t = translate(&template_path());
    assert_eq!(failed_rules(&Cfn::new(t.clone(), &[])), Vec::<String>::new(), "the defaults deploy");
    let network = [
        ("GenerationProvider", "openai"),
        ("LlmModel", "gpt-4o-mini"),
        ("LlmApiKeySecretArn", SECRET),
        ("SafetyProvider", "openai-moderation"),
        ("SafetyApiKeySecretArn", SECRET),
    ];
    let failed = failed_rules(&Cfn::new(t.clone(), &network));
    assert!(failed.contains(&"SecretsNeedTheExtension".to_string()), "{failed:?}");
    let only_safety = [("SafetyProvider", "openai-moderation"), ("SafetyApiKeySecretArn", SECRET)];
    assert!(failed_rules(&Cfn::new(t.clone(), &only_safety)).contains(&"SecretsNeedTheExtension".to_string()));
    let mut with_layer = network.to_vec();
    with_layer.push(("SecretsExtensionLayerArn", LAYER));
    assert_eq!(failed_rules(&Cfn::new(t.clone(), &with_layer)), Vec::<String>::new());
    // A network provider without its key is refused as well (it would fail on its first call).
    assert!(!failed_rules(&Cfn::new(t, &[("SafetyProvider", "azure-content-safety")])).is_empty());
}

#[test]
fn no_function_environment_holds_a_secret() {
    let t = translate(&template_path());
    let params = [
        ("GenerationProvider", "openai"),
        ("LlmModel", "gpt-4o-mini"),
        ("LlmApiKeySecretArn", SECRET),
        ("SafetyEndpoint", "https://x.cognitiveservices.azure.com"),
        ("SafetyApiKeySecretArn", SECRET),
        ("SecretsExtensionLayerArn", LAYER),
    ];
    for provider in ["azure-content-safety", "openai-moderation"] {
        let mut p = params.to_vec();
        p.push(("SafetyProvider", provider));
        let cfn = Cfn::new(t.clone(), &p);
        let mut refs = 0;
        for (id, r) in cfn.t["Resources"].as_object().unwrap() {
            if r["Type"] != "AWS::Lambda::Function" {
                continue;
            }
            let props = cfn.resolve(&r["Properties"]).unwrap();
            let vars = props["Environment"]["Variables"].as_object().cloned().unwrap_or_default();
            for (name, value) in &vars {
                let value = scalar(value);
                assert!(!value.contains("{{resolve:"), "{id}: {name} is resolved into the environment at deploy time");
                let secretish = ["KEY", "SECRET", "TOKEN", "PASSWORD"].iter().any(|w| name.contains(w));
                if name.ends_with("_REF") {
                    assert!(value.starts_with("aws-secrets:"), "{id}: {name} must be a reference: {value}");
                    refs += 1;
                    let layers = strings(&props["Layers"]);
                    assert_eq!(layers, vec![LAYER.to_string()], "{id} reads {name} without the secrets extension");
                    let granted = cfn.role_statements(id).iter().any(|s| {
                        strings(&s["Action"]).contains(&"secretsmanager:GetSecretValue".to_string())
                            && strings(&s["Resource"]) == vec![SECRET.to_string()]
                    });
                    assert!(granted, "{id} may not read the secret {name} names");
                } else {
                    assert!(
                        !secretish || value.is_empty() || name == "SECRETS_MANAGER_TTL",
                        "{id}: {name} looks like a secret in plain text"
                    );
                }
            }
        }
        assert_eq!(refs, 2, "generate and safety each get a key reference ({provider})");
    }
}

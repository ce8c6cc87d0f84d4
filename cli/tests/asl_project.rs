//! The project's own state machines (`infra/statemachine/`) load and run end to end with a fake invoker that
//! returns realistic step outputs; and `cpo sfn run` on small files.

#[path = "asl/support.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;

use cpo::asl::StateMachine;
use cpo::cmd::sfn::{self, RunArgs};
use cpo::tasks;
use serde_json::{json, Value};
use support::*;

fn machine_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/statemachine").join(name)
}

/// Step outputs shaped as the step contract says (docs/architecture.md): `{"run_id", "step", "keys", "counts"}`
/// (+ `segments`).
fn step_output(
    resource: &str,
    input: &Value,
    throttle_first_generate: bool,
    n: usize,
) -> Result<Value, cpo::asl::Failure> {
    let run_id = input["run_id"].as_str().unwrap_or("missing");
    let action = input["action"].as_str().unwrap_or("");
    Ok(match resource {
        "${SegmentFunctionArn}" => json!({"run_id": run_id, "step": "segment",
            "keys": {"segments": format!("runs/{run_id}/segments.json")},
            "counts": {"members": 5000, "rejected": 3, "segments": 3},
            "segments": ["champions", "loyal", "at_risk"]}),
        "${RetrieveFunctionArn}" => json!({"run_id": run_id, "step": "retrieve",
            "keys": {"retrieval": format!("runs/{run_id}/retrieval.json")}, "counts": {"passages": 36}}),
        "${GenerateFunctionArn}" => {
            if throttle_first_generate && n == 0 {
                return Err(fail("Cpo.ProviderThrottled", "429 from provider"));
            }
            let segment = input["segment"].as_str().unwrap_or("missing");
            json!({"run_id": run_id, "step": format!("generate:{segment}"),
                "keys": {"variants": format!("runs/{run_id}/variants/{segment}.json")}, "counts": {"variants": 3}})
        }
        "${SafetyFunctionArn}" => json!({"run_id": run_id, "step": "safety",
            "keys": {"audit": format!("runs/{run_id}/audit.jsonl")}, "counts": {"approved": 8, "blocked": 1}}),
        "${ExperimentFunctionArn}" => json!({"run_id": run_id, "step": format!("experiment:{action}"),
            "keys": {"out": format!("runs/{run_id}/{action}.json")}, "counts": {"arms": 4, "assigned": 4997}}),
        "${ReportFunctionArn}" => json!({"run_id": run_id, "step": format!("report:{action}"),
            "keys": {"html": format!("runs/{run_id}/report/index.html")}, "counts": {}}),
        other => return Err(fail("States.TaskFailed", &format!("unknown resource {other}"))),
    })
}

fn project_fake(throttle: bool) -> Arc<Fake> {
    Arc::new(Fake::new(move |resource, input, n| step_output(resource, input, throttle, n)))
}

#[tokio::test]
async fn campaign_machine_runs_end_to_end() {
    let machine = StateMachine::from_file(&machine_file("campaign.asl.json")).unwrap();
    assert_eq!(machine.name, "campaign");
    let fake = project_fake(true);
    let input =
        json!({"run_id": "2026-11-26-spring-abc123", "campaign": "spring", "simulate_outcomes": true, "seed": 7});
    let opts = cpo::asl::Options { execution_name: "e2e".into(), time_scale: 0.0, on_event: None };
    let out = cpo::asl::execute(&machine, input.clone(), fake.clone(), &opts).await.unwrap();

    assert_eq!(out["run_id"], input["run_id"]);
    assert_eq!(out["segment"]["segments"], json!(["champions", "loyal", "at_risk"]));
    assert_eq!(out["segment"]["counts"]["members"], 5000);
    assert_eq!(out["generate"], json!({"segments": 3}));
    assert_eq!(out["safety"]["counts"]["approved"], 8);
    assert_eq!(out["report"]["keys"]["html"], "runs/2026-11-26-spring-abc123/report/index.html");
    assert_eq!(out["simulate"]["keys"]["out"], "runs/2026-11-26-spring-abc123/simulate.json");

    let calls = fake.calls();
    let order: Vec<String> = calls
        .iter()
        .map(|(r, i)| {
            let f = r.trim_start_matches("${").trim_end_matches("FunctionArn}").to_string();
            match (i["action"].as_str(), i["segment"].as_str()) {
                (Some(a), _) => format!("{f}:{a}"),
                (_, Some(s)) => format!("{f}:{s}"),
                _ => f,
            }
        })
        .collect();
    assert_eq!(&order[..2], &["Segment", "Retrieve"]);
    let mut generated: Vec<&String> = order[2..6].iter().collect();
    generated.sort();
    assert_eq!(generated.len(), 4, "three segments, one retried after a throttle: {order:?}");
    assert!(generated.iter().all(|g| g.starts_with("Generate:")));
    assert_eq!(&order[6..], &["Safety", "Experiment:assign", "Report:campaign", "Experiment:simulate"]);
    // The Map's ItemSelector passes run_id, campaign and the item.
    let gen_input = &calls.iter().find(|(r, _)| r == "${GenerateFunctionArn}").unwrap().1;
    assert_eq!(gen_input.as_object().unwrap().len(), 3);
    assert_eq!(gen_input["campaign"], "spring");
    // Step inputs carry only what the contract allows.
    let seg_input = &calls[0].1;
    assert_eq!(seg_input, &json!({"run_id": "2026-11-26-spring-abc123", "campaign": "spring"}));
    assert_eq!(calls.last().unwrap().1["seed"], 7);
}

#[tokio::test]
async fn campaign_machine_skips_simulation_unless_asked() {
    let machine = StateMachine::from_file(&machine_file("campaign.asl.json")).unwrap();
    for input in
        [json!({"run_id": "r", "campaign": "c"}), json!({"run_id": "r", "campaign": "c", "simulate_outcomes": false})]
    {
        let fake = project_fake(false);
        let out = run_machine(&machine, input, fake.clone()).await.unwrap();
        assert!(out.get("simulate").is_none());
        assert!(fake.calls().iter().all(|(_, i)| i["action"] != "simulate"));
    }
}

#[tokio::test]
async fn campaign_machine_fails_with_the_step_error() {
    let machine = StateMachine::from_file(&machine_file("campaign.asl.json")).unwrap();
    let fake = Arc::new(Fake::new(|resource, input, n| {
        if resource == "${SafetyFunctionArn}" {
            Err(fail("Cpo.SafetyUnavailable", "no screen available"))
        } else {
            step_output(resource, input, false, n)
        }
    }));
    let err = run_machine(&machine, json!({"run_id": "r", "campaign": "c"}), fake.clone()).await.unwrap_err();
    assert_eq!(err.error, "Cpo.SafetyUnavailable");
    assert_eq!(fake.calls().iter().filter(|(r, _)| r == "${SafetyFunctionArn}").count(), 1, "fail closed: no retry");
}

#[tokio::test]
async fn analysis_machine_runs_end_to_end() {
    let machine = StateMachine::from_file(&machine_file("analysis.asl.json")).unwrap();
    let fake = project_fake(false);
    let input = json!({"run_id": "r1", "campaign": "spring", "outcomes_key": "runs/r1/outcomes/drop-1.csv"});
    let out = run_machine(&machine, input, fake.clone()).await.unwrap();
    assert_eq!(out["ingest"]["counts"]["arms"], 4);
    assert_eq!(out["report"]["keys"]["html"], "runs/r1/report/index.html");
    let actions: Vec<Value> = fake.calls().iter().map(|(_, i)| i["action"].clone()).collect();
    assert_eq!(actions, vec![json!("ingest"), json!("analyze"), json!("experiment")]);
    assert_eq!(fake.calls()[0].1["outcomes_key"], "runs/r1/outcomes/drop-1.csv");
}

async fn run_machine(m: &StateMachine, input: Value, fake: Arc<Fake>) -> Result<Value, cpo::asl::Failure> {
    let opts = cpo::asl::Options { execution_name: "e2e".into(), time_scale: 0.0, on_event: None };
    cpo::asl::execute(m, input, fake, &opts).await
}

fn sfn_args(file: &str, input: &str) -> RunArgs {
    RunArgs {
        file: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/asl").join(file),
        input: input.into(),
        store: "mem://".into(),
        time_scale: 0.0,
        name: "cli".into(),
        trace: false,
    }
}

#[tokio::test]
async fn sfn_run_prints_the_output_or_the_error() {
    let (out, code) = sfn::outcome(&sfn_args("hello.asl.json", r#"{"name": "Ada"}"#), Arc::new(Fake::echo())).await;
    assert_eq!((out, code), (Some(json!({"greeting": "Hello, Ada!", "machine": "hello"})), 0));
    let (out, code) = sfn::outcome(&sfn_args("hello.asl.json", "{}"), Arc::new(Fake::echo())).await;
    assert_eq!((out, code), (Some(json!({"error": "Hello.NoName", "cause": "give a name"})), 1));
    let (out, code) = sfn::outcome(&sfn_args("broken.asl.json", "{}"), Arc::new(Fake::echo())).await;
    assert_eq!((out, code), (None, 1));
    let (out, code) = sfn::outcome(&sfn_args("hello.asl.json", "{not json"), Arc::new(Fake::echo())).await;
    assert_eq!((out, code), (None, 2));
}

#[test]
fn resources_resolve_to_project_functions() {
    assert_eq!(tasks::function_name("${SegmentFunctionArn}"), Some("segment"));
    assert_eq!(tasks::function_name("${ExperimentFunctionArn}"), Some("experiment"));
    assert_eq!(tasks::function_name("arn:aws:lambda:eu-west-1:1:function:cpo-report"), Some("report"));
    assert_eq!(tasks::function_name("${NopeFunctionArn}"), None);
}

#[test]
fn item_reader_formats() {
    let csv = "customer_id,spend\nc1,10\nc2,20\n";
    assert_eq!(
        tasks::parse_items(csv, &json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"})).unwrap(),
        vec![json!({"customer_id": "c1", "spend": "10"}), json!({"customer_id": "c2", "spend": "20"})]
    );
    let given = tasks::parse_items(
        "a|b\n",
        &json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN",
        "CSVHeaders": ["x", "y"], "CSVDelimiter": "PIPE"}),
    )
    .unwrap();
    assert_eq!(given, vec![json!({"x": "a", "y": "b"})]);
    assert_eq!(tasks::parse_items("{\"a\":1}\n\n{\"a\":2}\n", &json!({"InputType": "JSONL"})).unwrap().len(), 2);
    assert_eq!(tasks::parse_items("[1,2]", &json!({})).unwrap(), vec![json!(1), json!(2)]);
    assert!(tasks::parse_items("{\"a\":1}\nnope", &json!({"InputType": "JSONL"})).unwrap_err().contains("line 2"));
}

#[tokio::test]
async fn function_invoker_maps_inputs_errors_and_store_items() {
    use cpo::asl::TaskInvoker;
    use cpo_common::keys::Key;
    let store = cpo_common::store::open("mem://").unwrap();
    let csv = "customer_id,spend\nc1,10\nc2,20\nc3,30\n";
    store.put(&Key::new("runs/r1/shards/part-0.csv").unwrap(), bytes::Bytes::from(csv)).await.unwrap();
    store.put(&Key::new("runs/r1/shards/part-1.csv").unwrap(), bytes::Bytes::from(csv)).await.unwrap();
    let invoker = tasks::LocalTasks::new(cpo_common::Ctx::new(store));

    let err = invoker.invoke("${SegmentFunctionArn}", json!({"campaign": "c"})).await.unwrap_err();
    assert_eq!(err.error, "Cpo.InputInvalid", "a step input without run_id: {}", err.cause);
    let err = invoker.invoke("${WeatherFunctionArn}", json!({"run_id": "r"})).await.unwrap_err();
    assert_eq!(err.error, "States.TaskFailed");

    let rows = invoker
        .read_items(
            "arn:aws:states:::s3:getObject",
            &json!({"Bucket": "ignored", "Key": "runs/r1/shards/part-0.csv"}),
            &json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}),
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2], json!({"customer_id": "c3", "spend": "30"}));
    let listed = invoker
        .read_items("arn:aws:states:::s3:listObjectsV2", &json!({"Prefix": "runs/r1/shards/"}), &json!({}))
        .await
        .unwrap();
    let mut keys: Vec<&str> = listed.iter().filter_map(|o| o["Key"].as_str()).collect();
    keys.sort();
    assert_eq!(keys, vec!["runs/r1/shards/part-0.csv", "runs/r1/shards/part-1.csv"]);
    let err = invoker
        .read_items("arn:aws:states:::s3:getObject", &json!({"Key": "runs/r1/missing.csv"}), &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.error, "States.ItemReaderFailed");
    let err = invoker.read_items("arn:aws:states:::s3:getObject", &json!({"Key": "../etc/passwd"}), &json!({})).await;
    assert!(err.is_err(), "keys stay inside the store");
}

#[tokio::test]
async fn a_sharded_distributed_map_reads_the_store_through_the_runner() {
    let store = cpo_common::store::open("mem://").unwrap();
    for part in 0..3 {
        let key = cpo_common::keys::Key::new(format!("runs/r1/shards/part-{part}.jsonl")).unwrap();
        store.put(&key, bytes::Bytes::from("{\"id\":1}\n{\"id\":2}\n")).await.unwrap();
    }
    let def = json!({"StartAt": "Shards", "States": {"Shards": {"Type": "Map", "MaxConcurrency": 2,
        "ItemReader": {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "b", "Prefix.$": "$.prefix"}},
        "ItemSelector": {"key.$": "$$.Map.Item.Value.Key"},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "Rows",
            "States": {"Rows": {"Type": "Map", "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSONL"}, "Parameters": {"Bucket": "b", "Key.$": "$.key"}},
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
                "End": true}}},
        "End": true}}});
    let m = machine(def);
    let opts = cpo::asl::Options { execution_name: "shards".into(), time_scale: 0.0, on_event: None };
    let out = cpo::asl::execute(
        &m,
        json!({"prefix": "runs/r1/shards/"}),
        Arc::new(tasks::LocalTasks::new(cpo_common::Ctx::new(store))),
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(out, json!([[{"id": 1}, {"id": 2}], [{"id": 1}, {"id": 2}], [{"id": 1}, {"id": 2}]]));
}

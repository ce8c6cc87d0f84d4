//! The trigger through its real Lambda signature (`LambdaEvent<Value>`), fed every payload in `events/`, with
//! executions started on moto's Step Functions API (`scripts/emulators.sh start`; these tests fail without it).

use std::path::PathBuf;
use std::sync::Arc;

use aws_sdk_sfn::Client;
use bytes::Bytes;
use cpo_common::keys::{Key, RunKeys};
use cpo_common::run::{self, StartOptions};
use cpo_common::store::emulators::{unique_prefix, EmulatorEnv};
use cpo_common::store::{open, DynStore, StoreExt};
use cpo_common::ErrorKind;
use cpo_trigger::handler::{handle, Deps};
use cpo_trigger::sfn::SfnStarter;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

const CUSTOMERS: &[u8] = b"customer_id,email,first_name,last_order_date,orders,revenue\n\
C1,a@example.com,Ann,2026-11-01,3,120.5\nC2,b@example.com,Bo,2026-10-01,1,20\n";
/// The run the outcomes events in `events/` refer to.
const EVENTS_RUN_ID: &str = "weekly-20261123-0123456789ab";

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn load_event(name: &str) -> Value {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Two fresh state machines on moto and a client for them.
struct Machines {
    client: Client,
    campaign: String,
    analysis: String,
}

async fn machines(test: &str) -> Machines {
    let _env = EmulatorEnv::require();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = Client::new(&config);
    let definition = r#"{"StartAt":"Wait","States":{"Wait":{"Type":"Wait","Seconds":3600,"End":true}}}"#;
    let mut arns = Vec::new();
    for kind in ["campaign", "analysis"] {
        let name = format!("{}-{kind}", unique_prefix(test)).chars().take(80).collect::<String>();
        let out = client
            .create_state_machine()
            .name(name)
            .definition(definition)
            .role_arn("arn:aws:iam::123456789012:role/cpo-test")
            .send()
            .await
            .unwrap_or_else(|e| panic!("create state machine on moto: {}", aws_sdk_sfn::error::DisplayErrorContext(e)));
        arns.push(out.state_machine_arn().to_string());
    }
    Machines { client, campaign: arns[0].clone(), analysis: arns[1].clone() }
}

impl Machines {
    fn starter(&self) -> Arc<SfnStarter> {
        Arc::new(SfnStarter::new(self.client.clone(), self.campaign.clone(), self.analysis.clone()))
    }
    async fn executions(&self, arn: &str) -> Vec<(String, Value)> {
        let list = self.client.list_executions().state_machine_arn(arn).send().await.expect("list executions");
        let mut out = Vec::new();
        for e in list.executions() {
            let d = self.client.describe_execution().execution_arn(e.execution_arn()).send().await.expect("describe");
            let input: Value = serde_json::from_str(d.input().unwrap_or("null")).expect("execution input is JSON");
            out.push((e.name().to_string(), input));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

async fn invoke(payload: Value, deps: &Deps) -> Result<Value, cpo_common::StepError> {
    handle(LambdaEvent::new(payload, Context::default()), deps).await
}

/// A store holding what the sample events refer to: both incoming files and the run their outcomes belong to.
async fn events_store() -> DynStore {
    let store = open("mem://").unwrap();
    store.put(&Key::new("incoming/weekly/customers.csv").unwrap(), Bytes::from_static(CUSTOMERS)).await.unwrap();
    // Different content: runs are keyed by content, so an identical copy would map to the same run.
    let week48 = [CUSTOMERS, b"C3,c@example.com,Cy,2026-11-20,2,50\n"].concat();
    store.put(&Key::new("incoming/weekly/customers week 48+1.csv").unwrap(), Bytes::from(week48)).await.unwrap();
    let mut prepared =
        run::prepare(store.as_ref(), &Key::new("incoming/weekly/customers.csv").unwrap(), &StartOptions::default())
            .await
            .unwrap();
    prepared.run_id = EVENTS_RUN_ID.to_string();
    let keys = RunKeys::new(EVENTS_RUN_ID).unwrap();
    store.put_json(&keys.input(), &prepared).await.unwrap();
    store
        .put(&keys.outcomes("events-2026-11-30.csv").unwrap(), Bytes::from_static(b"customer_id,event\n"))
        .await
        .unwrap();
    store
}

/// What each sample event must do: (file, campaign starts, analysis starts, ignored).
const EXPECTED: &[(&str, usize, usize, usize)] = &[
    ("s3-put.json", 1, 0, 0),
    ("s3-put-encoded-key.json", 1, 0, 0),
    ("s3-put-ignored.json", 0, 0, 1),
    ("s3-put-outcomes.json", 0, 1, 0),
    ("eventbridge-object-created.json", 1, 0, 0),
    ("eventbridge-outcomes.json", 0, 1, 0),
    ("eventbridge-scheduled-event.json", 1, 0, 0),
    ("schedule-weekly.json", 1, 0, 0),
];

#[tokio::test]
async fn every_sample_event_through_the_lambda_handler() {
    let m = machines("samples").await;
    let listed: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    for name in &listed {
        assert!(EXPECTED.iter().any(|(f, ..)| f == name), "events/{name} has no expectation in this test");
    }
    let store = events_store().await;
    let deps = Deps::for_store(store.clone(), m.starter(), Some("cpo-data".into())).unwrap();
    for (file, campaigns, analyses, ignored) in EXPECTED {
        let out = invoke(load_event(file), &deps).await.unwrap_or_else(|e| panic!("events/{file}: {e}"));
        let started = out["started"].as_array().unwrap();
        let count = |m: &str| started.iter().filter(|s| s["machine"] == m).count();
        assert_eq!(count("campaign"), *campaigns, "events/{file}: {out}");
        assert_eq!(count("analysis"), *analyses, "events/{file}: {out}");
        assert_eq!(out["ignored"], *ignored, "events/{file}: {out}");
    }

    // The encoded key reached the decoded object: its run records `customers week 48+1.csv`.
    let runs = store.list(&Key::new("runs/").unwrap()).await.unwrap();
    let mut inputs = Vec::new();
    for o in runs.iter().filter(|o| o.key.ends_with("/input.json")) {
        let r: run::RunInput = store.get_json(&Key::new(o.key.clone()).unwrap()).await.unwrap();
        inputs.push(r.input.key);
    }
    assert!(inputs.contains(&"incoming/weekly/customers week 48+1.csv".to_string()), "{inputs:?}");

    // Five campaign events: three drops over two input objects (one execution per object, however often it
    // is reported) and two schedule fires on 2026-11-23 (one week: one run of the newest file, dated by the
    // fire time, not by the file's last-modified date).
    let campaign_execs = m.executions(&m.campaign).await;
    let names: Vec<&str> = campaign_execs.iter().map(|(n, _)| n.as_str()).collect();
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(names, unique, "execution names are unique");
    assert_eq!(campaign_execs.len(), 3, "5 campaign events: 2 input objects and one scheduled week: {names:?}");
    assert_eq!(names.iter().filter(|n| n.starts_with("weekly-20261123-")).count(), 1, "{names:?}");
    for (name, input) in &campaign_execs {
        assert_eq!(input["run_id"], name.as_str(), "campaign executions are named after their run_id");
        assert_eq!(input["campaign"], "weekly");
        RunKeys::new(name).expect("execution name is a valid run_id");
    }
    let analysis_execs = m.executions(&m.analysis).await;
    assert_eq!(analysis_execs.len(), 1, "S3 and EventBridge events of the same outcomes object: one analysis");
    let (name, input) = &analysis_execs[0];
    assert!(name.starts_with(&format!("{EVENTS_RUN_ID}-o")) && name.len() == EVENTS_RUN_ID.len() + 10, "{name}");
    assert_eq!(input["outcomes_key"], format!("runs/{EVENTS_RUN_ID}/outcomes/events-2026-11-30.csv"));
}

#[tokio::test]
async fn redelivered_s3_event_on_s3_produces_exactly_one_run() {
    let env = EmulatorEnv::require();
    let m = machines("redeliver").await;
    let prefix = unique_prefix("redeliver");
    let store = open(&env.s3_url(&prefix)).unwrap();
    let deps = Deps::for_store(store.clone(), m.starter(), None).unwrap();
    assert_eq!(deps.bucket, env.s3_bucket);
    let input = Key::new("incoming/weekly/customers.csv").unwrap();
    store.put(&input, Bytes::from_static(CUSTOMERS)).await.unwrap();

    let mut event = load_event("s3-put.json");
    event["Records"][0]["s3"]["bucket"]["name"] = env.s3_bucket.clone().into();
    event["Records"][0]["s3"]["object"]["key"] = format!("{prefix}/incoming/weekly/customers.csv").into();
    event["Records"][0]["s3"]["object"]["eTag"] = etag_of(&store, &input).await.into();
    for _ in 0..3 {
        let out = invoke(event.clone(), &deps).await.unwrap();
        assert_eq!(out["started"].as_array().unwrap().len(), 1, "{out}");
    }
    let runs: Vec<String> = store
        .list(&Key::new("runs/").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with("/input.json"))
        .collect();
    assert_eq!(runs.len(), 1, "one run for three deliveries: {runs:?}");
    let execs = m.executions(&m.campaign).await;
    assert_eq!(execs.len(), 1, "one execution for three deliveries: {execs:?}");
    assert_eq!(format!("runs/{}/input.json", execs[0].0), runs[0]);

    // A new version of the file (new ETag, reported by its own event) is a new run.
    store.put(&input, Bytes::from([CUSTOMERS, b"C3,c@example.com,Cy,2026-11-20,2,50\n"].concat())).await.unwrap();
    let old_event = event.clone();
    event["Records"][0]["s3"]["object"]["eTag"] = etag_of(&store, &input).await.into();
    invoke(event.clone(), &deps).await.unwrap();
    assert_eq!(m.executions(&m.campaign).await.len(), 2);
    // The first version's event delivered again now: that version is gone, so it starts nothing.
    assert_eq!(invoke(old_event, &deps).await.unwrap_err().kind, ErrorKind::InputInvalid);
    assert_eq!(m.executions(&m.campaign).await.len(), 2);

    // Objects outside the store's prefix in the same bucket are ignored, not started.
    let mut outside = event.clone();
    outside["Records"][0]["s3"]["object"]["key"] = "elsewhere/incoming/weekly/customers.csv".into();
    let out = invoke(outside, &deps).await.unwrap();
    assert_eq!(out["ignored"], 1);
    assert_eq!(m.executions(&m.campaign).await.len(), 2);
}

/// The ETag of an object as S3 events report it (no quotes).
async fn etag_of(store: &DynStore, key: &Key) -> String {
    let meta = store.head(key).await.unwrap().expect("object exists");
    meta.etag.expect("S3 reports an ETag").trim_matches('"').to_string()
}

/// Remembers what it was asked to start.
#[derive(Default)]
struct Recording(std::sync::Mutex<Vec<cpo_trigger::Start>>);

#[async_trait::async_trait]
impl cpo_trigger::Starter for Recording {
    async fn start(&self, start: &cpo_trigger::Start) -> Result<cpo_trigger::Started, cpo_common::StepError> {
        self.0.lock().unwrap().push(start.clone());
        Ok(cpo_trigger::Started::Started)
    }
}

/// The same file name uploaded twice with different content, each upload reported by its own event: two runs,
/// each of the content its event reported — also when the first event is handled only after the second
/// upload (then the first version is gone: refused with the reason, never run as the second's content).
#[tokio::test]
async fn a_name_uploaded_twice_gives_one_run_per_reported_version() {
    let env = EmulatorEnv::require();
    let prefix = unique_prefix("reupload");
    let store = open(&env.s3_url(&prefix)).unwrap();
    let recording = Arc::new(Recording::default());
    let deps = Deps::for_store(store.clone(), recording.clone(), None).unwrap();
    let input = Key::new("incoming/weekly/customers.csv").unwrap();
    let event_for = |etag: &str, event_bridge: bool| {
        if event_bridge {
            let mut e = load_event("eventbridge-object-created.json");
            e["detail"]["bucket"]["name"] = env.s3_bucket.clone().into();
            e["detail"]["object"]["key"] = format!("{prefix}/{input}").into();
            e["detail"]["object"]["etag"] = etag.into();
            e
        } else {
            let mut e = load_event("s3-put.json");
            e["Records"][0]["s3"]["bucket"]["name"] = env.s3_bucket.clone().into();
            e["Records"][0]["s3"]["object"]["key"] = format!("{prefix}/{input}").into();
            e["Records"][0]["s3"]["object"]["eTag"] = etag.into();
            e
        }
    };
    let second = [CUSTOMERS, b"C3,c@example.com,Cy,2026-11-20,2,50\n"].concat();

    for event_bridge in [false, true] {
        recording.0.lock().unwrap().clear();
        // In order: upload, event, upload, event.
        store.put(&input, Bytes::from_static(CUSTOMERS)).await.unwrap();
        let v1 = etag_of(&store, &input).await;
        invoke(event_for(&v1, event_bridge), &deps).await.unwrap();
        store.put(&input, Bytes::from(second.clone())).await.unwrap();
        let v2 = etag_of(&store, &input).await;
        assert_ne!(v1, v2);
        invoke(event_for(&v2, event_bridge), &deps).await.unwrap();
        let runs: Vec<String> =
            recording.0.lock().unwrap().iter().map(|s| s.input["run_id"].as_str().unwrap().to_string()).collect();
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_ne!(runs[0], runs[1], "two versions, one run");
        for (run_id, etag) in runs.iter().zip([&v1, &v2]) {
            let r = run::load(store.as_ref(), run_id).await.unwrap();
            assert_eq!(r.input.version.trim_matches('"'), etag.as_str(), "{run_id} is not of its event's version");
        }

        // Late: both uploads happen before the first event is handled.
        recording.0.lock().unwrap().clear();
        store.put(&input, Bytes::from(b"customer_id,email,first_name,last_order_date,orders,revenue\nC7,g@example.com,Gi,2026-11-03,1,9\n".to_vec())).await.unwrap();
        let v3 = etag_of(&store, &input).await;
        store.put(&input, Bytes::from_static(CUSTOMERS)).await.unwrap();
        let v4 = etag_of(&store, &input).await;
        let err = invoke(event_for(&v3, event_bridge), &deps).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::InputInvalid);
        assert!(err.message.contains("changed after the event") && err.message.contains(&v3), "{err}");
        invoke(event_for(&v4, event_bridge), &deps).await.unwrap();
        let started = recording.0.lock().unwrap().clone();
        assert_eq!(started.len(), 1, "only the version still there runs: {started:?}");
        assert_eq!(started[0].input["run_id"].as_str(), Some(runs[0].as_str()), "v4 has v1's content");
    }
}

#[tokio::test]
async fn foreign_buckets_and_bad_keys_start_nothing() {
    let m = machines("refuse").await;
    let store = events_store().await;
    let deps = Deps::for_store(store, m.starter(), Some("cpo-data".into())).unwrap();

    let mut foreign = load_event("s3-put.json");
    foreign["Records"][0]["s3"]["bucket"]["name"] = "someone-elses-bucket".into();
    let err = invoke(foreign, &deps).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InputInvalid);
    assert!(err.message.contains("someone-elses-bucket"), "{err}");

    let mut eb = load_event("eventbridge-object-created.json");
    eb["detail"]["bucket"]["name"] = "someone-elses-bucket".into();
    assert!(invoke(eb, &deps).await.is_err());

    // Traversal, absolute, encoded traversal, control characters, over-long: ignored with a log line.
    for key in [
        "incoming/weekly/../../etc/passwd",
        "/incoming/weekly/a.csv",
        "incoming/%2E%2E/weekly/a.csv",
        "incoming/weekly/a%0A.csv",
        "runs/x/outcomes/..",
        &format!("incoming/weekly/{}.csv", "a".repeat(1100)),
    ] {
        let mut e = load_event("s3-put.json");
        e["Records"][0]["s3"]["object"]["key"] = key.into();
        let out = invoke(e, &deps).await.unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(out["ignored"], 1, "{key}: {out}");
    }
    assert!(m.executions(&m.campaign).await.is_empty());
    assert!(m.executions(&m.analysis).await.is_empty());

    // A missing object is an input error (Lambda's retry then re-sends the event), not a silent success.
    let mut missing = load_event("s3-put.json");
    missing["Records"][0]["s3"]["object"]["key"] = "incoming/weekly/not-there.csv".into();
    assert_eq!(invoke(missing, &deps).await.unwrap_err().kind, ErrorKind::InputInvalid);
}

#[tokio::test]
async fn schedule_picks_the_newest_input_and_tolerates_none() {
    let m = machines("schedule").await;
    let store = open("mem://").unwrap();
    let deps = Deps::for_store(store.clone(), m.starter(), Some("cpo-data".into())).unwrap();
    let out = invoke(load_event("schedule-weekly.json"), &deps).await.unwrap();
    assert_eq!(out["started"].as_array().unwrap().len(), 0, "nothing to run yet: {out}");

    store.put(&Key::new("incoming/weekly/old.csv").unwrap(), Bytes::from_static(CUSTOMERS)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let newest = Key::new("incoming/weekly/new.csv").unwrap();
    store.put(&newest, Bytes::from([CUSTOMERS, b"C9,z@example.com,Zed,2026-11-02,1,5\n"].concat())).await.unwrap();
    let out = invoke(serde_json::json!({"campaign": "weekly", "simulate_outcomes": true}), &deps).await.unwrap();
    let execs = m.executions(&m.campaign).await;
    assert_eq!(execs.len(), 1, "{out}");
    let r = run::load(store.as_ref(), &execs[0].0).await.unwrap();
    assert_eq!(r.input.key, "incoming/weekly/new.csv");
    assert_eq!(execs[0].1["simulate_outcomes"], true);

    let err = invoke(serde_json::json!({"campaign": "../etc"}), &deps).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InputInvalid);
}

#[test]
fn step_inputs_in_events_parse() {
    let dir = events_dir().join("steps");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let input: cpo_common::StepInput =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        input.keys().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert_eq!(n, 10, "one input per step and action");
}

#[tokio::test]
async fn a_name_reused_with_other_input_is_already_exists_not_an_error() {
    use cpo_trigger::{Machine, Start, Started, Starter};
    let m = machines("names").await;
    let starter = m.starter();
    let name = "weekly-20261123-aaaaaaaaaaaa".to_string();
    let first = Start { machine: Machine::Campaign, name: name.clone(), input: serde_json::json!({"run_id": name}) };
    assert_eq!(starter.start(&first).await.unwrap(), Started::Started);
    let other = Start { input: serde_json::json!({"run_id": name, "seed": 2}), ..first.clone() };
    assert_eq!(starter.start(&other).await.unwrap(), Started::AlreadyExists);
    assert_eq!(m.executions(&m.campaign).await.len(), 1);
    // An unknown state machine is a configuration error, reported as such.
    let broken = SfnStarter::new(m.client.clone(), format!("{}-missing", m.campaign), m.analysis.clone());
    let err = broken.start(&first).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal, "{err}");
}

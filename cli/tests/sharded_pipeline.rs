//! The campaign machine with `"sharded": true` (plan → sketch Map → merge → score Map → finish, the Maps run from
//! an `s3:getObject` ItemReader) gives exactly what the single `Segment` state gives: same members in the same
//! order, same segment profiles, same assignments downstream.

use std::path::Path;

use cpo_common::keys::{Key, RunKeys};
use cpo_common::store::{DynStore, StoreExt};
use serde_json::Value;

const CUSTOMERS: u64 = 3000;
/// Small enough that the ~240 KB input splits into several shards.
const SHARD_BYTES: u64 = 40_000;

fn args(store: &str, input: &Path, sharded: bool, definitions: Option<&Path>) -> cpo::cmd::run::Args {
    cpo::cmd::run::Args {
        input: input.to_path_buf(),
        store: store.to_string(),
        campaign: "weekly".into(),
        content: None,
        simulate_outcomes: false,
        seed: None,
        as_of: None,
        sharded,
        definitions: definitions.map(Path::to_path_buf),
        json: true,
        metrics_out: None,
    }
}

async fn only_run(store: &DynStore) -> RunKeys {
    let mut runs: Vec<String> = store
        .list(&Key::new("runs/").unwrap())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|o| o.key.split('/').nth(1).map(String::from))
        .collect();
    runs.dedup();
    assert_eq!(runs.len(), 1, "{runs:?}");
    RunKeys::new(&runs[0]).unwrap()
}

/// Every line of every object under `prefix`, in key order (parts are numbered, so this is the written order).
async fn lines(store: &DynStore, prefix: &Key) -> Vec<String> {
    let mut out = Vec::new();
    for o in store.list(prefix).await.unwrap() {
        let body = store.get(&Key::new(o.key).unwrap()).await.unwrap();
        out.extend(String::from_utf8(body.to_vec()).unwrap().lines().map(String::from));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_campaign_equals_single_pass() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("customers.csv");
    std::fs::write(&input, cpo_segment::synth::customers_csv(CUSTOMERS, 5)).unwrap();
    // The deployed definition, with only the plan's shard size made small.
    let defs = dir.path().join("definitions");
    std::fs::create_dir(&defs).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/statemachine");
    let campaign = std::fs::read_to_string(root.join("campaign.asl.json")).unwrap();
    let small = campaign.replace("\"shard_bytes\": 268435456", &format!("\"shard_bytes\": {SHARD_BYTES}"));
    assert_ne!(small, campaign, "the plan's shard_bytes is no longer 268435456: update this test");
    std::fs::write(defs.join("campaign.asl.json"), small).unwrap();
    std::fs::copy(root.join("analysis.asl.json"), defs.join("analysis.asl.json")).unwrap();

    let url = |name: &str| format!("file://{}", dir.path().join(name).display());
    cpo::cmd::run::run(args(&url("single"), &input, false, None)).await.expect("single-pass run");
    cpo::cmd::run::run(args(&url("sharded"), &input, true, Some(&defs))).await.expect("sharded run");
    let single = cpo_common::store::open(&url("single")).unwrap();
    let sharded = cpo_common::store::open(&url("sharded")).unwrap();
    let (k1, k2) = (only_run(&single).await, only_run(&sharded).await);
    assert_eq!(k1.run_id(), k2.run_id());

    // The sharded path really ran: a plan with several shards, and no plan in the single pass.
    let plan_key = k2.prefix().join("segment/shards.json").unwrap();
    let shards: Value = sharded.get_json(&plan_key).await.unwrap();
    assert!(shards.as_array().unwrap().len() >= 4, "expected several shards: {shards}");
    assert!(!single.exists(&plan_key).await.unwrap());

    let (m1, m2) = (lines(&single, &k1.members_prefix()).await, lines(&sharded, &k2.members_prefix()).await);
    assert_eq!(m1.len() as u64, CUSTOMERS);
    assert_eq!(m1, m2, "members differ");
    let (s1, s2): (Value, Value) =
        (single.get_json(&k1.segments()).await.unwrap(), sharded.get_json(&k2.segments()).await.unwrap());
    assert_eq!(s1["segments"], s2["segments"], "segment profiles differ");
    assert_eq!(s1["customers"], s2["customers"]);
    let mut a1 = lines(&single, &k1.assignments_prefix()).await;
    let mut a2 = lines(&sharded, &k2.assignments_prefix()).await;
    assert!(!a1.is_empty());
    a1.sort();
    a2.sort();
    assert_eq!(a1, a2, "assignments differ");
}

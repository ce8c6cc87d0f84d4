//! The whole pipeline, end to end, through the same ASL files Step Functions runs: `cpo run` on a generated
//! customers file, re-runs, real outcomes through `cpo analyze`, and what must never leak.

use std::collections::{BTreeMap, BTreeSet};

use cpo_common::keys::Key;
use cpo_common::store::StoreExt;
use cpo_e2e::*;
use serde_json::Value;

const N: u64 = 6000;

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_and_simulated_analysis_end_to_end() {
    let s = Scratch::new();
    let input = s.customers(N, 11);
    cpo::cmd::run::run(run_args(&s.store_url(), &input, true)).await.expect("cpo run");
    let store = s.store();
    let run_id = only_run(&store).await;
    let k = keys(&run_id);

    // Segments: every customer scored, no one rejected.
    let segments = json(&store, &k.segments()).await;
    assert_eq!(segments["customers"], N);
    let profile_total: u64 = segments["segments"].as_array().unwrap().iter().map(|p| p["size"].as_u64().unwrap()).sum();
    assert_eq!(profile_total, N);

    // Variants: every shipped variant cites retrieved content whose quote really occurs in the source.
    let corpus: BTreeMap<String, String> = cpo_common::bundled::content()
        .into_iter()
        .filter(|(name, _)| name.ends_with(".json"))
        .map(|(_, text)| {
            let d: Value = serde_json::from_str(text).unwrap();
            (d["document_id"].as_str().unwrap().to_string(), normalize(d["content"].as_str().unwrap()))
        })
        .collect();
    let mut shipped = Vec::new();
    for o in store.list(&k.variants_prefix()).await.unwrap() {
        let doc = json(&store, &Key::new(o.key).unwrap()).await;
        for v in doc["variants"].as_array().unwrap() {
            if v["status"] == "shipped" {
                let cites = v["citations"].as_array().unwrap();
                assert!(!cites.is_empty(), "{} has no citation", v["variant_id"]);
                for c in cites {
                    if let Some(src) = corpus.get(c["doc_id"].as_str().unwrap()) {
                        assert!(src.contains(&normalize(c["quote"].as_str().unwrap())), "quote not in source: {c}");
                    }
                }
                shipped.push(v["variant_id"].as_str().unwrap().to_string());
            }
        }
    }
    assert!(shipped.len() >= 10, "expected variants for most segments, got {shipped:?}");

    // Safety: only approved variants (and the approved control) are assigned; the audit chain verifies.
    let safety = json(&store, &k.safety()).await;
    let approved: BTreeSet<String> = safety["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["decision"] == "approved")
        .map(|v| v["variant_id"].as_str().unwrap().to_string())
        .collect();
    assert!(approved.contains("control"));
    let report = cpo_safety::audit::verify(store.as_ref(), &run_id).await.expect("audit verify");
    assert!(report.ok(), "audit chain: {report:?}");

    // Assignment: everyone exactly once, only to approved variants.
    let assignments = lines(&store, &k.assignments_prefix()).await;
    assert_eq!(assignments.len() as u64, N, "nobody dropped, nobody twice");
    let mut ids = BTreeSet::new();
    for l in &assignments {
        let a: Value = serde_json::from_str(l).unwrap();
        assert!(ids.insert(a["customer_id"].as_str().unwrap().to_string()), "assigned twice: {l}");
        let v = a["variant_id"].as_str().unwrap();
        assert!(v.is_empty() || approved.contains(v), "unapproved variant assigned: {l}");
    }

    // Analysis and report: simulated, labelled so.
    let analysis = json(&store, &k.analysis()).await;
    assert_eq!(analysis["simulated"], true);
    assert!(!analysis["results"].as_array().unwrap().is_empty());
    let html = String::from_utf8(store.get(&k.report("index.html")).await.unwrap().to_vec()).unwrap();
    assert!(html.contains("SIMULATED"));
    assert!(store.exists(&k.manifest()).await.unwrap());

    // No customer id or e-mail outside the customer-level objects of the run.
    let sample: Vec<String> = assignments
        .iter()
        .take(50)
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["customer_id"].as_str().unwrap().to_string())
        .collect();
    let customer_level = ["customers/", "assignments/", "send/", "outcomes/", "ingest/"];
    let mut scanned = 0;
    for o in store
        .list(&Key::new("runs/").unwrap())
        .await
        .unwrap()
        .into_iter()
        .chain(store.list(&Key::new("audit/").unwrap()).await.unwrap())
    {
        let rel = o.key.splitn(3, '/').nth(2).unwrap_or_default();
        if o.key.starts_with("runs/") && customer_level.iter().any(|p| rel.starts_with(p)) {
            continue;
        }
        let text = String::from_utf8_lossy(&store.get(&Key::new(o.key.clone()).unwrap()).await.unwrap()).to_string();
        for id in &sample {
            assert!(
                !text.contains(&format!("\"{id}\"")) && !text.contains(&format!(">{id}<")),
                "{id} leaked into {}",
                o.key
            );
        }
        assert!(!text.contains("@example."), "an e-mail leaked into {}", o.key);
        scanned += 1;
    }
    assert!(scanned > 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_of_the_same_input_recomputes_nothing() {
    let s = Scratch::new();
    let input = s.customers(1500, 3);
    cpo::cmd::run::run(run_args(&s.store_url(), &input, true)).await.expect("first run");
    let store = s.store();
    let run_id = only_run(&store).await;
    let k = keys(&run_id);
    let before: Vec<(String, Value)> = {
        let mut v = Vec::new();
        for o in store.list(&k.steps_prefix()).await.unwrap() {
            v.push((o.key.clone(), json(&store, &Key::new(o.key).unwrap()).await));
        }
        v
    };
    assert!(before.len() >= 8, "a record per step: {:?}", before.iter().map(|(k, _)| k).collect::<Vec<_>>());
    cpo::cmd::run::run(run_args(&s.store_url(), &input, true)).await.expect("second run");
    assert_eq!(only_run(&store).await, run_id, "same input, same run");
    for (key, rec) in before {
        // The campaign report re-renders on purpose when newer objects (the analysis) exist; it calls no provider.
        if key.contains("/steps/report-") {
            continue;
        }
        let now = json(&store, &Key::new(key.clone()).unwrap()).await;
        assert_eq!(now["started_at"], rec["started_at"], "{key} ran again");
    }
}

/// A re-delivered file with the same name and size but different bytes is a new input, stored beside the first
/// (inputs are keyed by content, so neither is overwritten) and run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_size_edited_input_is_uploaded_and_runs_again() {
    let s = Scratch::new();
    let input = s.customers(300, 5);
    cpo::cmd::run::run(run_args(&s.store_url(), &input, false)).await.expect("first run");
    let store = s.store();
    let first = only_run(&store).await;

    let mut body = std::fs::read(&input).unwrap();
    let at = body.len() - 2; // the last row's last character, before its newline
    body[at] = if body[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&input, &body).unwrap();
    cpo::cmd::run::run(run_args(&s.store_url(), &input, false)).await.expect("second run");

    let incoming = store.list(&Key::new("incoming/").unwrap()).await.unwrap();
    assert_eq!(incoming.len(), 2, "both versions kept: {incoming:?}");
    let mut stored = Vec::new();
    for o in &incoming {
        stored.push(store.get(&Key::new(o.key.clone()).unwrap()).await.unwrap().to_vec());
    }
    assert!(stored.contains(&body), "the edited bytes are stored");
    let runs = store.list(&Key::new("runs/").unwrap()).await.unwrap();
    let ids: std::collections::BTreeSet<&str> =
        runs.iter().filter_map(|o| o.key.strip_prefix("runs/")?.split('/').next()).collect();
    assert!(ids.contains(first.as_str()) && ids.len() == 2, "a second run for the edited input: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_outcomes_drive_the_analysis_machine() {
    let s = Scratch::new();
    let input = s.customers(4000, 5);
    cpo::cmd::run::run(run_args(&s.store_url(), &input, false)).await.expect("campaign");
    let store = s.store();
    let run_id = only_run(&store).await;
    let k = keys(&run_id);
    assert!(!store.exists(&k.analysis()).await.unwrap(), "no outcomes yet, no analysis");

    // A real-looking outcomes file: every tenth customer opens, friendly-arm customers open twice as often,
    // on the run's send date.
    let date = json(&store, &k.input()).await["date"].as_str().unwrap().to_string();
    let mut csv = String::from("customer_id,event,timestamp\n");
    for (i, l) in lines(&store, &k.assignments_prefix()).await.iter().enumerate() {
        let a: Value = serde_json::from_str(l).unwrap();
        let id = a["customer_id"].as_str().unwrap();
        csv.push_str(&format!("{id},delivered,{date}T09:00:00Z\n"));
        let opens = if a["arm"] == "friendly" { i % 5 == 0 } else { i % 10 == 0 };
        if opens {
            csv.push_str(&format!("{id},open,{date}T10:00:00Z\n"));
            csv.push_str(&format!("{id},open,{date}T11:00:00Z\n")); // duplicate: counted once
        }
    }
    csv.push_str(&format!("NOT-A-CUSTOMER,open,{date}T10:00:00Z\n"));
    csv.push_str(&format!("C1,teleport,{date}T10:00:00Z\n"));
    let path = s.path("events.csv");
    std::fs::write(&path, csv).unwrap();
    cpo::cmd::analyze::run(cpo::cmd::analyze::Args {
        store: s.store_url(),
        run: run_id.clone(),
        outcomes: vec![path],
        definitions: None,
        json: true,
    })
    .await
    .expect("cpo analyze");
    let analysis = json(&store, &k.analysis()).await;
    assert_eq!(analysis["simulated"], false);
    let open_friendly = analysis["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["arm"] == "friendly" && r["metric"] == "open" && r["segment"].is_null())
        .expect("overall friendly open row");
    assert!(open_friendly["rate"].as_f64().unwrap() > 0.15, "{open_friendly}");
    assert!(open_friendly["p_value"].as_f64().unwrap() < 0.01, "{open_friendly}");
    let rejected = String::from_utf8(store.get(&k.ingest_rejected()).await.unwrap().to_vec()).unwrap();
    assert!(rejected.lines().any(|l| l.contains("teleport") && l.contains("\"event\"")), "{rejected}");
    let html = String::from_utf8(store.get(&k.report("index.html")).await.unwrap().to_vec()).unwrap();
    assert!(!html.contains("SIMULATED"), "real outcomes are not labelled simulated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_the_file_and_field() {
    let s = Scratch::new();
    let missing = s.path("nope.csv");
    let e = cpo::cmd::run::run(run_args(&s.store_url(), &missing, false)).await.unwrap_err();
    assert!(format!("{e:#}").contains("nope.csv"), "{e:#}");

    let bad = s.path("no-columns.csv");
    std::fs::write(&bad, "id,name\n1,a\n").unwrap();
    let e = cpo::cmd::run::run(run_args(&s.store_url(), &bad, false)).await.unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("no-columns.csv") && msg.contains("Cpo.InputInvalid"), "{msg}");
}

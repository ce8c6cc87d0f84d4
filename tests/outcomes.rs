//! Outcomes are never lost or mixed, driven through `cpo run` and `cpo analyze` as a user would: simulated and
//! real outcomes are never pooled, a refused file blocks nothing, a second file with the same name adds to the
//! first, a file whose every row is rejected is refused, and events outside the send window are not counted.

use cpo_common::keys::RunKeys;
use cpo_common::store::DynStore;
use cpo_e2e::*;
use serde_json::Value;

const N: u64 = 3000;

/// The run's send date (`input.json` `date`).
async fn send_date(store: &DynStore, k: &RunKeys) -> String {
    let input = json(store, &k.input()).await;
    input["date"].as_str().unwrap().to_string()
}

/// `(customer_id, arm)` of every assigned customer, in part order.
async fn assigned(store: &DynStore, k: &RunKeys) -> Vec<(String, String)> {
    lines(store, &k.assignments_prefix())
        .await
        .iter()
        .map(|l| {
            let a: Value = serde_json::from_str(l).unwrap();
            (a["customer_id"].as_str().unwrap().to_string(), a["arm"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Overall successes of a metric summed over every arm of `analysis.json`.
fn total(analysis: &Value, metric: &str) -> u64 {
    analysis["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["metric"] == metric && r["segment"].is_null())
        .map(|r| r["successes"].as_u64().unwrap())
        .sum()
}

async fn analyze(s: &Scratch, run: &str, file: std::path::PathBuf) -> anyhow::Result<std::process::ExitCode> {
    cpo::cmd::analyze::run(cpo::cmd::analyze::Args {
        store: s.store_url(),
        run: run.to_string(),
        outcomes: vec![file],
        definitions: None,
        json: true,
    })
    .await
}

fn write(s: &Scratch, dir: &str, name: &str, body: &str) -> std::path::PathBuf {
    let d = s.path(dir);
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn succeeded(r: &anyhow::Result<std::process::ExitCode>) -> bool {
    matches!(r, Ok(c) if format!("{c:?}") == format!("{:?}", std::process::ExitCode::SUCCESS))
}

/// A campaign run without simulated outcomes: store, run id, keys, send date, assignments.
async fn campaign(s: &Scratch, simulate: bool) -> (DynStore, String, RunKeys, String, Vec<(String, String)>) {
    let input = s.customers(N, 3);
    cpo::cmd::run::run(run_args(&s.store_url(), &input, simulate)).await.expect("cpo run");
    let store = s.store();
    let run_id = only_run(&store).await;
    let k = keys(&run_id);
    let date = send_date(&store, &k).await;
    let a = assigned(&store, &k).await;
    (store, run_id, k, date, a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_outcomes_are_never_pooled_with_a_real_file() {
    let s = Scratch::new();
    let (store, run_id, k, date, a) = campaign(&s, true).await;
    let simulated = json(&store, &k.analysis()).await;
    assert_eq!(simulated["simulated"], true);
    // A real file: every tenth customer opens, nobody else has an event.
    let mut csv = String::from("customer_id,event,timestamp\n");
    let mut opens = 0u64;
    for (i, (id, arm)) in a.iter().enumerate() {
        if arm != "holdout" && i % 10 == 0 {
            csv.push_str(&format!("{id},open,{date}T12:00:00Z\n"));
            opens += 1;
        }
    }
    let r = analyze(&s, &run_id, write(&s, "real", "events.csv", &csv)).await;
    assert!(succeeded(&r), "{r:?}");
    let analysis = json(&store, &k.analysis()).await;
    assert_eq!(analysis["simulated"], false, "a real file replaces the simulated outcomes");
    assert_eq!(total(&analysis, "open"), opens, "only the real file's opens are counted");
    assert_eq!(total(&analysis, "click"), 0, "no simulated click is pooled in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_file_blocks_no_later_analysis() {
    let s = Scratch::new();
    let (store, run_id, k, date, a) = campaign(&s, false).await;
    let bad = write(&s, "bad", "wrong-headers.csv", "id,what,when\nC1,open,2026-01-01\n");
    let r = analyze(&s, &run_id, bad).await;
    assert!(!succeeded(&r), "a file without the needed columns is refused: {r:?}");
    let mut csv = String::from("customer_id,event,timestamp\n");
    for (id, _) in a.iter().take(100) {
        csv.push_str(&format!("{id},open,{date}T12:00:00Z\n"));
    }
    let r = analyze(&s, &run_id, write(&s, "good", "events.csv", &csv)).await;
    assert!(succeeded(&r), "a good file after a refused one is analysed: {r:?}");
    let analysis = json(&store, &k.analysis()).await;
    assert_eq!(total(&analysis, "open"), a.iter().take(100).filter(|(_, arm)| arm != "holdout").count() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_file_with_the_same_name_adds_to_the_first() {
    let s = Scratch::new();
    let (store, run_id, k, date, a) = campaign(&s, false).await;
    let treated: Vec<&String> = a.iter().filter(|(_, arm)| arm != "holdout").map(|(id, _)| id).collect();
    let mut clicks = String::from("customer_id,event,timestamp\n");
    for id in treated.iter().take(100) {
        clicks.push_str(&format!("{id},click,{date}T12:00:00Z\n"));
    }
    let mut opens = String::from("customer_id,event,timestamp\n");
    for id in treated.iter().skip(100).take(200) {
        opens.push_str(&format!("{id},open,{date}T13:00:00Z\n"));
    }
    assert!(succeeded(&analyze(&s, &run_id, write(&s, "monday", "events.csv", &clicks)).await));
    assert!(succeeded(&analyze(&s, &run_id, write(&s, "tuesday", "events.csv", &opens)).await));
    let analysis = json(&store, &k.analysis()).await;
    assert_eq!(total(&analysis, "click"), 100, "monday's clicks are kept");
    assert_eq!(total(&analysis, "open"), 200, "tuesday's opens are added");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_every_row_is_rejected_is_refused() {
    let s = Scratch::new();
    let (_store, run_id, _k, date, a) = campaign(&s, false).await;
    let mut csv = String::from("customer_id,event,timestamp\n");
    for (id, _) in a.iter().take(500) {
        csv.push_str(&format!("{id},Opened,{date}T12:00:00Z\n"));
    }
    let r = analyze(&s, &run_id, write(&s, "esp", "export.csv", &csv)).await;
    assert!(!succeeded(&r), "every row rejected is not a success with 0.00%: {r:?}");
    let msg = format!("{:#}", r.unwrap_err());
    assert!(msg.contains("export.csv") && msg.contains("reject"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_outside_the_send_window_are_not_counted() {
    let s = Scratch::new();
    let (store, run_id, k, date, a) = campaign(&s, false).await;
    let treated: Vec<&String> = a.iter().filter(|(_, arm)| arm != "holdout").map(|(id, _)| id).collect();
    let mut csv = String::from("customer_id,event,timestamp\n");
    for id in treated.iter().take(1000) {
        csv.push_str(&format!("{id},open,{date}T12:00:00Z\n"));
    }
    // Before the send, and in 2099: rejected, not counted (20 of 1020 rows, under the reject limit).
    for id in treated.iter().skip(1000).take(10) {
        csv.push_str(&format!("{id},open,2020-03-01T12:00:00Z\n"));
    }
    for id in treated.iter().skip(1010).take(10) {
        csv.push_str(&format!("{id},click,2099-03-01T12:00:00Z\n"));
    }
    assert!(succeeded(&analyze(&s, &run_id, write(&s, "w", "events.csv", &csv)).await));
    let analysis = json(&store, &k.analysis()).await;
    assert_eq!(total(&analysis, "open"), 1000);
    assert_eq!(total(&analysis, "click"), 0);
    let rejected = String::from_utf8(store.get(&k.ingest_rejected()).await.unwrap().to_vec()).unwrap();
    assert_eq!(rejected.lines().filter(|l| l.contains("window")).count(), 20, "{rejected}");
}

/// The report and `cpo analyze` say which outcomes were analysed and the long-run lift against the global
/// holdout: "not measurable yet" while only simulated outcomes exist (held-out customers get no email, so no
/// email export covers them), measured once an orders export covers every customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_shows_the_outcomes_source_and_the_holdout_lift() {
    let s = Scratch::new();
    let store = s.store();
    let yaml = cpo_common::bundled::campaign_yaml().replace("holdout: 0.0", "holdout: 0.2");
    store.put(&cpo_common::keys::Key::new("campaigns/weekly.yaml").unwrap(), yaml.into()).await.unwrap();
    let input = s.customers(N, 3);
    cpo::cmd::run::run(run_args(&s.store_url(), &input, true)).await.expect("cpo run");
    let run_id = only_run(&store).await;
    let k = keys(&run_id);
    let md = || async { String::from_utf8(store.get(&k.report("report.md")).await.unwrap().to_vec()).unwrap() };
    let report = md().await;
    assert!(report.contains("Outcomes analysed: **simulated**"), "{report}");
    assert!(report.contains("### Long-run lift against the holdout"), "{report}");
    assert!(report.contains("Not measurable yet:"), "{report}");

    // An orders export: conversions of every customer, held out or not (8% treated, 4% held out).
    let date = send_date(&store, &k).await;
    let a = assigned(&store, &k).await;
    assert!(a.iter().any(|(_, arm)| arm == "holdout"), "the campaign holds customers out");
    let mut csv = String::from("customer_id,event,timestamp\n");
    for (i, (id, arm)) in a.iter().enumerate() {
        let every = if arm == "holdout" { 25 } else { 12 };
        if i % every == 0 {
            csv.push_str(&format!("{id},convert,{date}T12:00:00Z\n"));
        }
    }
    let r = analyze(&s, &run_id, write(&s, "orders", "orders.csv", &csv)).await;
    assert!(succeeded(&r), "{r:?}");
    let analysis = json(&store, &k.analysis()).await;
    assert_eq!(analysis["outcomes_source"], "real");
    assert_eq!(analysis["holdout_lift"]["status"], "measured", "{}", analysis["holdout_lift"]);
    let report = md().await;
    assert!(report.contains("Outcomes analysed: **real**"), "{report}");
    assert!(report.contains("for the") && report.contains("held-out customers, who get no email"), "{report}");
    assert!(!report.contains("Not measurable yet:"), "{report}");
    let table = cpo_experiment::table(&serde_json::from_value(analysis).unwrap());
    assert!(table.contains("outcomes: real") && table.contains("holdout lift (convert):"), "{table}");
}

//! `cpo simulate season` end to end: small seasons through the real state machines on a local store,
//! deterministic per seed, with truth-file errors that name the file and field (docs/experiment.md,
//! "Simulated seasons").

use std::path::Path;
use std::process::Command;

use cpo::cmd::simulate::season::Mode;
use cpo::cmd::simulate::{season, SeasonArgs, Seeds};
use cpo_common::store::StoreExt;
use serde_json::Value;

fn args(store: &str, modes: Vec<Mode>, truth: &str) -> SeasonArgs {
    SeasonArgs {
        weeks: 3,
        truth: vec![truth.to_string()],
        customers: 300,
        seeds: Seeds(vec![11]),
        modes,
        store: store.to_string(),
        campaign: "weekly".into(),
        control_share: 0.25,
        floor: 0.05,
        start: chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
        jobs: Some(1),
        out: None,
        json: false,
    }
}

/// What must not change between two runs of the same season: everything but timings.
fn figures(r: &cpo::cmd::simulate::SeasonReport) -> Value {
    let mut v = serde_json::to_value(r).unwrap();
    v["wall_seconds"] = Value::Null;
    for s in v["seasons"].as_array_mut().unwrap() {
        s["wall_seconds"] = Value::Null;
        s["store"] = Value::Null;
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seasons_run_every_week_through_the_machines_and_are_deterministic_per_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = format!("file://{}", tmp.path().join("a").display());
    let report = season(&args(&store, vec![Mode::Fixed], "stationary")).await.unwrap();
    assert!(report.simulated);
    let s = &report.seasons[0];
    assert_eq!((s.truth.as_str(), s.mode, s.seed, s.weeks.len()), ("stationary", Mode::Fixed, 11, 3));

    // Each week is a real run on the season's own store: its own date, ledger entry, ingested outcomes and
    // analysis, labelled simulated.
    let sub = cpo_common::store::open(&s.store).unwrap();
    let ledger = cpo_experiment::ledger::read(sub.as_ref(), "weekly").await.unwrap();
    assert_eq!(ledger.len(), 3, "one ledger entry a week");
    for (w, entry) in s.weeks.iter().zip(&ledger) {
        assert_eq!((w.run_id.as_str(), w.date), (entry.run_id.as_str(), entry.date));
        assert_eq!(entry.weights, w.weights, "the weights in force are the ledger's");
        assert_eq!(w.outcomes_source, "simulated");
        let keys = cpo_common::keys::RunKeys::new(&w.run_id).unwrap();
        let analysis: Value = sub.get_json(&keys.analysis()).await.unwrap();
        assert_eq!(analysis["simulated"], true);
        assert!(w.sent > 250 && w.sent <= 300, "{}", w.sent);
        // Fixed: control's weight is 0.25 in every segment with a tone in force.
        assert!(w.weights.values().all(|arms| arms.len() == 1 || (arms["control"] - 0.25).abs() < 1e-9));
        assert!(w.regret.regret > 0.0, "a fixed split loses clicks against the best allowed: {:?}", w.regret);
    }
    assert_eq!(
        s.weeks.iter().map(|w| w.date.to_string()).collect::<Vec<_>>(),
        ["2026-01-05", "2026-01-12", "2026-01-19"]
    );
    let cum: Vec<f64> = s.weeks.iter().map(|w| w.cumulative_regret).collect();
    assert!((cum[2] - s.cumulative_regret).abs() < 1e-9 && cum[0] < cum[1] && cum[1] < cum[2], "{cum:?}");
    // Expected regret of a 25/25/25/25 split on the stationary preset: 2 points per customer a week.
    let per_customer = s.cumulative_regret / s.weeks.iter().map(|w| w.sent as f64).sum::<f64>();
    assert!((per_customer - 0.02).abs() < 0.004, "{per_customer}");

    // Thompson on the same seed: week 1 has no history, so its weights are the fixed split's and, with the same
    // customers, assignment and draws, its week is the fixed season's to the customer; later weeks learn.
    let both = season(&args(
        &format!("file://{}", tmp.path().join("t").display()),
        vec![Mode::Thompson, Mode::Fixed],
        "stationary",
    ))
    .await
    .unwrap();
    let (t, f) = (&both.seasons[0], &both.seasons[1]);
    assert_eq!((t.mode, f.mode), (Mode::Thompson, Mode::Fixed));
    assert_eq!(t.weeks[0].tally, f.weeks[0].tally);
    assert_eq!(f.weeks[2].tally, s.weeks[2].tally, "fixed alone or next to thompson: the same season");
    let tsub = cpo_common::store::open(&t.store).unwrap();
    let tledger = cpo_experiment::ledger::read(tsub.as_ref(), "weekly").await.unwrap();
    assert!(tledger.iter().all(|e| e.mode == cpo_common::config::AllocationMode::Thompson), "{tledger:?}");
    for w in &t.weeks {
        for arms in w.weights.values().filter(|a| a.len() > 1) {
            assert!((arms["control"] - 0.25).abs() < 1e-9, "control keeps its share: {arms:?}");
            assert!(arms.iter().all(|(a, x)| a == "control" || *x >= 0.05 - 1e-9), "every tone its floor: {arms:?}");
        }
    }
    assert_eq!(both.summaries[0].modes.len(), 2);
    assert!(both.summaries[0].thompson_over_fixed.is_some());

    // The same seed on a fresh store: the same season, figure for figure.
    let again = season(&args(&format!("file://{}", tmp.path().join("b").display()), vec![Mode::Fixed], "stationary"))
        .await
        .unwrap();
    assert_eq!(figures(&report), figures(&again));
    // Another seed: other customers, other draws.
    let mut other = args(&format!("file://{}", tmp.path().join("c").display()), vec![Mode::Fixed], "stationary");
    other.seeds = Seeds(vec![12]);
    let other = season(&other).await.unwrap();
    assert_ne!(other.seasons[0].weeks[0].tally, s.weeks[0].tally);
}

fn cpo(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cpo"));
    c.env_remove("CPO_STORE").env_remove("RUST_LOG").current_dir(cwd);
    c
}

#[test]
fn the_command_writes_json_and_a_page_and_refuses_bad_truth_files() {
    let tmp = tempfile::tempdir().unwrap();
    let truth = tmp.path().join("truth.yaml");
    std::fs::write(
        &truth,
        "default: {control: 0.02, urgent: 0.03, informational: 0.03, friendly: 0.03}\n\
         segments:\n  Champions: {urgent: [0.09, 0.05]}\n",
    )
    .unwrap();
    let out = cpo(tmp.path())
        .args(["simulate", "season", "--weeks", "2", "--customers", "200", "--modes", "fixed", "--store", "mem://"])
        .args(["--out", "page", "--truth"])
        .arg(&truth)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("SIMULATED SEASON"), "{stdout}");
    assert!(stdout.contains("truth") && stdout.contains("fixed"), "{stdout}");
    let json: Value = serde_json::from_slice(&std::fs::read(tmp.path().join("page/season.json")).unwrap()).unwrap();
    assert_eq!(json["seasons"][0]["truth"], "truth");
    assert_eq!(json["seasons"][0]["truth_rates"]["segments"]["Champions"]["urgent"], serde_json::json!([0.09, 0.05]));
    let html = std::fs::read_to_string(tmp.path().join("page/index.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("SIMULATED") && !html.contains("<script"), "{html}");

    // A bad rate: exit 1, one line naming the file and the field.
    std::fs::write(&truth, "segments:\n  Champions: {urgent: [0.08, 1.4]}\n").unwrap();
    let out = cpo(tmp.path())
        .args([
            "simulate",
            "season",
            "--weeks",
            "1",
            "--customers",
            "200",
            "--modes",
            "fixed",
            "--store",
            "mem://",
            "--truth",
        ])
        .arg(&truth)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("truth.yaml: field `segments.Champions.urgent[1]`: 1.4 is not a rate"), "{stderr}");
    // A truth that leaves a segment of the run without rates.
    std::fs::write(
        &truth,
        "segments:\n  Champions: {control: 0.02, urgent: 0.08, informational: 0.03, friendly: 0.03}\n",
    )
    .unwrap();
    let out = cpo(tmp.path())
        .args([
            "simulate",
            "season",
            "--weeks",
            "1",
            "--customers",
            "200",
            "--modes",
            "fixed",
            "--store",
            "mem://",
            "--truth",
        ])
        .arg(&truth)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("field `default`") && stderr.contains("no rate for arm"), "{stderr}");
    // Neither a preset nor a file.
    let out =
        cpo(tmp.path()).args(["simulate", "season", "--truth", "stationry", "--store", "mem://"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a preset"));
}

//! Thompson allocation through the experiment step on a `mem://` store: earlier weeks' analysed counts from the
//! campaign ledger set next week's weights; `weights.json`, the ledger and the SRM test use them.

mod fixture;

use std::collections::BTreeMap;

use cpo_common::config::AllocationMode;
use cpo_common::keys::RunKeys;
use cpo_common::model::experiment::{AnalysisDoc, Assignment};
use cpo_common::run::RunInput;
use cpo_common::store::StoreExt;
use cpo_common::{Key, StepInput, Store};
use cpo_experiment::{allocation, handle, ledger};
use fixture::{build, step, Fixture, RUN};
use serde_json::{json, Value};

const WEEK2: &str = "weekly-20261202-0123456789ab";
const WEEK3: &str = "weekly-20261209-0123456789ab";

fn thompson(c: &mut cpo_common::config::CampaignConfig) {
    c.allocation.mode = AllocationMode::Thompson;
    // Ignored in thompson mode.
    c.weights = BTreeMap::from([("control".into(), 0.9), ("urgent".into(), 0.1)]);
}

fn step_of(run_id: &str, action: &str) -> StepInput {
    StepInput { run_id: run_id.into(), ..step(action) }
}

/// The fixture's run copied to another week (same members, variants, verdicts).
async fn another_week(f: &Fixture, run_id: &str, date: &str) {
    let store = f.ctx.store.as_ref();
    for o in store.list(&f.keys.prefix()).await.unwrap() {
        let rest = o.key.strip_prefix(f.keys.prefix().as_str()).unwrap();
        if ["steps/", "inputs/", "assignments/", "send/", "suppressed/", "analysis.json", "weights.json"]
            .iter()
            .any(|p| rest.starts_with(p))
        {
            continue;
        }
        let body = store.get(&Key::new(o.key.clone()).unwrap()).await.unwrap();
        store.put(&Key::new(format!("runs/{run_id}/{rest}")).unwrap(), body).await.unwrap();
    }
    let k = RunKeys::new(run_id).unwrap();
    let mut run: RunInput = store.get_json(&f.keys.input()).await.unwrap();
    run.run_id = run_id.into();
    run.date = date.parse().unwrap();
    store.put_json(&k.input(), &run).await.unwrap();
}

/// An `analysis.json` for `run_id` whose click counts per segment are `rates` × 1000 customers per arm.
async fn analysed(store: &dyn Store, run_id: &str, rates: &[(&str, f64)]) {
    let mut results = Vec::new();
    for seg in fixture::SEGMENTS {
        for (arm, rate) in rates {
            let n = 1000u64;
            let k = (rate * n as f64).round() as u64;
            results.push(json!({"arm": arm, "metric": "click", "segment": seg, "n": n, "successes": k,
                "rate": k as f64 / n as f64, "ci_low": 0.0, "ci_high": 1.0}));
        }
    }
    let doc = json!({"run_id": run_id, "simulated": true, "outcomes": [], "results": results, "srm_p_value": 1.0,
        "srm_flag": false, "decision": "keep_testing", "winner": null, "decision_reasons": [],
        "outcomes_source": "simulated"});
    store.put_json(&RunKeys::new(run_id).unwrap().analysis(), &doc).await.unwrap();
}

async fn weights(store: &dyn Store, run_id: &str) -> Value {
    store.get_json(&RunKeys::new(run_id).unwrap().prefix().join("weights.json").unwrap()).await.unwrap()
}

async fn arm_counts(store: &dyn Store, run_id: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let k = RunKeys::new(run_id).unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for o in store.list(&k.assignments_prefix()).await.unwrap() {
        let body = store.get(&Key::new(o.key).unwrap()).await.unwrap();
        for l in String::from_utf8(body.to_vec()).unwrap().lines() {
            let a: Assignment = serde_json::from_str(l).unwrap();
            *out.entry(a.segment).or_default().entry(a.arm).or_default() += 1;
        }
    }
    out
}

const CLEAR_WINNER: [(&str, f64); 4] =
    [("control", 0.02), ("urgent", 0.03), ("informational", 0.08), ("friendly", 0.03)];

#[tokio::test]
async fn thompson_moves_share_to_the_better_tone_and_records_the_weights_in_force() {
    let f = build(3000, 1000, &[], thompson).await;
    let store = f.ctx.store.as_ref();
    // Week 1: no history, equal tone shares after the control's 0.25 (the configured weights are ignored).
    handle(step("assign"), &f.ctx).await.unwrap();
    let w1 = weights(store, RUN).await;
    assert_eq!(w1["mode"], "thompson");
    for arm in ["urgent", "informational", "friendly", "control"] {
        assert_eq!(w1["segments"]["Champions"][arm], 0.25, "{w1}");
    }
    analysed(store, RUN, &CLEAR_WINNER).await;

    // Week 2: informational is clearly best in every segment.
    another_week(&f, WEEK2, "2026-12-02").await;
    handle(step_of(WEEK2, "assign"), &f.ctx).await.unwrap();
    let w2 = weights(store, WEEK2).await;
    for seg in fixture::SEGMENTS {
        let s = &w2["segments"][seg];
        assert_eq!(s["control"], 0.25, "{w2}");
        let inf = s["informational"].as_f64().unwrap();
        assert!((inf - 0.65).abs() < 0.005, "{seg}: {w2}");
        for t in ["urgent", "friendly"] {
            assert!(s[t].as_f64().unwrap() >= 0.05 - 1e-12, "{seg} {t} keeps its floor: {w2}");
        }
        assert!(w2["thompson"]["prob_best"][seg]["informational"].as_f64().unwrap() > 0.99);
    }
    // The ledger carries the same weights and the mode.
    let entries = ledger::read(store, "weekly").await.unwrap();
    let e2 = entries.iter().find(|e| e.run_id == WEEK2).unwrap();
    assert_eq!(e2.mode, AllocationMode::Thompson);
    assert_eq!(serde_json::to_value(&e2.weights).unwrap(), w2["segments"]);
    assert!(e2.prob_best["Champions"]["informational"] > 0.99);
    // Assignment follows the weights: ~650 of 1000 Champions get informational.
    let counts = arm_counts(store, WEEK2).await;
    let inf = counts["Champions"]["informational"];
    assert!((590..710).contains(&inf), "{counts:?}");
}

#[tokio::test]
async fn same_ledger_and_seed_give_the_same_weights_and_a_rerun_keeps_its_history() {
    let f = build(300, 300, &[], thompson).await;
    let store = f.ctx.store.as_ref();
    handle(step("assign"), &f.ctx).await.unwrap();
    // Close rates: the draws decide, so equal weights twice mean the draws are seeded.
    analysed(store, RUN, &[("control", 0.02), ("urgent", 0.030), ("informational", 0.032), ("friendly", 0.028)]).await;
    another_week(&f, WEEK2, "2026-12-02").await;
    let run2: RunInput = store.get_json(&RunKeys::new(WEEK2).unwrap().input()).await.unwrap();
    let h1 = ledger::collect(store, &run2).await.unwrap();
    let h2 = ledger::collect(store, &run2).await.unwrap();
    assert_eq!(h1, h2);
    assert_eq!(h1.weeks.len(), 1);
    assert!((h1.weeks[0].factor - 0.8).abs() < 1e-12, "a week old counts decay¹");
    let tones: Vec<String> = ["urgent", "informational", "friendly"].map(String::from).to_vec();
    let a = allocation::allocate(&h1, &run2.config.allocation, "Champions", &tones);
    assert_eq!(a, allocation::allocate(&h2, &run2.config.allocation, "Champions", &tones));
    let p: f64 = a.prob_best.values().sum();
    assert!((p - 1.0).abs() < 1e-9 && a.prob_best.values().all(|p| *p > 0.05 && *p < 0.9), "{a:?}");

    handle(step_of(WEEK2, "assign"), &f.ctx).await.unwrap();
    let w = weights(store, WEEK2).await;
    assert_eq!(w["segments"]["Champions"]["informational"], json!(a.weights["informational"]));
    // Outcomes that arrive for week 1 later never change week 2's weights (its history copy stands).
    analysed(store, RUN, &[("control", 0.02), ("urgent", 0.2), ("informational", 0.01), ("friendly", 0.01)]).await;
    handle(step_of(WEEK2, "assign"), &f.ctx).await.unwrap();
    assert_eq!(weights(store, WEEK2).await, w);
    let rec: Value = store.get_json(&RunKeys::new(WEEK2).unwrap().step("assign")).await.unwrap();
    let snap = RunKeys::new(WEEK2).unwrap().snapshot("allocation").to_string();
    assert!(rec["reads"][&snap].is_string(), "assign's reads name the history copy: {rec}");
}

#[tokio::test]
async fn a_blocked_tones_share_goes_to_the_other_tones() {
    let f = build(300, 300, &[], thompson).await;
    let store = f.ctx.store.as_ref();
    handle(step("assign"), &f.ctx).await.unwrap();
    analysed(store, RUN, &CLEAR_WINNER).await;
    another_week(&f, WEEK2, "2026-12-02").await;
    // Week 2's informational variant for Champions is blocked by safety.
    let k2 = RunKeys::new(WEEK2).unwrap();
    let mut safety: cpo_common::model::safety::SafetyDoc = store.get_json(&k2.safety()).await.unwrap();
    for v in &mut safety.verdicts {
        if v.variant_id == "champions-informational" {
            v.decision = cpo_common::model::safety::Decision::Blocked;
        }
    }
    store.put_json(&k2.safety(), &safety).await.unwrap();
    handle(step_of(WEEK2, "assign"), &f.ctx).await.unwrap();
    let w = weights(store, WEEK2).await;
    let s = &w["segments"]["Champions"];
    assert!(s.get("informational").is_none(), "{w}");
    assert_eq!(s["control"], 0.25);
    let (u, fr) = (s["urgent"].as_f64().unwrap(), s["friendly"].as_f64().unwrap());
    assert!((u + fr - 0.75).abs() < 1e-9 && u >= 0.05 && fr >= 0.05, "{w}");
    assert!(!arm_counts(store, WEEK2).await["Champions"].contains_key("informational"));
    // Other segments still favour informational.
    assert!(w["segments"]["At Risk"]["informational"].as_f64().unwrap() > 0.6, "{w}");
}

#[tokio::test]
async fn srm_is_tested_against_the_weights_in_force() {
    let f = build(3000, 1000, &[], thompson).await;
    let store = f.ctx.store.as_ref();
    handle(step("assign"), &f.ctx).await.unwrap();
    analysed(store, RUN, &CLEAR_WINNER).await;
    another_week(&f, WEEK2, "2026-12-02").await;
    handle(step_of(WEEK2, "assign"), &f.ctx).await.unwrap();
    handle(step_of(WEEK2, "simulate"), &f.ctx).await.unwrap();
    handle(step_of(WEEK2, "ingest"), &f.ctx).await.unwrap();
    let out = handle(step_of(WEEK2, "analyze"), &f.ctx).await.unwrap();
    let doc: Value = store.get_json(&RunKeys::new(WEEK2).unwrap().analysis()).await.unwrap();
    assert_eq!(doc["srm_flag"], false, "{out:?}");
    assert!(doc["srm_p_value"].as_f64().unwrap() > 0.001);
    assert_eq!(doc["extra"]["allocation"], "thompson");
    assert_eq!(doc["extra"]["weights_in_force"], weights(store, WEEK2).await["segments"]);
    typed_details_round_trip(store, WEEK2).await;
    // Against an equal split (what the analysis would test without the weights in force) the same arm sizes
    // are a glaring mismatch.
    let counts = arm_counts(store, WEEK2).await;
    let strata: Vec<(Vec<u64>, Vec<f64>)> =
        counts.values().map(|per| (per.values().copied().collect(), vec![0.25; per.len()])).collect();
    let (_, p) = cpo_common::stats::chi2_stratified(&strata).unwrap();
    assert!(p < 1e-6, "equal split p = {p}");
}

#[tokio::test]
async fn older_weeks_count_less() {
    let f = build(300, 300, &[], |c| {
        thompson(c);
        c.allocation.decay = 0.5;
    })
    .await;
    let store = f.ctx.store.as_ref();
    handle(step("assign"), &f.ctx).await.unwrap();
    analysed(store, RUN, &CLEAR_WINNER).await;
    another_week(&f, WEEK2, "2026-12-02").await;
    handle(step_of(WEEK2, "assign"), &f.ctx).await.unwrap();
    analysed(store, WEEK2, &[("control", 0.02), ("urgent", 0.09), ("informational", 0.02), ("friendly", 0.03)]).await;
    another_week(&f, WEEK3, "2026-12-09").await;
    let run3: RunInput = store.get_json(&RunKeys::new(WEEK3).unwrap().input()).await.unwrap();
    let h = ledger::collect(store, &run3).await.unwrap();
    let factors: Vec<f64> = h.weeks.iter().map(|w| w.factor).collect();
    assert_eq!(factors, vec![0.25, 0.5]);
    let p = h.posterior(Default::default(), "Champions", "urgent");
    assert!((p.alpha - (1.0 + 0.25 * 30.0 + 0.5 * 90.0)).abs() < 1e-9, "{p:?}");
}

/// `analysis.json` as written reads into the typed `AnalysisDoc` and writes back the same JSON; its
/// `extra` is even byte-identical to the same object as untyped JSON (keys sorted, as `json!` wrote them).
async fn typed_details_round_trip(store: &dyn Store, run_id: &str) {
    let raw = store.get(&RunKeys::new(run_id).unwrap().analysis()).await.unwrap();
    let untyped: Value = serde_json::from_slice(&raw).unwrap();
    let typed: AnalysisDoc = serde_json::from_slice(&raw).unwrap();
    assert!(typed.extra.other.is_empty(), "fields the type does not know: {:?}", typed.extra.other.keys());
    assert!(typed.extra.allocation.is_some() && typed.extra.power.is_some() && typed.extra.srm.is_some());
    assert_eq!(serde_json::to_value(&typed).unwrap(), untyped);
    assert_eq!(
        String::from_utf8(serde_json::to_vec_pretty(&typed.extra).unwrap()).unwrap(),
        String::from_utf8(serde_json::to_vec_pretty(&untyped["extra"]).unwrap()).unwrap()
    );
    // An analysis written before these fields existed, or with fields this version does not know.
    let old: AnalysisDoc = serde_json::from_value({
        let mut v = untyped.clone();
        v["extra"] = json!({"alpha": 0.05, "mde_click": 0.02, "holdout": null});
        v
    })
    .unwrap();
    assert_eq!(old.extra.holdout, Some(None));
    assert_eq!(old.extra.allocation, None);
    assert_eq!(serde_json::to_value(&old.extra).unwrap(), json!({"alpha": 0.05, "mde_click": 0.02, "holdout": null}));
    let mut none = untyped;
    none.as_object_mut().unwrap().remove("extra");
    assert_eq!(serde_json::from_value::<AnalysisDoc>(none).unwrap().extra, Default::default());
}

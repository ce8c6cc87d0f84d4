//! The experiment step end to end on a `mem://` store: assign → simulate → ingest → analyze.

mod fixture;

use std::collections::BTreeSet;

use cpo_common::model::experiment::{AnalysisDoc, Assignment, Decision, IngestSummary, Metric, TemplatesDoc};
use cpo_common::store::StoreExt;
use cpo_common::{ErrorKind, Key, Store};
use cpo_experiment::handle;
use fixture::{build, step, RUN};

async fn assignments(store: &dyn Store) -> Vec<Assignment> {
    let keys = cpo_common::keys::RunKeys::new(RUN).unwrap();
    let mut out = Vec::new();
    for meta in store.list(&keys.assignments_prefix()).await.unwrap() {
        let body = store.get(&Key::new(meta.key).unwrap()).await.unwrap();
        for line in std::str::from_utf8(&body).unwrap().lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn assign_keeps_everyone_and_is_deterministic() {
    let f = build(1000, 300, &[], |_| {}).await;
    let out = handle(step("assign"), &f.ctx).await.unwrap();
    assert_eq!(out.counts["customers"], 1000);
    let a = assignments(f.ctx.store.as_ref()).await;
    assert_eq!(a.len(), 1000, "nobody dropped");
    let ids: BTreeSet<_> = a.iter().map(|x| x.customer_id.clone()).collect();
    assert_eq!(ids.len(), 1000, "nobody twice");
    // One assignments part per members part (300 rows here), whatever `experiment.part_size` (400) says.
    assert_eq!(a.len().div_ceil(300), f.ctx.store.list(&f.keys.assignments_prefix()).await.unwrap().len());
    for x in &a {
        if x.arm != "control" {
            assert_eq!(x.variant_id, format!("{}-{}", cpo_common::keys::slug(&x.segment), x.arm));
        }
    }

    // A fresh store with the same inputs (re-delivery, another machine) assigns identically.
    let g = build(1000, 170, &[], |_| {}).await;
    handle(step("assign"), &g.ctx).await.unwrap();
    let b = assignments(g.ctx.store.as_ref()).await;
    assert_eq!(a, b, "assignment depends only on (experiment_id, customer_id)");

    let t: TemplatesDoc = f.ctx.store.get_json(&f.keys.templates()).await.unwrap();
    assert_eq!(t.merge_fields, vec!["first_name".to_string(), "tier".to_string()]);
    assert_eq!(t.templates.len(), 1 + 3 * 3);
    let send = f.ctx.store.get(&f.keys.send(0)).await.unwrap();
    let text = std::str::from_utf8(&send).unwrap();
    assert!(text.starts_with("customer_id,email,arm,variant_id,segment,first_name,tier\n"), "{text}");
    assert!(text.contains("'=HYPERLINK"), "formula neutralised");
    assert!(!text.contains(",=HYPERLINK"));
}

#[tokio::test]
async fn blocked_variants_are_renormalised_away() {
    let f = build(3000, 1000, &["champions-urgent", "at-risk-friendly", "at-risk-urgent"], |_| {}).await;
    let out = handle(step("assign"), &f.ctx).await.unwrap();
    let seg = &out.counts["segments"];
    assert!(seg["Champions"].get("urgent").is_none());
    assert_eq!(seg["Champions"].as_object().unwrap().len(), 3);
    assert_eq!(seg["At Risk"].as_object().unwrap().len(), 2);
    // At Risk: control and informational share its 1000 customers half and half.
    let c = seg["At Risk"]["control"].as_u64().unwrap() as f64;
    assert!((c - 500.0).abs() < 80.0, "{seg}");
    assert_eq!(out.counts["customers"], 3000);
    let a = assignments(f.ctx.store.as_ref()).await;
    assert!(a.iter().all(|x| x.variant_id != "champions-urgent"));
}

#[tokio::test]
async fn control_must_be_approved() {
    let f = build(10, 10, &[], |_| {}).await;
    let mut safety: cpo_common::model::safety::SafetyDoc = f.ctx.store.get_json(&f.keys.safety()).await.unwrap();
    safety.verdicts[0].decision = cpo_common::model::safety::Decision::Blocked;
    f.ctx.store.put_json(&f.keys.safety(), &safety).await.unwrap();
    let e = handle(step("assign"), &f.ctx).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InputInvalid);
    assert!(e.message.contains("control"), "{e}");
}

#[tokio::test]
async fn holdout_gets_nothing_but_is_kept() {
    let f = build(2000, 400, &[], |c| c.holdout = 0.1).await;
    let out = handle(step("assign"), &f.ctx).await.unwrap();
    let h = out.counts["arms"]["holdout"].as_u64().unwrap();
    assert!((150..250).contains(&h), "{h}");
    assert_eq!(out.counts["sent"].as_u64().unwrap() + h, 2000);
    let send = f.ctx.store.get(&f.keys.send(0)).await.unwrap();
    assert_eq!(
        std::str::from_utf8(&send).unwrap().lines().count() as u64 - 1,
        400 - assignments(f.ctx.store.as_ref()).await[..400].iter().filter(|a| a.arm == "holdout").count() as u64
    );
}

#[tokio::test]
async fn simulate_ingest_analyze_end_to_end() {
    let f = build(6000, 2500, &[], |c| {
        c.simulation.lifts.insert("friendly".into(), 0.8);
        c.simulation.base_open_rate = 0.3;
    })
    .await;
    handle(step("assign"), &f.ctx).await.unwrap();
    let mut sim = step("simulate");
    sim.seed = Some(11);
    let out = handle(sim.clone(), &f.ctx).await.unwrap();
    let key = Key::new(out.keys["outcomes"].clone()).unwrap();
    assert!(key.as_str().ends_with("outcomes/simulated-11.csv"));
    let first = f.ctx.store.get(&key).await.unwrap();
    // Only the simulated file was written under outcomes/.
    assert_eq!(f.ctx.store.list(&f.keys.outcomes_prefix()).await.unwrap().len(), 1);

    // Same seed on another store: identical file; another seed: a different one.
    let g = build(6000, 2500, &[], |c| {
        c.simulation.lifts.insert("friendly".into(), 0.8);
        c.simulation.base_open_rate = 0.3;
    })
    .await;
    handle(step("assign"), &g.ctx).await.unwrap();
    handle(sim, &g.ctx).await.unwrap();
    assert_eq!(first, g.ctx.store.get(&key).await.unwrap());
    let mut other = step("simulate");
    other.seed = Some(12);
    let k12 = Key::new(handle(other, &g.ctx).await.unwrap().keys["outcomes"].clone()).unwrap();
    assert_ne!(first, g.ctx.store.get(&k12).await.unwrap());

    let mut ingest = step("ingest");
    ingest.outcomes_key = Some(key.to_string());
    let out = handle(ingest, &f.ctx).await.unwrap();
    assert_eq!(out.counts["rejected"], 0);
    assert_eq!(out.counts["unknown_customers"], 0);
    assert_eq!(out.counts["events"]["delivered"], 6000);
    let out = handle(step("analyze"), &f.ctx).await.unwrap();
    let doc: AnalysisDoc = f.ctx.store.get_json(&f.keys.analysis()).await.unwrap();
    assert!(doc.simulated);
    assert!(!doc.srm_flag, "srm p {}", doc.srm_p_value);
    assert!(doc.decision.has_winner(), "{:?}: {:?}", doc.decision, doc.decision_reasons);
    assert_eq!(doc.winner.as_deref(), Some("friendly"));
    assert_eq!(out.counts["decision"], doc.decision.as_str());
    let overall_open: Vec<_> = doc.results.iter().filter(|r| r.segment.is_none() && r.metric == Metric::Open).collect();
    assert_eq!(overall_open.len(), 4);
    assert_eq!(overall_open.iter().map(|r| r.n).sum::<u64>(), 6000);
    // The decision family is the primary metric only: every other row is exploratory (BH), never Holm.
    assert!(
        doc.results.iter().all(|r| r.metric == doc.primary_metric || r.p_holm.is_none()),
        "Holm on the primary metric only"
    );
    // Explainability from the members' carried columns: aggregates by attribute, BH-adjusted.
    let explain = doc.explain.as_ref().expect("explain section");
    assert!(!explain.rows.is_empty() && !explain.findings.is_empty(), "{explain:?}");
    assert!(
        explain.findings.iter().all(|f| !f.contains(['<', '>'])),
        "sentences hold no markup characters: {:?}",
        explain.findings
    );
    assert!(explain.rows.iter().all(|r| r.n >= 1 && !r.attribute.contains("email") && !r.attribute.contains("name")));
    assert!(explain.rows.iter().filter(|r| r.arm != "control").all(|r| r.p_value.is_none() || r.p_bh.is_some()));
    let table = cpo_experiment::table(&doc);
    assert!(table.starts_with("SIMULATED"), "{table}");
    assert!(table.contains("friendly"));
}

#[tokio::test]
async fn ingest_validates_dedupes_and_reports_unknown_customers() {
    // Small files with many bad rows: no reject limit here (refusal has its own test).
    let f = build(300, 300, &[], |c| c.outcomes.max_reject_ratio = 1.0).await;
    handle(step("assign"), &f.ctx).await.unwrap();
    let csv = "customer_id,event,timestamp\n\
               C000001,open,2026-11-25T10:00:00Z\n\
               C000001,open,2026-11-25T11:00:00Z\n\
               C000001,click,2026-11-25 11:05:00\n\
               C000002,opened,2026-11-25T10:00:00Z\n\
               ,open,2026-11-25T10:00:00Z\n\
               C000003,open,not-a-time\n\
               NOBODY,open,2026-11-25T10:00:00Z\n";
    f.ctx.store.put(&f.keys.outcomes("esp.csv").unwrap(), csv.into()).await.unwrap();
    let jsonl = "{\"customer_id\":\"C000004\",\"event\":\"convert\",\"timestamp\":\"2026-11-26\"}\nnot json\n";
    f.ctx.store.put(&f.keys.outcomes("more.jsonl").unwrap(), jsonl.into()).await.unwrap();
    let out = handle(step("ingest"), &f.ctx).await.unwrap();
    assert_eq!(out.counts["rejected"], 4);
    assert_eq!(out.counts["duplicates"], 1);
    assert_eq!(out.counts["unknown_customers"], 1);
    assert_eq!(out.counts["events"]["open"], 1);
    assert_eq!(out.counts["events"]["convert"], 1);
    let rejected = f.ctx.store.get(&f.keys.ingest_rejected()).await.unwrap();
    let rows: Vec<cpo_common::model::segment::Rejected> =
        std::str::from_utf8(&rejected).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let fields: Vec<(&str, u64, &str)> =
        rows.iter().map(|r| (r.file.rsplit('/').next().unwrap(), r.line, r.field.as_str())).collect();
    assert_eq!(
        fields,
        vec![
            ("esp.csv", 5, "event"),
            ("esp.csv", 6, "customer_id"),
            ("esp.csv", 7, "timestamp"),
            ("more.jsonl", 2, "row")
        ]
    );
    let unknown = f.ctx.store.get(&f.keys.ingest("unknown.jsonl")).await.unwrap();
    assert!(std::str::from_utf8(&unknown).unwrap().contains("NOBODY"));
    let summary: IngestSummary = f.ctx.store.get_json(&f.keys.ingest("summary.json")).await.unwrap();
    assert!(!summary.simulated);

    // Same outcomes set: the stored result; a new drop: a new ingest covering both.
    let again = handle(step("ingest"), &f.ctx).await.unwrap();
    assert_eq!(again, out);
    f.ctx
        .store
        .put(&f.keys.outcomes("late.csv").unwrap(), "customer_id,event,timestamp\nC000005,open,2026-11-27\n".into())
        .await
        .unwrap();
    let next = handle(step("ingest"), &f.ctx).await.unwrap();
    assert_eq!(next.counts["events"]["open"], 2);
    assert_eq!(next.counts["files"], 3);

    // A file without the required columns is refused with a message naming it, and blocks nothing.
    f.ctx.store.put(&f.keys.outcomes("bad.csv").unwrap(), "id,what\n1,2\n".into()).await.unwrap();
    let next = handle(step("ingest"), &f.ctx).await.unwrap();
    assert_eq!((next.counts["files"].clone(), next.counts["refused"].clone()), (3.into(), 1.into()));
    let summary: IngestSummary = f.ctx.store.get_json(&f.keys.ingest("summary.json")).await.unwrap();
    let reason = &summary.refused[0].reason;
    assert!(reason.contains("bad.csv") && reason.contains("customer_id"), "{reason}");
    assert!(f.ctx.store.exists(&f.keys.outcomes("bad.csv").unwrap()).await.unwrap(), "the drop stays");

    // The same content again under another name: a no-op. A new version of a drop: added, not replacing.
    let late = f.ctx.store.get(&f.keys.outcomes("late.csv").unwrap()).await.unwrap();
    f.ctx.store.put(&f.keys.outcomes("late-again.csv").unwrap(), late).await.unwrap();
    assert_eq!(handle(step("ingest"), &f.ctx).await.unwrap().counts["files"], 3);
    let v2 = "customer_id,event,timestamp\nC000006,click,2026-11-28\n";
    f.ctx.store.put(&f.keys.outcomes("late.csv").unwrap(), v2.into()).await.unwrap();
    let next = handle(step("ingest"), &f.ctx).await.unwrap();
    assert_eq!(next.counts["files"], 4);
    assert_eq!((next.counts["events"]["open"].clone(), next.counts["events"]["click"].clone()), (2.into(), 2.into()));

    // Every file refused: the analysis has nothing to read and says why.
    let g = build(300, 300, &[], |_| {}).await;
    handle(step("assign"), &g.ctx).await.unwrap();
    g.ctx.store.put(&g.keys.outcomes("bad.csv").unwrap(), "id,what\n1,2\n".into()).await.unwrap();
    let e = handle(step("ingest"), &g.ctx).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InputInvalid);
    assert!(e.message.contains("refused") && e.message.contains("bad.csv"), "{e}");
}

#[tokio::test]
async fn srm_broken_outcomes_are_flagged() {
    let f = build(4000, 4000, &[], |_| {}).await;
    handle(step("assign"), &f.ctx).await.unwrap();
    // The email service delivered to every control customer but only to half of each treatment arm.
    let mut csv = String::from("customer_id,event,timestamp\n");
    let mut skip = false;
    for a in assignments(f.ctx.store.as_ref()).await {
        if a.arm != "control" {
            skip = !skip;
            if skip {
                continue;
            }
        }
        csv.push_str(&format!("{},delivered,2026-11-25T09:00:00Z\n", a.customer_id));
    }
    f.ctx.store.put(&f.keys.outcomes("esp.csv").unwrap(), csv.into()).await.unwrap();
    handle(step("ingest"), &f.ctx).await.unwrap();
    handle(step("analyze"), &f.ctx).await.unwrap();
    let doc: AnalysisDoc = f.ctx.store.get_json(&f.keys.analysis()).await.unwrap();
    assert!(doc.srm_flag && doc.srm_p_value < 1e-6, "{}", doc.srm_p_value);
    assert_eq!(doc.decision, Decision::NotTrustworthy);
    assert!(doc.decision_reasons[0].contains("sample ratio mismatch"));
    assert!(!doc.simulated);
}

/// The fast path of assignment (hash and plan only, no store) on a million synthetic customers: arm sizes
/// match the weights within sampling error, including a renormalised segment.
#[test]
fn assignment_is_balanced_on_a_million_customers() {
    use cpo_experiment::hashing::{holdout_position, unit_interval};
    use cpo_experiment::plan::{Plan, Slot};
    let slot = |arm: &str, weight: f64| Slot { arm: arm.into(), variant_id: arm.into(), weight };
    let mut segments = std::collections::BTreeMap::new();
    segments.insert(
        "A".to_string(),
        vec![slot("control", 0.25), slot("urgent", 0.25), slot("informational", 0.25), slot("friendly", 0.25)],
    );
    // B's urgent variant was blocked: 1/3 each.
    segments.insert(
        "B".to_string(),
        vec![slot("control", 1.0 / 3.0), slot("informational", 1.0 / 3.0), slot("friendly", 1.0 / 3.0)],
    );
    let plan = Plan {
        experiment_id: "weekly-2026W48".into(),
        campaign: "weekly".into(),
        holdout: 0.05,
        arm_order: vec![],
        segments,
        fallback: vec![slot("control", 1.0)],
        messages: Default::default(),
        blocked: vec![],
        thompson: None,
    };
    let mut strata = Vec::new();
    for (seg, arms) in [
        ("A", ["holdout", "control", "urgent", "informational", "friendly"].as_slice()),
        ("B", &["holdout", "control", "informational", "friendly"]),
    ] {
        let mut counts = vec![0u64; arms.len()];
        for i in 0..500_000u32 {
            let id = format!("{seg}{i:07}");
            let (arm, _) = plan.pick(seg, holdout_position("weekly", &id), unit_interval(&plan.experiment_id, &id));
            let j = arms.iter().position(|a| *a == arm).unwrap();
            counts[j] += 1;
        }
        let w = 0.95 / (arms.len() - 1) as f64;
        let share: Vec<f64> = arms.iter().map(|a| if *a == "holdout" { 0.05 } else { w }).collect();
        let (_, p) = cpo_common::stats::chi2_goodness_of_fit(&counts, &share).unwrap();
        assert!(p > 0.001, "segment {seg}: SRM on {counts:?} (p = {p})");
        assert_eq!(counts.iter().sum::<u64>(), 500_000, "nobody lost");
        strata.push((counts, share));
    }
    let (_, p) = cpo_common::stats::chi2_stratified(&strata).unwrap();
    assert!(p > 0.001, "overall SRM p = {p}");
}

#[tokio::test]
async fn rendered_messages_fill_merge_fields() {
    use cpo_common::model::experiment::RenderedMessage;
    use cpo_experiment::render::{render_run, Selection};
    let f = build(50, 50, &[], |c| c.experiment.render = true).await;
    handle(step("assign"), &f.ctx).await.unwrap();
    let store = f.ctx.store.as_ref();
    let mut out = Vec::new();
    let n = render_run(store, RUN, &Selection::Customer("C000003".into()), &mut out).await.unwrap();
    assert_eq!(n, 1);
    let msg: RenderedMessage = serde_json::from_slice(&out).unwrap();
    assert_eq!(msg.customer_id, "C000003");
    assert!(msg.subject.contains("Name3") && !msg.subject.contains("{{"), "{msg:?}");
    if msg.arm != "control" {
        assert!(msg.body.contains("Gold"), "{msg:?}");
    }
    let mut all = Vec::new();
    assert_eq!(render_run(store, RUN, &Selection::All, &mut all).await.unwrap(), 50);
    // The step's own rendering (experiment.render) produced the same messages.
    let key = f.keys.prefix().join("send/rendered-00000.jsonl").unwrap();
    assert_eq!(store.get(&key).await.unwrap().as_ref(), all.as_slice());
    let e = render_run(store, RUN, &Selection::Customer("NOBODY".into()), &mut Vec::new()).await.unwrap_err();
    assert!(e.message.contains("gets no message") && !e.message.contains("NOBODY"), "{e}");
}

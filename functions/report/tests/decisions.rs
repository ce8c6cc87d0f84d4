//! What a marketer reads for the decisions the analysis can make: guardrail harm as risk in the headline,
//! zero data as "not enough data", metrics without events said once, small rates with significant digits,
//! the glossary and the explainability section, and summaries free of JSON field names and HTML entities.
//! The analysis rows are computed with the same `cpo_common::stats` functions the analysis uses.

mod common;

use common::*;
use cpo_common::model::experiment::{
    AnalysisDoc, AttributeRow, Decision, Explain, GuardrailCheck, GuardrailStatus, Metric, ResultRow,
};
use cpo_common::stats;
use cpo_common::store::StoreExt;
use cpo_common::StepInput;
use cpo_report::Report;

fn input() -> StepInput {
    StepInput {
        run_id: RUN_ID.into(),
        campaign: Some("weekly".into()),
        action: Some("experiment".into()),
        ..Default::default()
    }
}

/// A row as the analysis writes it (guardrail probabilities mirrored, nothing compared without events).
fn row(metric: Metric, arm: &str, k: u64, n: u64, control: Option<(u64, u64)>) -> ResultRow {
    let ci = stats::wilson(k, n, 0.05).unwrap();
    let mut r = ResultRow {
        arm: arm.into(),
        metric,
        segment: None,
        n,
        successes: k,
        rate: k as f64 / n as f64,
        ci_low: ci.low,
        ci_high: ci.high,
        lift: None,
        lift_ci_low: None,
        lift_ci_high: None,
        diff: None,
        diff_ci_low: None,
        diff_ci_high: None,
        p_value: None,
        p_holm: None,
        p_bh: None,
        prob_beat_control: None,
        prob_worse: None,
        expected_loss: None,
        mde: None,
    };
    if let Some((kc, nc)) = control.filter(|(kc, _)| kc + k > 0) {
        let t = stats::two_proportion_test(kc, nc, k, n, false).unwrap();
        let d = stats::newcombe_diff(kc, nc, k, n, 0.05).unwrap();
        let l = stats::lift_ci(kc, nc, k, n, 0.05);
        let b = if metric.is_guardrail() {
            stats::beta_compare(k, n, kc, nc).unwrap()
        } else {
            stats::beta_compare(kc, nc, k, n).unwrap()
        };
        r.diff = Some(t.diff);
        r.diff_ci_low = Some(d.low);
        r.diff_ci_high = Some(d.high);
        r.lift = stats::lift(kc, nc, k, n);
        r.lift_ci_low = l.map(|i| i.low);
        r.lift_ci_high = l.map(|i| i.high);
        r.p_value = Some(t.p_value);
        if metric == Metric::Click {
            r.p_holm = Some(t.p_value);
        } else {
            r.p_bh = Some(t.p_value);
        }
        r.prob_beat_control = Some(b.prob_beat_control);
        r.prob_worse = Some(1.0 - b.prob_beat_control);
        r.expected_loss = Some(b.expected_loss);
        r.mde = stats::mde(kc as f64 / nc as f64, nc, n, 0.05, 0.8);
    }
    r
}

const N: u64 = 250_000;

/// The 1M-customer case of the issue: friendly wins on click, and raises unsubscribes by +11.3% (p ≈ 0.034);
/// open and convert have no events at all.
fn caution_analysis() -> AnalysisDoc {
    let mut a = analysis_doc(true);
    let (kc, kf) = ((737u64, 250_174u64), (822u64, 250_590u64));
    a.results = vec![
        row(Metric::Open, "control", 0, N, None),
        row(Metric::Open, "friendly", 0, N, Some((0, N))),
        row(Metric::Click, "control", 12_750, N, None),
        row(Metric::Click, "friendly", 14_150, N, Some((12_750, N))),
        row(Metric::Convert, "control", 0, N, None),
        row(Metric::Convert, "friendly", 0, N, Some((0, N))),
        row(Metric::Unsubscribe, "control", kc.0, kc.1, None),
        row(Metric::Unsubscribe, "friendly", kf.0, kf.1, Some(kc)),
    ];
    let u = a.results[7].clone();
    a.decision = Decision::ShipWithCaution;
    a.winner = Some("friendly".into());
    a.decision_reasons = vec!["friendly beats control on click rate".into()];
    a.guardrails = vec![GuardrailCheck {
        metric: Metric::Unsubscribe,
        arm: "friendly".into(),
        status: GuardrailStatus::Harm,
        rate: u.rate,
        control_rate: kc.0 as f64 / kc.1 as f64,
        diff: u.diff,
        lift: u.lift,
        p_value: u.p_value,
        prob_worse: u.prob_worse,
        max_increase: 0.005,
    }];
    a.extra = serde_json::from_value(serde_json::json!({"power": {"friendly": {"mde": 0.0012}}})).unwrap();
    a
}

async fn report_of(a: &AnalysisDoc) -> (String, String, Report) {
    let store = Recording::new();
    campaign_run(store.as_ref()).await;
    analysis_run(store.as_ref(), true).await;
    store.put_json(&keys().analysis(), a).await.unwrap();
    cpo_report::handle(input(), &ctx(store.clone())).await.unwrap();
    let k = keys();
    let html = text(store.as_ref(), &k.report("index.html")).await;
    let md = text(store.as_ref(), &k.report("report.md")).await;
    let json = store.get_json(&k.report("report.json")).await.unwrap();
    (html, md, json)
}

/// The Markdown summary section: from the headline to the figures table.
fn md_summary(md: &str) -> &str {
    let start = md.find("## Summary").unwrap();
    let end = md[start..].find("| customers assigned").unwrap();
    &md[start..start + end]
}

#[tokio::test]
async fn guardrail_harm_is_risk_and_the_headline_says_ship_with_caution() {
    let (html, md, json) = report_of(&caution_analysis()).await;
    let h = &json.summary.headline;
    assert_eq!(json.summary.verdict, "ship_with_caution");
    assert!(h.starts_with("Ship friendly with caution: 5.7% click rate vs 5.1% for control (+11.0% relative"), "{h}");
    assert!(h.contains("but it raises the unsubscribe rate: 0.33% vs 0.29% for control (+11.3% relative"), "{h}");
    assert!(h.contains("chance it is worse"), "{h}");
    // The guardrail row reads as risk: chance of being worse high, chance better low.
    let g = &json.experiment.as_ref().unwrap().guardrails[0];
    assert!(g.prob_worse.unwrap() > 0.98, "{g:?}");
    assert!(html.contains("Guardrails: chance of being worse than control"));
    assert!(
        md.contains("| unsubscribe | friendly | 0.33% vs 0.29% | +11.3% | 98.3% | 0.0337 | **significant increase** |"),
        "{md}"
    );
    let unsub = json
        .experiment
        .as_ref()
        .unwrap()
        .overall
        .iter()
        .find(|r| r.metric == Metric::Unsubscribe && r.arm == "friendly");
    let unsub = unsub.unwrap();
    assert!(unsub.prob_beat_control.unwrap() < 0.02, "a guardrail's chance better is the chance of a lower rate");
    // The decision family is said in the report.
    assert!(html.contains("Holm-adjusted across the messages (the decision family)"));
    assert!(md.contains("Benjamini–Hochberg-adjusted and never decide on their own"));
}

#[tokio::test]
async fn summaries_cite_no_json_field_and_hold_no_entity() {
    let mut a = caution_analysis();
    a.decision_reasons.push("underpowered (see extra.power)".into());
    let (_, md, json) = report_of(&a).await;
    assert!(!json.summary.headline.contains("extra."), "{}", json.summary.headline);
    let summary = md_summary(&md);
    for entity in ["&lt;", "&gt;", "&amp;", "&quot;"] {
        assert!(!summary.contains(entity), "{entity} in the Markdown summary:\n{summary}");
    }
    assert!(summary.contains("more than 99.9% chance it is better"), "{summary}");
}

#[tokio::test]
async fn metrics_without_events_are_said_once_and_zero_data_is_not_enough_data() {
    let (html, md, json) = report_of(&caution_analysis()).await;
    let e = json.experiment.as_ref().unwrap();
    assert_eq!(e.silent_metrics, [Metric::Open, Metric::Convert]);
    assert!(e.overall.iter().all(|r| r.metric != Metric::Open && r.metric != Metric::Convert));
    assert!(html.contains("No events recorded for <b>open</b>, <b>convert</b> in any arm"));
    assert!(md.contains("No events recorded for open, convert in any arm"));
    assert!(!md.contains("+0.0 pp"), "no zero difference shown as a figure");

    // Both arms at 0 clicks: "not enough data", never a 0 MDE or a coin-flip probability.
    let mut a = caution_analysis();
    a.results[2] = row(Metric::Click, "control", 0, N, None);
    a.results[3] = row(Metric::Click, "friendly", 0, N, Some((0, N)));
    a.results[0] = row(Metric::Open, "control", 10, N, None);
    a.results[1] = row(Metric::Open, "friendly", 12, N, Some((10, N)));
    a.decision = Decision::NotEnoughData;
    a.winner = None;
    a.guardrails.clear();
    let (html, md, json) = report_of(&a).await;
    assert_eq!(json.summary.verdict, "not_enough_data");
    assert!(json.summary.headline.starts_with("Not enough data: 0 click event(s)"), "{}", json.summary.headline);
    assert!(md.contains("| click | friendly | 250,000 | 0 | 0.0% (0.0% – 0.0015%) | not enough data |"), "{md}");
    assert!(html.contains("not enough data"));
    assert!(!md.contains("55.9%") && !md.contains("MDE +0.0 pp"));
}

#[tokio::test]
async fn small_rates_keep_significant_digits_and_times_read_in_seconds() {
    let (html, md, json) = report_of(&caution_analysis()).await;
    assert!(json.summary.headline.contains("0.33% vs 0.29%"), "{}", json.summary.headline);
    assert!(md.contains("+0.033 pp"), "small differences keep two significant digits");
    assert!(!md.contains("0.3% vs 0.3%"));
    // Step start times to the second, never nanoseconds.
    assert!(md.contains(" UTC |"), "timings");
    let nanos = regex_like_nanos(&md) || regex_like_nanos(&html);
    assert!(!nanos, "a timestamp with fractional seconds");
}

/// `HH:MM:SS.` followed by digits: a timestamp printed below the second.
fn regex_like_nanos(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(10).any(|w| {
        w[2] == b':' && w[5] == b':' && w[8] == b'.' && w[9].is_ascii_digit() && w[..2].iter().all(u8::is_ascii_digit)
    })
}

#[tokio::test]
async fn glossary_explains_every_statistic_in_plain_words() {
    let (html, md, _) = report_of(&caution_analysis()).await;
    for term in
        ["rate", "95% CI", "relative lift", "adjusted p (Holm)", "adjusted p (BH)", "chance worse", "MDE", "guardrail"]
    {
        assert!(html.contains(&format!("<dt>{term}</dt>")), "glossary lacks {term}");
        assert!(md.contains(&format!("- **{}**: ", cpo_report::render::md_escape(term))), "md glossary lacks {term}");
    }
}

#[tokio::test]
async fn explain_section_shows_attributes_with_intervals_bh_and_findings() {
    let mut a = caution_analysis();
    let attr = |value: &str, arm: &str, n: u64, k: u64, control: Option<(u64, u64)>| {
        let base = row(Metric::Click, arm, k, n, control);
        AttributeRow {
            attribute: "tier".into(),
            value: value.into(),
            arm: arm.into(),
            n,
            successes: k,
            rate: base.rate,
            ci_low: base.ci_low,
            ci_high: base.ci_high,
            control_rate: control.map(|(kc, nc)| kc as f64 / nc as f64),
            diff: base.diff,
            diff_ci_low: base.diff_ci_low,
            diff_ci_high: base.diff_ci_high,
            lift: base.lift,
            p_value: base.p_value,
            p_bh: base.p_value.map(|p| (p * 2.0).min(1.0)),
        }
    };
    a.explain = Some(Explain {
        metric: Metric::Click,
        min_group: 100,
        rows: vec![
            attr("Gold", "control", 40_000, 2_400, None),
            attr("Gold", "friendly", 40_000, 3_200, Some((2_400, 40_000))),
            attr("Bronze <b>", "control", 90_000, 3_600, None),
            attr("Bronze <b>", "friendly", 90_000, 3_700, Some((3_600, 90_000))),
        ],
        skipped: vec!["city: more than 30 distinct values".into()],
        findings: vec!["For tier Gold, friendly raised the click rate against control: 8.0% vs 6.0%.".into()],
    });
    let (html, md, json) = report_of(&a).await;
    assert!(json.experiment.as_ref().unwrap().explain.is_some());
    assert!(html.contains("Who responds: click rate by customer attribute"));
    assert!(html.contains("For tier Gold, friendly raised the click rate against control: 8.0% vs 6.0%."));
    assert!(html.contains("<td data-label=\"group\">Bronze &lt;b&gt;</td>"), "attribute values are escaped");
    assert!(md.contains("| Gold | friendly | 40,000 | 8.0% (7.7% – 8.3%) | +2.0 pp"), "{md}");
    assert!(md.contains("Not grouped on: city: more than 30 distinct values."));
}

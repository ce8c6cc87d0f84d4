//! `analyze`: intention-to-treat results per arm × metric, overall and per segment, with every statistic of
//! `cpo_common::stats`, the SRM check, power and a decision → `analysis.json`.

use std::collections::BTreeMap;

use cpo_common::config::Experiment;
use cpo_common::keys::RunKeys;
use cpo_common::model::experiment::{
    AnalysisDetails, AnalysisDoc, ArmPower, Assignment, Decision, GuardrailCheck, GuardrailSettings, GuardrailStatus,
    HoldoutCount, IngestCounts, IngestSummary, IngestTallies, Metric, ResultRow, SrmBasis, SrmDetails, TestFamilies,
};
use cpo_common::run::RunInput;
use cpo_common::stats;
use cpo_common::store::StoreExt;
use cpo_common::{StepError, StepOutput, Store};
use serde_json::json;

use crate::counts::{cells_to_counts, Cell, Counts, METRICS};
use crate::events::Event;
use crate::ingest::{counts_key, outcomes_part, read_outcomes_part, summary_identity};
use crate::parts::{list_parts, JsonlParts};
use crate::plan::{Plan, CONTROL, HOLDOUT};

pub async fn run(store: &dyn Store, run: &RunInput, plan: &Plan) -> Result<StepOutput, StepError> {
    let keys = RunKeys::new(&run.run_id)?;
    let summary: IngestSummary = store.get_json_opt(&keys.ingest("summary.json")).await?.ok_or_else(|| {
        StepError::input(format!("{}: not found; the ingest step must run first", keys.ingest("summary.json")))
    })?;
    let counts = match stored_counts(store, &keys, &summary).await? {
        Some(counts) => counts,
        None => {
            // Written by an ingest from before `ingest/counts.json` existed: count from the customer-level parts.
            tracing::warn!(run_id = %run.run_id, "no ingest counts for these outcomes: counting from the assignments");
            count(store, &keys).await?
        }
    };
    let mut doc = analyse(&run.run_id, &run.config.experiment, plan, &counts, &summary);
    doc.explain = crate::explain::explain(store, &keys, &run.config.experiment, plan).await?;
    store.put_json(&keys.analysis(), &doc).await?;
    tracing::info!(run_id = %run.run_id, decision = %doc.decision, srm_p = doc.srm_p_value, simulated = doc.simulated, "analysis written");
    Ok(StepOutput::new(&run.run_id, "analyze")
        .key("analysis", keys.analysis())
        .count("rows", doc.results.len() as u64)
        .count("decision", doc.decision.as_str())
        .count("winner", json!(doc.winner))
        .count("srm_p_value", doc.srm_p_value)
        .count("simulated", doc.simulated))
}

/// The counts ingest stored for the outcomes set `summary` covers, if any.
pub async fn stored_counts(
    store: &dyn Store,
    keys: &RunKeys,
    summary: &IngestSummary,
) -> Result<Option<Counts>, StepError> {
    let Some(doc) = store.get_json_opt::<IngestCounts>(&counts_key(keys)).await? else { return Ok(None) };
    Ok((doc.outcomes_identity == summary_identity(&summary.files)).then(|| cells_to_counts(&doc.cells)))
}

/// Stream the assignments with their part's outcome flags into counts: what ingest counts as it joins, from
/// the customer-level objects it wrote (the fallback for outcomes ingested before `ingest/counts.json`).
pub async fn count(store: &dyn Store, keys: &RunKeys) -> Result<Counts, StepError> {
    let mut counts = Counts::new();
    let mut parts =
        JsonlParts::<Assignment>::new(list_parts(store, &keys.assignments_prefix(), "part-", ".jsonl").await?);
    let mut part = 0usize;
    while let Some(rows) = parts.next_part(store).await? {
        let flags = read_outcomes_part(store, &outcomes_part(keys, part)).await?;
        for a in rows {
            let f = flags.get(&a.customer_id).copied().unwrap_or(0);
            let cell = counts.entry(a.segment).or_default().entry(a.arm).or_default();
            cell.n += 1;
            cell.delivered += u64::from(f & Event::Delivered.bit() != 0);
            for (i, (_, e)) in METRICS.iter().enumerate() {
                cell.successes[i] += u64::from(f & e.bit() != 0);
            }
        }
        part += 1;
    }
    Ok(counts)
}

/// The pure analysis: counts in, `analysis.json` out.
pub fn analyse(run_id: &str, cfg: &Experiment, plan: &Plan, counts: &Counts, ingest: &IngestSummary) -> AnalysisDoc {
    let mut overall: BTreeMap<String, Cell> = BTreeMap::new();
    for per in counts.values() {
        for (arm, c) in per {
            overall.entry(arm.clone()).or_default().add(c);
        }
    }
    let mut results = level_rows(None, &overall, plan, cfg);
    for (segment, per) in counts {
        results.extend(level_rows(Some(segment), per, plan, cfg));
    }

    // SRM: against the weights in force per segment; on delivered counts when the outcomes report deliveries
    // (a broken send shows there), else on the assignment itself.
    let by_delivered = ingest.events.get("delivered").copied().unwrap_or(0) > 0;
    let mut strata = Vec::new();
    let mut srm_segments = BTreeMap::new();
    for (segment, per) in counts {
        let slots = plan.slots(segment);
        let mut observed = Vec::new();
        let mut share = Vec::new();
        for s in slots {
            let c = per.get(&s.arm);
            observed.push(c.map(|c| if by_delivered { c.delivered } else { c.n }).unwrap_or(0));
            share.push(s.weight * (1.0 - plan.holdout));
        }
        if !by_delivered && plan.holdout > 0.0 {
            observed.push(per.get(HOLDOUT).map(|c| c.n).unwrap_or(0));
            share.push(plan.holdout);
        }
        // Arms outside the plan (impossible unless assignments were edited) have expected share 0.
        for (arm, c) in per {
            if arm != HOLDOUT && !slots.iter().any(|s| &s.arm == arm) {
                observed.push(if by_delivered { c.delivered } else { c.n });
                share.push(0.0);
            }
        }
        if let Some((_, p)) = stats::chi2_goodness_of_fit(&observed, &share) {
            srm_segments.insert(segment.clone(), p);
        }
        strata.push((observed, share));
    }
    let srm = stats::chi2_stratified(&strata);
    let srm_p_value = srm.map(|s| s.1).unwrap_or(1.0);
    let srm_flag = srm_p_value < cfg.srm_alpha;

    let d = decide(cfg, &results, srm_flag, srm_p_value);
    AnalysisDoc {
        run_id: run_id.to_string(),
        simulated: ingest.simulated,
        outcomes: ingest.files.iter().map(|f| f.key.clone()).collect(),
        primary_metric: cfg.primary_metric,
        results,
        srm_p_value,
        srm_flag,
        decision: d.decision,
        winner: d.winner,
        decision_reasons: d.reasons,
        guardrails: d.guardrails,
        explain: None,
        outcomes_source: ingest.source,
        holdout_lift: Some(crate::holdout::lift(&overall, ingest.source, cfg.alpha)),
        extra: AnalysisDetails {
            alpha: Some(cfg.alpha),
            allocation: Some(if plan.thompson.is_some() { "thompson" } else { "fixed" }.into()),
            blocked_variants: Some(plan.blocked.clone()),
            continuity_correction: Some(cfg.continuity_correction),
            experiment_id: Some(plan.experiment_id.clone()),
            families: Some(TestFamilies {
                decision: "Holm across the arms on the primary metric".into(),
                exploratory: "Benjamini-Hochberg across the other metrics and arms".into(),
            }),
            guardrail: Some(GuardrailSettings {
                max_increase: cfg.guardrail_max_increase,
                metrics: Metric::ALL.iter().copied().filter(|m| m.is_guardrail()).collect(),
            }),
            holdout: Some(overall.get(HOLDOUT).map(|c| HoldoutCount { n: c.n })),
            ingest: Some(IngestTallies {
                customers_with_events: ingest.customers_with_events,
                duplicates: ingest.duplicates,
                rejected: ingest.rejected,
                unknown_customers: ingest.unknown_customers,
                unknown_events: ingest.unknown_events,
            }),
            power: Some(d.power),
            power_target: Some(cfg.power),
            primary_metric: Some(cfg.primary_metric),
            srm: Some(SrmDetails {
                basis: Some(if by_delivered { SrmBasis::Delivered } else { SrmBasis::Assigned }),
                per_segment: Some(srm_segments),
                statistic: Some(srm.map(|s| s.0)),
            }),
            srm_alpha: Some(cfg.srm_alpha),
            weights_in_force: Some(
                plan.segments
                    .iter()
                    .map(|(s, slots)| (s.clone(), slots.iter().map(|x| (x.arm.clone(), x.weight)).collect()))
                    .collect(),
            ),
            other: BTreeMap::new(),
        },
    }
}

/// The rows of one level (overall or a segment). The decision family is the primary metric across arms
/// (Holm); every other metric × arm is one exploratory family (Benjamini–Hochberg). See `docs/experiment.md`.
fn level_rows(segment: Option<&str>, cells: &BTreeMap<String, Cell>, plan: &Plan, cfg: &Experiment) -> Vec<ResultRow> {
    let arms: Vec<&String> = plan.arm_order.iter().filter(|a| cells.get(*a).is_some_and(|c| c.n > 0)).collect();
    let control = cells.get(CONTROL).cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for (mi, (metric, _)) in METRICS.iter().enumerate() {
        for arm in &arms {
            let c = &cells[*arm];
            let mut row = row(*metric, arm, segment, c.successes[mi], c.n, cfg.alpha);
            if arm.as_str() != CONTROL && control.n > 0 {
                compare(&mut row, control.successes[mi], control.n, cfg);
            }
            rows.push(row);
        }
    }
    adjust(&mut rows, cfg.primary_metric);
    rows
}

/// A row with the arm's own figures (rate and Wilson interval) and no comparison yet.
fn row(metric: Metric, arm: &str, segment: Option<&str>, k: u64, n: u64, alpha: f64) -> ResultRow {
    let ci = stats::wilson(k, n, alpha);
    ResultRow {
        arm: arm.to_string(),
        metric,
        segment: segment.map(str::to_string),
        n,
        successes: k,
        rate: if n > 0 { k as f64 / n as f64 } else { 0.0 },
        ci_low: ci.map(|i| i.low).unwrap_or(0.0),
        ci_high: ci.map(|i| i.high).unwrap_or(0.0),
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
    }
}

/// The comparison with control. With no event in either arm there is nothing to compare: every comparison
/// figure stays `None` (a reader sees "not enough data", never a 0 difference or a coin-flip probability).
/// For a guardrail, "better" is a lower rate, so the probabilities and the expected loss are mirrored.
fn compare(row: &mut ResultRow, kc: u64, nc: u64, cfg: &Experiment) {
    let (k, n) = (row.successes, row.n);
    if kc + k == 0 {
        return;
    }
    let c = stats::compare((kc, nc), (k, n), cfg.continuity_correction, cfg.alpha);
    row.diff = c.diff;
    row.diff_ci_low = c.diff_ci.map(|i| i.low);
    row.diff_ci_high = c.diff_ci.map(|i| i.high);
    row.lift = c.lift;
    row.lift_ci_low = c.lift_ci.map(|i| i.low);
    row.lift_ci_high = c.lift_ci.map(|i| i.high);
    row.p_value = c.p_value;
    let bayes = if row.metric.higher_is_better() {
        stats::beta_compare(kc, nc, k, n)
    } else {
        stats::beta_compare(k, n, kc, nc)
    };
    row.prob_beat_control = bayes.map(|b| b.prob_beat_control);
    row.prob_worse = bayes.map(|b| 1.0 - b.prob_beat_control);
    row.expected_loss = bayes.map(|b| b.expected_loss);
    row.mde = stats::mde(kc as f64 / nc as f64, nc, n, cfg.alpha, cfg.power);
}

/// Holm over the primary metric's comparisons (the decision family), Benjamini–Hochberg over the rest.
fn adjust(rows: &mut [ResultRow], primary: Metric) {
    let family = |rows: &[ResultRow], primary_family: bool| -> Vec<usize> {
        rows.iter()
            .enumerate()
            .filter(|(_, r)| (r.metric == primary) == primary_family && r.arm != CONTROL && r.p_value.is_some())
            .map(|(i, _)| i)
            .collect()
    };
    let decision = family(rows, true);
    let p: Vec<f64> = decision.iter().filter_map(|&i| rows[i].p_value).collect();
    for (&i, h) in decision.iter().zip(stats::holm(&p)) {
        rows[i].p_holm = Some(h);
    }
    let exploratory = family(rows, false);
    let p: Vec<f64> = exploratory.iter().filter_map(|&i| rows[i].p_value).collect();
    for (&i, b) in exploratory.iter().zip(stats::benjamini_hochberg(&p)) {
        rows[i].p_bh = Some(b);
    }
}

/// What [`decide`] concludes.
pub struct Verdict {
    pub decision: Decision,
    pub winner: Option<String>,
    pub reasons: Vec<String>,
    pub guardrails: Vec<GuardrailCheck>,
    pub power: BTreeMap<String, ArmPower>,
}

/// Every non-control arm on every guardrail metric (overall rows). A significant increase is judged on the
/// unadjusted p-value: for harm, missing a real increase costs more than a false alarm.
pub fn guardrail_checks(cfg: &Experiment, overall: &[&ResultRow]) -> Vec<GuardrailCheck> {
    let mut out = Vec::new();
    for r in overall.iter().filter(|r| r.metric.is_guardrail() && r.arm != CONTROL) {
        let control_rate =
            overall.iter().find(|c| c.metric == r.metric && c.arm == CONTROL).map(|c| c.rate).unwrap_or(0.0);
        let increase = r.diff.is_some_and(|d| d > 0.0) && r.p_value.is_some_and(|p| p < cfg.alpha);
        let status = match r.diff {
            Some(d) if increase && d > cfg.guardrail_max_increase => GuardrailStatus::Breach,
            _ if increase => GuardrailStatus::Harm,
            _ => GuardrailStatus::Ok,
        };
        out.push(GuardrailCheck {
            metric: r.metric,
            arm: r.arm.clone(),
            status,
            rate: r.rate,
            control_rate,
            diff: r.diff,
            lift: r.lift,
            p_value: r.p_value,
            prob_worse: r.prob_worse,
            max_increase: cfg.guardrail_max_increase,
        });
    }
    out
}

fn pct(x: f64) -> String {
    // Two significant digits below 1%, so 0.31% and 0.27% do not both read 0.3%.
    if x.abs() < 0.01 {
        format!("{:.2}%", x * 100.0)
    } else {
        format!("{:.1}%", x * 100.0)
    }
}

fn harm_text(g: &GuardrailCheck) -> String {
    format!(
        "{} raises the {} to {} from {} ({}{}, p = {:.3}, {} chance it is worse than control)",
        g.arm,
        g.metric.label(),
        pct(g.rate),
        pct(g.control_rate),
        g.lift.map(|l| format!("{:+.1}% relative", l * 100.0)).unwrap_or_default(),
        if g.status == GuardrailStatus::Breach {
            format!(", beyond the limit of +{:.2} points", g.max_increase * 100.0)
        } else {
            String::new()
        },
        g.p_value.unwrap_or(1.0),
        g.prob_worse.map(|p| format!("{:.1}%", p * 100.0)).unwrap_or_else(|| "n/a".into()),
    )
}

/// The decision on the overall rows: `not_trustworthy` on a sample ratio mismatch; else the best arm with a
/// significant (Holm) positive difference on the primary metric is shipped, with caution when it
/// significantly raises a guardrail metric, not at all when the increase passes the guardrail's limit; with
/// no such arm: `not_enough_data` (fewer than 10 primary events in control or in every arm), `keep_testing`
/// (could not have seen a 50% relative lift) or `no_difference`.
pub fn decide(cfg: &Experiment, rows: &[ResultRow], srm_flag: bool, srm_p: f64) -> Verdict {
    let overall: Vec<&ResultRow> = rows.iter().filter(|r| r.segment.is_none()).collect();
    let primary = cfg.primary_metric;
    let guardrails = guardrail_checks(cfg, &overall);
    let mut reasons = Vec::new();
    let control = overall.iter().find(|r| r.metric == primary && r.arm == CONTROL);
    let candidates: Vec<&&ResultRow> = overall.iter().filter(|r| r.metric == primary && r.arm != CONTROL).collect();
    let mut power = BTreeMap::new();
    let mut underpowered = control.is_none() || candidates.is_empty();
    let few = |k: u64| k < 10;
    let not_enough = control.is_none_or(|c| few(c.successes)) || candidates.iter().all(|r| few(r.successes));
    if let Some(c) = control {
        for r in &candidates {
            let rel = r.mde.filter(|_| c.rate > 0.0).map(|m| m / c.rate);
            let achieved = r.diff.and_then(|d| stats::power(c.rate, d, c.n, r.n, cfg.alpha));
            power.insert(
                r.arm.clone(),
                ArmPower {
                    metric: Some(primary),
                    mde: Some(r.mde),
                    mde_relative: Some(rel),
                    power_at_observed: Some(achieved),
                },
            );
            // Too few events for the normal approximation, or unable to see even a 50% relative lift.
            if few(c.successes) || few(r.successes) || rel.is_none_or(|x| x > 0.5) {
                underpowered = true;
            }
        }
    }
    if srm_flag {
        reasons.push(format!(
            "sample ratio mismatch: arm sizes differ from the weights in force (chi-square p = {srm_p:.2e}, below {}); the assignment or the send is broken, so no figure can be trusted",
            cfg.srm_alpha
        ));
        return Verdict { decision: Decision::NotTrustworthy, winner: None, reasons, guardrails, power };
    }
    let best = candidates
        .iter()
        .filter(|r| r.p_holm.is_some_and(|p| p < cfg.alpha) && r.diff.is_some_and(|d| d > 0.0))
        .max_by(|a, b| a.rate.total_cmp(&b.rate));
    if let Some(w) = best {
        reasons.push(format!(
            "{} beats control on {}: {} vs {} ({}, Holm-adjusted p = {:.2e})",
            w.arm,
            primary.label(),
            pct(w.rate),
            control.map(|c| pct(c.rate)).unwrap_or_else(|| "n/a".into()),
            w.lift.map(|l| format!("{:+.1}% relative", l * 100.0)).unwrap_or_else(|| "n/a".into()),
            w.p_holm.unwrap_or(1.0)
        ));
        let mine: Vec<&GuardrailCheck> = guardrails.iter().filter(|g| g.arm == w.arm).collect();
        let worst = mine.iter().map(|g| g.status).max_by_key(|s| match s {
            GuardrailStatus::Ok => 0,
            GuardrailStatus::Harm => 1,
            GuardrailStatus::Breach => 2,
        });
        for g in mine.iter().filter(|g| g.status != GuardrailStatus::Ok) {
            reasons.push(format!("guardrail: {}", harm_text(g)));
        }
        let decision = match worst {
            Some(GuardrailStatus::Breach) => Decision::DoNotShip,
            Some(GuardrailStatus::Harm) => Decision::ShipWithCaution,
            _ => Decision::Ship,
        };
        return Verdict { decision, winner: Some(w.arm.clone()), reasons, guardrails, power };
    }
    for g in guardrails.iter().filter(|g| g.status != GuardrailStatus::Ok) {
        reasons.push(format!("guardrail: {}", harm_text(g)));
    }
    if not_enough {
        reasons.insert(
            0,
            format!(
                "not enough data: fewer than 10 customers with a {} event in control or in every other arm",
                primary.as_str()
            ),
        );
        return Verdict { decision: Decision::NotEnoughData, winner: None, reasons, guardrails, power };
    }
    if underpowered {
        reasons.insert(
            0,
            format!(
                "keep testing: no arm differs from control on {} yet, and with this many customers only a large \
                 effect could have shown (the smallest detectable lift is more than 50% at {:.0}% power)",
                primary.label(),
                cfg.power * 100.0
            ),
        );
        return Verdict { decision: Decision::KeepTesting, winner: None, reasons, guardrails, power };
    }
    reasons.insert(
        0,
        format!(
            "no arm differs significantly from control on {} after Holm correction (α = {})",
            primary.label(),
            cfg.alpha
        ),
    );
    Verdict { decision: Decision::NoDifference, winner: None, reasons, guardrails, power }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Overall rows of control and one arm, from (successes, n) per metric in [`METRICS`] order.
    fn rows(cfg: &Experiment, control: [(u64, u64); 4], arm: [(u64, u64); 4]) -> Vec<ResultRow> {
        let mut out = Vec::new();
        for (i, (metric, _)) in METRICS.iter().enumerate() {
            out.push(row(*metric, CONTROL, None, control[i].0, control[i].1, cfg.alpha));
            let mut r = row(*metric, "friendly", None, arm[i].0, arm[i].1, cfg.alpha);
            compare(&mut r, control[i].0, control[i].1, cfg);
            out.push(r);
        }
        adjust(&mut out, cfg.primary_metric);
        out
    }

    const N: u64 = 250_000;

    /// The 1M-customer simulation: the winner raises unsubscribes by +11.3% (p ≈ 0.03), far below the +0.5
    /// point limit. The limit is the harm the campaign owner accepts, so the winner still ships; the rise is
    /// real all the same, so the decision says so (`ship_with_caution`, with the reason) instead of `ship`.
    #[test]
    fn significant_guardrail_harm_turns_a_winner_into_ship_with_caution() {
        let cfg = Experiment::default();
        let r =
            rows(&cfg, [(50_000, N), (5_000, N), (500, N), (750, N)], [(52_000, N), (6_000, N), (560, N), (835, N)]);
        let unsub = r.iter().find(|r| r.metric == Metric::Unsubscribe && r.arm == "friendly").unwrap();
        assert!(unsub.p_value.unwrap() < 0.05 && unsub.lift.unwrap() > 0.11, "{unsub:?}");
        // Harm reads as harm: a high chance of being worse, a low chance of being better.
        assert!(unsub.prob_worse.unwrap() > 0.95 && unsub.prob_beat_control.unwrap() < 0.05, "{unsub:?}");
        let v = decide(&cfg, &r, false, 0.5);
        assert_eq!(v.decision, Decision::ShipWithCaution, "{:?}", v.reasons);
        assert_eq!(v.winner.as_deref(), Some("friendly"));
        assert!(v.reasons.iter().any(|x| x.contains("unsubscribe rate") && x.contains("worse")), "{:?}", v.reasons);
        assert_eq!(v.guardrails[0].status, GuardrailStatus::Harm);
        assert!(v.reasons.iter().all(|x| !x.contains("extra.")), "no JSON field in a reason: {:?}", v.reasons);
    }

    #[test]
    fn guardrail_breach_beyond_the_limit_means_do_not_ship() {
        let cfg = Experiment::default();
        let r =
            rows(&cfg, [(50_000, N), (5_000, N), (500, N), (750, N)], [(52_000, N), (6_000, N), (560, N), (3_000, N)]);
        let v = decide(&cfg, &r, false, 0.5);
        assert_eq!(v.decision, Decision::DoNotShip, "{:?}", v.reasons);
        assert_eq!(v.guardrails[0].status, GuardrailStatus::Breach);
        // No harm: a plain ship.
        let r =
            rows(&cfg, [(50_000, N), (5_000, N), (500, N), (750, N)], [(52_000, N), (6_000, N), (560, N), (750, N)]);
        assert_eq!(decide(&cfg, &r, false, 0.5).decision, Decision::Ship);
    }

    /// Holm spans the primary metric only: a big difference on open does not inflate click's adjusted p.
    #[test]
    fn decision_family_is_the_primary_metric_across_arms() {
        let cfg = Experiment::default();
        let r =
            rows(&cfg, [(50_000, N), (5_000, N), (500, N), (750, N)], [(60_000, N), (5_150, N), (520, N), (760, N)]);
        let click = r.iter().find(|r| r.metric == Metric::Click && r.arm == "friendly").unwrap();
        assert_eq!(click.p_holm, click.p_value, "one arm on the primary metric: Holm leaves p as is");
        assert_eq!(click.p_bh, None);
        for m in [Metric::Open, Metric::Convert, Metric::Unsubscribe] {
            let x = r.iter().find(|r| r.metric == m && r.arm == "friendly").unwrap();
            assert!(x.p_holm.is_none() && x.p_bh.is_some(), "{m}: exploratory BH only");
        }
    }

    /// Zero events in both arms: nothing is compared (no 0 pp difference, no coin-flip probability, no MDE),
    /// and the decision says there is not enough data.
    #[test]
    fn zero_events_are_not_enough_data() {
        let cfg = Experiment::default();
        let r = rows(&cfg, [(0, 1000), (0, 1000), (0, 1000), (0, 1000)], [(0, 1000), (0, 1000), (0, 1000), (0, 1000)]);
        let click = r.iter().find(|r| r.metric == Metric::Click && r.arm == "friendly").unwrap();
        assert_eq!((click.diff, click.prob_beat_control, click.mde, click.p_value), (None, None, None, None));
        let v = decide(&cfg, &r, false, 0.5);
        assert_eq!(v.decision, Decision::NotEnoughData, "{:?}", v.reasons);
        // A few events, underpowered: keep testing rather than "not trustworthy".
        let r =
            rows(&cfg, [(0, 2000), (40, 2000), (0, 2000), (0, 2000)], [(0, 2000), (45, 2000), (0, 2000), (0, 2000)]);
        assert_eq!(decide(&cfg, &r, false, 0.5).decision, Decision::KeepTesting);
    }

    #[test]
    fn old_decision_names_still_read() {
        let d: Decision = serde_json::from_str("\"winner\"").unwrap();
        assert_eq!(d, Decision::Ship);
        let d: Decision = serde_json::from_str("\"no_significant_difference\"").unwrap();
        assert_eq!(d, Decision::NoDifference);
    }
}

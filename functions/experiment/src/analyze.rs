//! `analyze`: intention-to-treat results per arm × metric, overall and per segment, with every statistic of
//! `cpo_common::stats`, the SRM check, power and a decision → `analysis.json`.

use std::collections::BTreeMap;

use cpo_common::config::Experiment;
use cpo_common::keys::RunKeys;
use cpo_common::model::experiment::{AnalysisDoc, ArmCounts, Assignment, IngestCounts, IngestSummary, ResultRow};
use cpo_common::run::RunInput;
use cpo_common::stats;
use cpo_common::store::StoreExt;
use cpo_common::{StepError, StepOutput, Store};
use serde_json::json;

use crate::events::Event;
use crate::ingest::{counts_key, outcomes_part, read_outcomes_part, summary_identity};
use crate::parts::{list_parts, JsonlParts};
use crate::plan::{Plan, CONTROL, HOLDOUT};

/// The metrics, in display order; the last is the guardrail.
pub const METRICS: [(&str, Event); 4] =
    [("open", Event::Open), ("click", Event::Click), ("convert", Event::Convert), ("unsubscribe", Event::Unsubscribe)];
pub const GUARDRAIL: &str = "unsubscribe";

/// Counts of one (segment, arm): customers assigned, delivered, and successes per metric.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    pub n: u64,
    pub delivered: u64,
    pub successes: [u64; 4],
}

impl Cell {
    fn add(&mut self, o: &Cell) {
        self.n += o.n;
        self.delivered += o.delivered;
        for i in 0..4 {
            self.successes[i] += o.successes[i];
        }
    }
}

/// segment → arm → cell.
pub type Counts = BTreeMap<String, BTreeMap<String, Cell>>;

/// Add `more` into `counts`.
pub fn merge_counts(counts: &mut Counts, more: Counts) {
    for (segment, arms) in more {
        let per = counts.entry(segment).or_default();
        for (arm, c) in arms {
            per.entry(arm).or_default().add(&c);
        }
    }
}

/// The rows of `ingest/counts.json`, in (segment, arm) order.
pub fn counts_to_cells(counts: &Counts) -> Vec<ArmCounts> {
    let mut out = Vec::new();
    for (segment, arms) in counts {
        for (arm, c) in arms {
            let [open, click, convert, unsubscribe] = c.successes;
            out.push(ArmCounts {
                segment: segment.clone(),
                arm: arm.clone(),
                n: c.n,
                delivered: c.delivered,
                open,
                click,
                convert,
                unsubscribe,
            });
        }
    }
    out
}

/// Inverse of [`counts_to_cells`].
pub fn cells_to_counts(cells: &[ArmCounts]) -> Counts {
    let mut counts = Counts::new();
    for c in cells {
        let cell = Cell { n: c.n, delivered: c.delivered, successes: [c.open, c.click, c.convert, c.unsubscribe] };
        counts.entry(c.segment.clone()).or_default().entry(c.arm.clone()).or_default().add(&cell);
    }
    counts
}

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
    let doc = analyse(&run.run_id, &run.config.experiment, plan, &counts, &summary);
    store.put_json(&keys.analysis(), &doc).await?;
    tracing::info!(run_id = %run.run_id, decision = %doc.decision, srm_p = doc.srm_p_value, simulated = doc.simulated, "analysis written");
    Ok(StepOutput::new(&run.run_id, "analyze")
        .key("analysis", keys.analysis())
        .count("rows", doc.results.len() as u64)
        .count("decision", doc.decision.clone())
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
    let mut srm_segments = serde_json::Map::new();
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
            srm_segments.insert(segment.clone(), json!(p));
        }
        strata.push((observed, share));
    }
    let srm = stats::chi2_stratified(&strata);
    let srm_p_value = srm.map(|s| s.1).unwrap_or(1.0);
    let srm_flag = srm_p_value < cfg.srm_alpha;

    let (decision, winner, reasons, power) = decide(cfg, &results, srm_flag, srm_p_value);
    let holdout = overall.get(HOLDOUT).map(|c| json!({"n": c.n})).unwrap_or(json!(null));
    AnalysisDoc {
        run_id: run_id.to_string(),
        simulated: ingest.simulated,
        outcomes: ingest.files.iter().map(|f| f.key.clone()).collect(),
        results,
        srm_p_value,
        srm_flag,
        decision,
        winner,
        decision_reasons: reasons,
        outcomes_source: ingest.source,
        holdout_lift: Some(crate::holdout::lift(&overall, ingest.source, cfg.alpha)),
        extra: json!({
            "alpha": cfg.alpha,
            "power_target": cfg.power,
            "srm_alpha": cfg.srm_alpha,
            "continuity_correction": cfg.continuity_correction,
            "primary_metric": cfg.primary_metric,
            "guardrail": {"metric": GUARDRAIL, "max_increase": cfg.guardrail_max_increase},
            "srm": {
                "basis": if by_delivered { "delivered" } else { "assigned" },
                "statistic": srm.map(|s| s.0),
                "per_segment": srm_segments,
            },
            "power": power,
            "holdout": holdout,
            "experiment_id": plan.experiment_id,
            "blocked_variants": plan.blocked,
            "weights_in_force": plan.segments.iter().map(|(s, slots)| {
                (s.clone(), json!(slots.iter().map(|x| (x.arm.clone(), json!(x.weight))).collect::<serde_json::Map<_, _>>()))
            }).collect::<serde_json::Map<_, _>>(),
            "ingest": {
                "rejected": ingest.rejected,
                "duplicates": ingest.duplicates,
                "unknown_customers": ingest.unknown_customers,
                "unknown_events": ingest.unknown_events,
                "customers_with_events": ingest.customers_with_events,
            },
        }),
    }
}

/// The rows of one level (overall or a segment), with Holm and BH over its non-control, non-guardrail rows.
fn level_rows(segment: Option<&str>, cells: &BTreeMap<String, Cell>, plan: &Plan, cfg: &Experiment) -> Vec<ResultRow> {
    let arms: Vec<&String> = plan.arm_order.iter().filter(|a| cells.get(*a).is_some_and(|c| c.n > 0)).collect();
    let control = cells.get(CONTROL).cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for (mi, (metric, _)) in METRICS.iter().enumerate() {
        for arm in &arms {
            let c = &cells[*arm];
            let (k, n) = (c.successes[mi], c.n);
            let (kc, nc) = (control.successes[mi], control.n);
            let ci = stats::wilson(k, n, cfg.alpha);
            let mut row = ResultRow {
                arm: arm.to_string(),
                metric: metric.to_string(),
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
                expected_loss: None,
                mde: None,
            };
            if arm.as_str() != CONTROL && nc > 0 {
                let test = stats::two_proportion_test(kc, nc, k, n, cfg.continuity_correction);
                let dci = stats::newcombe_diff(kc, nc, k, n, cfg.alpha);
                let lci = stats::lift_ci(kc, nc, k, n, cfg.alpha);
                let bayes = stats::beta_compare(kc, nc, k, n);
                row.diff = test.map(|t| t.diff);
                row.diff_ci_low = dci.map(|i| i.low);
                row.diff_ci_high = dci.map(|i| i.high);
                row.lift = stats::lift(kc, nc, k, n);
                row.lift_ci_low = lci.map(|i| i.low);
                row.lift_ci_high = lci.map(|i| i.high);
                row.p_value = test.map(|t| t.p_value);
                row.prob_beat_control = bayes.map(|b| b.prob_beat_control);
                row.expected_loss = bayes.map(|b| b.expected_loss);
                row.mde = stats::mde(kc as f64 / nc as f64, nc, n, cfg.alpha, cfg.power);
            }
            rows.push(row);
        }
    }
    let family: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.metric != GUARDRAIL && r.arm != CONTROL && r.p_value.is_some())
        .map(|(i, _)| i)
        .collect();
    let p: Vec<f64> = family.iter().filter_map(|&i| rows[i].p_value).collect();
    for ((&i, h), b) in family.iter().zip(stats::holm(&p)).zip(stats::benjamini_hochberg(&p)) {
        rows[i].p_holm = Some(h);
        rows[i].p_bh = Some(b);
    }
    rows
}

/// Decision on the overall rows of the primary metric: `not_trustworthy` on SRM or a breached guardrail;
/// `winner` for the best arm with a significant (Holm) positive difference; `not_trustworthy` when no arm won
/// and the test could not have seen realistic effects (underpowered); else `no_significant_difference`.
fn decide(
    cfg: &Experiment,
    rows: &[ResultRow],
    srm_flag: bool,
    srm_p: f64,
) -> (String, Option<String>, Vec<String>, serde_json::Value) {
    let overall: Vec<&ResultRow> = rows.iter().filter(|r| r.segment.is_none()).collect();
    let primary =
        if METRICS.iter().any(|(m, _)| *m == cfg.primary_metric) { cfg.primary_metric.as_str() } else { "click" };
    let mut reasons = Vec::new();
    let mut untrustworthy = false;
    if srm_flag {
        untrustworthy = true;
        reasons.push(format!(
            "sample ratio mismatch: arm sizes differ from the weights in force (chi-square p = {srm_p:.2e} < {})",
            cfg.srm_alpha
        ));
    }
    for r in overall.iter().filter(|r| r.metric == GUARDRAIL && r.arm != CONTROL) {
        if let (Some(d), Some(p)) = (r.diff, r.p_value) {
            if d > cfg.guardrail_max_increase && p < cfg.alpha {
                untrustworthy = true;
                reasons.push(format!(
                    "guardrail breached: {} raises the unsubscribe rate by {:.2} points (p = {p:.3}, limit {:.2})",
                    r.arm,
                    d * 100.0,
                    cfg.guardrail_max_increase * 100.0
                ));
            }
        }
    }
    let control = overall.iter().find(|r| r.metric == primary && r.arm == CONTROL);
    let candidates: Vec<&&ResultRow> = overall.iter().filter(|r| r.metric == primary && r.arm != CONTROL).collect();
    let mut power = serde_json::Map::new();
    let mut underpowered = control.is_none() || candidates.is_empty();
    if let Some(c) = control {
        for r in &candidates {
            let rel = r.mde.filter(|_| c.rate > 0.0).map(|m| m / c.rate);
            let achieved = r.diff.and_then(|d| stats::power(c.rate, d, c.n, r.n, cfg.alpha));
            power.insert(
                r.arm.clone(),
                json!({"metric": primary, "mde": r.mde, "mde_relative": rel, "power_at_observed": achieved}),
            );
            // Too few events for the normal approximation, or unable to see even a 50% relative lift.
            let few = (c.successes as f64) < 10.0 || (r.successes as f64) < 10.0;
            if few || rel.is_none_or(|x| x > 0.5) {
                underpowered = true;
            }
        }
    }
    let significant: Vec<&&&ResultRow> = candidates
        .iter()
        .filter(|r| r.p_holm.is_some_and(|p| p < cfg.alpha) && r.diff.is_some_and(|d| d > 0.0))
        .collect();
    let best = significant.iter().max_by(|a, b| a.rate.total_cmp(&b.rate));
    if untrustworthy {
        return ("not_trustworthy".into(), None, reasons, json!(power));
    }
    if let Some(w) = best {
        reasons.push(format!(
            "{} beats control on {primary}: {:.2}% vs {:.2}% (lift {}, Holm-adjusted p = {:.2e})",
            w.arm,
            w.rate * 100.0,
            control.map(|c| c.rate * 100.0).unwrap_or(0.0),
            w.lift.map(|l| format!("{:+.1}%", l * 100.0)).unwrap_or_else(|| "n/a".into()),
            w.p_holm.unwrap_or(1.0)
        ));
        return ("winner".into(), Some(w.arm.clone()), reasons, json!(power));
    }
    if underpowered {
        reasons.push(format!(
            "underpowered: too few customers or {primary} events to detect a realistic effect (see extra.power: \
             minimum detectable effect at {:.0}% power)",
            cfg.power * 100.0
        ));
        return ("not_trustworthy".into(), None, reasons, json!(power));
    }
    reasons.push(format!(
        "no arm differs significantly from control on {primary} after Holm correction (α = {})",
        cfg.alpha
    ));
    ("no_significant_difference".into(), None, reasons, json!(power))
}

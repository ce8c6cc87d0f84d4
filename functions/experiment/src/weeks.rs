//! The campaign across weeks (`cpo campaign report`): per segment, each arm's rate by week, the weights in
//! force, cumulative successes against a fixed split, the week-stratified comparison with control and the
//! current best arm (docs/experiment.md, "The campaign across weeks").
//!
//! Weeks come from the campaign ledger (weights in force, mode); counts from each run's `analysis.json`
//! (the outcomes it chose: real, else simulated). Weeks are never pooled naively: with weights that change
//! from week to week a pooled rate mixes weeks in different proportions per arm, so every comparison is made
//! within a week and combined with Mantel–Haenszel weights (`cpo_common::stats::mantel_haenszel_diff`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use cpo_common::config::CampaignConfig;
use cpo_common::keys::RunKeys;
use cpo_common::model::experiment::OutcomesSource;
use cpo_common::model::weeks::{
    ArmWeek, Best, CampaignWeeksDoc, Cumulative, SegmentWeek, SegmentWeeks, Stratified, WeekInfo,
};
use cpo_common::run::RunInput;
use cpo_common::stats::{self, Stratum};
use cpo_common::store::StoreExt;
use cpo_common::{StepError, Store};

use crate::allocation::{self, Beta, Count};
use crate::ledger::{self, Entry};
use crate::plan::CONTROL;

type Counts = BTreeMap<String, BTreeMap<String, Count>>;

/// One ledger week with what the report needs of its run.
struct Loaded {
    entry: Entry,
    /// The run's config (None once the run has expired).
    config: Option<CampaignConfig>,
    source: OutcomesSource,
    counts: Option<Counts>,
}

/// Build the campaign across weeks and store it as `campaigns/<campaign>/report/report.json`, which the report
/// step renders. The analysis step calls it after every analysis, so the page follows the weeks as they are
/// analysed; `cpo campaign report` calls it on demand.
pub async fn publish(store: &dyn Store, campaign: &str) -> Result<CampaignWeeksDoc, StepError> {
    let doc = build(store, campaign).await?;
    store.put_json(&cpo_common::keys::campaign_report(campaign, "report.json")?, &doc).await?;
    Ok(doc)
}

/// Build the report of `campaign` from the store (empty `weeks` for a campaign without runs).
pub async fn build(store: &dyn Store, campaign: &str) -> Result<CampaignWeeksDoc, StepError> {
    let mut loaded = Vec::new();
    for entry in ledger::read(store, campaign).await? {
        let run: Option<RunInput> = store.get_json_opt(&RunKeys::new(&entry.run_id)?.input()).await?;
        loaded.push((entry, run.map(|r| r.config)));
    }
    let newest = loaded.iter().rev().find_map(|(_, c)| c.clone()).unwrap_or_default();
    let metric = newest.allocation_metric();
    let mut weeks = Vec::new();
    for (entry, config) in loaded {
        let (source, counts) = match allocation::week_counts(store, &entry.run_id, metric).await? {
            Some((s, c)) => (s, Some(c)),
            None => (OutcomesSource::None, None),
        };
        weeks.push(Loaded { entry, config, source, counts });
    }
    Ok(assemble(campaign, &newest, &weeks))
}

fn assemble(campaign: &str, newest: &CampaignConfig, weeks: &[Loaded]) -> CampaignWeeksDoc {
    let mut segments: BTreeSet<String> = BTreeSet::new();
    for w in weeks {
        segments.extend(w.entry.weights.keys().cloned());
        segments.extend(w.counts.iter().flat_map(|c| c.keys().cloned()));
    }
    CampaignWeeksDoc {
        campaign: campaign.to_string(),
        metric: newest.allocation_metric(),
        generated_at: Utc::now(),
        weeks: weeks
            .iter()
            .map(|w| WeekInfo {
                run_id: w.entry.run_id.clone(),
                date: w.entry.date,
                mode: w.entry.mode,
                outcomes_source: w.source,
            })
            .collect(),
        segments: segments.iter().map(|s| segment(campaign, newest, weeks, s)).collect(),
    }
}

fn counts_in<'a>(w: &'a Loaded, segment: &str) -> Option<&'a BTreeMap<String, Count>> {
    w.counts.as_ref().and_then(|c| c.get(segment))
}

fn segment<'a>(campaign: &str, newest: &CampaignConfig, weeks: &'a [Loaded], name: &str) -> SegmentWeeks {
    let empty = BTreeMap::new();
    let counts_of = |w: &'a Loaded| counts_in(w, name);
    let mut tones: BTreeSet<String> = BTreeSet::new();
    for w in weeks {
        tones.extend(w.entry.weights.get(name).unwrap_or(&empty).keys().cloned());
        tones.extend(counts_of(w).into_iter().flat_map(|c| c.keys().cloned()));
    }
    tones.remove(CONTROL);
    let mut arms = vec![CONTROL.to_string()];
    arms.extend(tones);

    let mut out_weeks = Vec::new();
    let mut cumulative = Vec::new();
    let (mut actual, mut fixed) = (0u64, 0.0f64);
    for w in weeks {
        let weights = w.entry.weights.get(name).cloned().unwrap_or_default();
        let counts = counts_of(w);
        let arm_weeks: BTreeMap<String, ArmWeek> = counts
            .into_iter()
            .flatten()
            .map(|(arm, c)| {
                let ci = stats::wilson(c.successes, c.n, 0.05);
                let rate = if c.n > 0 { c.successes as f64 / c.n as f64 } else { 0.0 };
                (
                    arm.clone(),
                    ArmWeek {
                        n: c.n,
                        successes: c.successes,
                        rate,
                        ci_low: ci.map_or(0.0, |i| i.low),
                        ci_high: ci.map_or(0.0, |i| i.high),
                    },
                )
            })
            .collect();
        if let Some(c) = counts {
            actual += c.values().map(|x| x.successes).sum::<u64>();
            fixed += fixed_split(w.config.as_ref().unwrap_or(newest), &weights, c);
            cumulative.push(Cumulative { date: w.entry.date, actual, fixed_split: fixed });
        }
        out_weeks.push(SegmentWeek { run_id: w.entry.run_id.clone(), date: w.entry.date, weights, arms: arm_weeks });
    }

    let versus_control = arms
        .iter()
        .filter(|a| *a != CONTROL)
        .map(|arm| {
            let strata: Vec<Stratum> = weeks
                .iter()
                .filter_map(counts_of)
                .filter_map(|c| {
                    let (k, a) = (c.get(CONTROL)?, c.get(arm)?);
                    Some(((k.successes, k.n), (a.successes, a.n)))
                })
                .filter(|((_, nc), (_, na))| *nc > 0 && *na > 0)
                .collect();
            let mh = stats::mantel_haenszel_diff(&strata, 0.05);
            Stratified {
                arm: arm.clone(),
                diff: mh.map(|m| m.0),
                diff_ci_low: mh.map(|m| m.1.low),
                diff_ci_high: mh.map(|m| m.1.high),
                weeks: strata.len(),
            }
        })
        .collect();

    SegmentWeeks {
        segment: name.to_string(),
        best: best(campaign, newest, weeks, name, &arms),
        arms,
        weeks: out_weeks,
        cumulative,
        versus_control,
    }
}

/// Successes a fixed split would have earned in one week: the customers of the week, split by the config's
/// `weights` renormalised over the arms in force that week, at each arm's observed rate (an arm without
/// customers that week: the week's overall rate).
pub fn fixed_split(config: &CampaignConfig, in_force: &BTreeMap<String, f64>, counts: &BTreeMap<String, Count>) -> f64 {
    let n: u64 = counts.values().map(|c| c.n).sum();
    if n == 0 {
        return 0.0;
    }
    let overall = counts.values().map(|c| c.successes).sum::<u64>() as f64 / n as f64;
    let arms: Vec<&String> = if in_force.is_empty() { counts.keys().collect() } else { in_force.keys().collect() };
    let total: f64 = arms.iter().map(|a| config.weight(a)).sum();
    if total <= 0.0 {
        return overall * n as f64;
    }
    arms.iter()
        .map(|a| {
            let rate = counts.get(*a).filter(|c| c.n > 0).map_or(overall, |c| c.successes as f64 / c.n as f64);
            n as f64 * config.weight(a) / total * rate
        })
        .sum()
}

/// The arm most likely best, as next week's allocation would weigh the weeks (decay per week of age, counted
/// from a week after the newest run), with the control among the candidates.
fn best(campaign: &str, cfg: &CampaignConfig, weeks: &[Loaded], segment: &str, arms: &[String]) -> Option<Best> {
    let next = weeks.last()?.entry.date + chrono::Duration::days(7);
    let alloc = &cfg.allocation;
    let mut post: Vec<Beta> = vec![Beta { alpha: alloc.prior.alpha, beta: alloc.prior.beta }; arms.len()];
    let mut any = false;
    for w in weeks {
        let Some(c) = w.counts.as_ref().and_then(|c| c.get(segment)) else { continue };
        let factor = alloc.decay.powf((next - w.entry.date).num_days() as f64 / 7.0);
        for (p, arm) in post.iter_mut().zip(arms) {
            if let Some(x) = c.get(arm) {
                any |= x.n > 0;
                p.alpha += factor * x.successes as f64;
                p.beta += factor * x.n.saturating_sub(x.successes) as f64;
            }
        }
    }
    if !any {
        return None;
    }
    let seed = allocation::seed_of(&[b"cpo-best", campaign.as_bytes(), segment.as_bytes()]);
    let probs = allocation::prob_best(&post, allocation::DRAWS, seed);
    let prob_best: BTreeMap<String, f64> = arms.iter().cloned().zip(probs.iter().copied()).collect();
    let arm = arms.iter().zip(&probs).max_by(|a, b| a.1.total_cmp(b.1)).map(|(a, _)| a.clone())?;
    Some(Best { arm, prob_best })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_split_uses_the_configured_weights_over_the_arms_in_force() {
        let cfg = CampaignConfig::default(); // 0.25 each
        let counts = BTreeMap::from([
            ("control".to_string(), Count { n: 250, successes: 5 }),
            ("urgent".to_string(), Count { n: 50, successes: 1 }),
            ("informational".to_string(), Count { n: 700, successes: 56 }),
        ]);
        let in_force =
            BTreeMap::from([("control".into(), 0.25), ("urgent".into(), 0.05), ("informational".into(), 0.70)]);
        // 1000 customers, a third each: 1000/3 × (0.02 + 0.02 + 0.08).
        let f = fixed_split(&cfg, &in_force, &counts);
        assert!((f - 1000.0 / 3.0 * 0.12).abs() < 1e-9, "{f}");
    }
}

//! Thompson allocation: next week's weights per segment from earlier weeks' counts of each tone
//! (docs/architecture.md, "A campaign over time"; docs/experiment.md, "Adaptive allocation").
//!
//! - **History.** The campaign ledger names the earlier runs (dated strictly before this run); each run's
//!   `analysis.json` holds its counts per segment × arm on the allocation metric, from the outcomes the
//!   analysis chose (real, else simulated — never both). A tone is the same arm across weeks even though its
//!   text changes. A week `d` days old counts `decay^(d / 7)` of its customers and successes.
//! - **Snapshot.** The first assign of a run copies that history to `runs/<id>/inputs/allocation`, and every
//!   later reader (a re-run of assign, the analysis' SRM test) uses the copy, so outcomes that arrive for an
//!   earlier week later never change a week that may already have been sent (docs/architecture.md §2).
//! - **Weights.** Per segment, the chance each shipped tone is best is estimated from Beta posteriors
//!   (prior + discounted counts) by Monte Carlo with a seeded RNG: the same history and seed give the same
//!   weights. The control keeps `control_share`; every shipped tone gets `floor` plus its chance of being best
//!   times what is left. A blocked tone is simply not among the shipped ones, so its share goes to the others.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cpo_common::config::{Allocation, BetaPrior};
use cpo_common::keys::RunKeys;
use cpo_common::model::experiment::{AnalysisDoc, Metric, OutcomesSource};
use cpo_common::run::RunInput;
use cpo_common::store::StoreExt;
use cpo_common::{StepError, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The arm that receives the control message (`control` in configs, weights and results).
pub const CONTROL: &str = "control";

/// Monte Carlo draws per segment: the chance of being best is within about ±0.01 (95%) of its value.
pub const DRAWS: u32 = 10_000;

/// Customers assigned to an arm and those among them with the metric's event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub n: u64,
    pub successes: u64,
}

/// One earlier week as the allocation read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Week {
    pub run_id: String,
    pub date: NaiveDate,
    /// `decay^(age in weeks)`: the weight of this week's counts.
    pub factor: f64,
    pub outcomes_source: OutcomesSource,
    /// Segment → arm → count on the allocation metric (control included).
    pub counts: BTreeMap<String, BTreeMap<String, Count>>,
}

/// `runs/<id>/inputs/allocation`: the earlier weeks a Thompson allocation is computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub metric: Metric,
    pub decay: f64,
    /// Seed of the Monte Carlo draws.
    pub seed: u64,
    pub weeks: Vec<Week>,
    /// Earlier runs without an analysis yet (no outcomes): they add nothing.
    pub without_outcomes: Vec<String>,
}

/// A Beta(alpha, beta) distribution over a rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Beta {
    pub alpha: f64,
    pub beta: f64,
}

impl Beta {
    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }
}

impl History {
    /// Prior plus the discounted counts of `arm` in `segment`.
    pub fn posterior(&self, prior: BetaPrior, segment: &str, arm: &str) -> Beta {
        let (mut s, mut f) = (0.0, 0.0);
        for w in &self.weeks {
            if let Some(c) = w.counts.get(segment).and_then(|a| a.get(arm)) {
                s += w.factor * c.successes as f64;
                f += w.factor * c.n.saturating_sub(c.successes) as f64;
            }
        }
        Beta { alpha: prior.alpha + s, beta: prior.beta + f }
    }

    /// Whether any earlier week assigned a customer to one of `arms` in `segment`.
    pub fn has_data(&self, segment: &str, arms: &[String]) -> bool {
        self.weeks
            .iter()
            .any(|w| w.counts.get(segment).is_some_and(|a| arms.iter().any(|arm| a.get(arm).is_some_and(|c| c.n > 0))))
    }
}

/// The allocation of one segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentAllocation {
    /// Arm → share of the segment's non-holdout customers (control and the shipped tones; sums to 1).
    pub weights: BTreeMap<String, f64>,
    /// Shipped tone → chance it is the best tone.
    pub prob_best: BTreeMap<String, f64>,
    /// Shipped tone → posterior of its rate.
    pub posteriors: BTreeMap<String, Beta>,
}

/// Chance that each of `posteriors` has the highest rate, from `draws` joint draws of a `seed`ed RNG.
/// Empty in, empty out; one posterior is best with certainty.
pub fn prob_best(posteriors: &[Beta], draws: u32, seed: u64) -> Vec<f64> {
    match posteriors.len() {
        0 => return Vec::new(),
        1 => return vec![1.0],
        _ => {}
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut wins = vec![0u32; posteriors.len()];
    for _ in 0..draws.max(1) {
        let mut best = (0usize, f64::NEG_INFINITY);
        for (i, b) in posteriors.iter().enumerate() {
            let x = sample_beta(&mut rng, b.alpha, b.beta);
            if x > best.1 {
                best = (i, x);
            }
        }
        wins[best.0] += 1;
    }
    let total = draws.max(1) as f64;
    wins.into_iter().map(|w| w as f64 / total).collect()
}

/// Shares of the control and of each tone: the control gets `control_share`; each tone `floor` plus its
/// `prob_best` times what is left. `prob_best` must sum to 1 (it is renormalised otherwise; all zeros → equal).
/// With no tone the control gets everything. With more tones than the floors allow, the floor is lowered to an
/// equal split of what the control leaves (the config check prevents this for the configured tones).
pub fn shares(prob_best: &[f64], control_share: f64, floor: f64) -> (f64, Vec<f64>) {
    let k = prob_best.len();
    if k == 0 {
        return (1.0, Vec::new());
    }
    let control = control_share.clamp(0.0, 1.0);
    let rest = 1.0 - control;
    let floor = floor.clamp(0.0, rest / k as f64);
    let free = (rest - floor * k as f64).max(0.0);
    let total: f64 = prob_best.iter().filter(|p| p.is_finite() && **p > 0.0).sum();
    let tones = prob_best
        .iter()
        .map(|p| {
            let p = if total > 0.0 {
                if p.is_finite() && *p > 0.0 {
                    p / total
                } else {
                    0.0
                }
            } else {
                1.0 / k as f64
            };
            floor + free * p
        })
        .collect();
    (control, tones)
}

/// Seed of a segment's draws: the history's seed and the segment name.
fn segment_seed(seed: u64, segment: &str) -> u64 {
    seed_of(&[&seed.to_le_bytes(), segment.as_bytes()])
}

/// A Monte Carlo seed: the first 8 bytes (little-endian) of the SHA-256 of `parts` concatenated. The seeds of
/// this module and the campaign report's best-arm draws are all made here, so equal inputs draw alike.
pub fn seed_of(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let d = h.finalize();
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// The Thompson allocation of `segment` whose shipped tones are `tones`. With no earlier counts of those tones
/// (the first week) the tones split what the control leaves equally.
pub fn allocate(history: &History, alloc: &Allocation, segment: &str, tones: &[String]) -> SegmentAllocation {
    let posteriors: Vec<Beta> = tones.iter().map(|t| history.posterior(alloc.prior, segment, t)).collect();
    let probs = if history.has_data(segment, tones) {
        prob_best(&posteriors, DRAWS, segment_seed(history.seed, segment))
    } else {
        vec![1.0 / tones.len().max(1) as f64; tones.len()]
    };
    let (control, tone_shares) = shares(&probs, alloc.control_share, alloc.floor);
    let mut weights = BTreeMap::from([(CONTROL.to_string(), control)]);
    weights.extend(tones.iter().cloned().zip(tone_shares));
    SegmentAllocation {
        weights,
        prob_best: tones.iter().cloned().zip(probs).collect(),
        posteriors: tones.iter().cloned().zip(posteriors).collect(),
    }
}

/// The Monte Carlo seed of a run: its simulator seed, campaign and date (so each week draws afresh, and the
/// same ledger, date and seed give the same weights).
pub fn run_seed(run: &RunInput) -> u64 {
    let date = run.date.to_string();
    seed_of(&[b"cpo-thompson", &run.seed.to_le_bytes(), run.campaign.as_bytes(), date.as_bytes()])
}

/// One earlier run's counts on `metric` from its `analysis.json` (None when it has not been analysed).
pub async fn week_counts(
    store: &dyn Store,
    run_id: &str,
    metric: Metric,
) -> Result<Option<(OutcomesSource, BTreeMap<String, BTreeMap<String, Count>>)>, StepError> {
    let keys = RunKeys::new(run_id)?;
    let Some(doc) = store.get_json_opt::<AnalysisDoc>(&keys.analysis()).await? else { return Ok(None) };
    let mut counts: BTreeMap<String, BTreeMap<String, Count>> = BTreeMap::new();
    for r in doc.results.iter().filter(|r| r.metric == metric) {
        if let Some(seg) = &r.segment {
            counts.entry(seg.clone()).or_default().insert(r.arm.clone(), Count { n: r.n, successes: r.successes });
        }
    }
    Ok(Some((doc.outcomes_source, counts)))
}

/// The run's history copy ([`crate::ledger::snapshot`] must have run).
pub async fn load(store: &dyn Store, run: &RunInput) -> Result<History, StepError> {
    let key = RunKeys::new(&run.run_id)?.snapshot("allocation");
    store
        .get_json_opt(&key)
        .await?
        .ok_or_else(|| StepError::internal(format!("{key}: missing; assign snapshots it first")))
}

// ------------------------------------------------------------------------------------ sampling

/// A standard normal draw (Marsaglia's polar method).
fn normal(rng: &mut StdRng) -> f64 {
    loop {
        let u: f64 = rng.random::<f64>() * 2.0 - 1.0;
        let v: f64 = rng.random::<f64>() * 2.0 - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * s.ln() / s).sqrt();
        }
    }
}

/// A Gamma(shape, 1) draw (Marsaglia and Tsang 2000; shape < 1 by boosting with U^(1/shape)).
fn gamma(rng: &mut StdRng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random::<f64>();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u: f64 = rng.random::<f64>();
        if u < 1.0 - 0.0331 * x * x * x * x || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

/// A Beta(a, b) draw as X / (X + Y) of two Gamma draws.
pub fn sample_beta(rng: &mut StdRng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    if x + y > 0.0 {
        x / (x + y)
    } else {
        0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpo_common::config::AllocationMode;
    use proptest::prelude::*;

    fn week(run: &str, days_old: i64, factor: f64, seg: &str, arms: &[(&str, u64, u64)]) -> Week {
        Week {
            run_id: run.into(),
            date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() - chrono::Duration::days(days_old),
            factor,
            outcomes_source: OutcomesSource::Simulated,
            counts: BTreeMap::from([(
                seg.to_string(),
                arms.iter().map(|(a, n, s)| (a.to_string(), Count { n: *n, successes: *s })).collect(),
            )]),
        }
    }

    fn tones() -> Vec<String> {
        ["urgent", "informational", "friendly"].map(String::from).to_vec()
    }

    fn thompson() -> Allocation {
        Allocation { mode: AllocationMode::Thompson, ..Allocation::default() }
    }

    #[test]
    fn posterior_adds_discounted_counts_to_the_prior() {
        let h = History {
            metric: Metric::Click,
            decay: 0.5,
            seed: 1,
            weeks: vec![
                week("a", 14, 0.25, "S", &[("urgent", 100, 10)]),
                week("b", 7, 0.5, "S", &[("urgent", 100, 20)]),
            ],
            without_outcomes: vec![],
        };
        let p = h.posterior(BetaPrior { alpha: 1.0, beta: 2.0 }, "S", "urgent");
        assert!((p.alpha - (1.0 + 2.5 + 10.0)).abs() < 1e-12, "{p:?}");
        assert!((p.beta - (2.0 + 22.5 + 40.0)).abs() < 1e-12, "{p:?}");
        assert_eq!(h.posterior(BetaPrior::default(), "other", "urgent"), Beta { alpha: 1.0, beta: 1.0 });
    }

    #[test]
    fn first_week_splits_tones_equally_after_control() {
        let h = History { metric: Metric::Click, decay: 0.8, seed: 3, weeks: vec![], without_outcomes: vec![] };
        let a = allocate(&h, &thompson(), "S", &tones());
        assert_eq!(a.weights[CONTROL], 0.25);
        for t in tones() {
            assert!((a.weights[&t] - 0.25).abs() < 1e-12, "{:?}", a.weights);
        }
    }

    #[test]
    fn same_history_and_seed_give_the_same_weights_and_another_seed_other_draws() {
        let weeks =
            vec![week("a", 7, 0.8, "S", &[("urgent", 500, 30), ("informational", 500, 33), ("friendly", 500, 28)])];
        let h = History { metric: Metric::Click, decay: 0.8, seed: 11, weeks, without_outcomes: vec![] };
        let a = allocate(&h, &thompson(), "S", &tones());
        assert_eq!(a, allocate(&h.clone(), &thompson(), "S", &tones()));
        let other = History { seed: 12, ..h.clone() };
        assert_ne!(a.weights, allocate(&other, &thompson(), "S", &tones()).weights);
    }

    #[test]
    fn a_clearly_better_tone_gets_what_the_floors_leave() {
        let weeks =
            vec![week("a", 7, 0.8, "S", &[("urgent", 2000, 40), ("informational", 2000, 160), ("friendly", 2000, 60)])];
        let h = History { metric: Metric::Click, decay: 0.8, seed: 5, weeks, without_outcomes: vec![] };
        let a = allocate(&h, &thompson(), "S", &tones());
        assert!(a.prob_best["informational"] > 0.999, "{:?}", a.prob_best);
        assert!((a.weights["informational"] - (0.05 + 0.60)).abs() < 0.002, "{:?}", a.weights);
        assert!((a.weights["urgent"] - 0.05).abs() < 0.002 && a.weights[CONTROL] == 0.25);
    }

    #[test]
    fn a_blocked_tones_share_goes_to_the_others() {
        let weeks =
            vec![week("a", 7, 0.8, "S", &[("urgent", 2000, 40), ("informational", 2000, 160), ("friendly", 2000, 60)])];
        let h = History { metric: Metric::Click, decay: 0.8, seed: 5, weeks, without_outcomes: vec![] };
        // informational is blocked this week: only urgent and friendly ship.
        let shipped = vec!["urgent".to_string(), "friendly".to_string()];
        let a = allocate(&h, &thompson(), "S", &shipped);
        assert!(!a.weights.contains_key("informational"));
        let sum: f64 = a.weights.values().sum();
        assert!((sum - 1.0).abs() < 1e-12 && a.weights[CONTROL] == 0.25, "{:?}", a.weights);
        assert!(a.weights["friendly"] > 0.6, "friendly (3%) beats urgent (2%): {:?}", a.weights);
        // With no history the two shipped tones split 0.75 equally.
        let empty = History { weeks: vec![], ..h };
        let a = allocate(&empty, &thompson(), "S", &shipped);
        assert_eq!((a.weights["urgent"], a.weights["friendly"]), (0.375, 0.375));
    }

    #[test]
    fn prob_best_matches_a_closed_form() {
        // P(Beta(2,1) > Beta(1,1)) = ∫ 2x · x dx = 2/3.
        let p = prob_best(&[Beta { alpha: 2.0, beta: 1.0 }, Beta { alpha: 1.0, beta: 1.0 }], 200_000, 9);
        assert!((p[0] - 2.0 / 3.0).abs() < 0.005, "{p:?}");
        // Beta draws have the right mean and variance, small and large shapes alike.
        let mut rng = StdRng::seed_from_u64(4);
        for (a, b) in [(0.5, 0.5), (3.0, 40.0), (200.0, 9800.0)] {
            let xs: Vec<f64> = (0..100_000).map(|_| sample_beta(&mut rng, a, b)).collect();
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64;
            let (em, ev) = (a / (a + b), a * b / ((a + b).powi(2) * (a + b + 1.0)));
            assert!((m - em).abs() < 4.0 * (ev / 1e5).sqrt(), "Beta({a},{b}) mean {m} vs {em}");
            assert!((v / ev - 1.0).abs() < 0.03, "Beta({a},{b}) variance {v} vs {ev}");
        }
    }

    /// Two posteriors: the Monte Carlo chance of being best agrees with the numeric integration the analysis
    /// uses (`stats::beta_compare`, checked against mpmath and scipy in `tests/golden/`), small and large counts.
    #[test]
    fn prob_best_agrees_with_the_golden_beta_comparison() {
        for (kc, nc, ka, na) in [(3u64, 40u64, 7u64, 45u64), (200, 10_000, 230, 10_000), (0, 10, 1, 10)] {
            let exact = cpo_common::stats::beta_compare(kc, nc, ka, na).unwrap().prob_beat_control;
            let post = |k: u64, n: u64| Beta { alpha: 1.0 + k as f64, beta: 1.0 + (n - k) as f64 };
            let p = prob_best(&[post(kc, nc), post(ka, na)], 100_000, 17);
            // 100,000 draws: standard error at most 0.0016.
            assert!((p[1] - exact).abs() < 0.006, "({kc}/{nc} vs {ka}/{na}): {} vs {exact}", p[1]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn shares_sum_to_one_and_keep_floor_and_control(
            raw in proptest::collection::vec(0.0f64..1.0, 0..6),
            control in 0.0f64..0.9,
            floor in 0.0f64..0.3,
        ) {
            let k = raw.len();
            prop_assume!(control + floor * k as f64 <= 1.0);
            let total: f64 = raw.iter().sum();
            let probs: Vec<f64> = raw.iter().map(|p| if total > 0.0 { p / total } else { 0.0 }).collect();
            let (c, tones) = shares(&probs, control, floor);
            let sum = c + tones.iter().sum::<f64>();
            prop_assert!((sum - 1.0).abs() < 1e-9, "sum {}", sum);
            if k == 0 {
                prop_assert_eq!(c, 1.0);
            } else {
                prop_assert!((c - control).abs() < 1e-12);
                for t in &tones {
                    prop_assert!(*t >= floor - 1e-12, "{} below floor {}", t, floor);
                }
            }
        }

        #[test]
        fn allocation_weights_sum_to_one_with_floors(
            counts in proptest::collection::vec((0u64..5000, 0u64..5000), 1..5),
            seed in any::<u64>(),
            control in 0.0f64..0.5,
            floor in 0.0f64..0.1,
        ) {
            let arms: Vec<String> = (0..counts.len()).map(|i| format!("t{i}")).collect();
            let w = week("a", 7, 0.8, "S", &[]);
            let mut w = w;
            let per = w.counts.entry("S".into()).or_default();
            for (a, (n, s)) in arms.iter().zip(&counts) {
                per.insert(a.clone(), Count { n: n + s, successes: *s });
            }
            let h = History { metric: Metric::Click, decay: 0.8, seed, weeks: vec![w], without_outcomes: vec![] };
            let alloc = Allocation { control_share: control, floor, ..thompson() };
            let a = allocate(&h, &alloc, "S", &arms);
            let sum: f64 = a.weights.values().sum();
            prop_assert!((sum - 1.0).abs() < 1e-9);
            prop_assert!((a.weights[CONTROL] - control).abs() < 1e-12);
            for t in &arms {
                prop_assert!(a.weights[t] >= floor - 1e-12);
            }
        }
    }
}

//! Regret of a season: how many clicks an allocation lost against the best allocation the campaign's
//! allocation settings allow (docs/experiment.md, "Simulated seasons").
//!
//! The benchmark's oracle keeps what a thompson campaign must keep: control gets `control_share`, every tone in
//! force at least `floor`; the rest goes to the segment's truly best tone. So the oracle earns, per customer,
//! `control_share × p_control + (1 − control_share − floor × (k − 1)) × p_best + floor × Σ p_other`, and an
//! allocation that assigned `n_a` customers to arm `a` earns `Σ n_a × p_a`. Regret is the difference in
//! expected clicks (pseudo-regret: the truth's rates, not the drawn clicks, so the comparison is not blurred by
//! the draw's noise). A week's regret can be slightly negative when chance gave control fewer customers than
//! its share.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the allocation must keep: control's share and each tone's floor, of non-holdout customers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub control_share: f64,
    pub floor: f64,
}

/// Limits that no allocation can satisfy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("control_share {control_share} + floor {floor} × {tones} tones = {total} exceeds 1: no allocation keeps both")]
pub struct Infeasible {
    pub control_share: f64,
    pub floor: f64,
    pub tones: usize,
    pub total: f64,
}

impl Limits {
    pub fn check(&self, tones: usize) -> Result<(), Infeasible> {
        let total = self.control_share + self.floor * tones as f64;
        let ok = (0.0..=1.0).contains(&self.control_share) && self.floor >= 0.0 && total <= 1.0 + 1e-12;
        if ok {
            Ok(())
        } else {
            Err(Infeasible { control_share: self.control_share, floor: self.floor, tones, total })
        }
    }

    /// The oracle's weights over `control` and the tones in force, given each tone's true rate: control its
    /// share (even when control is the best arm: it is the baseline), the best tone the rest, the others their floor. With no tone in force, everything is control.
    pub fn best_weights(&self, tones: &[(String, f64)]) -> BTreeMap<String, f64> {
        let mut w = BTreeMap::new();
        if tones.is_empty() {
            w.insert("control".to_string(), 1.0);
            return w;
        }
        w.insert("control".to_string(), self.control_share);
        let best =
            tones.iter().enumerate().max_by(|a, b| a.1 .1.total_cmp(&b.1 .1).then(b.0.cmp(&a.0))).map(|(i, _)| i);
        let rest = 1.0 - self.control_share - self.floor * (tones.len() - 1) as f64;
        for (i, (tone, _)) in tones.iter().enumerate() {
            w.insert(tone.clone(), if Some(i) == best { rest } else { self.floor });
        }
        w
    }
}

/// One segment's week: customers per arm (non-holdout) and each arm's true rate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SegmentWeek {
    /// arm → (customers assigned, true rate).
    pub arms: BTreeMap<String, (u64, f64)>,
}

/// A week's expected clicks under the allocation used and under the oracle.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct WeekRegret {
    pub optimal: f64,
    pub achieved: f64,
    pub regret: f64,
}

/// The week's regret over its segments. Arms in `SegmentWeek::arms` are those in force (a blocked tone is
/// absent, and the oracle cannot use it either).
pub fn week_regret(limits: &Limits, segments: &BTreeMap<String, SegmentWeek>) -> WeekRegret {
    let mut out = WeekRegret::default();
    for seg in segments.values() {
        let n: u64 = seg.arms.values().map(|(n, _)| n).sum();
        let tones: Vec<(String, f64)> =
            seg.arms.iter().filter(|(a, _)| a.as_str() != "control").map(|(a, (_, p))| (a.clone(), *p)).collect();
        let best = limits.best_weights(&tones);
        let per_customer: f64 = best.iter().map(|(a, w)| w * seg.arms.get(a).map_or(0.0, |(_, p)| *p)).sum();
        out.optimal += n as f64 * per_customer;
        out.achieved += seg.arms.values().map(|(n, p)| *n as f64 * p).sum::<f64>();
    }
    out.regret = out.optimal - out.achieved;
    out
}

/// Running sums: cumulative regret after each week.
pub fn cumulative(weeks: &[WeekRegret]) -> Vec<f64> {
    weeks
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w.regret;
            Some(*acc)
        })
        .collect()
}

/// The median of a sample (mean of the middle two for an even count); `None` when empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { control_share: 0.25, floor: 0.05 };

    fn seg(arms: &[(&str, u64, f64)]) -> SegmentWeek {
        SegmentWeek { arms: arms.iter().map(|(a, n, p)| (a.to_string(), (*n, *p))).collect() }
    }

    #[test]
    fn oracle_gives_control_its_share_the_best_tone_the_rest_and_the_others_their_floor() {
        let tones = [("urgent".to_string(), 0.03), ("informational".to_string(), 0.08), ("friendly".to_string(), 0.03)];
        let w = LIMITS.best_weights(&tones);
        assert_eq!(w["control"], 0.25);
        assert!((w["informational"] - 0.65).abs() < 1e-12);
        assert_eq!((w["urgent"], w["friendly"]), (0.05, 0.05));
        assert!((w.values().sum::<f64>() - 1.0).abs() < 1e-12);
        // No tone in force: the control gets everyone.
        assert_eq!(LIMITS.best_weights(&[]), BTreeMap::from([("control".to_string(), 1.0)]));
        // A tie goes to the first tone in the campaign's order.
        let tied = [("a".to_string(), 0.05), ("b".to_string(), 0.05)];
        assert!((LIMITS.best_weights(&tied)["a"] - 0.70).abs() < 1e-12);
    }

    #[test]
    fn fixed_split_regret_on_the_stationary_preset() {
        // 10,000 customers split 25/25/25/25; the oracle earns 0.25·2% + 0.65·8% + 0.05·3% + 0.05·3% = 6% per
        // customer, the fixed split 0.25·(2 + 8 + 3 + 3)% = 4%: 200 clicks of regret.
        let s = seg(&[
            ("control", 2500, 0.02),
            ("urgent", 2500, 0.08),
            ("informational", 2500, 0.03),
            ("friendly", 2500, 0.03),
        ]);
        let r = week_regret(&LIMITS, &BTreeMap::from([("A".to_string(), s)]));
        assert!((r.optimal - 600.0).abs() < 1e-9, "{r:?}");
        assert!((r.achieved - 400.0).abs() < 1e-9, "{r:?}");
        assert!((r.regret - 200.0).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn the_oracle_allocation_has_no_regret_and_segments_add_up() {
        let best =
            seg(&[("control", 250, 0.02), ("urgent", 650, 0.08), ("informational", 50, 0.03), ("friendly", 50, 0.03)]);
        let r = week_regret(&LIMITS, &BTreeMap::from([("A".to_string(), best.clone())]));
        assert!(r.regret.abs() < 1e-9, "{r:?}");
        // A blocked tone: the oracle spreads over the tones in force only.
        let two = seg(&[("control", 250, 0.02), ("urgent", 375, 0.08), ("friendly", 375, 0.03)]);
        let r2 = week_regret(&LIMITS, &BTreeMap::from([("B".to_string(), two)]));
        // oracle: 0.25·2% + 0.70·8% + 0.05·3% = 6.25% × 1000 = 62.5; achieved 5 + 30 + 11.25 = 46.25
        assert!((r2.regret - 16.25).abs() < 1e-9, "{r2:?}");
        let both = week_regret(
            &LIMITS,
            &BTreeMap::from([
                ("A".to_string(), best),
                ("B".to_string(), seg(&[("control", 250, 0.02), ("urgent", 375, 0.08), ("friendly", 375, 0.03)])),
            ]),
        );
        assert!((both.regret - 16.25).abs() < 1e-9 && (both.optimal - r.optimal - r2.optimal).abs() < 1e-9);
        // Control only (no approved variant): nothing to gain.
        let ctrl = week_regret(&LIMITS, &BTreeMap::from([("C".to_string(), seg(&[("control", 100, 0.02)]))]));
        assert!(ctrl.regret.abs() < 1e-12 && (ctrl.optimal - 2.0).abs() < 1e-12);
    }

    #[test]
    fn cumulative_median_and_limits() {
        let w = |r| WeekRegret { optimal: 0.0, achieved: 0.0, regret: r };
        assert_eq!(cumulative(&[w(1.0), w(2.0), w(-0.5)]), vec![1.0, 3.0, 2.5]);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert!(LIMITS.check(3).is_ok());
        let e = Limits { control_share: 0.5, floor: 0.2 }.check(3).unwrap_err();
        assert!(e.to_string().contains("exceeds 1"), "{e}");
        assert!(Limits { control_share: 1.5, floor: 0.0 }.check(1).is_err());
    }
}

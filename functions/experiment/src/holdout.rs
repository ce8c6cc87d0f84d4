//! Long-run lift against the global holdout: everyone the campaign could send to (every arm but the holdout)
//! against the held-out customers, on conversions.
//!
//! Held-out customers receive no email, so an email service's export never has events for them: their
//! conversion rate is only known from a file that covers every customer (an orders export dropped as
//! outcomes). The lift is measured only when the real outcomes hold at least one conversion of a held-out
//! customer; otherwise it is "not measurable yet", with the reason, rather than a lift against zero.

use std::collections::BTreeMap;

use cpo_common::model::experiment::{HoldoutLift, HoldoutLiftStatus, OutcomesSource};
use cpo_common::stats;

use crate::counts::Cell;
use crate::plan::HOLDOUT;

/// Index of `convert` in [`crate::counts::METRICS`].
const CONVERT: usize = 2;

/// The lift from the overall cells (arm → counts).
pub fn lift(overall: &BTreeMap<String, Cell>, source: OutcomesSource, alpha: f64) -> HoldoutLift {
    let mut treated = Cell::default();
    for (_, c) in overall.iter().filter(|(a, _)| a.as_str() != HOLDOUT) {
        treated.n += c.n;
        treated.successes[CONVERT] += c.successes[CONVERT];
    }
    let held = overall.get(HOLDOUT).cloned().unwrap_or_default();
    let (kt, nt, kh, nh) = (treated.successes[CONVERT], treated.n, held.successes[CONVERT], held.n);
    let mut out = HoldoutLift {
        status: HoldoutLiftStatus::NotMeasurableYet,
        reason: None,
        metric: "convert".into(),
        treated_n: nt,
        treated_conversions: kt,
        holdout_n: nh,
        holdout_conversions: kh,
        treated_rate: (nt > 0).then(|| kt as f64 / nt as f64),
        holdout_rate: (nh > 0).then(|| kh as f64 / nh as f64),
        lift: None,
        lift_ci_low: None,
        lift_ci_high: None,
        diff: None,
        diff_ci_low: None,
        diff_ci_high: None,
        p_value: None,
    };
    let why = if nh == 0 {
        Some("no customer is held out (campaign `holdout` is 0)")
    } else if source != OutcomesSource::Real {
        Some("needs real outcomes that cover held-out customers; simulated outcomes have none")
    } else if kh == 0 {
        Some(
            "no outcomes file has conversions of held-out customers yet (they receive no email): drop a file that \
             covers every customer's conversions, such as an orders export",
        )
    } else {
        None
    };
    if let Some(why) = why {
        out.reason = Some(why.into());
        return out;
    }
    out.status = HoldoutLiftStatus::Measured;
    // Holdout is the baseline (the "control" of these helpers), treated the comparison.
    let c = stats::compare((kh, nh), (kt, nt), false, alpha);
    out.lift = c.lift;
    out.lift_ci_low = c.lift_ci.map(|i| i.low);
    out.lift_ci_high = c.lift_ci.map(|i| i.high);
    out.diff = c.diff;
    out.diff_ci_low = c.diff_ci.map(|i| i.low);
    out.diff_ci_high = c.diff_ci.map(|i| i.high);
    out.p_value = c.p_value;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(holdout_conv: u64) -> BTreeMap<String, Cell> {
        let mut m = BTreeMap::new();
        m.insert("control".into(), Cell { n: 4000, delivered: 4000, successes: [800, 200, 120, 5] });
        m.insert("friendly".into(), Cell { n: 4000, delivered: 4000, successes: [900, 260, 160, 6] });
        m.insert(HOLDOUT.into(), Cell { n: 1000, delivered: 0, successes: [0, 0, holdout_conv, 0] });
        m
    }

    #[test]
    fn measured_only_when_real_outcomes_cover_the_holdout() {
        let l = lift(&cells(10), OutcomesSource::Real, 0.05);
        assert_eq!(l.status, HoldoutLiftStatus::Measured);
        assert_eq!((l.treated_n, l.treated_conversions, l.holdout_n, l.holdout_conversions), (8000, 280, 1000, 10));
        let want = (280.0 / 8000.0) / (10.0 / 1000.0) - 1.0;
        assert!((l.lift.unwrap() - want).abs() < 1e-9, "{l:?}");
        assert!(l.p_value.unwrap() < 0.001 && l.lift_ci_low.unwrap() > 0.0, "{l:?}");
        for (c, src) in [(0, OutcomesSource::Real), (10, OutcomesSource::Simulated)] {
            let l = lift(&cells(c), src, 0.05);
            assert_eq!(l.status, HoldoutLiftStatus::NotMeasurableYet);
            assert!(l.reason.is_some() && l.lift.is_none(), "{l:?}");
        }
        let mut none = cells(10);
        none.remove(HOLDOUT);
        assert!(lift(&none, OutcomesSource::Real, 0.05).reason.unwrap().contains("holdout"));
    }
}

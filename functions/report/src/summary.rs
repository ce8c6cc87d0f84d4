//! The ten-second summary: one headline a marketer can act on, and a few supporting points. Written from the
//! same [`Report`] figures the tables show.

use cpo_common::model::experiment::ResultRow;

use crate::fmt;
use crate::view::{ExperimentView, Report, Summary};

fn row<'a>(e: &'a ExperimentView, arm: &str) -> Option<&'a ResultRow> {
    e.overall.iter().find(|r| r.arm == arm && r.metric == e.primary_metric)
}

/// The best non-control arm on the primary metric (highest rate).
fn best(e: &ExperimentView) -> Option<&ResultRow> {
    e.overall
        .iter()
        .filter(|r| r.metric == e.primary_metric && r.arm != "control" && r.arm != "holdout")
        .max_by(|a, b| a.rate.total_cmp(&b.rate))
}

fn comparison(e: &ExperimentView, r: &ResultRow) -> String {
    let control = row(e, "control").map(|c| fmt::pct(c.rate)).unwrap_or_else(|| fmt::NA.into());
    let mut s = format!(
        "{} {} vs {} for control ({} relative",
        fmt::pct(r.rate),
        fmt::metric_name(&e.primary_metric),
        control,
        r.lift.map(fmt::signed_pct).unwrap_or_else(|| fmt::NA.into()),
    );
    if let Some(p) = r.p_holm.or(r.p_value) {
        s.push_str(&format!(", adjusted p {}", fmt::pvalue(p)));
    }
    if let Some(p) = r.prob_beat_control {
        s.push_str(&format!(", {} chance to beat control", fmt::prob(p)));
    }
    s.push(')');
    s
}

pub fn summary(r: &Report) -> Summary {
    let mut points = vec![];
    let customers: u64 = r.arms.iter().map(|a| a.n).sum();
    let shipped = r.variants.iter().filter(|v| v.in_experiment).count();
    if customers > 0 {
        points.push(format!(
            "{} customers in {} segments, split over {} arms.",
            fmt::int(customers),
            r.segment_arms.len(),
            r.arms.iter().filter(|a| a.arm != "holdout").count()
        ));
    } else if !r.segments.is_empty() {
        points.push(format!("{} segments; no customers assigned yet.", r.segments.len()));
    }
    points.push(format!(
        "{} of {} personalised messages approved; {} blocked by the safety screen, {} rejected by the generator.",
        shipped,
        r.variants.len(),
        r.safety.blocked.saturating_sub(u64::from(r.control.safety.as_deref() == Some("blocked"))),
        r.safety.rejected,
    ));
    if r.control.safety.as_deref() == Some("blocked") {
        points.push("The control message was blocked by the safety screen.".into());
    }
    // A segment whose every draft the generator rejected still runs: its customers get the control.
    let mut all_rejected: Vec<&str> = r
        .variants
        .iter()
        .filter_map(|v| v.segment.as_deref())
        .filter(|seg| {
            let of = || r.variants.iter().filter(|v| v.segment.as_deref() == Some(*seg));
            of().all(|v| v.status == "rejected")
        })
        .collect();
    all_rejected.sort_unstable();
    all_rejected.dedup();
    if !all_rejected.is_empty() {
        points.push(format!(
            "Every draft was rejected by the generator for {}; those customers get the control message.",
            all_rejected.join(", ")
        ));
    }
    points.extend(r.input.warnings.iter().map(|w| format!("Warning: {w}")));
    points.push(format!(
        "Cost {} for {} provider calls; {} of step time.",
        fmt::usd(r.cost.cost_usd),
        fmt::int(r.cost.provider_calls),
        fmt::duration_ms(r.total_ms)
    ));

    let Some(e) = &r.experiment else {
        let headline = if r.send.rows > 0 {
            format!(
                "Awaiting outcomes: the send list for {} customers is ready; results appear here once engagement \
                 events arrive.",
                fmt::int(r.send.rows)
            )
        } else {
            "Awaiting outcomes: results appear here once engagement events arrive.".into()
        };
        return Summary { verdict: "awaiting_outcomes".into(), headline, points };
    };

    if e.srm_flag {
        points.push(format!(
            "Sample ratio mismatch: arm sizes differ from the configured split (p = {}).",
            fmt::pvalue(e.srm_p_value)
        ));
    }
    let headline = match e.decision.as_str() {
        "winner" => {
            let arm = e.winner.clone().unwrap_or_else(|| "?".into());
            match row(e, &arm) {
                Some(w) => format!("Winner: {arm}. {}.", comparison(e, w)),
                None => format!("Winner: {arm}."),
            }
        }
        "no_significant_difference" => {
            let mut s = format!(
                "No significant difference: no message beat the control on {}.",
                fmt::metric_name(&e.primary_metric)
            );
            if let Some(b) = best(e) {
                s.push_str(&format!(" Best was {}: {}.", b.arm, comparison(e, b)));
            }
            s
        }
        "not_trustworthy" => {
            let why = if e.reasons.is_empty() { "see the checks below".to_string() } else { e.reasons.join("; ") };
            format!("Not trustworthy: do not act on these results ({why}).")
        }
        other => format!("Decision: {other}."),
    };
    if e.decision != "not_trustworthy" {
        points.extend(e.reasons.iter().cloned());
    }
    Summary { verdict: e.decision.clone(), headline, points }
}

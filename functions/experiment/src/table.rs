//! The human result table printed by `cpo analyze` and `cpo run`.

use std::fmt::Write;

use cpo_common::model::experiment::{AnalysisDoc, HoldoutLiftStatus, OutcomesSource, ResultRow};

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map(f).unwrap_or_else(|| "–".into())
}

fn p(x: f64) -> String {
    if x < 1e-4 {
        format!("{x:.1e}")
    } else {
        format!("{x:.4}")
    }
}

fn line(out: &mut String, r: &ResultRow) {
    let _ = writeln!(
        out,
        "  {:<14} {:<12} {:>9} {:>9} {:>8}  [{:>7}, {:>7}] {:>8} {:>8} {:>8} {:>7}",
        r.arm,
        r.metric.as_str(),
        r.n,
        r.successes,
        pct(r.rate),
        pct(r.ci_low),
        pct(r.ci_high),
        opt(r.lift, |l| format!("{:+.1}%", l * 100.0)),
        opt(r.p_value, p),
        opt(r.p_holm.or(r.p_bh), p),
        opt(r.prob_beat_control, |b| format!("{:.1}%", b * 100.0)),
    );
}

/// Overall rows of every metric, then the primary metric per segment; decision and reasons on top. `p_adj` is
/// Holm on the primary metric (the decision family) and Benjamini–Hochberg elsewhere (exploratory);
/// `P(better)` is the chance to be better than control in the metric's good direction (lower unsubscribes).
pub fn table(doc: &AnalysisDoc) -> String {
    let mut out = String::new();
    if doc.simulated {
        out.push_str("SIMULATED OUTCOMES: these figures come from --simulate-outcomes, not from real engagement.\n");
    }
    let winner = doc.winner.as_deref().map(|w| format!(" ({w})")).unwrap_or_default();
    let _ = writeln!(out, "decision: {}{winner} (primary metric: {})", doc.decision.label(), doc.primary_metric);
    for r in &doc.decision_reasons {
        let _ = writeln!(out, "  - {r}");
    }
    let _ = writeln!(out, "SRM: p = {}{}", p(doc.srm_p_value), if doc.srm_flag { "  MISMATCH" } else { "" });
    let source = match doc.outcomes_source {
        OutcomesSource::Real => "real (simulated files, if any, set aside)",
        OutcomesSource::Simulated => "simulated (no real outcomes file accepted yet)",
        OutcomesSource::None => "none accepted yet",
    };
    let _ = writeln!(out, "outcomes: {source}");
    if let Some(h) = &doc.holdout_lift {
        match h.status {
            HoldoutLiftStatus::Measured => {
                let _ = writeln!(
                    out,
                    "holdout lift ({}): {} treated vs {} held out, {} relative, p = {}",
                    h.metric,
                    opt(h.treated_rate, pct),
                    opt(h.holdout_rate, pct),
                    opt(h.lift, |l| format!("{:+.1}%", l * 100.0)),
                    opt(h.p_value, p),
                );
            }
            HoldoutLiftStatus::NotMeasurableYet => {
                let _ = writeln!(out, "holdout lift: not measurable yet: {}", h.reason.as_deref().unwrap_or("-"));
            }
        }
    }
    let header = format!(
        "  {:<14} {:<12} {:>9} {:>9} {:>8}  {:<18} {:>8} {:>8} {:>8} {:>7}",
        "arm", "metric", "n", "events", "rate", "95% CI", "lift", "p", "p_adj", "P(better)"
    );
    let _ = writeln!(out, "\noverall\n{header}");
    for r in doc.results.iter().filter(|r| r.segment.is_none()) {
        line(&mut out, r);
    }
    let primary = doc.primary_metric;
    let mut current: Option<&str> = None;
    for r in doc.results.iter().filter(|r| r.metric == primary) {
        let Some(seg) = r.segment.as_deref() else { continue };
        if current != Some(seg) {
            let _ = writeln!(out, "\nsegment {seg} ({primary})\n{header}");
            current = Some(seg);
        }
        line(&mut out, r);
    }
    out
}

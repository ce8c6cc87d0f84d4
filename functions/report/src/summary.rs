//! The ten-second summary: one headline a marketer can act on, and a few supporting points. Written from the
//! same [`Report`] figures the tables show. Sentences never cite a JSON field and never hold `<` or `>`
//! (the Markdown summary would show them as entities).

use cpo_common::model::experiment::{Decision, GuardrailCheck, GuardrailStatus, ResultRow};

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

/// `5.7% click rate vs 5.1% for control (+11.0% relative, more than 99.9% chance it is better, Holm-adjusted
/// p below 0.0001)`.
fn comparison(e: &ExperimentView, r: &ResultRow) -> String {
    let control = row(e, "control").map(|c| fmt::pct(c.rate)).unwrap_or_else(|| fmt::NA.into());
    let mut s = format!("{} {} vs {} for control", fmt::pct(r.rate), e.primary_metric.label(), control);
    let mut parts = vec![];
    if let Some(l) = r.lift {
        parts.push(format!("{} relative", fmt::signed_pct(l)));
    }
    if let Some(p) = r.prob_beat_control {
        parts.push(format!("{} chance it is better", fmt::prob_words(p)));
    }
    if let Some(p) = r.p_holm.or(r.p_value) {
        parts.push(format!("Holm-adjusted {}", fmt::pvalue_words(p)));
    }
    if !parts.is_empty() {
        s.push_str(&format!(" ({})", parts.join(", ")));
    }
    s
}

/// `the unsubscribe rate: 0.33% vs 0.29% for control (+11.3% relative, 98.3% chance it is worse, p = 0.0337)`.
pub fn harm(g: &GuardrailCheck) -> String {
    let mut parts = vec![];
    if let Some(l) = g.lift {
        parts.push(format!("{} relative", fmt::signed_pct(l)));
    }
    if let Some(p) = g.prob_worse {
        parts.push(format!("{} chance it is worse", fmt::prob_words(p)));
    }
    if let Some(p) = g.p_value {
        parts.push(fmt::pvalue_words(p));
    }
    format!(
        "the {}: {} vs {} for control ({})",
        g.metric.label(),
        fmt::pct(g.rate),
        fmt::pct(g.control_rate),
        parts.join(", ")
    )
}

fn harms<'a>(e: &'a ExperimentView, arm: &str, status: GuardrailStatus) -> Vec<&'a GuardrailCheck> {
    e.guardrails.iter().filter(|g| g.arm == arm && g.status == status).collect()
}

fn headline(e: &ExperimentView) -> String {
    let winner = e.winner.clone().unwrap_or_else(|| "?".into());
    let wins = || row(e, &winner).map(|w| comparison(e, w)).unwrap_or_default();
    let joined = |gs: Vec<&GuardrailCheck>| gs.iter().map(|g| harm(g)).collect::<Vec<_>>().join("; and ");
    match e.decision {
        Decision::Ship => {
            let guard =
                if e.guardrails.iter().any(|g| g.arm == winner) { " No guardrail metric shows harm." } else { "" };
            format!("Ship {winner}: {}.{guard}", wins())
        }
        Decision::ShipWithCaution => format!(
            "Ship {winner} with caution: {}, but it raises {}.",
            wins(),
            joined(harms(e, &winner, GuardrailStatus::Harm))
        ),
        Decision::DoNotShip => {
            let limit = harms(e, &winner, GuardrailStatus::Breach).first().map(|g| fmt::pp(g.max_increase));
            format!(
                "Do not ship {winner}: {}, but it raises {}, beyond the {} limit.",
                wins(),
                joined(harms(e, &winner, GuardrailStatus::Breach)),
                limit.unwrap_or_default()
            )
        }
        Decision::NoDifference => {
            let mut s = format!("No difference: no message beat the control on {}.", e.primary_metric.label());
            if let Some(b) = best(e) {
                s.push_str(&format!(" Best was {}: {}.", b.arm, comparison(e, b)));
            }
            s
        }
        Decision::KeepTesting => {
            let mde = best(e).and_then(|b| b.mde.zip(row(e, "control").map(|c| c.rate)));
            let size = match mde {
                Some((m, c)) if c > 0.0 => {
                    format!(
                        " With this many customers only a lift of about {} or more could show.",
                        fmt::signed_pct(m / c)
                    )
                }
                _ => String::new(),
            };
            format!(
                "Keep testing: no message differs from the control on {} yet, and the test is too small to tell.{size}",
                e.primary_metric.label()
            )
        }
        Decision::NotEnoughData => {
            let events: u64 = e.overall.iter().filter(|r| r.metric == e.primary_metric).map(|r| r.successes).sum();
            format!(
                "Not enough data: {} {} event(s) so far in all arms together, too few to compare the messages.",
                fmt::int(events),
                e.primary_metric.as_str()
            )
        }
        Decision::NotTrustworthy => {
            let why = if e.reasons.is_empty() { "see the checks below".to_string() } else { e.reasons.join("; ") };
            format!("Not trustworthy: do not act on these results ({why}).")
        }
    }
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
            "Sample ratio mismatch: arm sizes differ from the configured split ({}).",
            fmt::pvalue_words(e.srm_p_value)
        ));
    }
    let headline = headline(e);
    if e.decision != Decision::NotTrustworthy {
        points.extend(e.reasons.iter().cloned());
    }
    for g in
        e.guardrails.iter().filter(|g| g.status != GuardrailStatus::Ok && e.winner.as_deref() != Some(g.arm.as_str()))
    {
        points.push(format!("{} raises {}.", g.arm, harm(g)));
    }
    if !e.silent_metrics.is_empty() {
        let names: Vec<&str> = e.silent_metrics.iter().map(|m| m.as_str()).collect();
        points.push(format!("No events recorded for {} in any arm.", names.join(", ")));
    }
    Summary { verdict: e.decision.as_str().to_string(), headline, points }
}

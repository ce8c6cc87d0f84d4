//! From the run's documents to the [`Report`]: joins variants with their safety verdicts and citations with
//! the retrieved documents' titles, orders arms and results, and totals cost and timings.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cpo_common::model::experiment::{AnalysisDoc, IngestSummary, Metric, ResultRow, TemplatesDoc};
use cpo_common::model::manifest::RunStatus;
use cpo_common::model::safety::{Decision, Unscreened, Verdict};
use cpo_common::model::variant::{Variant, VariantStatus};

use crate::arms::{ArmCounts, Source};
use crate::load::RunDocs;
use crate::view::*;
use crate::{cost, summary};

pub fn report(docs: &RunDocs, arms: &ArmCounts, source: Source, action: &str, now: DateTime<Utc>) -> Report {
    let cfg = &docs.run.config;
    let verdicts: BTreeMap<&str, &Verdict> =
        docs.safety.iter().flat_map(|s| &s.verdicts).map(|v| (v.variant_id.as_str(), v)).collect();
    let titles: BTreeMap<&str, &str> = docs
        .retrieval
        .iter()
        .flat_map(|r| &r.segments)
        .flat_map(|s| &s.hits)
        .map(|h| (h.doc_id.as_str(), h.title.as_str()))
        .collect();

    let segment_order: Vec<&str> = docs.segments.iter().flat_map(|s| &s.segments).map(|s| s.name.as_str()).collect();
    let mut variants: Vec<MessageView> =
        docs.variants.iter().flat_map(|d| &d.variants).map(|v| variant_view(v, &verdicts, &titles)).collect();
    // Segments as in segments.json (largest first), tones as configured; unknown ones after, stable.
    let pos = |list: &[&str], x: Option<&String>| {
        x.and_then(|x| list.iter().position(|o| *o == x.as_str())).unwrap_or(usize::MAX)
    };
    let tones: Vec<&str> = cfg.tones.iter().map(String::as_str).collect();
    variants.sort_by_key(|v| (pos(&segment_order, v.segment.as_ref()), pos(&tones, v.tone.as_ref())));
    let control = control_view(docs, &verdicts);
    let (arm_names, arm_rows, segment_arms) = arm_tables(docs, arms);
    let segment_order: Vec<&str> = docs.segments.iter().flat_map(|s| &s.segments).map(|s| s.name.as_str()).collect();
    let experiment = docs.analysis.as_ref().map(|a| {
        let mut e = experiment_view(a, &arm_names, &segment_order);
        e.ingest = docs.ingest.as_ref().map(ingest_facts);
        e
    });
    let (timings, total_ms) = cost::timings(&docs.steps);
    let cost = cost::cost(&docs.steps, &docs.variants);
    let safety = safety_facts(docs, &variants);
    let send = SendFacts {
        parts: docs.send_parts.len() as u64,
        bytes: docs.send_parts.iter().map(|m| m.size).sum(),
        rows: arm_rows.iter().filter(|a| a.arm != "holdout").map(|a| a.n).sum(),
        templates: template_ids(docs.templates.as_ref()),
        suppressed: left_out(docs, "suppressed").and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default(),
        deferred: left_out(docs, "deferred").and_then(|v| v.as_u64()).unwrap_or(0),
    };
    let mut report = Report {
        schema: SCHEMA.into(),
        run_id: docs.run.run_id.clone(),
        campaign: docs.run.campaign.clone(),
        action: action.into(),
        status: if docs.analysis.is_some() { RunStatus::Analyzed } else { RunStatus::AwaitingOutcomes },
        simulated: docs.analysis.as_ref().is_some_and(|a| a.simulated),
        generated_at: now,
        as_of: docs.segments.as_ref().map(|s| s.as_of).unwrap_or(docs.run.date),
        goal: cfg.goal.clone(),
        summary: Summary { verdict: String::new(), headline: String::new(), points: vec![] },
        input: InputFacts {
            key: docs.run.input.key.clone(),
            size: docs.run.input.size,
            config_source: docs.run.config_source.clone(),
            input_format: docs.segments.as_ref().map(|s| s.input_format.clone()),
            rows: docs.segments.as_ref().map(|s| s.input_rows),
            customers: docs.segments.as_ref().map(|s| s.customers),
            rejected: docs.segments.as_ref().map(|s| s.rejected),
            warnings: docs.segments.as_ref().map(cpo_common::model::segment::SegmentsDoc::warnings).unwrap_or_default(),
        },
        segments: segment_rows(docs),
        no_content: docs.retrieval.as_ref().map(|r| r.no_content.clone()).unwrap_or_default(),
        control,
        variants,
        safety,
        arm_names,
        arms: arm_rows,
        segment_arms,
        arm_counts_source: match source {
            Source::StepRecord => "step_record",
            Source::Assignments => "assignments",
            Source::None => "none",
        }
        .into(),
        send,
        experiment,
        cost,
        timings,
        total_ms,
    };
    report.summary = summary::summary(&report);
    report
}

/// The report shows a message as approved, or in the experiment, only when `safety.json` judged its exact
/// bytes: the control, every shipped variant and every template must match their verdict's text hash, else
/// the report step fails (`Cpo.SafetyUnavailable`) naming the message. Without `safety.json` (a run that
/// stopped before safety) nothing is shown as approved, so there is nothing to check.
pub fn check_screened(docs: &RunDocs) -> Result<(), Unscreened> {
    let Some(safety) = &docs.safety else { return Ok(()) };
    safety.decision_for("control", &docs.run.config.control.message())?;
    for v in docs.variants.iter().flat_map(|d| &d.variants).filter(|v| v.status == VariantStatus::Shipped) {
        safety.decision_for(&v.variant_id, &v.message)?;
    }
    let templates = docs.templates.as_ref().and_then(|t| serde_json::from_value::<TemplatesDoc>(t.clone()).ok());
    for (id, t) in templates.iter().flat_map(|t| &t.templates) {
        if safety.decision_for(id, &t.message())? != Decision::Approved {
            return Err(Unscreened {
                run_id: safety.run_id.clone(),
                variant_id: id.clone(),
                reason: "send/templates.json holds it although safety blocked it".into(),
            });
        }
    }
    Ok(())
}

fn segment_rows(docs: &RunDocs) -> Vec<SegmentRow> {
    let Some(segs) = &docs.segments else { return vec![] };
    segs.segments
        .iter()
        .map(|s| {
            let documents = docs
                .retrieval
                .iter()
                .flat_map(|r| &r.segments)
                .filter(|r| r.segment == s.name)
                .flat_map(|r| &r.hits)
                .map(|h| h.title.clone())
                .collect();
            SegmentRow {
                name: s.name.clone(),
                slug: s.slug.clone(),
                size: s.size,
                share: s.share,
                r_mean: s.r_mean,
                f_mean: s.f_mean,
                m_mean: s.m_mean,
                recency_median_days: s.recency_median_days,
                frequency_median: s.frequency_median,
                monetary_median: s.monetary_median,
                spend_share: s.spend_share,
                description: s.description.clone(),
                merged_from: s.merged_from.clone(),
                documents,
            }
        })
        .collect()
}

fn decision_name(d: Decision) -> String {
    match d {
        Decision::Approved => "approved",
        Decision::Blocked => "blocked",
    }
    .into()
}

fn variant_view(v: &Variant, verdicts: &BTreeMap<&str, &Verdict>, titles: &BTreeMap<&str, &str>) -> MessageView {
    let verdict = verdicts.get(v.variant_id.as_str());
    let shipped = v.status == VariantStatus::Shipped;
    MessageView {
        variant_id: v.variant_id.clone(),
        segment: Some(v.segment.clone()),
        tone: Some(v.tone.clone()),
        status: if shipped { "shipped" } else { "rejected" }.into(),
        safety: verdict.map(|x| decision_name(x.decision)),
        safety_reasons: verdict.map(|x| x.reasons.clone()).unwrap_or_default(),
        reasons: v.reasons.clone(),
        in_experiment: shipped && verdict.is_some_and(|x| x.decision == Decision::Approved),
        subject: v.message.subject.clone(),
        preheader: v.message.preheader.clone(),
        body: v.message.body.clone(),
        cta: v.message.cta.clone(),
        citations: v
            .citations
            .iter()
            .map(|c| CitationView {
                doc_id: c.doc_id.clone(),
                title: titles.get(c.doc_id.as_str()).map(|t| t.to_string()),
                quote: c.quote.clone(),
            })
            .collect(),
        provider: Some(v.provider.clone()),
        model: v.model.clone(),
        usage: Some(v.usage.clone()),
    }
}

fn control_view(docs: &RunDocs, verdicts: &BTreeMap<&str, &Verdict>) -> MessageView {
    let c = &docs.run.config.control;
    let verdict = verdicts.get("control");
    MessageView {
        variant_id: "control".into(),
        segment: None,
        tone: None,
        status: "control".into(),
        safety: verdict.map(|x| decision_name(x.decision)),
        safety_reasons: verdict.map(|x| x.reasons.clone()).unwrap_or_default(),
        reasons: vec![],
        in_experiment: verdict.is_none_or(|x| x.decision == Decision::Approved),
        subject: c.subject.clone(),
        preheader: c.preheader.clone(),
        body: c.body.clone(),
        cta: c.cta.clone(),
        citations: vec![],
        provider: None,
        model: None,
        usage: None,
    }
}

fn safety_facts(docs: &RunDocs, variants: &[MessageView]) -> SafetyFacts {
    let mut by_segment: BTreeMap<String, SafetyRow> = BTreeMap::new();
    for v in variants {
        let seg = v.segment.clone().unwrap_or_default();
        let row =
            by_segment.entry(seg.clone()).or_insert(SafetyRow { segment: seg, approved: 0, blocked: 0, rejected: 0 });
        match (v.status.as_str(), v.safety.as_deref()) {
            ("rejected", _) => row.rejected += 1,
            (_, Some("approved")) => row.approved += 1,
            (_, Some("blocked")) => row.blocked += 1,
            _ => {}
        }
    }
    // Segments in the order of segments.json (largest first there), then any others.
    let order: Vec<String> = docs.segments.iter().flat_map(|s| &s.segments).map(|s| s.name.clone()).collect::<Vec<_>>();
    let mut rows: Vec<SafetyRow> = order.iter().filter_map(|n| by_segment.remove(n)).collect();
    rows.extend(by_segment.into_values());
    let verdicts = docs.safety.iter().flat_map(|s| &s.verdicts);
    SafetyFacts {
        policy_version: docs.safety.as_ref().map(|s| s.policy_version.clone()),
        audit_key: docs.safety.as_ref().map(|s| s.audit_key.clone()),
        screened: verdicts.clone().count() as u64,
        approved: verdicts.clone().filter(|v| v.decision == Decision::Approved).count() as u64,
        blocked: verdicts.filter(|v| v.decision == Decision::Blocked).count() as u64,
        rejected: variants.iter().filter(|v| v.status == "rejected").count() as u64,
        by_segment: rows,
    }
}

/// Arms in display order: control, the configured tones, anything else (holdout) last.
fn arm_order<'a>(tones: &[String], seen: impl Iterator<Item = &'a str>) -> Vec<String> {
    let seen: BTreeSet<&str> = seen.collect();
    let mut out = vec![];
    for a in std::iter::once("control").chain(tones.iter().map(String::as_str)) {
        if seen.contains(a) {
            out.push(a.to_string());
        }
    }
    for a in seen {
        if !out.iter().any(|o| o == a) {
            out.push(a.to_string());
        }
    }
    out
}

fn arm_tables(docs: &RunDocs, arms: &ArmCounts) -> (Vec<String>, Vec<ArmRow>, Vec<SegmentArms>) {
    let cfg = &docs.run.config;
    let names = arm_order(&cfg.tones, arms.values().flat_map(|m| m.keys()).map(String::as_str));
    let total: u64 = arms.values().flat_map(|m| m.values()).sum();
    let weight_sum: f64 =
        std::iter::once("control").chain(cfg.tones.iter().map(String::as_str)).map(|a| cfg.weight(a)).sum();
    let rows = names
        .iter()
        .map(|a| {
            let n: u64 = arms.values().filter_map(|m| m.get(a)).sum();
            let weight = (a == "control" || cfg.tones.contains(a)).then(|| {
                let w = cfg.weight(a) / weight_sum;
                w * (1.0 - cfg.holdout)
            });
            let share = if total > 0 { n as f64 / total as f64 } else { 0.0 };
            ArmRow { arm: a.clone(), n, share, weight: weight.filter(|w| w.is_finite()) }
        })
        .collect();
    let order: Vec<&str> = docs.segments.iter().flat_map(|s| &s.segments).map(|s| s.name.as_str()).collect();
    let mut segs: Vec<&String> = arms.keys().collect();
    segs.sort_by_key(|s| (order.iter().position(|o| o == s).unwrap_or(usize::MAX), s.as_str()));
    let seg_rows = segs
        .into_iter()
        .map(|s| {
            let m = &arms[s];
            SegmentArms {
                segment: s.clone(),
                total: m.values().sum(),
                counts: names.iter().map(|a| m.get(a).copied().unwrap_or(0)).collect(),
            }
        })
        .collect();
    (names, rows, seg_rows)
}

/// Template ids of `send/templates.json`: the keys of an object (or of its `templates` object), or the
/// `variant_id`/`id` of each entry of a list.
fn template_ids(doc: Option<&serde_json::Value>) -> Vec<String> {
    use serde_json::Value;
    let Some(doc) = doc else { return vec![] };
    let doc = match doc {
        Value::Object(m) if m.contains_key("templates") => &m["templates"],
        other => other,
    };
    match doc {
        Value::Object(m) => m.keys().cloned().collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|t| t.get("variant_id").or_else(|| t.get("id")).and_then(Value::as_str).map(String::from))
            .collect(),
        _ => vec![],
    }
}

/// Deepest nesting of `extra` shown, and the most entries (the rest stays in `analysis.json`).
const EXTRA_DEPTH: usize = 4;
const EXTRA_ENTRIES: usize = 200;

/// `extra` of the analysis as `a.b.c → scalar`: nested objects become dotted names, lists of scalars one
/// comma-separated value; lists of objects are left to `analysis.json`.
fn flatten(prefix: &str, v: &serde_json::Value, depth: usize, out: &mut BTreeMap<String, serde_json::Value>) {
    use serde_json::Value;
    if out.len() >= EXTRA_ENTRIES {
        return;
    }
    match v {
        Value::Object(m) if depth < EXTRA_DEPTH => {
            for (k, x) in m {
                let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&name, x, depth + 1, out);
            }
        }
        Value::Array(items) if items.iter().all(|x| !x.is_object() && !x.is_array()) && !prefix.is_empty() => {
            let joined: Vec<String> =
                items.iter().map(|x| x.as_str().map(String::from).unwrap_or(x.to_string())).collect();
            out.insert(prefix.to_string(), Value::String(joined.join(", ")));
        }
        Value::Object(_) | Value::Array(_) => {}
        scalar if !prefix.is_empty() => {
            out.insert(prefix.to_string(), scalar.clone());
        }
        _ => {}
    }
}

fn ingest_facts(s: &IngestSummary) -> IngestFacts {
    IngestFacts {
        files: s.files.len() as u64,
        rows: s.files.iter().map(|f| f.rows).sum(),
        accepted: s.files.iter().map(|f| f.accepted).sum(),
        rejected: s.rejected,
        duplicates: s.duplicates,
        unknown_customers: s.unknown_customers,
        unknown_events: s.unknown_events,
        customers_with_events: s.customers_with_events,
        events: s.events.clone(),
    }
}

fn sort_rows(rows: &mut [ResultRow], arms: &[String]) {
    let pos = |list: &[String], x: &str| list.iter().position(|m| m == x).unwrap_or(usize::MAX);
    rows.sort_by(|a, b| (a.metric, pos(arms, &a.arm), &a.arm).cmp(&(b.metric, pos(arms, &b.arm), &b.arm)));
}

/// The analysis as the report shows it. The primary metric is the analysis's own (the one its decision is
/// about), never re-derived here.
fn experiment_view(a: &AnalysisDoc, arm_names: &[String], segment_order: &[&str]) -> ExperimentView {
    let present = |m: Metric| a.results.iter().any(|r| r.metric == m);
    // The primary metric is always shown: the decision is about it, even when it says "not enough data".
    let has_events = |m: Metric| m == a.primary_metric || a.results.iter().any(|r| r.metric == m && r.successes > 0);
    let metrics: Vec<Metric> = Metric::ALL.into_iter().filter(|m| has_events(*m)).collect();
    let silent_metrics: Vec<Metric> = Metric::ALL.into_iter().filter(|m| present(*m) && !has_events(*m)).collect();
    let mut arms = arm_names.to_vec();
    if !arms.iter().any(|a| a == "control") {
        arms.insert(0, "control".into());
    }
    let shown = |r: &&ResultRow| metrics.contains(&r.metric);
    let mut overall: Vec<ResultRow> = a.results.iter().filter(|r| r.segment.is_none()).filter(shown).cloned().collect();
    sort_rows(&mut overall, &arms);
    let mut by: BTreeMap<String, Vec<ResultRow>> = BTreeMap::new();
    for r in a.results.iter().filter(|r| r.segment.is_some()).filter(shown) {
        by.entry(r.segment.clone().unwrap_or_default()).or_default().push(r.clone());
    }
    let mut by_segment: Vec<SegmentResults> = by
        .into_iter()
        .map(|(segment, mut rows)| {
            sort_rows(&mut rows, &arms);
            SegmentResults { segment, rows }
        })
        .collect();
    // In the order of segments.json (largest first); segments it does not know after them.
    by_segment.sort_by_key(|s| segment_order.iter().position(|o| *o == s.segment).unwrap_or(usize::MAX));
    let mut extra = BTreeMap::new();
    flatten("", &serde_json::to_value(&a.extra).unwrap_or_default(), 0, &mut extra);
    ExperimentView {
        decision: a.decision,
        decision_label: a.decision.label().to_string(),
        winner: a.winner.clone(),
        reasons: a.decision_reasons.clone(),
        srm_p_value: a.srm_p_value,
        srm_flag: a.srm_flag,
        ingest: None,
        outcomes: a.outcomes.iter().map(|o| o.rsplit('/').next().unwrap_or(o).to_string()).collect(),
        primary_metric: a.primary_metric,
        metrics,
        silent_metrics,
        guardrails: a.guardrails.clone(),
        explain: a.explain.clone(),
        outcomes_source: a.outcomes_source,
        holdout_lift: a.holdout_lift.clone(),
        overall,
        by_segment,
        extra,
    }
}

/// A count assign recorded about who it left out (`suppressed` by reason, `deferred`).
fn left_out(docs: &crate::load::RunDocs, name: &str) -> Option<serde_json::Value> {
    docs.steps.iter().rev().find(|s| s.step == "assign").and_then(|s| s.output.counts.get(name).cloned())
}

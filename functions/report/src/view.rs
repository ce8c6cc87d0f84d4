//! The report as data: what `report.json` holds and what both templates render, so the HTML, the Markdown
//! and the JSON show the same figures by construction. Aggregates only: no customer id, name or email.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cpo_common::model::experiment::{
    Decision, Explain, GuardrailCheck, HoldoutLift, Metric, OutcomesSource, ResultRow,
};
use cpo_common::model::manifest::RunStatus;
use cpo_common::model::variant::Usage;
use cpo_common::step::StepStatus;
use serde::{Deserialize, Serialize};

/// Version of the `report.json` layout.
pub const SCHEMA: &str = "cpo.report/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub run_id: String,
    pub campaign: String,
    /// `campaign` or `experiment`: the action that wrote this report.
    pub action: String,
    /// `awaiting_outcomes` or `analyzed` (as in the manifest).
    pub status: RunStatus,
    /// True when the outcomes were simulated: every figure of the results is then made up.
    pub simulated: bool,
    pub generated_at: DateTime<Utc>,
    pub as_of: NaiveDate,
    pub goal: String,
    pub summary: Summary,
    pub input: InputFacts,
    pub segments: Vec<SegmentRow>,
    /// Segments that had no eligible approved content (so no variants).
    pub no_content: Vec<String>,
    pub control: MessageView,
    pub variants: Vec<MessageView>,
    pub safety: SafetyFacts,
    /// Arms in display order: control, the tones, then any other arm (holdout).
    pub arm_names: Vec<String>,
    pub arms: Vec<ArmRow>,
    pub segment_arms: Vec<SegmentArms>,
    /// `step_record`, `assignments` or `none`.
    pub arm_counts_source: String,
    pub send: SendFacts,
    pub experiment: Option<ExperimentView>,
    pub cost: CostFacts,
    pub timings: Vec<StepTiming>,
    /// Sum of the steps' durations (parallel steps count each).
    pub total_ms: u64,
}

/// The ten-second version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// `awaiting_outcomes` or the analysis's decision (`ship`, `ship_with_caution`, `do_not_ship`,
    /// `no_difference`, `keep_testing`, `not_enough_data`, `not_trustworthy`).
    pub verdict: String,
    pub headline: String,
    pub points: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputFacts {
    pub key: String,
    pub size: u64,
    pub config_source: String,
    pub input_format: Option<String>,
    pub rows: Option<u64>,
    pub customers: Option<u64>,
    pub rejected: Option<u64>,
    /// Problems with the customer file that affect what is sent (e.g. no email column).
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRow {
    pub name: String,
    pub slug: String,
    pub size: u64,
    pub share: f64,
    pub r_mean: f64,
    pub f_mean: f64,
    pub m_mean: f64,
    pub recency_median_days: f64,
    pub frequency_median: f64,
    pub monetary_median: f64,
    pub spend_share: f64,
    pub description: String,
    pub merged_from: Vec<String>,
    /// Titles of the retrieved documents, best first.
    pub documents: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CitationView {
    pub doc_id: String,
    /// From the retrieval of the run, when the document was retrieved.
    pub title: Option<String>,
    pub quote: String,
}

/// A variant or the control message, with its safety verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageView {
    pub variant_id: String,
    pub segment: Option<String>,
    pub tone: Option<String>,
    /// `shipped` or `rejected` by the generator; `control` for the control message.
    pub status: String,
    /// `approved`, `blocked`, or `None` when safety has not screened it.
    pub safety: Option<String>,
    pub safety_reasons: Vec<String>,
    /// Generation failures (a rejected variant).
    pub reasons: Vec<String>,
    /// Shipped, approved and therefore an arm of the experiment.
    pub in_experiment: bool,
    pub subject: String,
    pub preheader: String,
    pub body: String,
    pub cta: String,
    pub citations: Vec<CitationView>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SafetyFacts {
    pub policy_version: Option<String>,
    pub audit_key: Option<String>,
    pub screened: u64,
    pub approved: u64,
    pub blocked: u64,
    /// Variants the generator itself rejected (never screened).
    pub rejected: u64,
    pub by_segment: Vec<SafetyRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SafetyRow {
    pub segment: String,
    pub approved: u64,
    pub blocked: u64,
    pub rejected: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmRow {
    pub arm: String,
    pub n: u64,
    pub share: f64,
    /// Configured weight, normalised over all configured arms (before per-segment renormalisation).
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentArms {
    pub segment: String,
    pub total: u64,
    /// Aligned with `Report::arm_names`.
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendFacts {
    pub parts: u64,
    pub bytes: u64,
    /// Customers on a sending arm (everyone assigned except the holdout).
    pub rows: u64,
    /// Template ids of `send/templates.json`.
    pub templates: Vec<String>,
    /// Left out before assignment, by reason (counts only; who is in `suppressed/`).
    #[serde(default)]
    pub suppressed: std::collections::BTreeMap<String, u64>,
    /// Deferred by the contact policy.
    #[serde(default)]
    pub deferred: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentView {
    pub decision: Decision,
    /// The decision in words (`ship with caution`).
    pub decision_label: String,
    pub winner: Option<String>,
    pub reasons: Vec<String>,
    pub srm_p_value: f64,
    pub srm_flag: bool,
    /// Outcomes files the analysis covered.
    pub outcomes: Vec<String>,
    /// What ingestion saw in those files (absent when `ingest/summary.json` is missing).
    pub ingest: Option<IngestFacts>,
    pub primary_metric: Metric,
    /// Metrics with at least one event in some arm, in display order.
    pub metrics: Vec<Metric>,
    /// Metrics no arm recorded any event for: said once, left out of the tables.
    pub silent_metrics: Vec<Metric>,
    /// Every non-control arm on every guardrail metric, as risk (chance of being worse).
    pub guardrails: Vec<GuardrailCheck>,
    /// Rate and lift by customer attribute (aggregates of groups; from the analysis).
    pub explain: Option<Explain>,
    /// Which outcomes the analysis used (real files whenever the run has any).
    pub outcomes_source: OutcomesSource,
    /// Everyone the campaign could send to against the global holdout, on conversions.
    pub holdout_lift: Option<HoldoutLift>,
    /// Overall rows (segment = null) of the metrics with events, ordered by metric then arm.
    pub overall: Vec<ResultRow>,
    pub by_segment: Vec<SegmentResults>,
    /// Further figures of the analysis's `extra` (power, SRM per segment, weights in force…), flattened to
    /// `dotted.name → scalar`.
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestFacts {
    pub files: u64,
    pub rows: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub unknown_customers: u64,
    pub unknown_events: u64,
    pub customers_with_events: u64,
    /// Distinct (customer, event) pairs per event type.
    pub events: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentResults {
    pub segment: String,
    pub rows: Vec<ResultRow>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostFacts {
    pub cost_usd: f64,
    pub provider_calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Variants served from the provider cache (no new cost).
    pub cached_variants: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    pub step: String,
    pub status: StepStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: u64,
}

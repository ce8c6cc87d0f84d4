//! Produced by `experiment`: assignments (customer-level) and the analysis (aggregates only).

use serde::{Deserialize, Serialize};

/// One line of `assignments/part-NNNNN.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub customer_id: String,
    pub segment: String,
    /// `control`, a tone, or `holdout`.
    pub arm: String,
    /// `<segment slug>-<tone>`, `control`, or empty for holdout.
    pub variant_id: String,
}

/// One row of `analysis.json` `results` (and of `cpo analyze --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub arm: String,
    pub metric: String,
    /// `None` = overall.
    pub segment: Option<String>,
    pub n: u64,
    pub successes: u64,
    pub rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Relative lift vs control (None for control).
    pub lift: Option<f64>,
    /// Katz log risk-ratio 95% CI of `lift` (undefined with a zero count).
    #[serde(default)]
    pub lift_ci_low: Option<f64>,
    #[serde(default)]
    pub lift_ci_high: Option<f64>,
    pub diff: Option<f64>,
    pub diff_ci_low: Option<f64>,
    pub diff_ci_high: Option<f64>,
    pub p_value: Option<f64>,
    pub p_holm: Option<f64>,
    pub p_bh: Option<f64>,
    pub prob_beat_control: Option<f64>,
    pub expected_loss: Option<f64>,
    /// Minimum detectable absolute difference vs control at the configured power and α (pooled variance at
    /// the control rate).
    #[serde(default)]
    pub mde: Option<f64>,
}

/// `send/templates.json`: every message an email service needs, in merge-field syntax (`{{first_name}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplatesDoc {
    pub run_id: String,
    /// Columns of `send/part-*.csv` after the fixed ones, in order: the merge fields the messages use.
    pub merge_fields: Vec<String>,
    /// Keyed by `variant_id` (`control` for the control message).
    pub templates: std::collections::BTreeMap<String, Template>,
    /// Merge field → the text used for a customer without a value (`generation.merge_defaults`, limited to
    /// the fields the messages use). The send list already carries it in those cells.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub merge_defaults: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub variant_id: String,
    /// `control` or a tone.
    pub arm: String,
    /// `None` for the control message (the same for every segment).
    pub segment: Option<String>,
    pub subject: String,
    pub preheader: String,
    pub body: String,
    pub cta: String,
}

impl Template {
    /// The message fields (what safety's verdict for `variant_id` must cover byte for byte).
    pub fn message(&self) -> crate::model::variant::Message {
        crate::model::variant::Message {
            subject: self.subject.clone(),
            preheader: self.preheader.clone(),
            body: self.body.clone(),
            cta: self.cta.clone(),
        }
    }
}

/// One fully rendered message (`cpo render`, `send/rendered-*.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedMessage {
    pub customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub arm: String,
    pub variant_id: String,
    pub subject: String,
    pub preheader: String,
    pub body: String,
    pub cta: String,
}

/// One outcomes object as ingest saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomesFile {
    pub key: String,
    pub etag: String,
    /// `csv` or `jsonl`.
    pub format: String,
    pub rows: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub simulated: bool,
}

/// `ingest/summary.json`: what the cumulative outcomes held (aggregates only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestSummary {
    pub run_id: String,
    pub files: Vec<OutcomesFile>,
    /// Distinct (customer, event) pairs per event type among assigned customers.
    pub events: std::collections::BTreeMap<String, u64>,
    /// Rows repeating a (customer, event) pair already seen.
    pub duplicates: u64,
    pub rejected: u64,
    /// Customers with events who were never assigned, and their (deduplicated) events.
    pub unknown_customers: u64,
    pub unknown_events: u64,
    /// Assigned customers with at least one event.
    pub customers_with_events: u64,
    pub simulated: bool,
    /// Key of the per-customer outcome object (`ingest/outcomes.csv`).
    pub outcomes_key: String,
}

/// `analysis.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisDoc {
    pub run_id: String,
    pub simulated: bool,
    pub outcomes: Vec<String>,
    pub results: Vec<ResultRow>,
    pub srm_p_value: f64,
    pub srm_flag: bool,
    /// `winner`, `no_significant_difference` or `not_trustworthy`.
    pub decision: String,
    pub winner: Option<String>,
    pub decision_reasons: Vec<String>,
    #[serde(default)]
    pub extra: serde_json::Value,
}

/// `ingest/counts.json`: customers assigned and customers with each event per (segment, arm), counted by
/// `ingest` while it joins the outcomes with the assignments, so `analyze` reads this small object instead of
/// every customer-level part again. Aggregates only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestCounts {
    pub run_id: String,
    /// `key\tetag` lines of the outcomes objects counted (the identity recorded in `steps/ingest.json`), so a
    /// reader can tell counts of another outcomes set apart.
    pub outcomes_identity: String,
    /// In (segment, arm) order.
    pub cells: Vec<ArmCounts>,
}

/// One (segment, arm) of [`IngestCounts`]: `n` customers assigned (intention to treat), and of them how many
/// have each event at least once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmCounts {
    pub segment: String,
    pub arm: String,
    pub n: u64,
    pub delivered: u64,
    pub open: u64,
    pub click: u64,
    pub convert: u64,
    pub unsubscribe: u64,
}

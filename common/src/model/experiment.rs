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
    pub diff: Option<f64>,
    pub diff_ci_low: Option<f64>,
    pub diff_ci_high: Option<f64>,
    pub p_value: Option<f64>,
    pub p_holm: Option<f64>,
    pub p_bh: Option<f64>,
    pub prob_beat_control: Option<f64>,
    pub expected_loss: Option<f64>,
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

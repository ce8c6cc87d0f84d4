//! `manifest.json`, written last by the report step: every object of a run and every step's status, so one
//! read tells an operator (or an auditor) what the run produced, what it cost and whether it finished.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::step::StepRecord;
use crate::store::ObjectMeta;

/// `status` after the campaign machine: variants, safety and the send list exist, no outcomes analysed yet.
pub const STATUS_AWAITING_OUTCOMES: &str = "awaiting_outcomes";
/// `status` once an analysis of outcomes exists.
pub const STATUS_ANALYZED: &str = "analyzed";
/// `status` when a step record says a step did not succeed.
pub const STATUS_FAILED: &str = "failed";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub campaign: String,
    /// [`STATUS_AWAITING_OUTCOMES`], [`STATUS_ANALYZED`] or [`STATUS_FAILED`].
    pub status: String,
    pub generated_at: DateTime<Utc>,
    /// Every `steps/*.json` record, in the order the steps started.
    pub steps: Vec<StepRecord>,
    /// Every object under `runs/<run_id>/` except the manifest itself (it cannot list its own etag), plus
    /// the run's audit object; sorted by key.
    pub objects: Vec<ObjectMeta>,
    pub cost_usd: f64,
    pub provider_calls: u64,
    pub simulated: bool,
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    /// Sum of `objects[].size`.
    #[serde(default)]
    pub total_bytes: u64,
    /// `campaign` or `experiment`: the report action that wrote this manifest.
    #[serde(default)]
    pub report_action: String,
    /// Report files by name (`html`, `markdown`, `json`) → key.
    #[serde(default)]
    pub report: BTreeMap<String, String>,
}

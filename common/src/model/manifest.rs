//! `manifest.json`, written last by the report step: every object of a run and every step's status, so one
//! read tells an operator (or an auditor) what the run produced, what it cost and whether it finished.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::step::StepRecord;
use crate::store::ObjectMeta;

/// Where a run stands, as `status` of its manifest and report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// After the campaign machine: variants, safety and the send list exist, no outcomes analysed yet.
    AwaitingOutcomes,
    /// An analysis of outcomes exists.
    Analyzed,
    /// A step record says a step did not succeed.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub campaign: String,
    pub status: RunStatus,
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

//! `manifest.json`, written last by the report step: every object of a run and every step's status.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::step::StepRecord;
use crate::store::ObjectMeta;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub campaign: String,
    pub status: String,
    pub generated_at: DateTime<Utc>,
    pub steps: Vec<StepRecord>,
    pub objects: Vec<ObjectMeta>,
    pub cost_usd: f64,
    pub provider_calls: u64,
    pub simulated: bool,
}

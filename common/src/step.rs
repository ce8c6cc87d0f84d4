//! The step contract (DESIGN.md §4): small JSON in, small JSON out, bulk data in the store. Every step records
//! its result in `runs/<run_id>/steps/<step>.json`; a re-invoked step with the same input returns that record
//! instead of recomputing (re-delivered events and Step Functions retries never run or bill twice).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StepError;
use crate::keys::{sha256_hex, RunKeys};
use crate::store::{DynStore, StoreExt};

/// What every Task receives. Unknown fields are ignored (state machines may pass more).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepInput {
    pub run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// Operation of a multi-operation function (`experiment`: assign | simulate | ingest | analyze;
    /// `report`: campaign | experiment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The Map item for `generate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulate_outcomes: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The outcomes object that started an analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcomes_key: Option<String>,
    /// Anything else a step needs from the state machine (shard descriptors, Map items…).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl StepInput {
    pub fn keys(&self) -> Result<RunKeys, StepError> {
        RunKeys::new(&self.run_id).map_err(|e| StepError::input(e.to_string()))
    }
    pub fn action_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.action.as_deref().unwrap_or(default)
    }
}

/// What every Task returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepOutput {
    pub run_id: String,
    pub step: String,
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    #[serde(default)]
    pub counts: BTreeMap<String, Value>,
    /// `segment` only: the segment names the generate Map iterates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<String>>,
}

impl StepOutput {
    pub fn new(run_id: &str, step: &str) -> Self {
        Self { run_id: run_id.to_string(), step: step.to_string(), ..Default::default() }
    }
    pub fn key(mut self, name: &str, key: impl ToString) -> Self {
        self.keys.insert(name.to_string(), key.to_string());
        self
    }
    pub fn count(mut self, name: &str, v: impl Into<Value>) -> Self {
        self.counts.insert(name.to_string(), v.into());
        self
    }
}

/// `runs/<run_id>/steps/<step>.json`: status, timings and result of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub run_id: String,
    pub step: String,
    pub status: String,
    /// SHA-256 of the canonical step input (plus any extra identity the step adds).
    pub input_hash: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub output: StepOutput,
}

/// What a step needs from its environment: built once per process (Lambda init or CLI start).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub store: DynStore,
}

/// Environment variable naming the store URL for Lambdas.
pub const STORE_ENV: &str = "CPO_STORE";

impl Ctx {
    pub fn new(store: DynStore) -> Self {
        Self { store }
    }

    /// For Lambda `main`s: the store from `CPO_STORE`.
    pub fn from_env() -> Result<Self, StepError> {
        let url = std::env::var(STORE_ENV)
            .map_err(|_| StepError::internal(format!("{STORE_ENV} is not set (e.g. s3://bucket/prefix)")))?;
        let store = crate::store::open(&url).map_err(|e| StepError::internal(e.to_string()))?;
        Ok(Self { store })
    }
}

/// Run `work` once per (run, step, input): if `steps/<step>.json` holds a record with the same input hash,
/// return its output without running `work`.
pub async fn run_once<F, Fut>(
    ctx: &Ctx,
    input: &StepInput,
    step: &str,
    identity: &str,
    work: F,
) -> Result<StepOutput, StepError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<StepOutput, StepError>>,
{
    let keys = input.keys()?;
    let key = keys.step(step);
    let canonical = serde_json::to_vec(input)?;
    let input_hash = sha256_hex(&[canonical.as_slice(), identity.as_bytes()].concat());
    if let Some(rec) = ctx.store.get_json_opt::<StepRecord>(&key).await? {
        if rec.input_hash == input_hash && rec.status == "succeeded" {
            tracing::info!(run_id = %input.run_id, step, "step already complete; returning stored result");
            return Ok(rec.output);
        }
    }
    let started_at = Utc::now();
    let t0 = Instant::now();
    tracing::info!(run_id = %input.run_id, step, "step started");
    let output = work().await?;
    let rec = StepRecord {
        run_id: input.run_id.clone(),
        step: step.to_string(),
        status: "succeeded".into(),
        input_hash,
        started_at,
        finished_at: Utc::now(),
        duration_ms: t0.elapsed().as_millis() as u64,
        output: output.clone(),
    };
    ctx.store.put_json(&key, &rec).await?;
    tracing::info!(run_id = %input.run_id, step, duration_ms = rec.duration_ms, "step finished");
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn second_call_returns_stored_result() {
        let ctx = Ctx::new(crate::store::open("mem://").unwrap());
        let input = StepInput { run_id: "r-20260101-000000000000".into(), ..Default::default() };
        let calls = AtomicUsize::new(0);
        for _ in 0..2 {
            let out = run_once(&ctx, &input, "segment", "", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(StepOutput::new(&input.run_id, "segment").count("n", 3))
            })
            .await
            .unwrap();
            assert_eq!(out.counts["n"], 3);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

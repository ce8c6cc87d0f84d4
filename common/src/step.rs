//! The step contract (docs/architecture.md, "The step contract"): small JSON in, small JSON out, bulk data in the
//! store. Every step records its result in `runs/<run_id>/steps/<step>.json`; a re-invoked step returns that record
//! instead of recomputing (re-delivered events and Step Functions retries never run or bill twice) — but only while the
//! content of everything it read is unchanged ([`Reads`]); otherwise it runs again, and so does every step downstream
//! whose own reads then change (docs/architecture.md, "Integrity").

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical;
use crate::error::StepError;
use crate::keys::{sha256_hex, Key, RunKeys};
use crate::store::{DynStore, Store, StoreError, StoreExt};

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
    pub status: StepStatus,
    /// SHA-256 of the canonical step input (plus any extra identity the step adds).
    pub input_hash: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub output: StepOutput,
    /// Content hashes of what the step consumed; the record is reused only while they are unchanged.
    #[serde(default)]
    pub reads: Reads,
}

/// How a step ended, as `status` of its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    Failed,
}

/// What a step consumed, as content hashes by name (an object key, or a named value such as the provider
/// identity). Only the fields the step uses are hashed — never volatile ones such as usage counters — and
/// `cache/` is never an input: a cached answer stands for the request that produced it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reads(BTreeMap<String, String>);

/// The hash [`Reads`] records for an object that does not exist (so "absent" differs from any content).
pub const ABSENT: &str = "absent";

impl Reads {
    pub fn new() -> Self {
        Self::default()
    }

    /// A value by the hash of its canonical JSON.
    pub fn value(&mut self, name: &str, v: &(impl Serialize + ?Sized)) -> &mut Self {
        self.0.insert(name.to_string(), canonical::sha256_of(v));
        self
    }

    /// The whole object, byte for byte.
    pub async fn object(&mut self, store: &dyn Store, key: &Key) -> Result<&mut Self, StoreError> {
        let hash = match store.get_opt(key).await? {
            Some(body) => sha256_hex(&body),
            None => ABSENT.to_string(),
        };
        self.0.insert(key.to_string(), hash);
        Ok(self)
    }

    /// The fields `pick` takes from a JSON object (what the step uses of it).
    pub async fn json<T, P>(
        &mut self,
        store: &dyn Store,
        key: &Key,
        pick: impl FnOnce(&T) -> P,
    ) -> Result<&mut Self, StoreError>
    where
        T: DeserializeOwned,
        P: Serialize,
    {
        let hash = match store.get_json_opt::<T>(key).await? {
            Some(doc) => canonical::sha256_of(&pick(&doc)),
            None => ABSENT.to_string(),
        };
        self.0.insert(key.to_string(), hash);
        Ok(self)
    }

    /// Every object under `prefix` by key, size and version tag: for bulk parts (members, assignments) whose
    /// re-reading would cost as much as the step. Any rewrite changes the version tag, so this errs toward
    /// running again, never toward reuse.
    pub async fn listing(&mut self, store: &dyn Store, prefix: &Key) -> Result<&mut Self, StoreError> {
        let listing: Vec<(String, u64, Option<String>)> =
            store.list(prefix).await?.into_iter().map(|m| (m.key, m.size, m.etag)).collect();
        self.0.insert(prefix.to_string(), canonical::sha256_of(&listing));
        Ok(self)
    }

    /// Names whose hash differs between `self` and `other` (or that only one has).
    pub fn changed(&self, other: &Reads) -> Vec<String> {
        let mut names: Vec<String> = self
            .0
            .iter()
            .filter(|(k, v)| other.0.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .chain(other.0.keys().filter(|k| !self.0.contains_key(*k)).cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }
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

tokio::task_local! {
    /// Steps answered from their stored record while a [`observe_reuse`] future runs.
    static REUSED: std::cell::Cell<u32>;
}

/// Run `f` and count the steps it answered from their stored records instead of running them — so a local
/// runner can say a Task reused earlier work (docs/architecture.md, "The cpo command"). Outside such a
/// future the count is not kept (Lambda has no use for it).
pub async fn observe_reuse<F: Future>(f: F) -> (F::Output, u32) {
    REUSED
        .scope(std::cell::Cell::new(0), async move {
            let out = f.await;
            (out, REUSED.with(|n| n.get()))
        })
        .await
}

/// Run `work` once per (run, step, input): if `steps/<step>.json` holds a record with the same input hash,
/// return its output without running `work`. For steps that read nothing but their input and the run record.
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
    run_once_reading(ctx, input, step, identity, Reads::new(), work).await
}

/// [`run_once`] for a step that consumes other objects: `reads` are their content hashes as they are now, and
/// the stored record is reused only when it was made from the same content. A step whose inputs changed runs
/// again (a re-generated variant is screened again; a re-screened run is assigned again).
pub async fn run_once_reading<F, Fut>(
    ctx: &Ctx,
    input: &StepInput,
    step: &str,
    identity: &str,
    reads: Reads,
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
        if rec.input_hash == input_hash && rec.status == StepStatus::Succeeded {
            let changed = rec.reads.changed(&reads);
            if changed.is_empty() {
                tracing::info!(run_id = %input.run_id, step, "step already complete; returning stored result");
                let _ = REUSED.try_with(|n| n.set(n.get() + 1));
                return Ok(rec.output);
            }
            tracing::info!(run_id = %input.run_id, step, ?changed, "inputs changed since the step ran; running again");
        } else if rec.status == StepStatus::Succeeded {
            tracing::info!(run_id = %input.run_id, step, "step input or identity changed; running again");
        }
    }
    let started_at = Utc::now();
    let t0 = Instant::now();
    tracing::info!(run_id = %input.run_id, step, "step started");
    let output = work().await?;
    let rec = StepRecord {
        run_id: input.run_id.clone(),
        step: step.to_string(),
        status: StepStatus::Succeeded,
        input_hash,
        started_at,
        finished_at: Utc::now(),
        duration_ms: t0.elapsed().as_millis() as u64,
        output: output.clone(),
        reads,
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

    #[tokio::test]
    async fn observe_reuse_counts_only_stored_answers() {
        let ctx = Ctx::new(crate::store::open("mem://").unwrap());
        let input = StepInput { run_id: "r-20260101-000000000000".into(), ..Default::default() };
        let step = || run_once(&ctx, &input, "segment", "", || async { Ok(StepOutput::new(&input.run_id, "segment")) });
        assert_eq!(observe_reuse(step()).await.1, 0);
        assert_eq!(observe_reuse(step()).await.1, 1);
        // Outside an observer nothing is counted and nothing fails.
        step().await.unwrap();
    }

    #[tokio::test]
    async fn changed_reads_run_the_step_again() {
        let ctx = Ctx::new(crate::store::open("mem://").unwrap());
        let input = StepInput { run_id: "r-20260101-000000000000".into(), ..Default::default() };
        let doc = Key::new("runs/r-20260101-000000000000/variants/a.json").unwrap();
        let calls = AtomicUsize::new(0);
        for (body, expected_calls) in [("v1", 1), ("v1", 1), ("v2", 2), ("v2", 2)] {
            ctx.store.put(&doc, bytes::Bytes::from(body)).await.unwrap();
            let mut reads = Reads::new();
            reads.object(ctx.store.as_ref(), &doc).await.unwrap();
            run_once_reading(&ctx, &input, "safety", "", reads, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(StepOutput::new(&input.run_id, "safety"))
            })
            .await
            .unwrap();
            assert_eq!(calls.load(Ordering::SeqCst), expected_calls, "after writing {body}");
        }
    }
}

//! The Lambda handler: parse the event, check the bucket, map each object (or the schedule's newest input)
//! to a start through [`crate::start_for_key`].

use std::sync::Arc;

use cpo_common::keys::sha256_hex;
use cpo_common::store::{DynStore, StoreUrl};
use cpo_common::{run, StepError};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;

use crate::event::{self, ObjectRef, TriggerEvent};
use crate::{start_for_key, start_reported, Machine, Started, Starter, TriggerOptions};

/// Environment variable naming the bucket whose events this function accepts.
pub const BUCKET_ENV: &str = "CPO_BUCKET";

/// What the handler needs, built once per Lambda instance.
pub struct Deps {
    pub store: DynStore,
    pub starter: Arc<dyn Starter>,
    /// The only bucket whose events are accepted.
    pub bucket: String,
    /// Key prefix of the store inside the bucket (`s3://bucket/<prefix>`), stripped from event keys.
    pub key_prefix: String,
    pub opts: TriggerOptions,
}

impl Deps {
    /// `CPO_STORE` (`s3://bucket[/prefix]`), `CPO_BUCKET` (defaults to the store's bucket; must match it).
    pub fn for_store(store: DynStore, starter: Arc<dyn Starter>, bucket: Option<String>) -> Result<Self, StepError> {
        let (store_bucket, key_prefix) = match StoreUrl::parse(store.url())? {
            StoreUrl::S3 { bucket, prefix } => (Some(bucket.to_string()), prefix),
            _ => (None, String::new()),
        };
        let bucket = match (bucket, store_bucket) {
            (Some(b), Some(s)) if b != s => {
                return Err(StepError::internal(format!("{BUCKET_ENV}={b} but the store is in bucket {s}")))
            }
            (Some(b), _) => b,
            (None, Some(s)) => s,
            (None, None) => {
                return Err(StepError::internal(format!("{BUCKET_ENV} is not set and the store is not s3://")))
            }
        };
        Ok(Self { store, starter, bucket, key_prefix, opts: TriggerOptions::default() })
    }

    /// The store-relative key of an event's object; `None` when it lies outside the store's prefix.
    fn store_key<'a>(&self, key: &'a str) -> Option<&'a str> {
        if self.key_prefix.is_empty() {
            Some(key)
        } else {
            key.strip_prefix(self.key_prefix.as_str())?.strip_prefix('/')
        }
    }
}

/// The handler's answer (also what `cargo lambda invoke` prints).
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Outcome {
    pub started: Vec<StartedRun>,
    /// Objects outside `incoming/` and `runs/*/outcomes/` (or the store's prefix).
    pub ignored: usize,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct StartedRun {
    pub machine: Machine,
    pub execution: String,
    /// `false` when the execution already existed (a re-delivered event).
    pub new: bool,
}

/// Lambda entry: the real signature `main` serves. Every record is attempted; the first error (if any) is
/// returned afterwards, so Lambda's retry re-sends the event and the idempotent starts make that harmless.
pub async fn handle(event: LambdaEvent<Value>, deps: &Deps) -> Result<Value, StepError> {
    let outcome = handle_value(event.payload, deps).await?;
    serde_json::to_value(&outcome).map_err(|e| StepError::internal(e.to_string()))
}

pub async fn handle_value(payload: Value, deps: &Deps) -> Result<Outcome, StepError> {
    let mut out = Outcome::default();
    match event::parse(payload)? {
        TriggerEvent::Objects(objects) => {
            let mut first_err = None;
            for obj in objects {
                if let Err(e) = start_object(&obj, deps, &deps.opts, &mut out).await {
                    tracing::error!(error = %e, "trigger record failed");
                    first_err.get_or_insert(e);
                }
            }
            if let Some(e) = first_err {
                return Err(e);
            }
        }
        TriggerEvent::Schedule(s) => {
            let opts = TriggerOptions {
                simulate_outcomes: s.simulate_outcomes.unwrap_or(deps.opts.simulate_outcomes),
                seed: s.seed.or(deps.opts.seed),
                content_prefix: deps.opts.content_prefix.clone(),
                as_of: deps.opts.as_of,
                scheduled_at: s.scheduled_time,
            };
            match run::newest_input(deps.store.as_ref(), &s.campaign).await? {
                Some(key) => {
                    tracing::info!(campaign = %s.campaign, "schedule: newest input found");
                    record(
                        start_for_key(deps.store.as_ref(), deps.starter.as_ref(), key.as_str(), &opts).await?,
                        &mut out,
                    );
                }
                None => {
                    tracing::warn!(campaign = %s.campaign, "schedule: nothing under incoming/<campaign>/; no run started");
                }
            }
        }
    }
    Ok(out)
}

async fn start_object(obj: &ObjectRef, deps: &Deps, opts: &TriggerOptions, out: &mut Outcome) -> Result<(), StepError> {
    if obj.bucket != deps.bucket {
        return Err(StepError::input(format!(
            "trigger event for bucket {:?} refused: this function serves bucket {:?}",
            obj.bucket, deps.bucket
        )));
    }
    let Some(key) = deps.store_key(&obj.key) else {
        tracing::info!(key_hash = %sha256_hex(obj.key.as_bytes()), "ignored object outside the store's prefix");
        out.ignored += 1;
        return Ok(());
    };
    match start_reported(deps.store.as_ref(), deps.starter.as_ref(), key, obj.etag.as_deref(), opts, false).await? {
        Some(started) => record(Some(started), out),
        None => out.ignored += 1,
    }
    Ok(())
}

fn record(started: Option<(crate::Start, Started)>, out: &mut Outcome) {
    if let Some((start, how)) = started {
        out.started.push(StartedRun { machine: start.machine, execution: start.name, new: how == Started::Started });
    }
}

//! `trigger`: decides which state machine an object drop (or the weekly schedule) starts, derives the `run_id` and
//! execution name (docs/architecture.md, "Run identity"), and starts it through a [`Starter`]. The local runner uses
//! the same [`start_for_key`] with an in-process starter, so routing is written exactly once.

pub(crate) mod event;
pub mod handler;
pub mod sfn;

use async_trait::async_trait;
use cpo_common::keys::{check_id, Key, RunKeys};
use cpo_common::run::{self, StartOptions};
use cpo_common::store::Store;
use cpo_common::StepError;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The two state machines of `infra/statemachine/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Machine {
    Campaign,
    Analysis,
}

/// Where a key leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `incoming/<campaign>/<file>`: a new customers file.
    Campaign { campaign: String },
    /// `runs/<run_id>/outcomes/<file>`: engagement events of a run.
    Outcomes { run_id: String },
    /// Anything else: logged and ignored.
    Ignored { reason: String },
}

/// Route an object key. Keys are untrusted: anything malformed is ignored with its reason.
pub fn route(key: &str) -> Route {
    if Key::new(key).is_err() {
        return Route::Ignored { reason: "invalid key".into() };
    }
    if let Some(campaign) = run::campaign_of_incoming(key) {
        return Route::Campaign { campaign: campaign.to_string() };
    }
    let parts: Vec<&str> = key.split('/').collect();
    if let ["runs", run_id, "outcomes", file] = parts.as_slice() {
        if check_id("run_id", run_id).is_ok() && !file.is_empty() {
            return Route::Outcomes { run_id: run_id.to_string() };
        }
    }
    Route::Ignored { reason: "outside incoming/<campaign>/ and runs/<run_id>/outcomes/".into() }
}

/// One state machine execution to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Start {
    pub machine: Machine,
    /// Execution name: `<run_id>` or `<run_id>-o<8 hex of the outcomes etag>`.
    pub name: String,
    pub input: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Started,
    /// An execution of that name exists: a re-delivered event, treated as success.
    AlreadyExists,
}

/// Starts executions (Step Functions in the cloud, the local runner in `cpo run`).
#[async_trait]
pub trait Starter: Send + Sync {
    async fn start(&self, start: &Start) -> Result<Started, StepError>;
}

/// Execution name of an analysis: `<run_id>-o<first 8 hex of the outcomes object's version>`.
pub fn analysis_name(run_id: &str, version: &str) -> String {
    let hex = cpo_common::keys::sha256_hex(version.as_bytes());
    format!("{run_id}-o{}", &hex[..8])
}

/// Options of a start that do not come from the key.
#[derive(Debug, Clone, Default)]
pub struct TriggerOptions {
    pub simulate_outcomes: bool,
    pub seed: Option<u64>,
    pub content_prefix: Option<Key>,
    /// `cpo run --as-of`: the run's date over everything else.
    pub as_of: Option<chrono::NaiveDate>,
    /// The schedule's fire time (a scheduled run's date).
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl TriggerOptions {
    /// What [`run::prepare`] takes of these options.
    pub fn start_options(&self) -> StartOptions {
        StartOptions {
            seed: self.seed,
            content_prefix: self.content_prefix.clone(),
            as_of: self.as_of,
            scheduled_at: self.scheduled_at,
        }
    }
}

/// Inputs at least this large are segmented in shards (`"sharded": true` in the campaign execution input): past
/// about 1 GiB one segment Lambda (10 GiB memory, 15 minutes) has no margin left for the single pass.
pub const SHARDED_MIN_BYTES: u64 = 1 << 30;

/// Whether the campaign run segments in shards: asked for, or an input of at least [`SHARDED_MIN_BYTES`].
pub fn use_shards(forced: bool, input_bytes: u64) -> bool {
    forced || input_bytes >= SHARDED_MIN_BYTES
}

/// Route `key`, prepare its run and start the machine. `Ok(None)` when the key is ignored.
pub async fn start_for_key(
    store: &dyn Store,
    starter: &dyn Starter,
    key: &str,
    opts: &TriggerOptions,
) -> Result<Option<(Start, Started)>, StepError> {
    start_for_key_sharded(store, starter, key, opts, false).await
}

/// [`start_for_key`], with the campaign run segmented in shards when `sharded` is set or the input object is at
/// least [`SHARDED_MIN_BYTES`].
pub async fn start_for_key_sharded(
    store: &dyn Store,
    starter: &dyn Starter,
    key: &str,
    opts: &TriggerOptions,
    sharded: bool,
) -> Result<Option<(Start, Started)>, StepError> {
    start_reported(store, starter, key, None, opts, sharded).await
}

/// [`start_for_key_sharded`] for an object an event reported with its ETag: a campaign run starts only for
/// that version of the input (see [`run::prepare_reported`]).
pub async fn start_reported(
    store: &dyn Store,
    starter: &dyn Starter,
    key: &str,
    reported_etag: Option<&str>,
    opts: &TriggerOptions,
    sharded: bool,
) -> Result<Option<(Start, Started)>, StepError> {
    let start = match route(key) {
        Route::Ignored { reason } => {
            tracing::info!(key_hash = %cpo_common::keys::sha256_hex(key.as_bytes()), reason, "ignored object");
            return Ok(None);
        }
        Route::Campaign { .. } => {
            let key = Key::new(key)?;
            if rewritten_by_erase(store, &key).await? {
                tracing::info!(key_hash = %cpo_common::keys::sha256_hex(key.as_str().as_bytes()),
                    "incoming object is a rewrite by `cpo erase`, not a new drop; no run started");
                return Ok(None);
            }
            let run = run::prepare_reported(store, &key, reported_etag, &opts.start_options()).await?;
            let sharded = use_shards(sharded, store.head(&key).await?.map_or(0, |m| m.size));
            Start {
                machine: Machine::Campaign,
                name: run.run_id.clone(),
                input: json!({
                    "run_id": run.run_id,
                    "campaign": run.campaign,
                    "simulate_outcomes": opts.simulate_outcomes,
                    "seed": run.seed,
                    "sharded": sharded,
                }),
            }
        }
        Route::Outcomes { run_id } => {
            let keys = RunKeys::new(&run_id)?;
            let run = run::load(store, keys.run_id()).await?;
            let key = Key::new(key)?;
            let meta = store.head(&key).await?.ok_or_else(|| StepError::input(format!("{key}: no such object")))?;
            let version = meta.etag.unwrap_or_else(|| format!("{}-{}", meta.size, meta.last_modified.timestamp()));
            Start {
                machine: Machine::Analysis,
                name: analysis_name(&run_id, &version),
                input: json!({"run_id": run_id, "campaign": run.campaign, "outcomes_key": key.to_string()}),
            }
        }
    };
    let started = starter.start(&start).await?;
    tracing::info!(machine = ?start.machine, execution = %start.name, ?started, "start requested");
    Ok(Some((start, started)))
}

/// The marker `cpo erase` writes before rewriting an incoming object without a customer's rows: the rewritten
/// object's size and SHA-256. The object changed, so its run id would too; without the marker the rewrite would
/// start a new campaign run of an old file.
pub fn erasure_marker(incoming_key: &str) -> Result<Key, cpo_common::keys::KeyError> {
    Key::new(format!("erasure/{incoming_key}.json"))
}

#[derive(Debug, Deserialize)]
struct ErasureMarker {
    size: u64,
    sha256: String,
}

/// Whether `key` is exactly what `cpo erase` wrote (size first; the streamed hash only when sizes agree).
async fn rewritten_by_erase(store: &dyn Store, key: &Key) -> Result<bool, StepError> {
    use cpo_common::store::StoreExt;
    use futures::StreamExt;
    use sha2::{Digest, Sha256};
    let Some(marker) = store.get_json_opt::<ErasureMarker>(&erasure_marker(key.as_str())?).await? else {
        return Ok(false);
    };
    if store.head(key).await?.map(|m| m.size) != Some(marker.size) {
        return Ok(false);
    }
    let mut h = Sha256::new();
    let mut chunks = store.get_stream(key).await?;
    while let Some(chunk) = chunks.next().await {
        h.update(chunk?);
    }
    Ok(hex::encode(h.finalize()) == marker.sha256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn routes() {
        assert_eq!(route("incoming/weekly/c.csv"), Route::Campaign { campaign: "weekly".into() });
        assert_eq!(
            route("runs/weekly-20260101-0123456789ab/outcomes/x.csv"),
            Route::Outcomes { run_id: "weekly-20260101-0123456789ab".into() }
        );
        assert!(matches!(route("runs/x/outcomes/../../y"), Route::Ignored { .. }));
        assert!(matches!(route("content/approved/a.json"), Route::Ignored { .. }));
        assert!(matches!(route("/etc/passwd"), Route::Ignored { .. }));
        // A file:// store's unfinished upload is not an input.
        assert!(matches!(route("incoming/weekly/c.csv#1"), Route::Ignored { .. }));
        // What ingest writes (accepted copies, refusals, records) never starts another analysis.
        for written in [
            "runs/weekly-20260101-0123456789ab/ingest/files/ab12.csv",
            "runs/weekly-20260101-0123456789ab/ingest/refused/ab12.json",
            "runs/weekly-20260101-0123456789ab/ingest/summary.json",
            "runs/weekly-20260101-0123456789ab/outcomes/nested/x.csv",
        ] {
            assert!(matches!(route(written), Route::Ignored { .. }), "{written}");
        }
    }

    #[test]
    fn large_inputs_or_the_flag_shard() {
        assert!(!use_shards(false, 0));
        assert!(!use_shards(false, SHARDED_MIN_BYTES - 1));
        assert!(use_shards(false, SHARDED_MIN_BYTES));
        assert!(use_shards(true, 10));
    }

    /// Remembers what it was asked to start.
    #[derive(Default)]
    pub(super) struct Recording(pub(super) std::sync::Mutex<Vec<Start>>);

    #[async_trait]
    impl Starter for Recording {
        async fn start(&self, start: &Start) -> Result<Started, StepError> {
            self.0.lock().map_err(|e| StepError::internal(e.to_string()))?.push(start.clone());
            Ok(Started::Started)
        }
    }

    #[tokio::test]
    async fn a_rewrite_by_erase_starts_nothing_a_new_upload_does() {
        let store = cpo_common::store::open("mem://").unwrap();
        let key = Key::new("incoming/weekly/c.csv").unwrap();
        let erased = bytes::Bytes::from_static(
            b"customer_id,purchase_frequency,avg_order_value,last_engagement_days\nC2,1,2,3\n",
        );
        let marker = json!({"size": erased.len(), "sha256": cpo_common::keys::sha256_hex(&erased)});
        store.put(&erasure_marker(key.as_str()).unwrap(), marker.to_string().into()).await.unwrap();
        store.put(&key, erased.clone()).await.unwrap();
        let starter = Recording::default();
        let started = start_for_key(store.as_ref(), &starter, key.as_str(), &TriggerOptions::default()).await.unwrap();
        assert!(started.is_none(), "the erased rewrite is not a new drop");
        // Different bytes under the same key (a real new drop) start a run, marker or not.
        let new = bytes::Bytes::from_static(
            b"customer_id,purchase_frequency,avg_order_value,last_engagement_days\nC3,1,2,3\n",
        );
        store.put(&key, new).await.unwrap();
        let started = start_for_key(store.as_ref(), &starter, key.as_str(), &TriggerOptions::default()).await.unwrap();
        assert!(started.is_some());
    }

    #[tokio::test]
    async fn the_campaign_input_says_whether_to_shard() {
        let store = cpo_common::store::open("mem://").unwrap();
        let key = Key::new("incoming/weekly/c.csv").unwrap();
        let csv = "customer_id,recency_days,frequency,monetary_value,tier,location\nC1,3,4,120.5,gold,Paris\n";
        store.put(&key, bytes::Bytes::from(csv)).await.unwrap();
        let starter = Recording::default();
        let opts = TriggerOptions::default();
        start_for_key(store.as_ref(), &starter, key.as_str(), &opts).await.unwrap();
        start_for_key_sharded(store.as_ref(), &starter, key.as_str(), &opts, true).await.unwrap();
        let inputs: Vec<Value> = starter.0.lock().unwrap().iter().map(|s| s.input.clone()).collect();
        assert_eq!(inputs.len(), 2);
        assert_eq!((&inputs[0]["sharded"], &inputs[1]["sharded"]), (&json!(false), &json!(true)));
        assert_eq!(inputs[0]["run_id"], inputs[1]["run_id"], "sharding does not change the run");
    }
}

#[cfg(test)]
mod weekly_dates {
    use super::tests::Recording;
    use super::*;
    use crate::handler::{handle_value, Deps};
    use std::sync::Arc;

    /// Weekly fires on an unchanged customers file are different weeks: each is its own run, dated by the fire
    /// time (EventBridge Scheduler's `<aws.scheduler.scheduled-time>`, or an EventBridge rule's `time`).
    #[tokio::test]
    async fn weekly_fires_on_an_unchanged_file_are_separate_runs_dated_by_the_fire_time() {
        let store = cpo_common::store::open("mem://").unwrap();
        let key = Key::new("incoming/weekly/c.csv").unwrap();
        let csv = "customer_id,recency_days,frequency,monetary_value\nC1,3,4,120.5\n";
        store.put(&key, bytes::Bytes::from(csv)).await.unwrap();
        let starter = Arc::new(Recording::default());
        let deps = Deps::for_store(store.clone(), starter.clone(), Some("b".into())).unwrap();
        for time in ["2026-11-23T08:00:00Z", "2026-11-30T08:00:00Z"] {
            handle_value(json!({"campaign": "weekly", "scheduled_time": time}), &deps).await.unwrap();
        }
        let mut rule = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "1", "time": "2026-12-07T08:00:00Z", "region": "eu-west-1", "resources": [],
            "detail": {"campaign": "weekly"}});
        handle_value(rule.clone(), &deps).await.unwrap();
        rule["time"] = json!("2026-12-07T09:00:00Z");
        handle_value(rule, &deps).await.unwrap();
        let names: Vec<String> = starter.0.lock().unwrap().iter().map(|s| s.name.clone()).collect();
        assert_eq!(names.len(), 4);
        for (name, date) in names.iter().zip(["20261123", "20261130", "20261207", "20261207"]) {
            assert!(name.starts_with(&format!("weekly-{date}-")), "{name} is not dated {date}");
        }
        assert_eq!(names[2], names[3], "two fires on one day are one run");
        let run = run::load(store.as_ref(), &names[1]).await.unwrap();
        assert_eq!(run.date.to_string(), "2026-11-30", "the send date is the fire date");
    }
}

//! The cloud, emulated on one machine: the state machine definitions of `infra/statemachine/` executed by the
//! local runner, and a [`Starter`] that the trigger's own routing code calls — so `cpo run` goes through the
//! same code path as an object drop in a bucket.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use async_trait::async_trait;
use cpo_common::keys::{Key, RunKeys};
use cpo_common::store::recording::AccessLog;
use cpo_common::store::{DynStore, ObjectMeta};
use cpo_common::{Ctx, StepError};
use cpo_trigger::{Machine, Start, Started, Starter, TriggerOptions};
use serde_json::Value;

use crate::asl::{self, StateMachine};
use crate::metrics::Recorder;
use crate::progress::Display;
use crate::tasks::LocalTasks;

/// The definitions, compiled in from `infra/statemachine/` (the only place the order of steps is written).
const CAMPAIGN_ASL: &str = include_str!("../../infra/statemachine/campaign.asl.json");
const ANALYSIS_ASL: &str = include_str!("../../infra/statemachine/analysis.asl.json");

/// The bucket name `${DataBucket}` becomes locally: the runner's `s3:getObject` ItemReader ignores the bucket and
/// reads the key from its own store, whose root plays the bucket.
pub const LOCAL_BUCKET: &str = "local";

/// The template's non-function `DefinitionSubstitutions`, applied as CloudFormation would: the store's root is the
/// bucket, so the key prefix is empty. `${…FunctionArn}` stays: the local task invoker resolves it by name.
pub fn substitute(definition: &str) -> String {
    definition.replace("${DataBucket}", LOCAL_BUCKET).replace("${DataPrefix}", "")
}

/// Load a machine: from `dir` when given (to try a modified definition), else the compiled-in copy.
pub fn machine(which: Machine, dir: Option<&PathBuf>) -> anyhow::Result<StateMachine> {
    let file = match which {
        Machine::Campaign => "campaign.asl.json",
        Machine::Analysis => "analysis.asl.json",
    };
    Ok(match dir {
        Some(d) => {
            let path = d.join(file);
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            StateMachine::parse(&substitute(&text), &path.display().to_string())?
        }
        None => StateMachine::parse(
            &substitute(match which {
                Machine::Campaign => CAMPAIGN_ASL,
                Machine::Analysis => ANALYSIS_ASL,
            }),
            &format!("infra/statemachine/{file}"),
        )?,
    })
}

/// One finished local execution.
#[derive(Debug, Clone)]
pub struct Finished {
    pub start: Start,
    pub result: Result<Value, asl::Failure>,
}

/// Executes started machines in-process, one after another, and remembers what ran.
pub struct LocalStarter {
    ctx: Ctx,
    definitions: Option<PathBuf>,
    progress: Option<Arc<Display>>,
    recorder: Option<Arc<Recorder>>,
    time_scale: f64,
    access: Option<Arc<AccessLog>>,
    pub finished: Mutex<Vec<Finished>>,
}

impl LocalStarter {
    pub fn new(ctx: Ctx, definitions: Option<PathBuf>) -> Self {
        Self {
            ctx,
            definitions,
            progress: std::io::stderr().is_terminal().then(Display::stderr),
            recorder: None,
            time_scale: 1.0,
            access: None,
            finished: Mutex::new(Vec::new()),
        }
    }

    /// Scale Wait states and Retry backoffs of every execution (1 = as written, 0 = no waiting).
    pub fn with_time_scale(mut self, scale: f64) -> Self {
        self.time_scale = scale;
        self
    }

    /// Measure every Task of every execution into `recorder`.
    pub fn with_recorder(mut self, recorder: Option<Arc<Recorder>>) -> Self {
        self.recorder = recorder;
        self
    }

    /// Record every store operation of every Task (per function) and ItemReader (per machine) into `log`.
    pub fn with_access_log(mut self, log: Arc<AccessLog>) -> Self {
        self.access = Some(log);
        self
    }

    /// Show progress on `display` (by default: on standard error when it is a terminal, else nothing).
    pub fn with_progress(mut self, display: Option<Arc<Display>>) -> Self {
        self.progress = display;
        self
    }
}

#[async_trait]
impl Starter for LocalStarter {
    async fn start(&self, start: &Start) -> Result<Started, StepError> {
        let m = machine(start.machine, self.definitions.as_ref()).map_err(|e| StepError::input(format!("{e:#}")))?;
        if let Some(d) = &self.progress {
            d.println(&format!("{} machine, execution {}", label(start.machine), start.name));
        }
        let on_event = self.progress.as_ref().map(Display::sink);
        let opts = asl::Options { execution_name: start.name.clone(), time_scale: self.time_scale, on_event };
        let invoker = Arc::new(
            LocalTasks::new(self.ctx.clone())
                .with_recorder(self.recorder.clone())
                .with_access_log(self.access.clone(), &format!("machine:{}", label(start.machine))),
        );
        let result = asl::execute(&m, start.input.clone(), invoker, &opts).await;
        record_execution(&self.ctx.store, start, &result).await;
        if let Ok(mut f) = self.finished.lock() {
            f.push(Finished { start: start.clone(), result });
        }
        Ok(Started::Started)
    }
}

fn label(m: Machine) -> &'static str {
    match m {
        Machine::Campaign => "campaign",
        Machine::Analysis => "analysis",
    }
}

/// Objects under a prefix, by key → etag (to see what an execution wrote).
pub async fn snapshot(store: &DynStore, prefix: &Key) -> anyhow::Result<BTreeMap<String, Option<String>>> {
    Ok(store.list(prefix).await?.into_iter().map(|o: ObjectMeta| (o.key, o.etag)).collect())
}

/// Start `key` through the trigger's routing, then emulate the trigger for every object the execution wrote
/// under a watched prefix (`runs/<run_id>/outcomes/`), exactly as the bucket notifications would.
/// Returns the run id.
pub async fn start_and_follow(
    store: &DynStore,
    starter: &LocalStarter,
    key: &Key,
    opts: &TriggerOptions,
) -> anyhow::Result<String> {
    start_and_follow_sharded(store, starter, key, opts, false).await
}

/// [`start_and_follow`], forcing the sharded segmentation of the campaign run when `sharded` (`cpo run --sharded`).
pub async fn start_and_follow_sharded(
    store: &DynStore,
    starter: &LocalStarter,
    key: &Key,
    opts: &TriggerOptions,
    sharded: bool,
) -> anyhow::Result<String> {
    let watched = match cpo_trigger::route(key.as_str()) {
        cpo_trigger::Route::Campaign { .. } => {
            // `prepare` is idempotent: the trigger's own call below finds the same run.
            let start_opts = opts.start_options();
            let run = cpo_common::run::prepare(store.as_ref(), key, &start_opts).await?;
            let prefix = RunKeys::new(&run.run_id)?.outcomes_prefix();
            let before = snapshot(store, &prefix).await?;
            Some((prefix, before))
        }
        _ => None,
    };
    let started = cpo_trigger::start_for_key_sharded(store.as_ref(), starter, key.as_str(), opts, sharded).await?;
    let Some((start, _)) = started else {
        anyhow::bail!("{key}: the trigger starts nothing for this key (expected incoming/<campaign>/<file> or runs/<run_id>/outcomes/<file>)");
    };
    fail_on_error(starter)?;
    if let Some((prefix, before)) = watched {
        for (k, etag) in snapshot(store, &prefix).await? {
            if before.get(&k) != Some(&etag) {
                cpo_trigger::start_for_key(store.as_ref(), starter, &k, opts).await?;
                fail_on_error(starter)?;
            }
        }
    }
    Ok(start.input.get("run_id").and_then(Value::as_str).unwrap_or_default().to_string())
}

/// A local execution that failed, with the error and cause Step Functions would report.
#[derive(Debug, thiserror::Error)]
#[error("execution {execution} failed: {error}: {cause}")]
pub struct ExecutionFailed {
    pub execution: String,
    pub error: String,
    pub cause: String,
}

/// Turn the last execution's failure into the CLI's error (`{"error","cause"}` as Step Functions reports it).
fn fail_on_error(starter: &LocalStarter) -> anyhow::Result<()> {
    let last = starter.finished.lock().ok().and_then(|f| f.last().cloned());
    match last {
        Some(Finished { start, result: Err(f) }) => {
            Err(ExecutionFailed { execution: start.name, error: f.error, cause: f.cause }.into())
        }
        _ => Ok(()),
    }
}

/// How a local execution of a run ended: `runs/<run_id>/executions/<machine>.json` (`status`, `error`,
/// `cause`, `finished_at`), what Step Functions' execution history tells in the cloud — `cpo runs` reads it
/// to show a failed run as failed. Written when an execution fails, and when one succeeds after a failure;
/// a run that never failed has none, so a cached re-run writes nothing under the run (the report step's
/// identity covers the run's objects). Not writing it never fails the command.
pub fn execution_key(run_id: &str, machine: Machine) -> anyhow::Result<Key> {
    Ok(RunKeys::new(run_id)?.prefix().join(&format!("executions/{}.json", label(machine)))?)
}

/// `runs/<run_id>/executions/<machine>.json` (fields in the order the JSON keys sort).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExecutionRecord {
    pub cause: Option<String>,
    pub error: Option<String>,
    pub execution: String,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    pub status: ExecutionStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    Succeeded,
    Failed,
}

async fn record_execution(store: &DynStore, start: &Start, result: &Result<Value, asl::Failure>) {
    let Some(run_id) = start.input.get("run_id").and_then(Value::as_str) else { return };
    let Ok(key) = execution_key(run_id, start.machine) else { return };
    let (status, error, cause) = match result {
        Ok(_) => {
            let before: Option<ExecutionRecord> =
                cpo_common::store::StoreExt::get_json_opt(store.as_ref(), &key).await.ok().flatten();
            if before.is_none_or(|b| b.status == ExecutionStatus::Succeeded) {
                return;
            }
            (ExecutionStatus::Succeeded, None, None)
        }
        Err(f) => (ExecutionStatus::Failed, Some(f.error.clone()), Some(f.cause.clone())),
    };
    let doc = ExecutionRecord { execution: start.name.clone(), status, error, cause, finished_at: chrono::Utc::now() };
    if let Err(e) = cpo_common::store::StoreExt::put_json(store.as_ref(), &key, &doc).await {
        tracing::warn!(%key, error = %e, "cannot record how the execution ended");
    }
}

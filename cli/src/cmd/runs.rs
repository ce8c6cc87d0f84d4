//! `cpo runs`: the runs in a store, newest first, with their status and report. Read-only: a store that does
//! not exist is reported as empty, not created.

use std::process::ExitCode;

use cpo_common::keys::{Key, RunKeys};
use cpo_common::store::StoreExt;
use cpo_trigger::Machine;
use serde_json::{json, Value};

use crate::local::{ExecutionRecord, ExecutionStatus};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cpo runs
  cpo runs --store file://./cpo-data --json
  CPO_STORE=s3://my-bucket cpo runs")]
pub struct Args {
    /// Store URL: file://DIR, mem://, s3://bucket/prefix, az://container/prefix.
    #[arg(long, default_value = super::DEFAULT_STORE, env = super::STORE_ENV)]
    pub store: String,
    /// Print the runs as a JSON array (run_id, campaign, created_at, status, error, report).
    #[arg(long)]
    pub json: bool,
}

/// Where a run stands, as `cpo runs` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    Failed,
    Analyzed,
    AnalysisFailed,
    AwaitingOutcomes,
    /// Started and not finished: still running elsewhere, or stopped without a word (a killed process).
    Incomplete,
}

impl RunState {
    fn label(self) -> &'static str {
        match self {
            RunState::Failed => "failed",
            RunState::Analyzed => "analyzed",
            RunState::AnalysisFailed => "analysis failed",
            RunState::AwaitingOutcomes => "awaiting outcomes",
            RunState::Incomplete => "incomplete",
        }
    }
}

/// Where a run stands, from what it left in the store, and the error of a failed execution.
async fn status(store: &cpo_common::store::DynStore, keys: &RunKeys) -> anyhow::Result<(RunState, Option<String>)> {
    let failed = |m| async move {
        let key = crate::local::execution_key(keys.run_id(), m)?;
        anyhow::Ok(store.get_json_opt::<ExecutionRecord>(&key).await?.filter(|e| e.status == ExecutionStatus::Failed))
    };
    if let Some(failed) = failed(Machine::Campaign).await? {
        return Ok((RunState::Failed, failed.error));
    }
    if store.exists(&keys.analysis()).await? {
        return Ok((RunState::Analyzed, None));
    }
    if let Some(failed) = failed(Machine::Analysis).await? {
        return Ok((RunState::AnalysisFailed, failed.error));
    }
    if store.exists(&keys.manifest()).await? {
        return Ok((RunState::AwaitingOutcomes, None));
    }
    Ok((RunState::Incomplete, None))
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(store) = super::open_existing_store(&args.store)? else {
        return empty(&args, "it does not exist yet");
    };
    let mut rows = Vec::new();
    for o in store.list(&Key::new("runs/")?).await? {
        let Some(run_id) = o.key.strip_prefix("runs/").and_then(|k| k.strip_suffix("/input.json")) else {
            continue;
        };
        let keys = RunKeys::new(run_id)?;
        let input: Value = store.get_json(&keys.input()).await?;
        let (status, error) = status(&store, &keys).await?;
        let report = keys.report("index.html");
        let report =
            if store.exists(&report).await? { json!(crate::summary::location(&store, &report)) } else { Value::Null };
        rows.push(json!({
            "run_id": run_id,
            "campaign": input["campaign"],
            "created_at": input["created_at"],
            "status": status.label(),
            "error": error,
            "report": report,
        }));
    }
    if rows.is_empty() {
        return empty(&args, "it holds no runs");
    }
    rows.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = rows.iter().filter_map(|r| r["run_id"].as_str()).map(str::len).max().unwrap_or(0).max(6);
    crate::outln!("{:<width$}  {:<19}  {:<17}  REPORT", "RUN_ID", "CREATED (UTC)", "STATUS")?;
    for r in &rows {
        let status = match r["error"].as_str() {
            Some(e) => format!("{} ({e})", r["status"].as_str().unwrap_or_default()),
            None => r["status"].as_str().unwrap_or_default().to_string(),
        };
        crate::outln!(
            "{:<width$}  {:<19}  {:<17}  {}",
            r["run_id"].as_str().unwrap_or_default(),
            r["created_at"].as_str().unwrap_or_default().get(..19).unwrap_or_default().replace('T', " "),
            status,
            r["report"].as_str().unwrap_or("-")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// No runs: `[]` with `--json`, else one sentence saying why.
fn empty(args: &Args, why: &str) -> anyhow::Result<ExitCode> {
    if args.json {
        crate::outln!("[]")?;
    } else {
        crate::outln!("no runs in {} ({why}); start one with `cpo run --input FILE`", args.store)?;
    }
    Ok(ExitCode::SUCCESS)
}

//! `cpo runs`: the runs in a store, newest first, with their status and report.

use std::process::ExitCode;

use cpo_common::keys::{Key, RunKeys};
use cpo_common::store::StoreExt;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value = super::DEFAULT_STORE, env = "CPO_STORE")]
    pub store: String,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::open_store(&args.store)?;
    let mut rows = Vec::new();
    for o in store.list(&Key::new("runs/")?).await? {
        let Some(run_id) = o.key.strip_prefix("runs/").and_then(|k| k.strip_suffix("/input.json")) else {
            continue;
        };
        let keys = RunKeys::new(run_id)?;
        let input: Value = store.get_json(&keys.input()).await?;
        let manifest: Option<Value> = store.get_json_opt(&keys.manifest()).await?;
        let analysis = store.exists(&keys.analysis()).await?;
        let status = match (&manifest, analysis) {
            (_, true) => "analyzed",
            (Some(_), false) => "awaiting outcomes",
            (None, _) => "incomplete",
        };
        rows.push(serde_json::json!({
            "run_id": run_id,
            "campaign": input["campaign"],
            "created_at": input["created_at"],
            "status": status,
            "report": crate::summary::location(&store, &keys.report("index.html")),
        }));
    }
    rows.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        for r in &rows {
            crate::outln!(
                "{:<40} {:<20} {:<18} {}",
                r["run_id"].as_str().unwrap_or_default(),
                r["created_at"].as_str().unwrap_or_default().get(..19).unwrap_or_default(),
                r["status"].as_str().unwrap_or_default(),
                r["report"].as_str().unwrap_or_default()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

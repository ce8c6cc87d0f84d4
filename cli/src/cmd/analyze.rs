//! `cpo analyze`: put an outcomes file under a run's `outcomes/` and run the analysis machine locally.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bytes::Bytes;
use cpo_common::keys::RunKeys;
use cpo_common::Ctx;
use cpo_trigger::TriggerOptions;

use crate::local::{start_and_follow, LocalStarter};
use crate::summary;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value = super::DEFAULT_STORE, env = "CPO_STORE")]
    pub store: String,
    /// The run the outcomes belong to.
    #[arg(long)]
    pub run: String,
    /// Engagement events (CSV or JSON lines: customer_id, event, timestamp).
    #[arg(long)]
    pub outcomes: PathBuf,
    /// Directory with campaign.asl.json / analysis.asl.json to run instead of the compiled-in definitions.
    #[arg(long)]
    pub definitions: Option<PathBuf>,
    /// Print the analysis as JSON (`results`, `srm_p_value`, `decision`, …).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::open_store(&args.store)?;
    let keys = RunKeys::new(&args.run)?;
    cpo_common::run::load(store.as_ref(), keys.run_id()).await?;
    let body = std::fs::read(&args.outcomes)
        .with_context(|| format!("cannot read outcomes file {}", args.outcomes.display()))?;
    let name = super::safe_file_name(&args.outcomes, "outcomes.csv");
    let key = keys.outcomes(&name)?;
    store.put(&key, Bytes::from(body)).await?;
    let starter = LocalStarter::new(Ctx::new(store.clone()), args.definitions.clone());
    start_and_follow(&store, &starter, &key, &TriggerOptions::default()).await?;
    summary::print_analysis(&store, keys.run_id(), args.json).await?;
    Ok(ExitCode::SUCCESS)
}

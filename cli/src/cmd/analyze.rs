//! `cpo analyze`: drop outcomes files under a run's `outcomes/` (under content-derived names, so a file never
//! replaces another) and run the analysis machine locally; then say, per file, what ingest made of it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bytes::Bytes;
use cpo_common::keys::{sha256_hex, RunKeys};
use cpo_common::model::experiment::{IngestSummary, RefusedFile};
use cpo_common::store::{DynStore, StoreExt};
use cpo_common::Ctx;
use cpo_trigger::TriggerOptions;

use crate::local::{start_and_follow, LocalStarter};
use crate::summary;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value = super::DEFAULT_STORE, env = super::STORE_ENV)]
    pub store: String,
    /// The run the outcomes belong to.
    #[arg(long)]
    pub run: String,
    /// Engagement events (CSV or JSON lines; columns as the campaign's `outcomes` section maps them). Repeat
    /// for several files.
    #[arg(long, required = true, num_args = 1..)]
    pub outcomes: Vec<PathBuf>,
    /// Directory with campaign.asl.json / analysis.asl.json to run instead of the compiled-in definitions.
    #[arg(long)]
    pub definitions: Option<PathBuf>,
    /// Print the analysis as JSON (`results`, `srm_p_value`, `decision`, …); the per-file lines go to stderr.
    #[arg(long)]
    pub json: bool,
}

/// One file of this command.
struct Given {
    path: PathBuf,
    sha256: String,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::open_store(&args.store)?;
    let keys = RunKeys::new(&args.run)?;
    cpo_common::run::load(store.as_ref(), keys.run_id()).await?;
    let mut given = Vec::new();
    let mut last = None;
    for path in &args.outcomes {
        let body = std::fs::read(path).with_context(|| format!("cannot read outcomes file {}", path.display()))?;
        let sha256 = sha256_hex(&body);
        // Named by content: a second `events.csv` is another object, and the same file again is the same one.
        let name = super::safe_file_name(path, "outcomes.csv");
        let key = keys.outcomes(&format!("{}-{name}", &sha256[..16]))?;
        store.put_if_absent(&key, Bytes::from(body)).await?;
        given.push(Given { path: path.clone(), sha256 });
        last = Some(key);
    }
    let Some(key) = last else { anyhow::bail!("no outcomes file given") };
    let starter = LocalStarter::new(Ctx::new(store.clone()), args.definitions.clone());
    let machine = start_and_follow(&store, &starter, &key, &TriggerOptions::default()).await;
    let refused = report_files(&store, &keys, &given, args.json).await?;
    if refused.len() == given.len() {
        anyhow::bail!(
            "every outcomes file given was refused ({}): {}",
            summary::location(&store, &keys.ingest_refused_prefix()),
            refused.join(" | ")
        );
    }
    machine?;
    summary::print_analysis(&store, keys.run_id(), args.json).await?;
    Ok(ExitCode::SUCCESS)
}

/// Per file: accepted, rejected, ignored, duplicate and unknown-customer counts, or why it was refused. Returns
/// the reasons of the given files that were refused.
async fn report_files(store: &DynStore, keys: &RunKeys, given: &[Given], json: bool) -> anyhow::Result<Vec<String>> {
    let line = |s: String| -> anyhow::Result<()> {
        if json {
            crate::errln!("{s}");
            Ok(())
        } else {
            Ok(crate::outln!("{s}")?)
        }
    };
    let summary: Option<IngestSummary> = store.get_json_opt(&keys.ingest("summary.json")).await?;
    let mut refused = Vec::new();
    for g in given {
        let shown = g.path.display();
        if let Some(r) = store.get_json_opt::<RefusedFile>(&keys.ingest_refused(&g.sha256)).await? {
            line(format!("refused    {shown}: {}", r.reason))?;
            refused.push(r.reason);
            continue;
        }
        match summary.as_ref().and_then(|s| s.files.iter().find(|f| f.sha256 == g.sha256)) {
            Some(f) => line(format!(
                "outcomes   {shown}: {} accepted, {} rejected, {} ignored, {} duplicates, {} unknown customers",
                f.accepted, f.rejected, f.ignored, f.duplicates, f.unknown_customers
            ))?,
            None if store.exists(&keys.ingest_accepted(&g.sha256)).await? => {
                line(format!("outcomes   {shown}: accepted, not in this analysis (simulated outcomes set aside)"))?
            }
            None => line(format!("outcomes   {shown}: not ingested (see the error below)"))?,
        }
    }
    if let Some(s) = &summary {
        let mine = |sha: &str| given.iter().any(|g| g.sha256 == sha);
        for f in s.files.iter().filter(|f| !mine(&f.sha256)) {
            line(format!(
                "           also {}: {} accepted, {} rejected, {} duplicates, {} unknown customers",
                f.source, f.accepted, f.rejected, f.duplicates, f.unknown_customers
            ))?;
        }
        for r in s.refused.iter().filter(|r| !mine(&r.sha256)) {
            line(format!("           refused earlier {}: {}", r.source, r.reason))?;
        }
        let source = serde_json::to_value(s.source)?;
        line(format!(
            "analysed   {} outcomes ({} files){}",
            source.as_str().unwrap_or("no"),
            s.files.len(),
            if s.set_aside.is_empty() { String::new() } else { format!("; {} set aside", s.set_aside.len()) }
        ))?;
        if s.rejected > 0 {
            line(format!("           rejected rows: {}", summary::location(store, &keys.ingest_rejected())))?;
        }
    }
    Ok(refused)
}

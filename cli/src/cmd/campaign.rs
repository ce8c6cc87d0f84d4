//! `cpo campaign report --campaign NAME`: the campaign across weeks (docs/experiment.md, "The campaign across
//! weeks"), written to `campaigns/<campaign>/report/index.html` and `report.json` in the store.

use std::process::ExitCode;

use cpo_common::keys;
use cpo_common::store::StoreExt;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Per segment: each arm's rate by week, the weights in force, cumulative successes against a fixed
    /// split, each tone against control stratified by week, and the current best arm.
    #[command(after_help = "Examples:
  cpo campaign report --campaign weekly
  cpo campaign report --campaign weekly --json > weeks.json")]
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Campaign name.
    #[arg(long)]
    pub campaign: String,
    /// Store URL: file://DIR, mem://, s3://bucket/prefix, az://container/prefix.
    #[arg(long, default_value = super::DEFAULT_STORE, env = super::STORE_ENV)]
    pub store: String,
    /// Print the report's JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Report(a) => report(a).await,
    }
}

async fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    keys::check_id("campaign", &args.campaign)?;
    let Some(store) = super::open_existing_store(&args.store)? else {
        anyhow::bail!("store {}: does not exist; campaign {} has no runs", args.store, args.campaign);
    };
    let doc = cpo_experiment::weeks::build(store.as_ref(), &args.campaign).await?;
    if doc.weeks.is_empty() {
        anyhow::bail!("campaign {}: no runs in the ledger yet", args.campaign);
    }
    let prefix = keys::Key::new(format!("campaigns/{}/report/", args.campaign))?;
    let html_key = prefix.join("index.html")?;
    store.put_json(&prefix.join("report.json")?, &doc).await?;
    store.put(&html_key, cpo_report::weeks::render_html(&doc).into()).await?;
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!("campaign {}: {} weeks, metric {}", doc.campaign, doc.weeks.len(), doc.metric)?;
    for s in &doc.segments {
        let best = s
            .best
            .as_ref()
            .map(|b| format!("best {} ({:.1}%)", b.arm, b.prob_best.get(&b.arm).copied().unwrap_or(0.0) * 100.0))
            .unwrap_or_else(|| "no analysed week yet".into());
        let cum = s
            .cumulative
            .last()
            .map(|c| format!("{} successes vs {:.1} under a fixed split", c.actual, c.fixed_split))
            .unwrap_or_default();
        crate::outln!("  {:<20} {best}; {cum}", s.segment)?;
    }
    crate::outln!("report: {}", crate::summary::location(&store, &html_key))?;
    Ok(ExitCode::SUCCESS)
}

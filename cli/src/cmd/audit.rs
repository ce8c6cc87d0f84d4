//! `cpo audit verify RUN`: checks a run's hash-chained safety audit trail for edits, removals, reordering
//! and truncation (against the count and last hash the safety step recorded).

use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Verify a run's audit trail; exit 0 when intact, 1 when anything is wrong.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The run_id.
    pub run: String,
    /// Store URL (file://DIR, mem://, s3://bucket/prefix, az://container/prefix).
    #[arg(long, default_value = "file://./cpo-data")]
    pub store: String,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Verify(a) => verify(a).await,
    }
}

async fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let store = cpo_common::store::open(&a.store).with_context(|| format!("opening store {}", a.store))?;
    let report = cpo_safety::audit::verify(store.as_ref(), &a.run).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.ok() {
        println!(
            "audit trail of {} intact: {} record(s), last hash {} ({})",
            report.run_id,
            report.records,
            report.last_hash.as_deref().unwrap_or("-"),
            report.key
        );
    } else {
        eprintln!("audit trail of {} FAILED verification ({}):", report.run_id, report.key);
        for p in &report.problems {
            eprintln!("  {p}");
        }
    }
    Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

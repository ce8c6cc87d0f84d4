//! `cpo ledger CAMPAIGN`: a campaign's weeks, oldest first, from `campaigns/<campaign>/ledger/` — date, run,
//! who was eligible, suppressed (by reason), deferred, held out and sent.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Campaign name.
    pub campaign: String,
    /// Store URL: file://DIR, mem://, s3://bucket/prefix, az://container/prefix.
    #[arg(long, default_value = super::DEFAULT_STORE, env = super::STORE_ENV)]
    pub store: String,
    /// Print the weeks as a JSON array (the ledger entries).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Reading never creates a missing `file://` store.
    let entries = match super::open_existing_store(&args.store)? {
        Some(store) => cpo_experiment::ledger::read(store.as_ref(), &args.campaign).await?,
        None => Vec::new(),
    };
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&entries)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        crate::outln!("campaign {}: no runs in the ledger yet", args.campaign)?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!(
        "{:<10}  {:<40}  {:>9}  {:>10}  {:>8}  {:>8}  {:>9}  suppressed by reason",
        "date",
        "run",
        "eligible",
        "suppressed",
        "deferred",
        "held out",
        "sent"
    )?;
    for e in &entries {
        let c = &e.counts;
        let reasons: Vec<String> = c.suppressed.iter().map(|(r, n)| format!("{r} {n}")).collect();
        crate::outln!(
            "{:<10}  {:<40}  {:>9}  {:>10}  {:>8}  {:>8}  {:>9}  {}",
            e.date,
            e.run_id,
            c.eligible,
            c.suppressed.values().sum::<u64>(),
            c.deferred,
            c.held_out,
            c.sent,
            if reasons.is_empty() { "-".to_string() } else { reasons.join(", ") }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

//! `cpo audit verify [RUN]`: checks the store's hash-chained safety audit trail for edits, removals,
//! reordering, truncation and forks across runs and days; with a run, also that run's trail against what its
//! safety step recorded and published (`steps/safety.json`, `safety.json`).

use std::process::ExitCode;

use anyhow::Context;
use cpo_common::store::StoreExt;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Verify the audit chain (and a run's trail when RUN is given); exit 0 when intact, 1 when anything is wrong.
    #[command(after_help = "Examples:
  cpo audit verify
  cpo audit verify weekly-20261125-0123456789ab
  CPO_STORE=s3://my-bucket cpo audit verify weekly-20261125-0123456789ab --json")]
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// A run_id whose trail to check as well as the chain.
    pub run: Option<String>,
    /// Store URL (file://DIR, mem://, s3://bucket/prefix, az://container/prefix).
    #[arg(long, default_value = super::DEFAULT_STORE, env = super::STORE_ENV)]
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
    let store = super::open_existing_store(&a.store)
        .with_context(|| format!("opening store {}", a.store))?
        .ok_or_else(|| anyhow::anyhow!("store {} does not exist", a.store))?;
    if let Some(run_id) = &a.run {
        let keys = cpo_common::keys::RunKeys::new(run_id).map_err(|e| anyhow::anyhow!("run {run_id:?}: {e}"))?;
        anyhow::ensure!(
            store.exists(&keys.input()).await?,
            "no such run {run_id:?} in {} (`cpo runs` lists the runs)",
            a.store
        );
    }
    let chain = cpo_safety::audit::verify_chain(store.as_ref()).await?;
    let run = match &a.run {
        Some(run_id) => Some(cpo_safety::audit::verify(store.as_ref(), run_id).await?),
        None => None,
    };
    let ok = chain.ok() && run.as_ref().is_none_or(|r| r.ok());
    if a.json {
        crate::outln!("{}", serde_json::to_string_pretty(&serde_json::json!({"ok": ok, "chain": chain, "run": run}))?)?;
        return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    if chain.ok() {
        crate::outln!(
            "audit chain intact: {} object(s), {} record(s), head {}",
            chain.objects,
            chain.records,
            chain.head.as_deref().unwrap_or("-")
        )?;
    } else {
        crate::errln!("audit chain FAILED verification:");
        for p in &chain.problems {
            crate::errln!("  {p}");
        }
    }
    if let Some(report) = &run {
        if report.ok() {
            crate::outln!(
                "audit trail of {} intact: {} record(s), last hash {} ({})",
                report.run_id,
                report.records,
                report.last_hash.as_deref().unwrap_or("-"),
                report.key
            )?;
        } else {
            crate::errln!("audit trail of {} FAILED verification ({}):", report.run_id, report.key);
            for p in &report.problems {
                crate::errln!("  {p}");
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpo_common::keys::RunKeys;
    use cpo_common::model::safety::SafetyDoc;
    use cpo_common::run::{self, StartOptions};
    use cpo_common::store::StoreExt;
    use cpo_common::{Ctx, Key, StepInput};

    #[tokio::test]
    async fn verify_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let store = cpo_common::store::open(&url).unwrap();
        let key = Key::new("incoming/weekly/customers.csv").unwrap();
        store.put(&key, bytes::Bytes::from_static(b"customer_id\nC1\n")).await.unwrap();
        let run_id = run::prepare(store.as_ref(), &key, &StartOptions::default()).await.unwrap().run_id;
        let input = StepInput { run_id: run_id.clone(), ..Default::default() };
        cpo_safety::handle(input, &Ctx::new(store.clone())).await.unwrap();
        let args = |json| VerifyArgs { run: Some(run_id.clone()), store: url.clone(), json };
        assert_eq!(verify(args(false)).await.unwrap(), ExitCode::SUCCESS);

        let doc: SafetyDoc = store.get_json(&RunKeys::new(&run_id).unwrap().safety()).await.unwrap();
        let audit = Key::new(doc.audit_key).unwrap();
        let text = String::from_utf8(store.get(&audit).await.unwrap().to_vec()).unwrap();
        store.put(&audit, bytes::Bytes::from(text.replace("\"approved\"", "\"blocked\""))).await.unwrap();
        assert_eq!(verify(args(true)).await.unwrap(), ExitCode::from(1));
        assert!(verify(VerifyArgs { run: Some("no-such-run".into()), store: url.clone(), json: false }).await.is_err());
    }
}

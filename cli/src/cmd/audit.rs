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
        let args = |json| VerifyArgs { run: run_id.clone(), store: url.clone(), json };
        assert_eq!(verify(args(false)).await.unwrap(), ExitCode::SUCCESS);

        let doc: SafetyDoc = store.get_json(&RunKeys::new(&run_id).unwrap().safety()).await.unwrap();
        let audit = Key::new(doc.audit_key).unwrap();
        let text = String::from_utf8(store.get(&audit).await.unwrap().to_vec()).unwrap();
        store.put(&audit, bytes::Bytes::from(text.replace("\"approved\"", "\"blocked\""))).await.unwrap();
        assert_eq!(verify(args(true)).await.unwrap(), ExitCode::from(1));
        assert!(verify(VerifyArgs { run: "no-such-run".into(), store: url.clone(), json: false }).await.is_err());
    }
}

//! `cpo render --run RUN [--store URL] (--customer ID | --all) [--out FILE]`: fully rendered messages (one JSON
//! object per line: customer_id, email, arm, variant_id, subject, preheader, body, cta) from a run's send list
//! and `send/templates.json`, for a proof read or an email service that cannot merge fields itself.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use cpo_experiment::render::{render_run, Selection};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["customer", "all"])))]
pub struct Args {
    /// The run whose messages to render.
    #[arg(long = "run", value_name = "RUN_ID")]
    pub run_id: String,
    /// Store URL (file://DIR, mem://, s3://bucket/prefix, az://container/prefix).
    #[arg(long, default_value = super::DEFAULT_STORE, env = super::STORE_ENV)]
    pub store: String,
    /// Render the message of one customer.
    #[arg(long, value_name = "ID")]
    pub customer: Option<String>,
    /// Render every message of the send list.
    #[arg(long)]
    pub all: bool,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = cpo_common::store::open(&args.store).with_context(|| format!("opening store {}", args.store))?;
    let which = match args.customer {
        Some(id) => Selection::Customer(id),
        None => Selection::All,
    };
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(crate::out::Stdout)),
    };
    let n = render_run(store.as_ref(), &args.run_id, &which, &mut out).await?;
    out.flush().context("writing rendered messages")?;
    if let Some(path) = &args.out {
        crate::errln!("{n} rendered message(s) written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn needs_exactly_one_selection() {
        assert!(Cli::try_parse_from(["cpo", "--run", "r"]).is_err());
        assert!(Cli::try_parse_from(["cpo", "--run", "r", "--all", "--customer", "C1"]).is_err());
        let c = Cli::try_parse_from(["cpo", "--run", "r", "--customer", "C1"]).unwrap();
        assert_eq!(c.args.customer.as_deref(), Some("C1"));
    }

    #[tokio::test]
    async fn unknown_run_fails_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let args = Args {
            run_id: "weekly-20261125-0123456789ab".into(),
            store: format!("file://{}", dir.path().display()),
            customer: None,
            all: true,
            out: Some(dir.path().join("out.jsonl")),
        };
        let e = run(args).await.unwrap_err();
        assert!(format!("{e:#}").contains("templates.json"), "{e:#}");
    }
}

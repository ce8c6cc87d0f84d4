//! `cpo`: the command line of CPO. Parses arguments and hands each subcommand to `cpo::cmd`.
//! Exit codes: 0 ok, 1 the job failed (message on stderr), 2 bad usage.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cpo::cmd;

#[derive(Debug, Parser)]
#[command(name = "cpo", version, about = "Customer Personalization Orchestrator")]
struct Cli {
    /// Log more (-v info, -vv debug); logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the campaign state machine locally on a customers file (and the analysis when outcomes appear).
    Run(cmd::run::Args),
    /// Put an outcomes file under a run and run the analysis state machine locally.
    Analyze(cmd::analyze::Args),
    /// State machine tools (`cpo sfn run FILE`).
    Sfn(cmd::sfn::Args),
    /// Generate synthetic data (`cpo gen customers`).
    Gen(cmd::gen::Args),
    /// Screen text or evaluate the screener (`cpo safety screen|eval`).
    Safety(cmd::safety::Args),
    /// Audit trail tools (`cpo audit verify [RUN]`).
    Audit(cmd::audit::Args),
    /// Render fully personalised messages of a run.
    Render(cmd::render::Args),
    /// List the runs in a store.
    Runs(cmd::runs::Args),
    /// Remove one customer from every customer-level object (`cpo erase --customer ID`).
    Erase(cmd::erase::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cpo_common::telemetry::init_cli(match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    });
    let result = match cli.command {
        Command::Run(a) => cmd::run::run(a).await,
        Command::Analyze(a) => cmd::analyze::run(a).await,
        Command::Sfn(a) => cmd::sfn::run(a).await,
        Command::Gen(a) => cmd::gen::run(a).await,
        Command::Safety(a) => cmd::safety::run(a).await,
        Command::Audit(a) => cmd::audit::run(a).await,
        Command::Render(a) => cmd::render::run(a).await,
        Command::Runs(a) => cmd::runs::run(a).await,
        Command::Erase(a) => cmd::erase::run(a).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

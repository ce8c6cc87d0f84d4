//! `cpo`: the command line of CPO. Parses arguments and hands each subcommand to `cpo::cmd`.
//! Exit codes: 0 ok, 1 the job failed (message on stderr), 2 bad usage.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use cpo::{cmd, errln};

#[derive(Debug, Parser)]
#[command(
    name = "cpo",
    version,
    about = "Customer Personalization Orchestrator",
    after_help = "Examples:
  cpo gen customers --n 10000 --out customers.csv
  cpo run --input customers.csv --simulate-outcomes
  cpo runs
  cpo run --input customers.csv --campaign my-campaign.yaml --json

The store is file://./cpo-data unless --store or CPO_STORE names another. Logs go to stderr (-v, -vv, RUST_LOG);
colours only on a terminal and never with NO_COLOR set."
)]
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
    #[command(after_help = "Examples:
  cpo run --input customers.csv
  cpo run --input customers.csv --simulate-outcomes --seed 7
  cpo run --input customers.csv --campaign my-campaign.yaml --content ./approved-docs
  cpo run --input customers.csv --json > summary.json

A second run of the same file and config reuses every step (\"reused\" in the summary).")]
    Run(cmd::run::Args),
    /// Put an outcomes file under a run and run the analysis state machine locally.
    #[command(after_help = "Examples:
  cpo analyze --run weekly-20261125-0123456789ab --outcomes events.csv
  cpo analyze --run weekly-20261125-0123456789ab --outcomes events.jsonl --json")]
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
    #[command(after_help = "Examples:
  cpo render --run weekly-20261125-0123456789ab --customer C00000001
  cpo render --run weekly-20261125-0123456789ab --all --out messages.jsonl")]
    Render(cmd::render::Args),
    /// List the runs in a store.
    Runs(cmd::runs::Args),
    /// A campaign's weeks from its ledger: date, run, suppressed, deferred, held out, sent.
    Ledger(cmd::ledger::Args),
    /// Simulated seasons: weekly runs with outcomes drawn from a known truth (`cpo simulate season`).
    Simulate(cmd::simulate::Args),
    /// A campaign across weeks (`cpo campaign report --campaign NAME`): rates, weights, best arm.
    Campaign(cmd::campaign::Args),
    /// Remove one customer from every customer-level object (`cpo erase --customer ID`).
    #[command(after_help = "Examples:
  cpo erase --customer C00000042 --dry-run
  cpo erase --customer C00000042 --json")]
    Erase(cmd::erase::Args),
}

/// How long a finished command waits for cancelled Task handlers to end before the runtime shuts down.
const WIND_DOWN: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = Cli::parse();
    install_panic_hook();
    cpo_common::telemetry::init_cli(match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let json = wants_json(&cli.command);
    let result = runtime.block_on(async {
        let result = dispatch(cli.command).await;
        // A failed execution drops its other Tasks; their handler threads end at their next await. Let them,
        // so nothing is still polling timers or sockets while the runtime shuts down.
        if !cpo::tasks::wind_down(WIND_DOWN).await {
            tracing::warn!(handlers = cpo::tasks::in_flight(), "Task handlers still running at exit");
        }
        result
    });
    // Detached blocking work (a cancelled handler's CPU pass) is not waited for without bound.
    runtime.shutdown_timeout(Duration::from_secs(1));
    exit_code(result, json)
}

/// Whether the command was asked for machine-readable output (`--json`): its failure is JSON too.
fn wants_json(command: &Command) -> bool {
    match command {
        Command::Run(a) => a.json,
        Command::Analyze(a) => a.json,
        Command::Runs(a) => a.json,
        Command::Ledger(a) => a.json,
        Command::Campaign(a) => match &a.command {
            cmd::campaign::Command::Report(r) => r.json,
        },
        Command::Erase(a) => a.json,
        Command::Audit(a) => match &a.command {
            cmd::audit::Command::Verify(v) => v.json,
        },
        Command::Safety(a) => match &a.command {
            cmd::safety::Command::Screen(s) => s.json,
            cmd::safety::Command::Eval(e) => e.json,
        },
        Command::Simulate(a) => match &a.what {
            cmd::simulate::What::Season(s) => s.json,
        },
        Command::Sfn(_) | Command::Gen(_) | Command::Render(_) => false,
    }
}

/// A failure as `cpo sfn run` and Step Functions report one: `{"error": NAME, "cause": TEXT}`. A failed
/// execution keeps its own error name, a step's error its kind (`Cpo.InputInvalid`, …); anything else is
/// `Cpo.CommandFailed`.
fn error_json(e: &anyhow::Error) -> serde_json::Value {
    for cause in e.chain() {
        if let Some(f) = cause.downcast_ref::<cpo::local::ExecutionFailed>() {
            return serde_json::json!({"error": f.error, "cause": f.cause});
        }
        if let Some(s) = cause.downcast_ref::<cpo_common::StepError>() {
            return serde_json::json!({"error": s.kind.name(), "cause": s.message});
        }
    }
    serde_json::json!({"error": "Cpo.CommandFailed", "cause": format!("{e:#}")})
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(a) => cmd::run::run(a).await,
        Command::Analyze(a) => cmd::analyze::run(a).await,
        Command::Sfn(a) => cmd::sfn::run(a).await,
        Command::Gen(a) => cmd::gen::run(a).await,
        Command::Safety(a) => cmd::safety::run(a).await,
        Command::Audit(a) => cmd::audit::run(a).await,
        Command::Render(a) => cmd::render::run(a).await,
        Command::Runs(a) => cmd::runs::run(a).await,
        Command::Ledger(a) => cmd::ledger::run(a).await,
        Command::Campaign(a) => cmd::campaign::run(a).await,
        Command::Erase(a) => cmd::erase::run(a).await,
        Command::Simulate(a) => cmd::simulate::run(a).await,
    }
}

fn exit_code(result: anyhow::Result<ExitCode>, json: bool) -> ExitCode {
    // The reader of standard output went away (`cpo run | head -1`): it had what it wanted; end quietly.
    if cpo::out::closed() {
        return ExitCode::SUCCESS;
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {e:#}");
            if json {
                // Nothing else has been printed on stdout: a summary is printed only on success.
                let _ = cpo::outln!("{}", error_json(&e));
            }
            ExitCode::from(1)
        }
    }
}

/// The last resort for a bug: one line on stderr instead of a panic message and backtrace. (Panics inside a
/// Task handler are also caught and become that Task's `Cpo.Internal` failure.) A `println!` that met a
/// closed pipe — in code that does not print through `cpo::out` — ends the process quietly, as
/// [`exit_code`] does.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let first_line = message.lines().next().unwrap_or_default();
        errln!("cpo: internal error (a bug): {first_line}{at}");
    }));
}

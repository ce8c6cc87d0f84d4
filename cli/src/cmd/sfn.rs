//! `cpo sfn run FILE [--input JSON] [--store URL]`: execute any ASL definition locally — users try a modified
//! state machine this way. Prints the output JSON, or `{"error", "cause"}` with exit code 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use cpo_common::step::Ctx;
use cpo_common::store;
use serde_json::{json, Value};

use crate::asl::{self, Options, StateMachine, TaskInvoker};
use crate::tasks::LocalTasks;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Execute an ASL definition locally and print its output.
    #[command(after_help = "Examples:
  cpo sfn run infra/statemachine/campaign.asl.json --input '{\"run_id\": \"weekly-20261125-0123456789ab\"}'
  cpo sfn run my-machine.asl.json --time-scale 0 --trace

On failure it prints {\"error\": NAME, \"cause\": TEXT} and exits 1.")]
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The state machine definition (`*.asl.json`).
    pub file: PathBuf,
    /// The execution input, as JSON text.
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// Where the functions read and write run data.
    #[arg(long, default_value = super::DEFAULT_STORE, env = super::STORE_ENV)]
    pub store: String,
    /// Multiplies Wait and Retry intervals (0 skips the waiting).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// The execution name (`$$.Execution.Name`); a UUID when omitted.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Trace state transitions, retries and waits on stderr.
    #[arg(long)]
    pub trace: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Command::Run(run) = &args.command;
    let store = match store::open(&run.store) {
        Ok(s) => s,
        Err(e) => {
            crate::errln!("--store {}: {e}", run.store);
            return Ok(ExitCode::from(2));
        }
    };
    run_with(args, Arc::new(LocalTasks::new(Ctx::new(store)))).await
}

/// `run` with the Task invoker given (the lead's `LocalTasks`, or a test's).
pub async fn run_with(args: Args, invoker: Arc<dyn TaskInvoker>) -> anyhow::Result<ExitCode> {
    let Command::Run(run) = args.command;
    let (document, code) = outcome(&run, invoker).await;
    if let Some(doc) = document {
        crate::outln!("{}", serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(ExitCode::from(code))
}

/// What `cpo sfn run` prints on stdout (`None` when it only wrote to stderr) and its exit code: 0 success,
/// 1 the execution failed or the definition did not load, 2 bad usage.
pub async fn outcome(run: &RunArgs, invoker: Arc<dyn TaskInvoker>) -> (Option<Value>, u8) {
    let input: Value = match serde_json::from_str(&run.input) {
        Ok(v) => v,
        Err(e) => {
            crate::errln!("--input: not valid JSON: {e}");
            return (None, 2);
        }
    };
    // The same DefinitionSubstitutions as `cpo run` (`${DataBucket}`, `${DataPrefix}`); Task ARNs stay as written.
    let loaded = std::fs::read_to_string(&run.file)
        .map_err(|e| asl::LoadError { source_name: run.file.display().to_string(), message: e.to_string() })
        .and_then(|text| StateMachine::parse(&crate::local::substitute(&text), &run.file.display().to_string()));
    let machine = match loaded {
        Ok(m) => m,
        Err(e) => {
            crate::errln!("{e}");
            return (None, 1);
        }
    };
    let on_event: Option<asl::EventSink> = run.trace.then(|| Arc::new(trace) as asl::EventSink);
    let opts = Options { execution_name: run.name.clone(), time_scale: run.time_scale, on_event };
    match asl::execute(&machine, input, invoker, &opts).await {
        Ok(output) => (Some(output), 0),
        Err(f) => (Some(json!({"error": f.error, "cause": f.cause})), 1),
    }
}

/// ` [item]` for a state inside a Map iteration.
fn in_item(item: &Option<String>) -> String {
    item.as_ref().map(|i| format!(" [{i}]")).unwrap_or_default()
}

fn trace(event: &asl::Event) {
    match event {
        asl::Event::StateEntered { name, kind, item } => crate::errln!("→ {name}{} ({kind})", in_item(item)),
        asl::Event::StateExited { name, item, notes } => {
            crate::errln!("✓ {name}{}{}", in_item(item), notes.iter().map(|n| format!(" ({n})")).collect::<String>())
        }
        asl::Event::StateFailed { name, item, error } => crate::errln!("✗ {name}{}: {error}", in_item(item)),
        asl::Event::Retry { state, attempt, error } => crate::errln!("↻ {state}: retry {attempt} after {error}"),
        asl::Event::Sleep { state, seconds } => crate::errln!("… {state}: waiting {seconds}s"),
    }
}

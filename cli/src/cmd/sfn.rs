//! `cpo sfn run FILE [--input JSON] [--store URL]`: execute any ASL definition locally — users try a modified
//! state machine this way. Prints the output JSON, or `{"error", "cause"}` with exit code 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use async_trait::async_trait;
use cpo_common::keys::Key;
use cpo_common::step::{Ctx, StepInput};
use cpo_common::store::{self, DynStore};
use serde_json::{json, Map, Value};

use crate::asl::{self, Failure, Options, StateMachine, TaskInvoker};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Execute an ASL definition locally and print its output.
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
    #[arg(long, env = "CPO_STORE", default_value = "file://./cpo-data")]
    pub store: String,
    /// Multiplies Wait and Retry intervals (0 skips the waiting).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// The execution name (`$$.Execution.Name`); a UUID when omitted.
    #[arg(long, default_value = "")]
    pub name: String,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Command::Run(run) = &args.command;
    let store = match store::open(&run.store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("--store {}: {e}", run.store);
            return Ok(ExitCode::from(2));
        }
    };
    run_with(args, Arc::new(FunctionInvoker::new(store))).await
}

/// `run` with the Task invoker given (the lead's `LocalTasks`, or a test's).
pub async fn run_with(args: Args, invoker: Arc<dyn TaskInvoker>) -> anyhow::Result<ExitCode> {
    let Command::Run(run) = args.command;
    let (document, code) = outcome(&run, invoker).await;
    if let Some(doc) = document {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(ExitCode::from(code))
}

/// What `cpo sfn run` prints on stdout (`None` when it only wrote to stderr) and its exit code: 0 success,
/// 1 the execution failed or the definition did not load, 2 bad usage.
pub async fn outcome(run: &RunArgs, invoker: Arc<dyn TaskInvoker>) -> (Option<Value>, u8) {
    let input: Value = match serde_json::from_str(&run.input) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("--input: not valid JSON: {e}");
            return (None, 2);
        }
    };
    let machine = match StateMachine::from_file(&run.file) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return (None, 1);
        }
    };
    let opts = Options { execution_name: run.name.clone(), time_scale: run.time_scale, on_event: None };
    match asl::execute(&machine, input, invoker, &opts).await {
        Ok(output) => (Some(output), 0),
        Err(f) => (Some(json!({"error": f.error, "cause": f.cause})), 1),
    }
}

/// Resolves `${SegmentFunctionArn}`-style resources to the project's function handlers, called in-process, and
/// `ItemReader`s to objects of the store.
pub struct FunctionInvoker {
    ctx: Ctx,
}

impl FunctionInvoker {
    pub fn new(store: DynStore) -> Self {
        Self { ctx: Ctx::new(store) }
    }
}

/// The function a Task resource names: `${SegmentFunctionArn}`, or an ARN / name ending in `segment`.
pub fn function_of(resource: &str) -> Option<&'static str> {
    let name = resource.trim_start_matches("${").trim_end_matches('}').to_ascii_lowercase();
    let name = name.trim_end_matches("functionarn");
    let name = name.rsplit([':', '-', '/']).next().unwrap_or(name);
    ["segment", "retrieve", "generate", "safety", "experiment", "report"].into_iter().find(|f| *f == name)
}

#[async_trait]
impl TaskInvoker for FunctionInvoker {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, Failure> {
        let function = function_of(resource).ok_or_else(|| Failure {
            error: "States.TaskFailed".into(),
            cause: format!("no project function for resource {resource:?}"),
        })?;
        let step: StepInput = serde_json::from_value(input).map_err(|e| Failure {
            error: "Cpo.InputInvalid".into(),
            cause: format!("{function}: bad step input: {e}"),
        })?;
        let result = match function {
            "segment" => cpo_segment::handle(step, &self.ctx).await,
            "retrieve" => cpo_retrieve::handle(step, &self.ctx).await,
            "generate" => cpo_generate::handle(step, &self.ctx).await,
            "safety" => cpo_safety::handle(step, &self.ctx).await,
            "experiment" => cpo_experiment::handle(step, &self.ctx).await,
            _ => cpo_report::handle(step, &self.ctx).await,
        };
        let output = result.map_err(|e| Failure { error: e.kind.name().into(), cause: e.message })?;
        serde_json::to_value(output).map_err(|e| Failure { error: "Cpo.Internal".into(), cause: e.to_string() })
    }

    async fn read_items(&self, resource: &str, parameters: &Value, config: &Value) -> Result<Vec<Value>, Failure> {
        let fail = |cause: String| Failure { error: "States.ItemReaderFailed".into(), cause };
        let param = |name: &str| parameters.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
        match resource {
            "arn:aws:states:::s3:listObjectsV2" => {
                let prefix = Key::new(param("Prefix")).map_err(|e| fail(e.to_string()))?;
                let objects = self.ctx.store.list(&prefix).await.map_err(|e| fail(e.to_string()))?;
                Ok(objects
                    .into_iter()
                    .map(|o| {
                        json!({"Key": o.key, "Size": o.size, "ETag": o.etag, "LastModified": o.last_modified.to_rfc3339()})
                    })
                    .collect())
            }
            "arn:aws:states:::s3:getObject" => {
                let key = Key::new(param("Key")).map_err(|e| fail(e.to_string()))?;
                let body = self.ctx.store.get(&key).await.map_err(|e| fail(e.to_string()))?;
                let text =
                    String::from_utf8(body.to_vec()).map_err(|_| fail(format!("{}: not UTF-8", key.as_str())))?;
                parse_items(&text, config).map_err(|e| fail(format!("{}: {e}", key.as_str())))
            }
            other => Err(fail(format!("unsupported ItemReader resource {other:?}"))),
        }
    }
}

/// Items of an object per `ReaderConfig.InputType`: JSON (an array), JSONL (one value a line) or CSV (rows as
/// objects of strings, headers from the first row or `CSVHeaders`).
pub fn parse_items(text: &str, config: &Value) -> Result<Vec<Value>, String> {
    let input_type = config.get("InputType").and_then(Value::as_str).unwrap_or("JSON");
    match input_type {
        "JSON" => match serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))? {
            Value::Array(items) => Ok(items),
            _ => Err("a JSON ItemReader object must hold an array".into()),
        },
        "JSONL" => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
            .collect(),
        "CSV" => {
            let delimiter = match config.get("CSVDelimiter").and_then(Value::as_str) {
                Some("PIPE") => b'|',
                Some("SEMICOLON") => b';',
                Some("SPACE") => b' ',
                Some("TAB") => b'\t',
                _ => b',',
            };
            let given = config.get("CSVHeaderLocation").and_then(Value::as_str) == Some("GIVEN");
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(delimiter)
                .has_headers(!given)
                .flexible(true)
                .from_reader(text.as_bytes());
            let headers: Vec<String> = if given {
                config
                    .get("CSVHeaders")
                    .and_then(Value::as_array)
                    .map(|h| h.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default()
            } else {
                reader.headers().map_err(|e| e.to_string())?.iter().map(str::to_string).collect()
            };
            let mut items = Vec::new();
            for (i, row) in reader.records().enumerate() {
                let row = row.map_err(|e| format!("row {}: {e}", i + 1))?;
                let mut obj = Map::new();
                for (h, v) in headers.iter().zip(row.iter()) {
                    obj.insert(h.clone(), Value::String(v.to_string()));
                }
                items.push(Value::Object(obj));
            }
            Ok(items)
        }
        other => Err(format!("unsupported InputType {other:?}")),
    }
}

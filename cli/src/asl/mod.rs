//! Local runner for Amazon States Language definitions: the state machines in `infra/statemachine/` run here
//! exactly as Step Functions runs them, Tasks resolved to the project's functions by a [`TaskInvoker`].
//!
//! Hand-written: no Rust crate interprets ASL (the AWS SDK only talks to the service, and Step Functions Local
//! is a Java program that cannot call our functions in-process). Semantics follow the specification
//! (states-language.net) and the Step Functions developer guide; what is not implemented is refused when the
//! definition loads, naming the state and field — see `docs/asl-runner.md`.
//!
//! Layout: [`definition`] loads and validates, [`path`] is the JSONPath dialect, [`template`] the payload
//! templates, [`intrinsic`] the `States.*` functions, [`choice`] the Choice rules, [`retry`] Retriers and
//! Catchers, [`errors`] error names and matching, [`exec`] the interpreter.

mod choice;
mod cursor;
mod definition;
pub mod errors;
mod exec;
mod intrinsic;
pub mod path;
pub mod retry;
mod template;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rand::SeedableRng;
use serde_json::{json, Value};

pub use exec::DISTRIBUTED_DEFAULT_CONCURRENCY;

/// An error name and cause, as Step Functions reports them (`{"error": ..., "cause": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    pub error: String,
    pub cause: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

/// Runs Task states and reads Map `ItemReader`s; the CLI resolves them to the project's functions and store.
#[async_trait]
pub trait TaskInvoker: Send + Sync {
    /// Run the Task `resource` (e.g. `${SegmentFunctionArn}`) with `input`.
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, Failure>;
    /// Items of a Map `ItemReader` (`arn:aws:states:::s3:getObject` or `arn:aws:states:::s3:listObjectsV2`),
    /// given its resource, resolved `Parameters` and `ReaderConfig` (`MaxItemsPath` resolved into `MaxItems`;
    /// the runner also truncates to `MaxItems`).
    async fn read_items(
        &self,
        resource: &str,
        parameters: &Value,
        reader_config: &Value,
    ) -> Result<Vec<Value>, Failure>;
}

/// A parse or validation error of a definition, naming the state and field.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct LoadError {
    pub source_name: String,
    pub message: String,
}

/// Progress events of an execution (for the CLI's progress display).
#[derive(Debug, Clone)]
pub enum Event {
    /// `item` names the Map iteration the state runs in (see [`item_label`]), `None` outside a Map.
    StateEntered { name: String, kind: String, item: Option<String> },
    /// `notes`: what the Task invoker said about the work while the state ran ([`note`], e.g. "reused").
    StateExited { name: String, item: Option<String>, notes: Vec<String> },
    /// A Retrier matched; `attempt` counts the state's retries so far (1 for the first).
    Retry { state: String, attempt: u32, error: String },
    /// A state failed (the error may still be caught by an enclosing state).
    StateFailed { name: String, item: Option<String>, error: String },
    /// A Wait state or a retry backoff, in definition seconds (before `time_scale`).
    Sleep { state: String, seconds: f64 },
}

/// Receives progress events.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

tokio::task_local! {
    /// The notes of the state being run (one scope per state, in the task that runs it).
    static NOTES: std::cell::RefCell<Vec<String>>;
}

/// Attach a short note to the state whose Task is being invoked (a [`TaskInvoker`] calls this); it arrives
/// with that state's [`Event::StateExited`]. Outside a running state it is dropped.
pub fn note(text: &str) {
    let _ = NOTES.try_with(|n| n.borrow_mut().push(text.to_string()));
}

/// Run `f` collecting the [`note`]s made while it runs.
pub(crate) async fn with_notes<F: std::future::Future>(f: F) -> (F::Output, Vec<String>) {
    NOTES
        .scope(std::cell::RefCell::new(Vec::new()), async move {
            let out = f.await;
            (out, NOTES.with(|n| n.take()))
        })
        .await
}

/// How a Map iteration is named in progress events: the item itself when it is a short string (a segment
/// name), its `name` field, `shard N` for a shard, else `#index`. At most 40 characters.
pub fn item_label(index: usize, item: &Value) -> String {
    let label = match item {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => match (o.get("name"), o.get("shard")) {
            (Some(Value::String(n)), _) => Some(n.clone()),
            (_, Some(Value::Number(s))) => Some(format!("shard {s}")),
            _ => None,
        },
        _ => None,
    };
    match label.filter(|l| !l.trim().is_empty()) {
        Some(l) if l.chars().count() > 40 => format!("{}…", l.chars().take(39).collect::<String>()),
        Some(l) => l,
        None => format!("#{index}"),
    }
}

/// Execution options.
#[derive(Clone, Default)]
pub struct Options {
    pub execution_name: String,
    /// Multiplies Wait and Retry intervals (1.0 = real seconds; tests use 0.0).
    pub time_scale: f64,
    pub on_event: Option<EventSink>,
}

/// A loaded, validated state machine.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub definition: Value,
    /// `$$.StateMachine.Name`: the file name without `.asl.json` / `.json`.
    pub name: String,
    graph: Arc<definition::Graph>,
    /// Seeds `States.MathRandom` without a seed argument, `States.UUID` and retry jitter; `None`: from the clock.
    seed: Option<u64>,
}

impl StateMachine {
    /// Parse and validate `text`; `source` names it in errors (a file name).
    pub fn parse(text: &str, source: &str) -> Result<Self, LoadError> {
        let fail = |message: String| LoadError { source_name: source.to_string(), message };
        let definition: Value = serde_json::from_str(text)
            .map_err(|e| fail(format!("not valid JSON: {e} (line {}, column {})", e.line(), e.column())))?;
        let graph = definition::load(&definition).map_err(fail)?;
        let base = Path::new(source).file_name().and_then(|n| n.to_str()).unwrap_or(source);
        let name = base.trim_end_matches(".json").trim_end_matches(".asl").to_string();
        Ok(Self { definition, name, graph: Arc::new(graph), seed: None })
    }

    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError { source_name: path.display().to_string(), message: e.to_string() })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Make `States.UUID`, unseeded `States.MathRandom` and retry jitter deterministic.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

/// Execute `machine` on `input`: the output of the final state, or the error that ended the execution.
pub async fn execute(
    machine: &StateMachine,
    input: Value,
    invoker: Arc<dyn TaskInvoker>,
    opts: &Options,
) -> Result<Value, Failure> {
    if input.to_string().len() > errors::PAYLOAD_LIMIT {
        return Err(Failure {
            error: errors::DATA_LIMIT_EXCEEDED.into(),
            cause: "the execution input is larger than 256 KiB".into(),
        });
    }
    let seed = machine.seed.unwrap_or_else(|| {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        nanos as u64 ^ (std::process::id() as u64).rotate_left(32)
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let execution_name = if opts.execution_name.is_empty() {
        let mut bytes = [0u8; 16];
        rand::Rng::fill(&mut rng, &mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
    } else {
        opts.execution_name.clone()
    };
    let sm_id = format!("arn:aws:states:local:000000000000:stateMachine:{}", machine.name);
    let exec = Arc::new(exec::Exec {
        invoker,
        on_event: opts.on_event.clone(),
        time_scale: opts.time_scale,
        execution: json!({
            "Id": format!("arn:aws:states:local:000000000000:execution:{}:{}", machine.name, execution_name),
            "Name": execution_name,
            "RoleArn": "arn:aws:iam::000000000000:role/cpo-local",
            "StartTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "RedriveCount": 0,
        }),
        execution_input: Arc::new(input.clone()),
        state_machine: json!({"Id": sm_id, "Name": machine.name}),
        rng: Mutex::new(rng),
    });
    let run = exec.run_graph(machine.graph.clone(), input);
    match machine.graph.timeout_seconds {
        Some(secs) => tokio::time::timeout(std::time::Duration::from_secs_f64(secs), run).await.unwrap_or_else(|_| {
            Err(Failure {
                error: errors::TIMEOUT.into(),
                cause: format!("the execution timed out after {secs} seconds"),
            })
        }),
        None => run.await,
    }
}

//! Local runner for Amazon States Language definitions (placeholder API until the runner lands).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

/// An error name and cause, as Step Functions reports them (`{"error": ..., "cause": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    pub error: String,
    pub cause: String,
}

/// Runs Task states and reads Map `ItemReader`s; the CLI resolves them to the project's functions and store.
#[async_trait]
pub trait TaskInvoker: Send + Sync {
    /// Run the Task `resource` (e.g. `${SegmentFunctionArn}`) with `input`.
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, Failure>;
    /// Items of a Map `ItemReader` (`arn:aws:states:::s3:getObject` or `arn:aws:states:::s3:listObjectsV2`),
    /// given its resource, resolved `Parameters` and `ReaderConfig`.
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
    StateEntered { name: String, kind: String },
    StateExited { name: String },
    Retry { state: String, attempt: u32, error: String },
}

/// Receives progress events.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

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
}

impl StateMachine {
    pub fn parse(text: &str, source: &str) -> Result<Self, LoadError> {
        let definition = serde_json::from_str(text)
            .map_err(|e| LoadError { source_name: source.to_string(), message: e.to_string() })?;
        Ok(Self { definition })
    }

    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError { source_name: path.display().to_string(), message: e.to_string() })?;
        Self::parse(&text, &path.display().to_string())
    }
}

/// Execute `machine` on `input`.
pub async fn execute(
    machine: &StateMachine,
    input: Value,
    invoker: Arc<dyn TaskInvoker>,
    opts: &Options,
) -> Result<Value, Failure> {
    let _ = (machine, input, invoker, opts);
    Err(Failure { error: "States.Runtime".into(), cause: "the local ASL runner is not implemented yet".into() })
}

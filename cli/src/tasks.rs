//! The bridge from a state machine's Task resources to the project's functions, and from Map `ItemReader`s
//! to the store — what Lambda and S3 are to Step Functions in the cloud.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use cpo_common::keys::Key;
use cpo_common::store::recording::AccessLog;
use cpo_common::{Ctx, StepError, StepInput, StepOutput};
use serde_json::{json, Map, Value};

use crate::asl::{Failure, TaskInvoker};
use crate::metrics::Recorder;

/// The note a Task gets when its function answered from its stored step record instead of working again.
pub const REUSED: &str = "reused";

/// Runs Tasks in-process by calling each function crate's `handle`.
#[derive(Debug, Clone)]
pub struct LocalTasks {
    ctx: Ctx,
    recorder: Option<Arc<Recorder>>,
    /// Record each function's store operations under `function:<name>`, and the machine's own (ItemReader)
    /// under the given principal — what the IAM check compares with each role's policy.
    access: Option<(Arc<AccessLog>, String)>,
}

impl LocalTasks {
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx, recorder: None, access: None }
    }

    /// Record every store operation into `log`; the state machine's own reads as `machine`.
    pub fn with_access_log(mut self, log: Option<Arc<AccessLog>>, machine: &str) -> Self {
        self.access = log.map(|l| (l, machine.to_string()));
        self
    }

    /// The context a principal works with: the shared store, recorded when an access log is set.
    fn ctx_of(&self, principal: &str) -> Ctx {
        match &self.access {
            Some((log, _)) => Ctx::new(log.wrap(self.ctx.store.clone(), principal)),
            None => self.ctx.clone(),
        }
    }

    fn machine_ctx(&self) -> Ctx {
        match &self.access {
            Some((_, machine)) => self.ctx_of(machine),
            None => self.ctx.clone(),
        }
    }

    /// Measure every Task (wall time, store bytes, peak RSS) into `recorder`.
    pub fn with_recorder(mut self, recorder: Option<Arc<Recorder>>) -> Self {
        self.recorder = recorder;
        self
    }
}

/// The function a Task resource names: `${SegmentFunctionArn}` (the definitions' substitution), a Lambda ARN
/// ending in `:function:<name>` or `…-<name>`, or the bare name.
pub fn function_name(resource: &str) -> Option<&'static str> {
    const FUNCTIONS: [&str; 6] = ["segment", "retrieve", "generate", "safety", "experiment", "report"];
    let raw = resource
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix("FunctionArn}"))
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| {
            let tail = resource.rsplit(':').next().unwrap_or(resource);
            tail.rsplit('-').next().unwrap_or(tail).to_ascii_lowercase()
        });
    FUNCTIONS.into_iter().find(|f| *f == raw)
}

fn failure(e: StepError) -> Failure {
    Failure { error: e.kind.name().to_string(), cause: e.message }
}

async fn call(name: &str, input: StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
    match name {
        "segment" => cpo_segment::handle(input, ctx).await,
        "retrieve" => cpo_retrieve::handle(input, ctx).await,
        "generate" => cpo_generate::handle(input, ctx).await,
        "safety" => cpo_safety::handle(input, ctx).await,
        "experiment" => cpo_experiment::handle(input, ctx).await,
        "report" => cpo_report::handle(input, ctx).await,
        other => Err(StepError::internal(format!("no local function named {other:?}"))),
    }
}

/// Handler threads started by [`call_isolated`] that have not ended yet.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts one handler thread from its spawn to its end (or to the drop of a closure that never ran).
struct InFlight;

impl InFlight {
    fn new() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Run a handler on a blocking thread of its own, driven by the runtime's handle. Like a Lambda invocation it
/// is isolated: a panic becomes a `Cpo.Internal` task failure instead of ending the execution, and handler
/// futures need not be `Send` (Lambda does not require it either).
///
/// A blocking thread cannot be aborted, so the handler is cancelled instead: when this future is dropped (a
/// Map iteration aborted because another failed, the execution over), the thread drops the handler at its next
/// await — a provider retry's sleep, a request — and ends. Otherwise it would go on polling timers and
/// sockets after `main` returned, while the runtime shuts down ("A Tokio 1.x context was found, but it is
/// being shutdown" panics). [`wind_down`] waits for those threads before the process ends.
///
/// Also returns how many steps the handler answered from their stored records (a cached re-run).
async fn call_isolated(name: &'static str, input: StepInput, ctx: &Ctx) -> Result<(StepOutput, u32), StepError> {
    let ctx = ctx.clone();
    isolated(name, move || async move {
        let (out, reused) = cpo_common::step::observe_reuse(call(name, input, &ctx)).await;
        out.map(|o| (o, reused))
    })
    .await
}

/// [`call_isolated`] for any handler future (`make` builds it on the handler's own thread).
async fn isolated<T, F, Fut>(name: &'static str, make: F) -> Result<T, StepError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, StepError>>,
{
    let rt = tokio::runtime::Handle::current();
    let (_cancel_on_drop, cancelled) = tokio::sync::oneshot::channel::<()>();
    let in_flight = InFlight::new();
    let task = tokio::task::spawn_blocking(move || {
        let _in_flight = in_flight;
        rt.block_on(async {
            tokio::select! {
                biased;
                // Only ever an error: the sender is dropped, never used.
                _ = cancelled => None,
                out = make() => Some(out),
            }
        })
    });
    match task.await {
        Ok(Some(out)) => out,
        Ok(None) => Err(StepError::internal(format!("{name}: cancelled"))),
        Err(e) => Err(StepError::internal(format!("{name} panicked: {e}"))),
    }
}

/// Wait (at most `limit`) until every handler thread has ended — those of cancelled Tasks included — so the
/// process exits without work still running on a runtime being shut down. Returns whether all ended.
pub async fn wind_down(limit: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    true
}

/// Handler threads currently running (or cancelled and not yet ended).
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::SeqCst)
}

#[async_trait]
impl TaskInvoker for LocalTasks {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, Failure> {
        // The optimised Lambda integration wraps the payload; the direct ARN form passes it as is.
        let (name, payload, wrap) = if resource.starts_with("arn:aws:states:::lambda:invoke") {
            let f = input.get("FunctionName").and_then(Value::as_str).unwrap_or_default();
            (function_name(f), input.get("Payload").cloned().unwrap_or(Value::Null), true)
        } else {
            (function_name(resource), input, false)
        };
        let name = name.ok_or_else(|| Failure {
            error: "States.TaskFailed".into(),
            cause: format!("Task resource {resource:?} does not name a CPO function"),
        })?;
        let step_input: StepInput = serde_json::from_value(payload)
            .map_err(|e| failure(StepError::input(format!("{name}: invalid step input: {e}"))))?;
        let action = step_input.action.clone();
        let started = self.recorder.as_ref().map(|r| r.start());
        let out = call_isolated(name, step_input, &self.ctx_of(&format!("function:{name}"))).await;
        if let (Some(r), Some(t)) = (&self.recorder, started) {
            r.finish(name, action, t, out.is_ok());
        }
        let (out, reused) = out.map_err(failure)?;
        if reused > 0 {
            crate::asl::note(REUSED);
        }
        let out = serde_json::to_value(out).map_err(|e| failure(StepError::internal(e.to_string())))?;
        Ok(if wrap { json!({"StatusCode": 200, "Payload": out}) } else { out })
    }

    async fn read_items(
        &self,
        resource: &str,
        parameters: &Value,
        reader_config: &Value,
    ) -> Result<Vec<Value>, Failure> {
        let param = |name: &str| parameters.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let bad = |cause: String| Failure { error: "States.ItemReaderFailed".into(), cause };
        let ctx = self.machine_ctx();
        match resource {
            "arn:aws:states:::s3:listObjectsV2" => {
                let prefix = Key::new(param("Prefix")).map_err(|e| bad(e.to_string()))?;
                let objects = ctx.store.list(&prefix).await.map_err(|e| bad(e.to_string()))?;
                Ok(objects
                    .into_iter()
                    .map(|o| {
                        json!({"Key": o.key, "Size": o.size, "Etag": o.etag,
                               "LastModified": o.last_modified.to_rfc3339()})
                    })
                    .collect())
            }
            "arn:aws:states:::s3:getObject" => {
                let key = Key::new(param("Key")).map_err(|e| bad(e.to_string()))?;
                let body = ctx.store.get(&key).await.map_err(|e| bad(e.to_string()))?;
                let text = std::str::from_utf8(&body).map_err(|_| bad(format!("{key}: not UTF-8")))?;
                parse_items(text, reader_config).map_err(|e| bad(format!("{key}: {e}")))
            }
            other => Err(bad(format!("unsupported ItemReader resource {other:?}"))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_function_names() {
        assert_eq!(function_name("${SegmentFunctionArn}"), Some("segment"));
        assert_eq!(function_name("arn:aws:lambda:eu-west-1:123:function:cpo-dev-report"), Some("report"));
        assert_eq!(function_name("generate"), Some("generate"));
        assert_eq!(function_name("${NopeFunctionArn}"), None);
    }

    /// Sets its flag when dropped: proves a handler future was dropped, not left running.
    struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_task_cancels_its_handler_thread() {
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let task = isolated::<StepOutput, _, _>("slow", move || async move {
            let _flag = flag;
            // A provider retry's backoff, a request that never returns.
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            Err(StepError::internal("slept an hour"))
        });
        let waited = tokio::time::timeout(std::time::Duration::from_millis(100), task).await;
        assert!(waited.is_err(), "the handler should still be running");
        assert!(wind_down(std::time::Duration::from_secs(5)).await, "{} handler thread(s) still running", in_flight());
        assert!(dropped.load(Ordering::SeqCst), "the handler future was not dropped");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handler_panic_is_an_internal_task_failure() {
        let e = isolated::<StepOutput, _, _>("broken", || async { panic!("boom") }).await.unwrap_err();
        assert_eq!(e.kind, cpo_common::ErrorKind::Internal);
        assert!(e.message.contains("broken panicked"), "{e}");
        assert!(wind_down(std::time::Duration::from_secs(5)).await);
    }

    #[test]
    fn reads_items_like_step_functions() {
        let csv = json!({"InputType": "CSV"});
        let items = parse_items("a,b\n1,x\n2,y\n", &csv).unwrap();
        assert_eq!(items, vec![json!({"a": "1", "b": "x"}), json!({"a": "2", "b": "y"})]);
        assert_eq!(parse_items("{\"a\":1}\n\n{\"a\":2}", &json!({"InputType": "JSONL"})).unwrap().len(), 2);
        assert!(parse_items("{", &json!({"InputType": "JSON"})).is_err());
    }
}

//! The interpreter: runs a loaded graph state by state, applying the input/output processing pipeline
//! (InputPath → Parameters → task → ResultSelector → ResultPath → OutputPath), Retry and Catch, and the
//! concurrency of Parallel and Map on tokio tasks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use rand::rngs::StdRng;
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::definition::{Graph, Kind, MapSpec, NumOrPath, Source, State, Wait};
use super::errors::{self, Failure};
use super::path::{Context, Path};
use super::template::{truncate, Template};
use super::{Event, EventSink, TaskInvoker};

/// Concurrency of a DISTRIBUTED Map whose MaxConcurrency is 0 (the service allows 10,000 child executions;
/// locally that many in-flight functions would only thrash the machine).
pub const DISTRIBUTED_DEFAULT_CONCURRENCY: usize = 64;

/// Shared by every state of one execution.
pub struct Exec {
    pub invoker: Arc<dyn TaskInvoker>,
    pub on_event: Option<EventSink>,
    pub time_scale: f64,
    /// `$$.Execution` (without `Input`, kept apart in `execution_input`) and `$$.StateMachine`.
    pub execution: Value,
    pub execution_input: Arc<Value>,
    pub state_machine: Value,
    pub rng: Mutex<StdRng>,
}

type Step = Result<(Value, Option<String>), Failure>;

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn invalid_path(p: &Path, what: &str, doc: &Value) -> Failure {
    errors::runtime(format!(
        "Invalid path '{}' : No results for path: {} in the {what} '{}'",
        p.text,
        p.text,
        truncate(&doc.to_string())
    ))
}

impl Exec {
    fn emit(&self, event: Event) {
        if let Some(sink) = &self.on_event {
            sink(&event);
        }
    }

    fn context(&self, state: &str, entered: &str, retry_count: u32) -> Context {
        Context {
            doc: json!({
                "Execution": self.execution,
                "StateMachine": self.state_machine,
                "State": {"Name": state, "EnteredTime": entered, "RetryCount": retry_count},
            }),
            execution_input: self.execution_input.clone(),
        }
    }

    fn eval(&self, t: &Template, input: &Value, context: &Context) -> Result<Value, Failure> {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        t.eval(input, context, &mut rng)
    }

    async fn sleep(&self, state: &str, seconds: f64) {
        self.emit(Event::Sleep { state: state.to_string(), seconds });
        let scaled = seconds * self.time_scale;
        if scaled > 0.0 && scaled.is_finite() {
            tokio::time::sleep(Duration::from_secs_f64(scaled)).await;
        }
    }

    /// Run `graph` from its StartAt to a terminal state.
    pub fn run_graph(
        self: Arc<Self>,
        graph: Arc<Graph>,
        input: Value,
    ) -> futures::future::BoxFuture<'static, Result<Value, Failure>> {
        self.run_graph_as(graph, input, None)
    }

    /// [`Self::run_graph`] for the Map iteration named `item` in progress events.
    pub fn run_graph_as(
        self: Arc<Self>,
        graph: Arc<Graph>,
        input: Value,
        item: Option<String>,
    ) -> futures::future::BoxFuture<'static, Result<Value, Failure>> {
        Box::pin(async move {
            let mut name = graph.start_at.clone();
            let mut input = input;
            loop {
                let Some(state) = graph.states.get(&name).cloned() else {
                    return Err(errors::runtime(format!("no state named {name:?}")));
                };
                self.emit(Event::StateEntered {
                    name: name.clone(),
                    kind: state.kind.type_name().to_string(),
                    item: item.clone(),
                });
                let (result, notes) = super::with_notes(self.run_state(&state, input)).await;
                match result {
                    Ok((output, next)) => {
                        self.emit(Event::StateExited { name: name.clone(), item: item.clone(), notes });
                        match next {
                            Some(n) => {
                                name = n;
                                input = output;
                            }
                            None => return Ok(output),
                        }
                    }
                    Err(f) => {
                        self.emit(Event::StateFailed {
                            name: name.clone(),
                            item: item.clone(),
                            error: f.error.clone(),
                        });
                        return Err(f);
                    }
                }
            }
        })
    }

    async fn run_state(self: &Arc<Self>, state: &Arc<State>, raw: Value) -> Step {
        let entered = now();
        let ctx = self.context(&state.name, &entered, 0);
        let effective = match &state.input_path {
            None => Value::Object(Map::new()),
            Some(p) if p.is_root() => raw.clone(),
            Some(p) => p.select(&raw).map_err(|_| invalid_path(p, "input", &raw))?,
        };
        match &state.kind {
            Kind::Succeed => Ok((output(state, effective)?, None)),
            Kind::Fail { error, cause } => {
                let resolve = |s: &Option<Source>, field: &str| -> Result<Option<String>, Failure> {
                    Ok(match s {
                        None => None,
                        Some(Source::Lit(t)) => Some(t.clone()),
                        Some(Source::Path(p)) => {
                            match ctx.resolve(p, &raw).map_err(|_| invalid_path(p, "input", &raw))? {
                                Value::String(s) => Some(s),
                                other => {
                                    return Err(errors::runtime(format!(
                                        "{field}Path {} resolved to {}, not a string",
                                        p.text,
                                        super::intrinsic::kind(&other)
                                    )))
                                }
                            }
                        }
                        Some(Source::Call(c)) => {
                            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                            match c.eval(&raw, &ctx, &mut rng)? {
                                Value::String(s) => Some(s),
                                other => Some(other.to_string()),
                            }
                        }
                    })
                };
                let error = resolve(error, "Error")?.unwrap_or_default();
                let cause = resolve(cause, "Cause")?.unwrap_or_default();
                Err(Failure { error, cause })
            }
            Kind::Choice { choices, default } => {
                for (rule, next) in choices {
                    if rule.eval(&effective, &ctx)? {
                        return Ok((output(state, effective)?, Some(next.clone())));
                    }
                }
                match default {
                    Some(d) => Ok((output(state, effective)?, Some(d.clone()))),
                    None => Err(Failure {
                        error: errors::NO_CHOICE_MATCHED.into(),
                        cause: format!("No Matches! (state {:?})", state.name),
                    }),
                }
            }
            Kind::Wait(wait) => {
                let seconds = match wait {
                    Wait::Seconds(s) => *s,
                    Wait::SecondsPath(p) => {
                        let v = p.select(&effective).map_err(|_| invalid_path(p, "input", &effective))?;
                        v.as_f64().filter(|s| *s >= 0.0 && s.fract() == 0.0).ok_or_else(|| {
                            errors::runtime(format!(
                                "SecondsPath {} resolved to {v}, not a non-negative integer",
                                p.text
                            ))
                        })?
                    }
                    Wait::Timestamp(t) => until(t),
                    Wait::TimestampPath(p) => {
                        let v = p.select(&effective).map_err(|_| invalid_path(p, "input", &effective))?;
                        let t = v.as_str().and_then(super::choice::timestamp).ok_or_else(|| {
                            errors::runtime(format!(
                                "TimestampPath {} resolved to {v}, not an RFC 3339 timestamp",
                                p.text
                            ))
                        })?;
                        until(&t)
                    }
                };
                self.sleep(&state.name, seconds).await;
                Ok((output(state, effective)?, state.next.clone()))
            }
            Kind::Pass { result } => {
                let result = match (result, &state.parameters) {
                    (Some(r), _) => r.clone(),
                    (None, Some(t)) => self.eval(t, &effective, &ctx)?,
                    (None, None) => effective,
                };
                Ok((finish(state, &raw, result)?, state.next.clone()))
            }
            Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map(_) => {
                self.with_retry(state, &raw, &effective, &entered).await
            }
        }
    }

    /// Task, Parallel and Map: attempts under the state's Retriers, then its Catchers.
    async fn with_retry(self: &Arc<Self>, state: &Arc<State>, raw: &Value, effective: &Value, entered: &str) -> Step {
        let mut used = vec![0u32; state.retry.len()];
        let mut retries = 0u32;
        loop {
            let ctx = self.context(&state.name, entered, retries);
            let failure = match self.attempt(state, effective, &ctx).await {
                Ok(result) => match finish(state, raw, result) {
                    Ok(out) => return Ok((out, state.next.clone())),
                    Err(f) => f,
                },
                Err(f) => f,
            };
            if errors::is_terminal(&failure.error) {
                return Err(failure);
            }
            // The first Retrier whose ErrorEquals matches decides; once it is spent, the error goes to Catch.
            if let Some(i) = state.retry.iter().position(|r| errors::matches(&r.error_equals, &failure.error)) {
                let retrier = &state.retry[i];
                if used[i] < retrier.max_attempts {
                    let delay = {
                        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                        retrier.delay(used[i], &mut *rng)
                    };
                    used[i] += 1;
                    retries += 1;
                    tracing::debug!(state = %state.name, error = %failure.error, retry = retries, delay, "retrying");
                    self.emit(Event::Retry {
                        state: state.name.clone(),
                        attempt: retries,
                        error: failure.error.clone(),
                    });
                    self.sleep(&state.name, delay).await;
                    continue;
                }
            }
            for catcher in &state.catch {
                if errors::matches(&catcher.error_equals, &failure.error) {
                    let error_output = json!({"Error": failure.error, "Cause": failure.cause});
                    let out = match &catcher.result_path {
                        None => raw.clone(),
                        Some(p) => p.write(raw, error_output).map_err(|e| Failure {
                            error: errors::RESULT_PATH_MATCH_FAILURE.into(),
                            cause: format!("Catch of state {:?}: {}", state.name, e.0),
                        })?,
                    };
                    return Ok((out, Some(catcher.next.clone())));
                }
            }
            return Err(failure);
        }
    }

    /// One attempt: the state's work and its ResultSelector.
    async fn attempt(self: &Arc<Self>, state: &Arc<State>, effective: &Value, ctx: &Context) -> Result<Value, Failure> {
        let payload = || -> Result<Value, Failure> {
            match &state.parameters {
                Some(t) => self.eval(t, effective, ctx),
                None => Ok(effective.clone()),
            }
        };
        let result = match &state.kind {
            Kind::Task { resource, timeout } => {
                let input = payload()?;
                check_size(&input, "input", &state.name)?;
                let timeout = match timeout {
                    None => None,
                    Some(t) => Some(number(t, effective, "TimeoutSecondsPath")?),
                };
                let call = self.invoker.invoke(resource, input);
                let result = match timeout {
                    Some(secs) if secs > 0.0 => match tokio::time::timeout(Duration::from_secs_f64(secs), call).await {
                        Ok(r) => r,
                        Err(_) => Err(Failure {
                            error: errors::TIMEOUT.into(),
                            cause: format!("Task {:?} timed out after {secs} seconds", state.name),
                        }),
                    },
                    _ => call.await,
                };
                let result = result?;
                check_size(&result, "output", &state.name)?;
                result
            }
            Kind::Parallel { branches } => {
                let input = payload()?;
                let mut set = JoinSet::new();
                for (i, branch) in branches.iter().enumerate() {
                    let exec = self.clone();
                    let (branch, input) = (branch.clone(), input.clone());
                    set.spawn(async move { (i, exec.run_graph(branch, input).await) });
                }
                let mut results = vec![Value::Null; branches.len()];
                while let Some(joined) = set.join_next().await {
                    match joined {
                        Ok((i, Ok(v))) => results[i] = v,
                        Ok((_, Err(f))) => {
                            set.abort_all();
                            return Err(f);
                        }
                        Err(e) => {
                            set.abort_all();
                            return Err(errors::runtime(format!("a Parallel branch panicked: {e}")));
                        }
                    }
                }
                Value::Array(results)
            }
            Kind::Map(spec) => self.run_map(state, spec, effective, ctx).await?,
            _ => return Err(errors::runtime("not a Task, Parallel or Map state")),
        };
        match &state.result_selector {
            Some(t) => self.eval(t, &result, ctx),
            None => Ok(result),
        }
    }

    async fn run_map(
        self: &Arc<Self>,
        state: &Arc<State>,
        spec: &MapSpec,
        effective: &Value,
        ctx: &Context,
    ) -> Result<Value, Failure> {
        let items = match &spec.reader {
            Some(reader) => {
                let params = match &reader.parameters {
                    Some(t) => self.eval(t, effective, ctx)?,
                    None => Value::Object(Map::new()),
                };
                let mut config = reader.config.clone();
                let max_items = match &reader.max_items {
                    Some(m) => Some(number(m, effective, "MaxItemsPath")? as usize),
                    None => None,
                };
                if let Some(m) = max_items {
                    config.insert("MaxItems".into(), Value::from(m));
                }
                let mut items =
                    self.invoker.read_items(&reader.resource, &params, &Value::Object(config)).await.map_err(|f| {
                        Failure { error: errors::ITEM_READER_FAILED.into(), cause: format!("{}: {}", f.error, f.cause) }
                    })?;
                if let Some(m) = max_items.filter(|m| *m > 0) {
                    items.truncate(m);
                }
                items
            }
            None => match spec
                .items_path
                .select(effective)
                .map_err(|_| invalid_path(&spec.items_path, "input", effective))?
            {
                Value::Array(items) => items,
                other => {
                    return Err(errors::runtime(format!(
                        "Map {:?}: ItemsPath {} resolved to {}, not an array",
                        state.name,
                        spec.items_path.text,
                        super::intrinsic::kind(&other)
                    )))
                }
            },
        };
        // ItemSelector (or the legacy Parameters) sees the Map's input as `$` and the item in `$$.Map.Item`.
        let mut inputs = Vec::with_capacity(items.len());
        let labels: Vec<String> = items.iter().enumerate().map(|(i, item)| super::item_label(i, item)).collect();
        for (index, item) in items.into_iter().enumerate() {
            inputs.push(match &spec.item_selector {
                Some(t) => {
                    let mut c = ctx.clone();
                    c.doc["Map"] = json!({"Item": {"Index": index, "Value": item}});
                    self.eval(t, effective, &c)?
                }
                None => item,
            });
        }
        if let Some(b) = &spec.batcher {
            inputs = self.batch(b, inputs, effective, ctx)?;
        }
        let requested = number(&spec.max_concurrency, effective, "MaxConcurrencyPath")? as usize;
        let limit = match (spec.distributed, requested) {
            (true, 0) => DISTRIBUTED_DEFAULT_CONCURRENCY,
            (true, n) => n.min(10_000),
            (false, 0) => usize::MAX,
            (false, n) => n,
        };
        let total = inputs.len();
        let tolerated = |failed: usize| -> Result<bool, Failure> {
            let count_ok = match &spec.tolerated_count {
                Some(c) => failed as f64 <= number(c, effective, "ToleratedFailureCountPath")?,
                None => spec.tolerated_percentage.is_some() || failed == 0,
            };
            let pct_ok = match &spec.tolerated_percentage {
                Some(p) if total > 0 => {
                    failed as f64 * 100.0 / total as f64 <= number(p, effective, "ToleratedFailurePercentagePath")?
                }
                _ => spec.tolerated_count.is_some() || failed == 0,
            };
            Ok(count_ok && pct_ok)
        };
        let semaphore = Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS)));
        let mut set = JoinSet::new();
        let mut results: Vec<Value> = vec![Value::Null; total];
        let mut failed = 0usize;
        let handle = |joined: Result<(usize, Result<Value, Failure>), tokio::task::JoinError>,
                      failed: &mut usize,
                      results: &mut Vec<Value>|
         -> Result<(), Failure> {
            match joined {
                Ok((i, Ok(v))) => results[i] = v,
                Ok((i, Err(f))) => {
                    *failed += 1;
                    results[i] = json!({"Error": f.error, "Cause": f.cause});
                    if errors::is_terminal(&f.error) || !tolerated(*failed)? {
                        if (spec.tolerated_count.is_some() || spec.tolerated_percentage.is_some())
                            && !errors::is_terminal(&f.error)
                        {
                            return Err(Failure {
                                error: errors::EXCEED_TOLERATED_FAILURE_THRESHOLD.into(),
                                cause: format!(
                                    "Map {:?}: {failed} of {total} items failed, more than tolerated (last: {}: {})",
                                    state.name, f.error, f.cause
                                ),
                            });
                        }
                        return Err(f);
                    }
                }
                Err(e) => return Err(errors::runtime(format!("a Map iteration panicked: {e}"))),
            }
            Ok(())
        };
        for (i, input) in inputs.into_iter().enumerate() {
            let permit = semaphore.clone().acquire_owned().await.map_err(|e| errors::runtime(e.to_string()))?;
            while let Some(joined) = set.try_join_next() {
                if let Err(f) = handle(joined, &mut failed, &mut results) {
                    set.abort_all();
                    return Err(f);
                }
            }
            let exec = self.clone();
            let graph = spec.processor.clone();
            // Batched items are named by batch: a batch holds several items.
            let label = match &spec.batcher {
                Some(_) => format!("batch {}", i + 1),
                None => labels.get(i).cloned().unwrap_or_else(|| format!("#{i}")),
            };
            set.spawn(async move {
                let r = exec.run_graph_as(graph, input, Some(label)).await;
                drop(permit);
                (i, r)
            });
        }
        while let Some(joined) = set.join_next().await {
            if let Err(f) = handle(joined, &mut failed, &mut results) {
                set.abort_all();
                return Err(f);
            }
        }
        Ok(Value::Array(results))
    }

    fn batch(
        &self,
        b: &super::definition::Batcher,
        inputs: Vec<Value>,
        effective: &Value,
        ctx: &Context,
    ) -> Result<Vec<Value>, Failure> {
        let max_items = match &b.max_items {
            Some(m) => number(m, effective, "MaxItemsPerBatchPath")? as usize,
            None => usize::MAX,
        };
        let max_bytes = match &b.max_bytes {
            Some(m) => number(m, effective, "MaxInputBytesPerBatchPath")? as usize,
            None => usize::MAX,
        };
        let batch_input = match &b.batch_input {
            Some(t) => Some(self.eval(t, effective, ctx)?),
            None => None,
        };
        let wrap = |items: Vec<Value>| {
            let mut m = Map::new();
            if let Some(bi) = &batch_input {
                m.insert("BatchInput".into(), bi.clone());
            }
            m.insert("Items".into(), Value::Array(items));
            Value::Object(m)
        };
        let mut out = Vec::new();
        let mut cur: Vec<Value> = Vec::new();
        let mut bytes = 0usize;
        for item in inputs {
            let size = item.to_string().len();
            if !cur.is_empty() && (cur.len() >= max_items.max(1) || bytes + size > max_bytes) {
                out.push(wrap(std::mem::take(&mut cur)));
                bytes = 0;
            }
            bytes += size;
            cur.push(item);
        }
        if !cur.is_empty() {
            out.push(wrap(cur));
        }
        Ok(out)
    }
}

/// ResultPath then OutputPath.
fn finish(state: &State, raw: &Value, result: Value) -> Result<Value, Failure> {
    let merged = match &state.result_path {
        None => raw.clone(),
        Some(p) => p.write(raw, result).map_err(|e| Failure {
            error: errors::RESULT_PATH_MATCH_FAILURE.into(),
            cause: format!("state {:?}: {}", state.name, e.0),
        })?,
    };
    output(state, merged)
}

fn output(state: &State, doc: Value) -> Result<Value, Failure> {
    match &state.output_path {
        None => Ok(Value::Object(Map::new())),
        Some(p) if p.is_root() => Ok(doc),
        Some(p) => p.select(&doc).map_err(|_| invalid_path(p, "output", &doc)),
    }
}

fn number(n: &NumOrPath, input: &Value, field: &str) -> Result<f64, Failure> {
    match n {
        NumOrPath::Num(v) => Ok(*v),
        NumOrPath::Path(p) => {
            let v = p.select(input).map_err(|_| invalid_path(p, "input", input))?;
            v.as_f64().filter(|n| *n >= 0.0).ok_or_else(|| {
                errors::runtime(format!("{field} {} resolved to {v}, not a non-negative number", p.text))
            })
        }
    }
}

fn check_size(v: &Value, what: &str, state: &str) -> Result<(), Failure> {
    let size = v.to_string().len();
    if size > errors::PAYLOAD_LIMIT {
        return Err(Failure {
            error: errors::DATA_LIMIT_EXCEEDED.into(),
            cause: format!(
                "the {what} of state {state:?} is {size} bytes, more than the {} byte limit",
                errors::PAYLOAD_LIMIT
            ),
        });
    }
    Ok(())
}

fn until(t: &chrono::DateTime<chrono::FixedOffset>) -> f64 {
    let ms = (t.with_timezone(&Utc) - Utc::now()).num_milliseconds();
    (ms.max(0) as f64) / 1000.0
}

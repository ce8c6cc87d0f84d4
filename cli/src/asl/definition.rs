//! Loading a definition: JSON → typed states, with every check Step Functions makes at creation time that the
//! runner depends on. Anything the runner does not implement is refused here, naming the state and field, so a
//! definition either runs with AWS semantics or does not load at all.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::choice::{self, Rule};
use super::errors;
use super::intrinsic::{self, Call};
use super::path::Path;
use super::retry::{Catcher, Jitter, Retrier};
use super::template::Template;

/// A set of states with a start: the machine itself, a Parallel branch or a Map processor.
#[derive(Debug)]
pub struct Graph {
    pub start_at: String,
    pub states: HashMap<String, Arc<State>>,
    pub timeout_seconds: Option<f64>,
}

#[derive(Debug)]
pub struct State {
    pub name: String,
    pub kind: Kind,
    /// `None`: `null` (the state sees `{}`).
    pub input_path: Option<Path>,
    /// `None`: `null` (the state outputs `{}`).
    pub output_path: Option<Path>,
    /// `None`: `null` (the result is discarded, the input passes through).
    pub result_path: Option<Path>,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    /// `None`: `End` (or a terminal state type).
    pub next: Option<String>,
}

#[derive(Debug)]
pub enum Kind {
    Task { resource: String, timeout: Option<NumOrPath> },
    Pass { result: Option<Value> },
    Choice { choices: Vec<(Rule, String)>, default: Option<String> },
    Wait(Wait),
    Succeed,
    Fail { error: Option<Source>, cause: Option<Source> },
    Parallel { branches: Vec<Arc<Graph>> },
    Map(Box<MapSpec>),
}

impl Kind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Task { .. } => "Task",
            Kind::Pass { .. } => "Pass",
            Kind::Choice { .. } => "Choice",
            Kind::Wait(_) => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail { .. } => "Fail",
            Kind::Parallel { .. } => "Parallel",
            Kind::Map(_) => "Map",
        }
    }
}

#[derive(Debug, Clone)]
pub enum NumOrPath {
    Num(f64),
    Path(Path),
}

#[derive(Debug)]
pub enum Wait {
    Seconds(f64),
    SecondsPath(Path),
    Timestamp(DateTime<FixedOffset>),
    TimestampPath(Path),
}

/// `Error`/`Cause` of a Fail state: a literal, or a path / intrinsic from `ErrorPath`/`CausePath`.
#[derive(Debug)]
pub enum Source {
    Lit(String),
    Path(Path),
    Call(Call),
}

#[derive(Debug)]
pub struct MapSpec {
    pub items_path: Path,
    pub item_selector: Option<Template>,
    pub processor: Arc<Graph>,
    pub distributed: bool,
    /// 0: unlimited.
    pub max_concurrency: NumOrPath,
    pub reader: Option<Reader>,
    pub batcher: Option<Batcher>,
    pub tolerated_count: Option<NumOrPath>,
    pub tolerated_percentage: Option<NumOrPath>,
}

#[derive(Debug)]
pub struct Reader {
    pub resource: String,
    pub parameters: Option<Template>,
    /// `ReaderConfig` as written, minus `MaxItemsPath` (resolved into `MaxItems` at run time).
    pub config: Map<String, Value>,
    pub max_items: Option<NumOrPath>,
}

#[derive(Debug)]
pub struct Batcher {
    pub max_items: Option<NumOrPath>,
    pub max_bytes: Option<NumOrPath>,
    pub batch_input: Option<Template>,
}

/// Where a field is: the top-level state it belongs to and the dotted prefix inside that state.
#[derive(Clone)]
struct At {
    state: Option<String>,
    prefix: String,
}

impl At {
    fn err(&self, field: &str, msg: impl std::fmt::Display) -> String {
        let field = format!("{}{}", self.prefix, field);
        let field = field.trim_end_matches('.');
        match (&self.state, field.is_empty()) {
            (Some(s), true) => format!("state {s:?}: {msg}"),
            (Some(s), false) => format!("state {s:?}: field {field:?}: {msg}"),
            (None, _) => format!("field {field:?}: {msg}"),
        }
    }

    fn nested(&self, field: &str) -> At {
        At { state: self.state.clone(), prefix: format!("{}{}.", self.prefix, field) }
    }
}

type R<T> = Result<T, String>;

/// Deserialize the part of the definition at `field` into a typed struct; an error names the field inside it.
fn typed<T: DeserializeOwned>(v: &Value, at: &At, field: &str) -> R<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (field.is_empty(), inner.as_str()) {
            (_, ".") => field.to_string(),
            (true, p) => p.to_string(),
            (false, p) if p.starts_with('[') => format!("{field}{p}"),
            (false, p) => format!("{field}.{p}"),
        };
        at.err(&path, e.into_inner())
    })
}

/// `Some` for a present value, `null` included, so `Option<Option<T>>` tells absent from `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// One element of `Retry`, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawRetrier {
    error_equals: Vec<String>,
    #[serde(rename = "Comment")]
    _comment: Option<IgnoredAny>,
    interval_seconds: Option<u64>,
    max_attempts: Option<u32>,
    backoff_rate: Option<f64>,
    max_delay_seconds: Option<u64>,
    jitter_strategy: Option<Jitter>,
}

/// One element of `Catch`, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawCatcher {
    error_equals: Vec<String>,
    #[serde(rename = "Comment")]
    _comment: Option<IgnoredAny>,
    next: Option<String>,
    /// Absent: `$`; `null`: the error output is discarded.
    #[serde(default, deserialize_with = "present")]
    result_path: Option<Option<String>>,
}

/// `ItemProcessor.ProcessorConfig`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ProcessorConfig {
    mode: Option<ProcessorMode>,
    #[allow(dead_code)]
    execution_type: Option<ExecutionType>,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "UPPERCASE")]
#[allow(dead_code)]
enum ProcessorMode {
    Inline,
    Distributed,
}

#[derive(Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[allow(dead_code)]
enum ExecutionType {
    Standard,
    Express,
}

/// A Distributed Map's `ItemReader`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawReader {
    resource: String,
    parameters: Option<Value>,
    #[serde(default)]
    reader_config: Map<String, Value>,
}

/// `ItemReader.ReaderConfig`: checked as typed, kept as written for the runtime.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, non_snake_case, clippy::upper_case_acronyms)]
struct ReaderConfig {
    InputType: Option<InputType>,
    CSVHeaderLocation: Option<CsvHeaderLocation>,
    CSVHeaders: Option<Vec<String>>,
    CSVDelimiter: Option<CsvDelimiter>,
    MaxItems: Option<u64>,
    MaxItemsPath: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code, clippy::upper_case_acronyms)]
enum InputType {
    CSV,
    JSON,
    JSONL,
    MANIFEST,
}

#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(dead_code)]
enum CsvHeaderLocation {
    FirstRow,
    Given,
}

#[derive(Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[allow(dead_code)]
enum CsvDelimiter {
    Comma,
    Pipe,
    Semicolon,
    Space,
    Tab,
}

/// Load the top level of a definition.
pub fn load(doc: &Value) -> R<Graph> {
    let at = At { state: None, prefix: String::new() };
    let obj = doc.as_object().ok_or_else(|| "the definition must be a JSON object".to_string())?;
    for key in obj.keys() {
        match key.as_str() {
            "StartAt" | "States" | "Comment" | "Version" | "TimeoutSeconds" => {}
            "QueryLanguage" => {
                if obj[key] != Value::String("JSONPath".into()) {
                    return Err(at.err(key, "only the JSONPath query language is supported (JSONata is not)"));
                }
            }
            _ => return Err(at.err(key, "unknown or unsupported top-level field")),
        }
    }
    let timeout_seconds = match obj.get("TimeoutSeconds") {
        None => None,
        Some(v) => Some(positive_int(v).ok_or_else(|| at.err("TimeoutSeconds", "must be a positive integer"))?),
    };
    let mut graph = load_graph(obj, &at)?;
    graph.timeout_seconds = timeout_seconds;
    Ok(graph)
}

fn load_graph(obj: &Map<String, Value>, at: &At) -> R<Graph> {
    let start_at = obj
        .get("StartAt")
        .ok_or_else(|| at.err("StartAt", "missing"))?
        .as_str()
        .ok_or_else(|| at.err("StartAt", "must be a string"))?
        .to_string();
    let states_obj = obj
        .get("States")
        .ok_or_else(|| at.err("States", "missing"))?
        .as_object()
        .ok_or_else(|| at.err("States", "must be an object"))?;
    if states_obj.is_empty() {
        return Err(at.err("States", "must hold at least one state"));
    }
    let mut states = HashMap::new();
    for (name, value) in states_obj {
        let state_at = match &at.state {
            None => At { state: Some(name.clone()), prefix: String::new() },
            Some(_) => at.nested(&format!("States.{name}")),
        };
        if name.chars().count() > 80 {
            return Err(state_at.err("", "state names are at most 80 characters"));
        }
        let sobj = value.as_object().ok_or_else(|| state_at.err("", "a state must be a JSON object"))?;
        states.insert(name.clone(), Arc::new(load_state(name, sobj, &state_at)?));
    }
    if !states.contains_key(&start_at) {
        return Err(at.err("StartAt", format!("no state named {start_at:?}")));
    }
    // Transitions must land on a state of this graph, and every state must be reachable.
    let mut targets: HashMap<&str, Vec<(String, &str)>> = HashMap::new();
    for (name, state) in &states {
        targets.insert(name, transitions(state));
    }
    for (name, list) in &targets {
        for (field, target) in list {
            if !states.contains_key(*target) {
                let state_at = match &at.state {
                    None => At { state: Some(name.to_string()), prefix: String::new() },
                    Some(_) => at.nested(&format!("States.{name}")),
                };
                return Err(state_at.err(field, format!("no state named {target:?}")));
            }
        }
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut queue = VecDeque::from([start_at.as_str()]);
    while let Some(name) = queue.pop_front() {
        if seen.insert(name) {
            queue.extend(targets[name].iter().map(|(_, t)| *t));
        }
    }
    let mut unreachable: Vec<&String> = states.keys().filter(|n| !seen.contains(n.as_str())).collect();
    unreachable.sort();
    if let Some(name) = unreachable.first() {
        let state_at = match &at.state {
            None => At { state: Some(name.to_string()), prefix: String::new() },
            Some(_) => at.nested(&format!("States.{name}")),
        };
        return Err(state_at.err("", format!("the state is not reachable from StartAt {start_at:?}")));
    }
    Ok(Graph { start_at, states, timeout_seconds: None })
}

fn transitions(state: &State) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    if let Some(n) = &state.next {
        out.push(("Next".to_string(), n.as_str()));
    }
    if let Kind::Choice { choices, default } = &state.kind {
        for (i, (_, n)) in choices.iter().enumerate() {
            out.push((format!("Choices[{i}].Next"), n.as_str()));
        }
        if let Some(d) = default {
            out.push(("Default".to_string(), d.as_str()));
        }
    }
    for (i, c) in state.catch.iter().enumerate() {
        out.push((format!("Catch[{i}].Next"), c.next.as_str()));
    }
    out
}

const COMMON: &[&str] = &["Type", "Comment"];
const FLOW: &[&str] = &["Next", "End"];
const IO: &[&str] = &["InputPath", "OutputPath"];

fn allowed(kind: &str) -> Option<Vec<&'static str>> {
    let extra: &[&str] = match kind {
        "Task" => &[
            "Resource",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
        ],
        "Pass" => &["Result", "ResultPath", "Parameters"],
        "Choice" => &["Choices", "Default"],
        "Wait" => &["Seconds", "SecondsPath", "Timestamp", "TimestampPath"],
        "Succeed" => &[],
        "Fail" => &["Error", "Cause", "ErrorPath", "CausePath"],
        "Parallel" => &["Branches", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"],
        "Map" => &[
            "ItemsPath",
            "ItemSelector",
            "Parameters",
            "ItemProcessor",
            "Iterator",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ItemReader",
            "ItemBatcher",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "Label",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
        ],
        _ => return None,
    };
    let mut all: Vec<&str> = COMMON.to_vec();
    all.extend_from_slice(extra);
    match kind {
        "Choice" => all.extend_from_slice(IO),
        "Succeed" => all.extend_from_slice(IO),
        "Fail" => {}
        _ => {
            all.extend_from_slice(FLOW);
            all.extend_from_slice(IO);
        }
    }
    Some(all)
}

/// Fields Step Functions knows but the runner does not implement: refused with a reason.
fn unsupported(field: &str) -> Option<&'static str> {
    Some(match field {
        "HeartbeatSeconds" | "HeartbeatSecondsPath" => "heartbeats (callback and activity tasks) are not supported",
        "Credentials" => "cross-account Credentials are not supported",
        "ResultWriter" => "ResultWriter is not supported: read the Map output instead",
        "Assign" => "workflow variables (Assign) are not supported",
        "Arguments" | "Output" | "QueryLanguage" => "JSONata states are not supported",
        _ => return None,
    })
}

fn load_state(name: &str, obj: &Map<String, Value>, at: &At) -> R<State> {
    let kind_name = obj
        .get("Type")
        .ok_or_else(|| at.err("Type", "missing"))?
        .as_str()
        .ok_or_else(|| at.err("Type", "must be a string"))?;
    let allowed = allowed(kind_name).ok_or_else(|| at.err("Type", format!("unknown state type {kind_name:?}")))?;
    for key in obj.keys() {
        if let Some(why) = unsupported(key) {
            return Err(at.err(key, why));
        }
        if !allowed.contains(&key.as_str()) {
            return Err(at.err(key, format!("not a field of a {kind_name} state")));
        }
    }
    let get = |k: &str| obj.get(k);
    // Transition.
    let next = match (get("Next"), get("End")) {
        (Some(_), Some(_)) => return Err(at.err("End", "a state has either Next or End, not both")),
        (Some(n), None) => Some(n.as_str().ok_or_else(|| at.err("Next", "must be a string"))?.to_string()),
        (None, Some(Value::Bool(true))) => None,
        (None, Some(_)) => return Err(at.err("End", "must be true")),
        (None, None) if matches!(kind_name, "Choice" | "Succeed" | "Fail") => None,
        (None, None) => return Err(at.err("Next", "a non-terminal state needs Next or End: true")),
    };
    let io_path = |k: &str| -> R<Option<Path>> {
        match get(k) {
            None => Ok(Some(Path::parse("$").map_err(|e| at.err(k, e))?)),
            Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                let p = Path::parse(s).map_err(|e| at.err(k, e))?;
                if p.context {
                    return Err(at.err(k, "must be a path into the input ($), not the context object"));
                }
                Ok(Some(p))
            }
            Some(_) => Err(at.err(k, "must be a path string or null")),
        }
    };
    let input_path = io_path("InputPath")?;
    let output_path = io_path("OutputPath")?;
    let result_path = io_path("ResultPath")?;
    if let Some(p) = &result_path {
        if !p.is_reference() {
            return Err(at.err("ResultPath", "must be a reference path (fields and indexes only)"));
        }
    }
    let template = |k: &str| -> R<Option<Template>> {
        match get(k) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => {
                Template::compile(v).map(Some).map_err(|(f, e)| at.err(&format!("{k}.{f}"), e))
            }
            Some(_) => Err(at.err(k, "must be a JSON object (a payload template)")),
        }
    };
    let parameters = template("Parameters")?;
    let result_selector = template("ResultSelector")?;
    let retry = match get("Retry") {
        None => Vec::new(),
        Some(v) => load_retry(v, at)?,
    };
    let catch = match get("Catch") {
        None => Vec::new(),
        Some(v) => load_catch(v, at)?,
    };

    let kind = match kind_name {
        "Task" => {
            let resource = get("Resource")
                .ok_or_else(|| at.err("Resource", "missing"))?
                .as_str()
                .ok_or_else(|| at.err("Resource", "must be a string"))?
                .to_string();
            let timeout = num_or_path(obj, "TimeoutSeconds", at, true)?;
            Kind::Task { resource, timeout }
        }
        "Pass" => Kind::Pass { result: get("Result").cloned() },
        "Choice" => {
            let list = get("Choices")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| at.err("Choices", "must be a non-empty array"))?;
            let mut choices = Vec::new();
            for (i, rule) in list.iter().enumerate() {
                let field = format!("Choices[{i}]");
                let robj = rule.as_object().ok_or_else(|| at.err(&field, "must be an object"))?;
                let (rule, next) = Rule::parse(robj, true).map_err(|(f, e)| at.err(&format!("{field}.{f}"), e))?;
                choices.push((rule, next.unwrap_or_default()));
            }
            let default = match get("Default") {
                None => None,
                Some(v) => Some(v.as_str().ok_or_else(|| at.err("Default", "must be a string"))?.to_string()),
            };
            Kind::Choice { choices, default }
        }
        "Wait" => {
            let given: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
                .into_iter()
                .filter(|k| obj.contains_key(*k))
                .collect();
            if given.len() != 1 {
                return Err(at.err(
                    "Seconds",
                    "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath",
                ));
            }
            let k = given[0];
            let v = &obj[k];
            Kind::Wait(match k {
                "Seconds" => Wait::Seconds(
                    v.as_u64().map(|n| n as f64).ok_or_else(|| at.err(k, "must be a non-negative integer"))?,
                ),
                "Timestamp" => Wait::Timestamp(
                    v.as_str()
                        .and_then(choice::timestamp)
                        .ok_or_else(|| at.err(k, "must be an RFC 3339 timestamp such as 2026-01-01T00:00:00Z"))?,
                ),
                _ => {
                    let p = Path::parse(v.as_str().ok_or_else(|| at.err(k, "must be a path string"))?)
                        .map_err(|e| at.err(k, e))?;
                    if !p.is_reference() {
                        return Err(at.err(k, "must be a reference path"));
                    }
                    if k == "SecondsPath" {
                        Wait::SecondsPath(p)
                    } else {
                        Wait::TimestampPath(p)
                    }
                }
            })
        }
        "Succeed" => Kind::Succeed,
        "Fail" => Kind::Fail { error: fail_source(obj, "Error", at)?, cause: fail_source(obj, "Cause", at)? },
        "Parallel" => {
            let list = get("Branches")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| at.err("Branches", "must be a non-empty array"))?;
            let mut branches = Vec::new();
            for (i, b) in list.iter().enumerate() {
                let field = format!("Branches[{i}]");
                let bobj = b.as_object().ok_or_else(|| at.err(&field, "must be an object"))?;
                branches.push(Arc::new(load_subgraph(bobj, &at.nested(&field), false)?));
            }
            Kind::Parallel { branches }
        }
        "Map" => Kind::Map(Box::new(load_map(obj, at)?)),
        _ => unreachable!("checked by allowed()"),
    };
    // Fields that only some state types accept were filtered by `allowed`; a few need checks across fields.
    if matches!(kind, Kind::Map(_)) && get("Parameters").is_some() && get("ItemSelector").is_some() {
        return Err(at.err("Parameters", "use ItemSelector or the legacy Parameters, not both"));
    }
    let parameters = if matches!(kind, Kind::Map(_)) { None } else { parameters };
    Ok(State {
        name: name.to_string(),
        kind,
        input_path,
        output_path,
        result_path,
        parameters,
        result_selector,
        retry,
        catch,
        next,
    })
}

fn load_subgraph(obj: &Map<String, Value>, at: &At, processor: bool) -> R<Graph> {
    for key in obj.keys() {
        match key.as_str() {
            "StartAt" | "States" | "Comment" => {}
            "ProcessorConfig" if processor => {}
            _ => return Err(at.err(key, "unknown or unsupported field")),
        }
    }
    load_graph(obj, at)
}

fn load_map(obj: &Map<String, Value>, at: &At) -> R<MapSpec> {
    let (pkey, pval) = match (obj.get("ItemProcessor"), obj.get("Iterator")) {
        (Some(_), Some(_)) => return Err(at.err("Iterator", "use ItemProcessor or the legacy Iterator, not both")),
        (Some(v), None) => ("ItemProcessor", v),
        (None, Some(v)) => ("Iterator", v),
        (None, None) => return Err(at.err("ItemProcessor", "missing")),
    };
    let pobj = pval.as_object().ok_or_else(|| at.err(pkey, "must be an object"))?;
    let distributed = match pobj.get("ProcessorConfig") {
        None => false,
        Some(cfg) => {
            let cfg: ProcessorConfig = typed(cfg, at, &format!("{pkey}.ProcessorConfig"))?;
            cfg.mode == Some(ProcessorMode::Distributed)
        }
    };
    let processor = Arc::new(load_subgraph(pobj, &at.nested(pkey), true)?);
    let items_path = match obj.get("ItemsPath") {
        None => Path::parse("$").map_err(|e| at.err("ItemsPath", e))?,
        Some(Value::String(s)) => {
            let p = Path::parse(s).map_err(|e| at.err("ItemsPath", e))?;
            if !p.is_reference() {
                return Err(at.err("ItemsPath", "must be a reference path"));
            }
            p
        }
        Some(_) => return Err(at.err("ItemsPath", "must be a path string")),
    };
    let selector_key = if obj.contains_key("ItemSelector") { "ItemSelector" } else { "Parameters" };
    let item_selector = match obj.get(selector_key) {
        None => None,
        Some(v @ Value::Object(_)) => {
            Some(Template::compile(v).map_err(|(f, e)| at.err(&format!("{selector_key}.{f}"), e))?)
        }
        Some(_) => return Err(at.err(selector_key, "must be a JSON object (a payload template)")),
    };
    let max_concurrency = num_or_path(obj, "MaxConcurrency", at, false)?.unwrap_or(NumOrPath::Num(0.0));
    let reader = match obj.get("ItemReader") {
        None => None,
        Some(v) => {
            if obj.contains_key("ItemsPath") {
                return Err(at.err("ItemsPath", "ItemsPath cannot be combined with ItemReader"));
            }
            Some(load_reader(v, &at.nested("ItemReader"))?)
        }
    };
    let batcher = match obj.get("ItemBatcher") {
        None => None,
        Some(v) => {
            let b_at = at.nested("ItemBatcher");
            let bobj = v.as_object().ok_or_else(|| at.err("ItemBatcher", "must be an object"))?;
            for k in bobj.keys() {
                if !matches!(
                    k.as_str(),
                    "MaxItemsPerBatch"
                        | "MaxItemsPerBatchPath"
                        | "MaxInputBytesPerBatch"
                        | "MaxInputBytesPerBatchPath"
                        | "BatchInput"
                ) {
                    return Err(b_at.err(k, "unknown or unsupported field"));
                }
            }
            let batch_input = match bobj.get("BatchInput") {
                None => None,
                Some(v @ Value::Object(_)) => {
                    Some(Template::compile(v).map_err(|(f, e)| b_at.err(&format!("BatchInput.{f}"), e))?)
                }
                Some(_) => return Err(b_at.err("BatchInput", "must be a JSON object")),
            };
            let max_items = num_or_path(bobj, "MaxItemsPerBatch", &b_at, true)?;
            let max_bytes = num_or_path(bobj, "MaxInputBytesPerBatch", &b_at, true)?;
            if max_items.is_none() && max_bytes.is_none() {
                return Err(b_at.err("MaxItemsPerBatch", "give MaxItemsPerBatch or MaxInputBytesPerBatch"));
            }
            Some(Batcher { max_items, max_bytes, batch_input })
        }
    };
    let tolerated_count = num_or_path(obj, "ToleratedFailureCount", at, false)?;
    let tolerated_percentage = num_or_path(obj, "ToleratedFailurePercentage", at, false)?;
    if !distributed {
        for k in ["ItemReader", "ItemBatcher", "ToleratedFailureCount", "ToleratedFailurePercentage", "Label"] {
            if obj.contains_key(k) || obj.contains_key(&format!("{k}Path")) {
                return Err(at.err(k, "only a DISTRIBUTED Map (ProcessorConfig.Mode) accepts this field"));
            }
        }
    }
    if let Some(NumOrPath::Num(p)) = &tolerated_percentage {
        if *p > 100.0 {
            return Err(at.err("ToleratedFailurePercentage", "must be between 0 and 100"));
        }
    }
    Ok(MapSpec {
        items_path,
        item_selector,
        processor,
        distributed,
        max_concurrency,
        reader,
        batcher,
        tolerated_count,
        tolerated_percentage,
    })
}

fn load_reader(v: &Value, at: &At) -> R<Reader> {
    let raw: RawReader = typed(v, at, "")?;
    let parameters = match raw.parameters {
        None => None,
        Some(p @ Value::Object(_)) => {
            Some(Template::compile(&p).map_err(|(f, e)| at.err(&format!("Parameters.{f}"), e))?)
        }
        Some(_) => return Err(at.err("Parameters", "must be a JSON object")),
    };
    let mut config = raw.reader_config;
    let _: ReaderConfig = typed(&Value::Object(config.clone()), at, "ReaderConfig")?;
    let max_items = num_or_path(&config, "MaxItems", &at.nested("ReaderConfig"), false)?;
    config.remove("MaxItemsPath");
    Ok(Reader { resource: raw.resource, parameters, config, max_items })
}

fn fail_source(obj: &Map<String, Value>, key: &str, at: &At) -> R<Option<Source>> {
    let path_key = format!("{key}Path");
    match (obj.get(key), obj.get(&path_key)) {
        (Some(_), Some(_)) => Err(at.err(&path_key, format!("use {key} or {path_key}, not both"))),
        (Some(v), None) => {
            Ok(Some(Source::Lit(v.as_str().ok_or_else(|| at.err(key, "must be a string"))?.to_string())))
        }
        (None, Some(v)) => {
            let s = v.as_str().ok_or_else(|| at.err(&path_key, "must be a path or intrinsic string"))?;
            if intrinsic::looks_like_call(s) {
                Ok(Some(Source::Call(Call::parse(s).map_err(|e| at.err(&path_key, e))?)))
            } else {
                Ok(Some(Source::Path(Path::parse(s).map_err(|e| at.err(&path_key, e))?)))
            }
        }
        (None, None) => Ok(None),
    }
}

/// `Key` (a number) or `KeyPath` (a reference path), never both.
fn num_or_path(obj: &Map<String, Value>, key: &str, at: &At, positive: bool) -> R<Option<NumOrPath>> {
    let path_key = format!("{key}Path");
    match (obj.get(key), obj.get(&path_key)) {
        (Some(_), Some(_)) => Err(at.err(&path_key, format!("use {key} or {path_key}, not both"))),
        (Some(v), None) => {
            let n = v.as_f64().filter(|n| *n >= 0.0 && n.fract() == 0.0 && (!positive || *n > 0.0));
            let want = if positive { "a positive integer" } else { "a non-negative integer" };
            n.map(|n| Some(NumOrPath::Num(n))).ok_or_else(|| at.err(key, format!("must be {want}")))
        }
        (None, Some(v)) => {
            let p = Path::parse(v.as_str().ok_or_else(|| at.err(&path_key, "must be a path string"))?)
                .map_err(|e| at.err(&path_key, e))?;
            if !p.is_reference() {
                return Err(at.err(&path_key, "must be a reference path"));
            }
            Ok(Some(NumOrPath::Path(p)))
        }
        (None, None) => Ok(None),
    }
}

fn positive_int(v: &Value) -> Option<f64> {
    v.as_u64().filter(|n| *n > 0).map(|n| n as f64)
}

/// `ErrorEquals` of a retrier or catcher: non-empty, `States.ALL` alone and last.
fn error_equals(names: Vec<String>, field: &str, at: &At, last: bool) -> R<Vec<String>> {
    let field = format!("{field}.ErrorEquals");
    if names.is_empty() {
        return Err(at.err(&field, "must be a non-empty array of error names"));
    }
    if names.iter().any(|n| n == errors::ALL) && (names.len() != 1 || !last) {
        return Err(at.err(&field, "States.ALL must appear alone, in the last element of the array"));
    }
    Ok(names)
}

fn load_retry(v: &Value, at: &At) -> R<Vec<Retrier>> {
    let list: Vec<RawRetrier> = typed(v, at, "Retry")?;
    let n = list.len();
    let mut out = Vec::new();
    for (i, r) in list.into_iter().enumerate() {
        let field = format!("Retry[{i}]");
        let f = |k: &str| format!("{field}.{k}");
        let mut retrier =
            Retrier { error_equals: error_equals(r.error_equals, &field, at, i + 1 == n)?, ..Retrier::default() };
        if let Some(s) = r.interval_seconds {
            retrier.interval_seconds = Some(s)
                .filter(|s| *s > 0)
                .map(|s| s as f64)
                .ok_or_else(|| at.err(&f("IntervalSeconds"), "must be a positive integer"))?;
        }
        if let Some(m) = r.max_attempts {
            retrier.max_attempts = m;
        }
        if let Some(b) = r.backoff_rate {
            retrier.backoff_rate =
                Some(b).filter(|b| *b >= 1.0).ok_or_else(|| at.err(&f("BackoffRate"), "must be a number >= 1.0"))?;
        }
        if let Some(s) = r.max_delay_seconds {
            retrier.max_delay_seconds = Some(
                Some(s)
                    .filter(|s| *s > 0)
                    .map(|s| s as f64)
                    .ok_or_else(|| at.err(&f("MaxDelaySeconds"), "must be a positive integer"))?,
            );
        }
        if let Some(j) = r.jitter_strategy {
            retrier.jitter = j;
        }
        out.push(retrier);
    }
    Ok(out)
}

fn load_catch(v: &Value, at: &At) -> R<Vec<Catcher>> {
    let list: Vec<RawCatcher> = typed(v, at, "Catch")?;
    let n = list.len();
    let mut out = Vec::new();
    for (i, c) in list.into_iter().enumerate() {
        let field = format!("Catch[{i}]");
        let errors = error_equals(c.error_equals, &field, at, i + 1 == n)?;
        let result_path = match c.result_path.unwrap_or_else(|| Some("$".into())) {
            None => None,
            Some(s) => {
                let f = format!("{field}.ResultPath");
                let p = Path::parse(&s).map_err(|e| at.err(&f, e))?;
                if !p.is_reference() || p.context {
                    return Err(at.err(&f, "must be a reference path into the input"));
                }
                Some(p)
            }
        };
        let next = c.next.ok_or_else(|| at.err(&format!("{field}.Next"), "missing"))?;
        out.push(Catcher { error_equals: errors, next, result_path });
    }
    Ok(out)
}

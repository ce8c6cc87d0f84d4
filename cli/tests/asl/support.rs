//! Test invokers for the ASL runner: they record calls, fail on demand and track concurrency.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cpo::asl::{self, Event, Failure, Options, StateMachine, TaskInvoker};
use serde_json::Value;

type Handler = dyn Fn(&str, &Value, usize) -> Result<Value, Failure> + Send + Sync;

/// A TaskInvoker driven by a closure `(resource, input, call number of that resource from 0) -> result`.
pub struct Fake {
    handler: Box<Handler>,
    pub calls: Mutex<Vec<(String, Value)>>,
    per_resource: Mutex<HashMap<String, usize>>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    /// When set, every invocation waits here: proves that N invocations are in flight together.
    pub barrier: Option<tokio::sync::Barrier>,
    pub items: Vec<Value>,
    pub reads: Mutex<Vec<(String, Value, Value)>>,
}

impl Fake {
    pub fn new(handler: impl Fn(&str, &Value, usize) -> Result<Value, Failure> + Send + Sync + 'static) -> Self {
        Self {
            handler: Box::new(handler),
            calls: Mutex::new(Vec::new()),
            per_resource: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            barrier: None,
            items: Vec::new(),
            reads: Mutex::new(Vec::new()),
        }
    }

    /// Returns its input.
    pub fn echo() -> Self {
        Self::new(|_, input, _| Ok(input.clone()))
    }

    pub fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

pub fn fail(error: &str, cause: &str) -> Failure {
    Failure { error: error.into(), cause: cause.into() }
}

#[async_trait]
impl TaskInvoker for Fake {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, Failure> {
        let n = {
            let mut map = self.per_resource.lock().unwrap();
            let slot = map.entry(resource.to_string()).or_insert(0);
            *slot += 1;
            *slot - 1
        };
        self.calls.lock().unwrap().push((resource.to_string(), input.clone()));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if let Some(b) = &self.barrier {
            b.wait().await;
        } else {
            tokio::task::yield_now().await;
        }
        let out = (self.handler)(resource, &input, n);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        out
    }

    async fn read_items(&self, resource: &str, parameters: &Value, config: &Value) -> Result<Vec<Value>, Failure> {
        self.reads.lock().unwrap().push((resource.to_string(), parameters.clone(), config.clone()));
        Ok(self.items.clone())
    }
}

pub fn machine(def: Value) -> StateMachine {
    match StateMachine::parse(&def.to_string(), "test.asl.json") {
        Ok(m) => m.with_seed(42),
        Err(e) => panic!("definition should load: {e}"),
    }
}

pub fn load_err(def: Value) -> String {
    match StateMachine::parse(&def.to_string(), "test.asl.json") {
        Ok(_) => panic!("definition should not load"),
        Err(e) => e.to_string(),
    }
}

/// Run with time_scale 0, collecting events.
pub async fn run_events(def: Value, input: Value, fake: Arc<Fake>) -> (Result<Value, Failure>, Vec<Event>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let opts = Options {
        execution_name: "test-exec".into(),
        time_scale: 0.0,
        on_event: Some(Arc::new(move |e: &Event| sink.lock().unwrap().push(e.clone()))),
    };
    let out = asl::execute(&machine(def), input, fake, &opts).await;
    let events = events.lock().unwrap().clone();
    (out, events)
}

pub async fn run(def: Value, input: Value, fake: Arc<Fake>) -> Result<Value, Failure> {
    run_events(def, input, fake).await.0
}

/// One Pass/Task state around a payload: `{"StartAt": "S", "States": {"S": state + End}}`.
pub fn single(mut state: Value) -> Value {
    state["End"] = Value::Bool(true);
    serde_json::json!({"StartAt": "S", "States": {"S": state}})
}

pub fn sleeps(events: &[Event]) -> Vec<f64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sleep { seconds, .. } => Some(*seconds),
            _ => None,
        })
        .collect()
}

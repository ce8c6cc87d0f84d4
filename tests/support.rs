//! Helpers of the cross-crate tests: run `cpo run` / `cpo analyze` in-process against a fresh file store.

use std::path::{Path, PathBuf};

use cpo_common::keys::{Key, RunKeys};
use cpo_common::store::{DynStore, StoreExt};
use serde_json::Value;

/// A scratch directory with a file store at `<dir>/store`.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }
    pub fn store_url(&self) -> String {
        format!("file://{}", self.dir.path().join("store").display())
    }
    pub fn store(&self) -> DynStore {
        cpo_common::store::open(&self.store_url()).expect("open store")
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// `cpo gen customers --n N --seed S` into a file.
    pub fn customers(&self, n: u64, seed: u64) -> PathBuf {
        let p = self.path(&format!("customers-{n}-{seed}.csv"));
        std::fs::write(&p, cpo_segment::synth::customers_csv(n, seed)).expect("write customers");
        p
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

pub fn run_args(store: &str, input: &Path, simulate: bool) -> cpo::cmd::run::Args {
    cpo::cmd::run::Args {
        input: input.to_path_buf(),
        store: store.to_string(),
        campaign: "weekly".into(),
        content: None,
        simulate_outcomes: simulate,
        seed: None,
        as_of: None,
        sharded: false,
        definitions: None,
        json: true,
        metrics_out: None,
    }
}

/// The only run in a store.
pub async fn only_run(store: &DynStore) -> String {
    let runs: Vec<String> = store
        .list(&Key::new("runs/").unwrap())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|o| o.key.strip_prefix("runs/")?.strip_suffix("/input.json").map(String::from))
        .collect();
    assert_eq!(runs.len(), 1, "expected exactly one run, found {runs:?}");
    runs[0].clone()
}

pub async fn json(store: &DynStore, key: &Key) -> Value {
    store.get_json(key).await.unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// Every line of every object under a prefix.
pub async fn lines(store: &DynStore, prefix: &Key) -> Vec<String> {
    let mut out = Vec::new();
    for o in store.list(prefix).await.unwrap() {
        let body = store.get(&Key::new(o.key).unwrap()).await.unwrap();
        out.extend(String::from_utf8(body.to_vec()).unwrap().lines().map(String::from));
    }
    out
}

pub fn keys(run_id: &str) -> RunKeys {
    RunKeys::new(run_id).unwrap()
}

/// A draft that passes generation's validation for the prompt it answers: `lead`, then the first passage of
/// the prompt quoted word for word (and cited), then neutral filler up to the body's minimum length. What the
/// fake chat servers of these tests answer.
pub fn grounded_draft(prompt: &str, lead: &str) -> Value {
    let mut lines = prompt.lines();
    let (mut doc_id, mut quote) = (String::new(), String::new());
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("[doc_id: ") {
            doc_id = rest.split(" |").next().unwrap_or_default().to_string();
            let text = lines.next().unwrap_or_default();
            quote = text.split_inclusive('.').next().unwrap_or(text).trim().to_string();
            break;
        }
    }
    // Distinct sentences: validation rejects a body that says the same sentence twice.
    let filler = "Our team is ready to help you choose the right size and colour for the season ahead. \
                  Every store has fitting rooms and staff who know the range well. \
                  You can also ask our live chat team about sizes before you order. \
                  We hope you find something you love for the colder months. \
                  Thank you for reading, and we look forward to hearing from you.";
    serde_json::json!({
        "subject": "A message for you",
        "preheader": "Something new this week",
        "body": format!("{lead} {quote} {filler}").trim_start().to_string(),
        "cta": "See what is new",
        "citations": [{"doc_id": doc_id, "quote": quote}],
    })
}

/// An OpenAI chat-completions answer whose content is `draft`, for the last user message of `request`.
pub fn chat_completion(model: &str, draft: &Value) -> Value {
    serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": draft.to_string()}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 80, "total_tokens": 180},
    })
}

/// The last message of a chat-completions request (the brief with the passages).
pub fn last_prompt(request: &Value) -> &str {
    request["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or_default()
}

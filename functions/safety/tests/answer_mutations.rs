//! Property (docs/architecture.md, Integrity §3): no mutation of a provider answer that blocks a message turns it into
//! an approval. Starting from Azure and OpenAI answers that block (a severe category, a blocklist hit, a flag), random
//! mutations — a repeated key or entry with a harmless value, a category name in another case, a dropped field, an
//! unknown field or category, a number or boolean of the wrong type or out of range, a truncation, a reordering, an
//! extra result, escaped keys, trailing data — are served by a local HTTP server and screened through the real client,
//! parser and `decide::screen_message`. Mutations never lower a documented value in place (that would be a genuinely
//! harmless answer), so the decision must stay `blocked`.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use cpo_common::model::safety::{Decision, CATEGORIES};
use cpo_common::model::variant::Message;
use cpo_safety::azure::AzureContentSafety;
use cpo_safety::decide::{screen_message, Outcome};
use cpo_safety::http::HttpOpts;
use cpo_safety::openai::OpenAiModeration;
use cpo_safety::policy::{AzureOptions, Policy};
use cpo_safety::screener::Screener;
use proptest::prelude::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------------------
// JSON that can hold what `serde_json::Value` cannot: repeated keys, escaped keys, numbers as written.

#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    key: String,
    /// Written with its first character as a `\u` escape (same key once parsed).
    escaped: bool,
    value: J,
}

impl From<&Value> for J {
    fn from(v: &Value) -> Self {
        match v {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => J::Num(n.to_string()),
            Value::String(s) => J::Str(s.clone()),
            Value::Array(a) => J::Arr(a.iter().map(J::from).collect()),
            Value::Object(m) => {
                J::Obj(m.iter().map(|(k, v)| Entry { key: k.clone(), escaped: false, value: J::from(v) }).collect())
            }
        }
    }
}

impl J {
    fn render(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(n),
            J::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            J::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.render(out);
                }
                out.push(']');
            }
            J::Obj(entries) => {
                out.push('{');
                for (i, e) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    match (e.escaped, e.key.chars().next()) {
                        (true, Some(c)) if (c as u32) < 0x10000 => {
                            let rest = serde_json::to_string(&e.key[c.len_utf8()..]).unwrap();
                            out.push_str(&format!("\"\\u{:04x}{}", c as u32, &rest[1..]));
                        }
                        _ => out.push_str(&serde_json::to_string(&e.key).unwrap()),
                    }
                    out.push(':');
                    e.value.render(out);
                }
                out.push('}');
            }
        }
    }

    /// The same shape with every number 0 and every boolean false: what a harmless answer says.
    fn harmless(&self) -> J {
        match self {
            J::Num(_) => J::Num("0".into()),
            J::Bool(_) => J::Bool(false),
            J::Arr(a) => J::Arr(a.iter().map(J::harmless).collect()),
            J::Obj(entries) => {
                J::Obj(entries.iter().map(|e| Entry { value: e.value.harmless(), ..e.clone() }).collect())
            }
            other => other.clone(),
        }
    }

    /// Paths (child indices) of every node, depth first.
    fn paths(&self, here: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        out.push(here.clone());
        let children: Vec<&J> = match self {
            J::Arr(a) => a.iter().collect(),
            J::Obj(entries) => entries.iter().map(|e| &e.value).collect(),
            _ => Vec::new(),
        };
        for (i, c) in children.into_iter().enumerate() {
            here.push(i);
            c.paths(here, out);
            here.pop();
        }
    }

    fn get(&self, path: &[usize]) -> &J {
        match path.split_first() {
            None => self,
            Some((i, rest)) => match self {
                J::Arr(a) => a[*i].get(rest),
                J::Obj(entries) => entries[*i].value.get(rest),
                _ => unreachable!("paths only lead into containers"),
            },
        }
    }

    fn at(&mut self, path: &[usize]) -> &mut J {
        match path.split_first() {
            None => self,
            Some((i, rest)) => match self {
                J::Arr(a) => a[*i].at(rest),
                J::Obj(entries) => entries[*i].value.at(rest),
                _ => unreachable!("paths only lead into containers"),
            },
        }
    }

    /// The `n`-th (modulo their count) node for which `pick` holds.
    fn nth(&mut self, n: usize, pick: impl Fn(&J) -> bool) -> Option<&mut J> {
        let mut all = Vec::new();
        self.paths(&mut Vec::new(), &mut all);
        let matching: Vec<Vec<usize>> = all.into_iter().filter(|p| pick(self.get(p))).collect();
        if matching.is_empty() {
            return None;
        }
        let path = matching[n % matching.len()].clone();
        Some(self.at(&path))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Mutations.

/// Keys and category names that no provider documents, and that no case change below turns into one.
const UNKNOWN_NAMES: [&str; 6] = ["extra", "Terrorism", "Hate ", "self_harm", "SELFHARM", "violence-graphic"];

#[derive(Debug, Clone)]
enum Mutation {
    /// Repeat an object entry with a harmless value, before or after the original.
    RepeatKey { node: usize, entry: usize, before: bool },
    /// Repeat an array element (a category entry, a result) made harmless, at `at`.
    RepeatElement { node: usize, elem: usize, at: usize },
    /// Upper-case or swap the case of a key or a string value.
    ChangeCase { node: usize, entry: Option<usize>, swap: bool },
    /// Drop an object entry (unless its key is repeated: dropping one of a pair would only pick a value).
    DropField { node: usize, entry: usize },
    /// Add an entry with an undocumented key.
    AddField { node: usize, name: usize, value: usize },
    /// Append an Azure-style category entry with an undocumented name to an array.
    AddCategory { node: usize, name: usize, severity: u8 },
    /// Replace a number by one of another type or out of range (never a smaller valid value).
    ChangeNumber { node: usize, how: usize },
    /// Replace a boolean by another type.
    ChangeBool { node: usize, how: usize },
    /// Cut the text.
    Truncate { at: usize },
    /// Shuffle the entries or elements of a container.
    Reorder { node: usize, seed: u64 },
    /// Write a key with its first character escaped.
    EscapeKey { node: usize, entry: usize },
    /// Append something after the document.
    Trailing { what: usize },
}

fn extra_values() -> Vec<J> {
    vec![
        J::Num("0".into()),
        J::Num("6".into()),
        J::Num("0.97".into()),
        J::Bool(true),
        J::Bool(false),
        J::Null,
        J::Str("x".into()),
        J::Arr(vec![]),
        J::Obj(vec![]),
    ]
}

fn is_obj(j: &J) -> bool {
    matches!(j, J::Obj(e) if !e.is_empty())
}
fn is_arr(j: &J) -> bool {
    matches!(j, J::Arr(a) if !a.is_empty())
}

/// `doc` after `m`, as text (a truncation or trailing data is applied to the text).
fn apply(doc: &mut J, text_tail: &mut (Option<usize>, String), m: &Mutation) {
    match *m {
        Mutation::RepeatKey { node, entry, before } => {
            if let Some(J::Obj(entries)) = doc.nth(node, is_obj) {
                let i = entry % entries.len();
                let copy = Entry { value: entries[i].value.harmless(), ..entries[i].clone() };
                entries.insert(if before { i } else { i + 1 }, copy);
            }
        }
        Mutation::RepeatElement { node, elem, at } => {
            if let Some(J::Arr(a)) = doc.nth(node, is_arr) {
                let copy = a[elem % a.len()].harmless();
                let at = at % (a.len() + 1);
                a.insert(at, copy);
            }
        }
        Mutation::ChangeCase { node, entry, swap } => {
            let change = |s: &str| -> String {
                if swap {
                    s.chars()
                        .map(|c| if c.is_uppercase() { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() })
                        .collect()
                } else {
                    s.to_ascii_uppercase()
                }
            };
            match entry {
                Some(entry) => {
                    if let Some(J::Obj(entries)) = doc.nth(node, is_obj) {
                        let i = entry % entries.len();
                        entries[i].key = change(&entries[i].key);
                    }
                }
                None => {
                    if let Some(J::Str(s)) = doc.nth(node, |j| matches!(j, J::Str(_))) {
                        *s = change(s);
                    }
                }
            }
        }
        Mutation::DropField { node, entry } => {
            if let Some(J::Obj(entries)) = doc.nth(node, is_obj) {
                let i = entry % entries.len();
                let key = entries[i].key.clone();
                if entries.iter().filter(|e| e.key == key).count() == 1 {
                    entries.remove(i);
                }
            }
        }
        Mutation::AddField { node, name, value } => {
            if let Some(J::Obj(entries)) = doc.nth(node, |j| matches!(j, J::Obj(_))) {
                let values = extra_values();
                let key = UNKNOWN_NAMES[name % UNKNOWN_NAMES.len()].to_string();
                let at = (name + value) % (entries.len() + 1);
                entries.insert(at, Entry { key, escaped: false, value: values[value % values.len()].clone() });
            }
        }
        Mutation::AddCategory { node, name, severity } => {
            if let Some(J::Arr(a)) = doc.nth(node, |j| matches!(j, J::Arr(_))) {
                let entry = json!({"category": UNKNOWN_NAMES[name % UNKNOWN_NAMES.len()], "severity": severity % 8});
                a.push(J::from(&entry));
            }
        }
        Mutation::ChangeNumber { node, how } => {
            if let Some(n) = doc.nth(node, |j| matches!(j, J::Num(_))) {
                let J::Num(text) = n.clone() else { unreachable!() };
                let value: f64 = text.parse().unwrap();
                *n = match how % 10 {
                    0 => J::Str(text),
                    1 => J::Num(format!("{}", value + 0.5)),
                    2 => J::Bool(value != 0.0),
                    3 => J::Null,
                    4 => J::Num("-1".into()),
                    5 => J::Num("8".into()),
                    6 => J::Num("1e300".into()),
                    // The same value written differently: `6` → `6.0`, `0.93` → `0.930`.
                    7 => J::Num(if text.contains(['.', 'e', 'E']) { format!("{text}0") } else { format!("{text}.0") }),
                    8 => J::Num(format!("{value:e}")),
                    _ => J::Arr(vec![J::Num(text)]),
                };
            }
        }
        Mutation::ChangeBool { node, how } => {
            if let Some(b) = doc.nth(node, |j| matches!(j, J::Bool(_))) {
                let J::Bool(v) = *b else { unreachable!() };
                *b = match how % 4 {
                    0 => J::Str(v.to_string()),
                    1 => J::Num(u8::from(v).to_string()),
                    2 => J::Null,
                    _ => J::Arr(vec![J::Bool(v)]),
                };
            }
        }
        Mutation::Truncate { at } => text_tail.0 = Some(at),
        Mutation::Reorder { node, seed } => {
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as usize
            };
            match doc.nth(node, |j| is_obj(j) || is_arr(j)) {
                Some(J::Obj(entries)) => {
                    for i in (1..entries.len()).rev() {
                        entries.swap(i, next() % (i + 1));
                    }
                }
                Some(J::Arr(a)) => {
                    for i in (1..a.len()).rev() {
                        a.swap(i, next() % (i + 1));
                    }
                }
                _ => {}
            }
        }
        Mutation::EscapeKey { node, entry } => {
            if let Some(J::Obj(entries)) = doc.nth(node, is_obj) {
                let i = entry % entries.len();
                entries[i].escaped = true;
            }
        }
        Mutation::Trailing { what } => {
            text_tail.1.push_str([" \n", "x", "{}", ",", "]", "\u{0}"][what % 6]);
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Indices are taken modulo what they index, so small ranges reach everything and shrink well.
    let n = || 0..1024usize;
    prop_oneof![
        (n(), n(), any::<bool>()).prop_map(|(node, entry, before)| Mutation::RepeatKey { node, entry, before }),
        (n(), n(), n()).prop_map(|(node, elem, at)| Mutation::RepeatElement { node, elem, at }),
        (n(), proptest::option::of(n()), any::<bool>()).prop_map(|(node, entry, swap)| Mutation::ChangeCase {
            node,
            entry,
            swap
        }),
        (n(), n()).prop_map(|(node, entry)| Mutation::DropField { node, entry }),
        (n(), n(), n()).prop_map(|(node, name, value)| Mutation::AddField { node, name, value }),
        (n(), n(), any::<u8>()).prop_map(|(node, name, severity)| Mutation::AddCategory { node, name, severity }),
        (n(), n()).prop_map(|(node, how)| Mutation::ChangeNumber { node, how }),
        (n(), n()).prop_map(|(node, how)| Mutation::ChangeBool { node, how }),
        n().prop_map(|at| Mutation::Truncate { at }),
        (n(), any::<u64>()).prop_map(|(node, seed)| Mutation::Reorder { node, seed }),
        (n(), n()).prop_map(|(node, entry)| Mutation::EscapeKey { node, entry }),
        n().prop_map(|what| Mutation::Trailing { what }),
    ]
}

fn mutated(base: &Value, mutations: &[Mutation]) -> String {
    let mut doc = J::from(base);
    let mut tail = (None, String::new());
    for m in mutations {
        apply(&mut doc, &mut tail, m);
    }
    let mut text = String::new();
    doc.render(&mut text);
    if let Some(at) = tail.0 {
        let mut cut = at % text.len();
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text + tail.1.as_str()
}

// ---------------------------------------------------------------------------------------------------------
// Answers that block.

const BLOCKLIST: &str = "brand-terms";

fn azure_answer(severities: &[(&str, u8)], hits: Value) -> Value {
    let analysis: Vec<Value> = CATEGORIES
        .iter()
        .map(|c| json!({"category": c, "severity": severities.iter().find(|(n, _)| n == c).map_or(0, |(_, s)| *s)}))
        .collect();
    json!({"blocklistsMatch": hits, "categoriesAnalysis": analysis})
}

fn azure_blocking() -> Vec<Value> {
    let mut out = Vec::new();
    for cat in CATEGORIES {
        for sev in [4, 6] {
            out.push(azure_answer(&[(cat, sev)], json!([])));
        }
    }
    out.push(azure_answer(
        &[],
        json!([{"blocklistName": BLOCKLIST, "blocklistItemId": "b1", "blocklistItemText": "boots"}]),
    ));
    out.push(azure_answer(&[("Hate", 2), ("Violence", 6)], json!([])));
    out
}

const MODERATION_KEYS: [&str; 13] = [
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

fn moderation_result(scores: &[(&str, f64)], flags: &[&str], flagged: bool) -> Value {
    let sc: serde_json::Map<String, Value> = MODERATION_KEYS
        .iter()
        .map(|k| (k.to_string(), json!(scores.iter().find(|(n, _)| n == k).map_or(0.0001, |(_, s)| *s))))
        .collect();
    let fl: serde_json::Map<String, Value> =
        MODERATION_KEYS.iter().map(|k| (k.to_string(), json!(flags.contains(k)))).collect();
    let types: serde_json::Map<String, Value> =
        MODERATION_KEYS.iter().map(|k| (k.to_string(), json!(["text"]))).collect();
    json!({"flagged": flagged, "categories": fl, "category_scores": sc, "category_applied_input_types": types})
}

fn moderation(results: Vec<Value>) -> Value {
    json!({"id": "modr-123", "model": "omni-moderation-2024-09-26", "results": results})
}

fn openai_blocking() -> Vec<Value> {
    let mut out = Vec::new();
    for key in MODERATION_KEYS.iter().filter(|k| !k.starts_with("illicit")) {
        out.push(moderation(vec![moderation_result(&[(key, 0.93)], &[key], true)]));
        // A flag lifts a low score to severity 4.
        out.push(moderation(vec![moderation_result(&[(key, 0.3)], &[key], true)]));
    }
    // A high score the flags leave out still blocks by its severity.
    out.push(moderation(vec![moderation_result(&[("violence", 0.9)], &[], false)]));
    // Flagged with no category flagged, and flagged for a category with no Azure counterpart.
    out.push(moderation(vec![moderation_result(&[], &[], true)]));
    out.push(moderation(vec![moderation_result(&[("illicit", 0.9)], &["illicit"], true)]));
    // The second result is the harmful one, and the other way round.
    let harmless = moderation_result(&[], &[], false);
    let harmful = moderation_result(&[("self-harm/intent", 0.95)], &["self-harm/intent"], true);
    out.push(moderation(vec![harmless.clone(), harmful.clone()]));
    out.push(moderation(vec![harmful, harmless]));
    out
}

// ---------------------------------------------------------------------------------------------------------
// The real HTTP path against one local server whose answer each case sets.

struct Harness {
    rt: tokio::runtime::Runtime,
    body: Arc<Mutex<String>>,
    azure: Box<dyn Screener>,
    openai: Box<dyn Screener>,
    policy: Policy,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let body = Arc::new(Mutex::new(String::new()));
    let served = body.clone();
    let base = rt.block_on(async move {
        let app = axum::Router::new().fallback(move || {
            let text = served.lock().unwrap().clone();
            async move { (StatusCode::OK, [("content-type", "application/json")], text) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    });
    let opts = HttpOpts {
        timeout: Duration::from_secs(5),
        max_retries: 0,
        backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
    };
    let options = AzureOptions { blocklist_names: vec![BLOCKLIST.into()], output_type: "FourSeverityLevels".into() };
    let azure = Box::new(AzureContentSafety::new(&base, "k".into(), opts.clone(), options).unwrap());
    let openai = Box::new(OpenAiModeration::new(&base, "k".into(), "omni-moderation-latest".into(), opts).unwrap());
    Harness { rt, body, azure, openai, policy: Policy::bundled().unwrap() }
});

/// The decision for `answer` served to `provider` (`azure` or `openai`).
fn decide(provider: &str, answer: String) -> Outcome {
    let h = &*HARNESS;
    *h.body.lock().unwrap() = answer;
    let screener = if provider == "azure" { &h.azure } else { &h.openai };
    let message = Message {
        subject: "Winter is here".into(),
        preheader: "New boots inside".into(),
        body: "Our new boots keep you warm all season.".into(),
        cta: "Shop boots".into(),
    };
    let chain = std::slice::from_ref(screener);
    h.rt.block_on(screen_message(chain, &h.policy, &[], &message, true))
}

#[test]
fn the_harness_tells_approval_from_block() {
    // Without this the property could hold vacuously (e.g. every call failing).
    let o = decide("azure", azure_answer(&[("Hate", 2)], json!([])).to_string());
    assert_eq!(o.decision, Decision::Approved, "{:?}", o.reasons);
    let o = decide("openai", moderation(vec![moderation_result(&[("hate", 0.3)], &[], false)]).to_string());
    assert_eq!(o.decision, Decision::Approved, "{:?}", o.reasons);
    for a in azure_blocking() {
        assert_eq!(decide("azure", a.to_string()).decision, Decision::Blocked, "{a}");
    }
    for a in openai_blocking() {
        assert_eq!(decide("openai", a.to_string()).decision, Decision::Blocked, "{a}");
    }
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_mutation_turns_an_azure_block_into_an_approval(
        base in proptest::sample::select(azure_blocking()),
        mutations in proptest::collection::vec(mutation(), 1..=4),
    ) {
        let text = mutated(&base, &mutations);
        let o = decide("azure", text.clone());
        prop_assert_eq!(o.decision, Decision::Blocked, "answer {} reasons {:?}", text, o.reasons);
    }

    #[test]
    fn no_mutation_turns_an_openai_block_into_an_approval(
        base in proptest::sample::select(openai_blocking()),
        mutations in proptest::collection::vec(mutation(), 1..=4),
    ) {
        let text = mutated(&base, &mutations);
        let o = decide("openai", text.clone());
        prop_assert_eq!(o.decision, Decision::Blocked, "answer {} reasons {:?}", text, o.reasons);
    }
}

#[test]
fn mutations_do_what_they_say() {
    let base = json!({"a": 6, "b": [{"c": true}]});
    let m = |ms: &[Mutation]| mutated(&base, ms);
    assert_eq!(m(&[Mutation::RepeatKey { node: 0, entry: 0, before: false }]), r#"{"a":6,"a":0,"b":[{"c":true}]}"#);
    assert_eq!(m(&[Mutation::RepeatElement { node: 0, elem: 0, at: 0 }]), r#"{"a":6,"b":[{"c":false},{"c":true}]}"#);
    assert_eq!(m(&[Mutation::EscapeKey { node: 0, entry: 0 }]), r#"{"\u0061":6,"b":[{"c":true}]}"#);
    assert_eq!(m(&[Mutation::ChangeCase { node: 0, entry: Some(1), swap: true }]), r#"{"a":6,"B":[{"c":true}]}"#);
    assert_eq!(m(&[Mutation::DropField { node: 0, entry: 0 }]), r#"{"b":[{"c":true}]}"#);
    assert_eq!(m(&[Mutation::ChangeNumber { node: 0, how: 0 }]), r#"{"a":"6","b":[{"c":true}]}"#);
    assert_eq!(m(&[Mutation::Truncate { at: 5 }]), r#"{"a":"#);
    let dup_then_drop =
        [Mutation::RepeatKey { node: 0, entry: 0, before: false }, Mutation::DropField { node: 0, entry: 0 }];
    assert_eq!(m(&dup_then_drop), r#"{"a":6,"a":0,"b":[{"c":true}]}"#, "one of a repeated pair is never dropped");
    let parsed: Value = serde_json::from_str(&m(&[Mutation::EscapeKey { node: 0, entry: 0 }])).unwrap();
    assert_eq!(parsed, base, "an escaped key is the same key");
}

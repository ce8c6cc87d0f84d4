//! Generation with weak or real models, through the whole pipeline (`cpo run`):
//! - the old system's customer file (no first_name, no email) renders no broken greeting and warns about email;
//! - a model whose every draft fails validation still completes the run: those customers get the control;
//! - the real llama.cpp server (`make test-llm`; ignored unless asked for, needs CPO_LLAMA_URL).

use std::path::{Path, PathBuf};
use std::time::Instant;

use cpo_common::keys::Key;
use cpo_common::store::StoreExt;
use cpo_e2e::*;
use serde_json::{json, Value};

/// The bundled campaign with whole top-level blocks replaced by name (`key:` and its indented lines), or added
/// at the end when the bundled file has no such key.
fn campaign(dir: &Path, replace: &[(&str, &str)]) -> PathBuf {
    let mut text = cpo_common::bundled::campaign_yaml().to_string();
    for (key, block) in replace {
        let head = format!("{key}:");
        let start = if text.starts_with(&head) { Some(0) } else { text.find(&format!("\n{head}")).map(|i| i + 1) };
        match start {
            Some(s) => {
                // The block ends at the next line that starts at column 0 (another key or a comment).
                let mut end = text.len();
                let mut at = text[s..].find('\n').map(|e| s + e + 1).unwrap_or(text.len());
                while at < text.len() {
                    if !text[at..].starts_with([' ', '\t', '\n']) {
                        end = at;
                        break;
                    }
                    at = text[at..].find('\n').map(|e| at + e + 1).unwrap_or(text.len());
                }
                text.replace_range(s..end, &format!("{block}\n"));
            }
            None => {
                text.push_str(block);
                text.push('\n');
            }
        }
    }
    let p = dir.join("campaign.yaml");
    std::fs::write(&p, text).expect("write campaign");
    p
}

/// `n` synthetic customers in the old system's schema: the synthetic file without `first_name` and `email`.
fn old_schema_customers(s: &Scratch, n: u64) -> PathBuf {
    let full = std::fs::read_to_string(s.customers(n, 3)).expect("customers");
    let old: Vec<String> = full.lines().map(|l| l.rsplitn(3, ',').nth(2).unwrap_or_default().to_string()).collect();
    assert!(old[0].ends_with("historical_click_rate"), "{}", old[0]);
    let p = s.path("old-customers.csv");
    std::fs::write(&p, old.join("\n") + "\n").expect("write");
    p
}

fn args(s: &Scratch, input: &Path, campaign: &Path) -> cpo::cmd::run::Args {
    let mut a = run_args(&s.store_url(), input, false);
    a.campaign = campaign.display().to_string();
    a
}

async fn rendered(store: &cpo_common::store::DynStore, run_id: &str) -> Vec<Value> {
    let prefix = Key::new(format!("runs/{run_id}/send/")).unwrap();
    let mut out = Vec::new();
    for o in store.list(&prefix).await.unwrap() {
        if o.key.contains("/rendered-") {
            let body = store.get(&Key::new(o.key).unwrap()).await.unwrap();
            out.extend(String::from_utf8(body.to_vec()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_customer_file_renders_no_broken_greeting_and_warns_about_email() {
    let s = Scratch::new();
    let input = old_schema_customers(&s, 250);
    let cfg = campaign(s.dir.path(), &[("experiment", "experiment: {render: true}")]);
    cpo::cmd::run::run(args(&s, &input, &cfg)).await.expect("cpo run");
    let store = s.store();
    let run_id = only_run(&store).await;
    let messages = rendered(&store, &run_id).await;
    assert_eq!(messages.len(), 250);
    let mut greeted_by_default = 0;
    for m in &messages {
        let body = m["body"].as_str().unwrap();
        for broken in ["Hi ,", "Hello ,", " ,", "Hi  ", "Hello  "] {
            assert!(!body.contains(broken), "broken merge field in {body:?}");
        }
        greeted_by_default += usize::from(body.starts_with("Hi there,") || body.starts_with("Hello there,"));
    }
    assert!(greeted_by_default > 100, "{greeted_by_default} of 250 greeted with the default");
    let summary = cpo::summary::collect(&store, &run_id).await.unwrap();
    let warnings = summary["warnings"].to_string();
    assert!(warnings.contains("no `email` column"), "{summary:#}");
    let report = json(&store, &keys(&run_id).report("report.json")).await;
    assert!(report["summary"]["points"].to_string().contains("no `email` column"), "{report:#}");
}

/// A chat server that always answers the same draft (a weak model's), counting requests.
async fn weak_model() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().fallback(move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            let draft = json!({"subject": "down jacket", "preheader": "", "body": "up down", "cta": "",
                               "citations": [{"doc_id": "12347568-9b0a", "quote": "A classic and iconic item."}]});
            axum::Json(chat_completion("tiny-1", &draft))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_model_completes_the_run_and_its_segments_get_the_control() {
    let (url, count) = weak_model().await;
    let s = Scratch::new();
    let input = s.customers(400, 5);
    let generation = format!("generation: {{provider: openai, base_url: \"{url}\", model: tiny-1, max_retries: 0}}");
    let cfg = campaign(s.dir.path(), &[("generation", &generation)]);
    cpo::cmd::run::run(args(&s, &input, &cfg)).await.expect("the run completes");
    assert!(count.load(std::sync::atomic::Ordering::SeqCst) > 0);
    let store = s.store();
    let run_id = only_run(&store).await;
    let summary = cpo::summary::collect(&store, &run_id).await.unwrap();
    let generation = summary["generation"].as_array().unwrap();
    assert!(!generation.is_empty());
    for g in generation {
        assert_eq!(g["shipped"], 0, "{g}");
        for d in g["rejected_drafts"].as_array().unwrap() {
            let reasons = d["reasons"].to_string();
            assert!(reasons.contains("12347568-9b0a") && reasons.contains("words"), "{reasons}");
        }
    }
    let arms: std::collections::BTreeSet<String> = lines(&store, &keys(&run_id).assignments_prefix())
        .await
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["arm"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(arms, ["control".to_string()].into(), "every customer gets the control message");
    let report = json(&store, &keys(&run_id).report("report.json")).await;
    assert!(report["summary"]["points"].to_string().contains("Every draft was rejected"), "{report:#}");
}

/// The pipeline on llama.cpp's own OpenAI-compatible server (`scripts/llama.sh start`): the request shapes,
/// the structured-output ladder (it answers `json_schema` with HTTP 500) and a very small model's drafts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a llama.cpp server: make test-llm (sets CPO_LLAMA_URL)"]
async fn the_pipeline_runs_on_a_real_llama_cpp_server() {
    let Ok(url) = std::env::var("CPO_LLAMA_URL") else {
        panic!("CPO_LLAMA_URL is not set: start the server with `scripts/llama.sh start` (make test-llm does)");
    };
    let model = std::env::var("CPO_LLAMA_MODEL").unwrap_or_else(|_| "smollm2-135m-instruct".into());
    let s = Scratch::new();
    let input = s.customers(300, 9);
    // Small enough for a 2-core CI machine: one tone, few segments, bounded answers.
    let generation = format!(
        "generation: {{provider: openai, base_url: \"{url}\", model: {model}, max_tokens: 320, timeout_secs: 900, \
         max_retries: 1, max_concurrency: 1, temperature: 0.2, body_words: [20, 200]}}"
    );
    let cfg = campaign(
        s.dir.path(),
        &[
            ("generation", &generation),
            ("tones", "tones: [friendly]"),
            ("weights", "weights: {control: 0.5, friendly: 0.5}"),
            ("segmentation", "segmentation: {bins: 5, min_segment_size: 100, max_reject_ratio: 0.05, columns: {}}"),
            ("simulation", "simulation: {seed: 7, lifts: {friendly: 0.10}}"),
        ],
    );
    let t0 = Instant::now();
    cpo::cmd::run::run(args(&s, &input, &cfg)).await.expect("the run completes on the real server");
    let wall = t0.elapsed();
    let store = s.store();
    let run_id = only_run(&store).await;
    let summary = cpo::summary::collect(&store, &run_id).await.unwrap();
    let generation = summary["generation"].as_array().unwrap();
    assert!(!generation.is_empty(), "{summary:#}");
    let mut calls = 0;
    for g in generation {
        println!(
            "llama: segment {}: {} shipped, {} rejected{}",
            g["segment"].as_str().unwrap_or("?"),
            g["shipped"],
            g["rejected"],
            if g["no_content"] == json!(true) { " (no content)" } else { "" }
        );
        for d in g["rejected_drafts"].as_array().unwrap() {
            println!("llama:   rejected {}: {}", d["variant_id"], d["reasons"]);
        }
    }
    for o in store.list(&keys(&run_id).variants_prefix()).await.unwrap() {
        let doc = json(&store, &Key::new(o.key).unwrap()).await;
        calls += doc["usage"]["calls"].as_u64().unwrap_or(0);
        if doc["no_content"] != json!(true) {
            assert!(doc["usage"]["completion_tokens"].as_u64().unwrap_or(0) > 0, "the server answered: {doc:#}");
        }
    }
    assert!(calls > 0);
    println!("llama: {calls} provider calls, wall time {:.1} s", wall.as_secs_f64());
    assert!(store.exists(&keys(&run_id).report("index.html")).await.unwrap(), "the report is written");
}

//! The network screeners against a local HTTP server speaking the real wire formats of Azure AI Content
//! Safety (`text:analyze`, 2024-09-01) and OpenAI moderation (`/v1/moderations`): approve, block per category
//! at the threshold boundary, 429 then success, 500 forever, garbage body, timeout, missing category.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use cpo_common::model::safety::{Decision, CATEGORIES};
use cpo_common::model::variant::Message;
use cpo_safety::azure::AzureContentSafety;
use cpo_safety::decide::{screen_message, Outcome};
use cpo_safety::http::HttpOpts;
use cpo_safety::offline::Offline;
use cpo_safety::openai::OpenAiModeration;
use cpo_safety::policy::{AzureOptions, Policy};
use cpo_safety::screener::Screener;
use serde_json::{json, Value};

/// What the fake service does with the n-th request (from 1) and its JSON body.
type Behaviour = Arc<dyn Fn(u32, &Value) -> Reply + Send + Sync>;

enum Reply {
    Json(Value),
    Status(u16),
    Raw(&'static str),
    /// A body as written (JSON with repeated keys, which `Value` cannot hold).
    Text(String),
    Sleep(Duration),
}

#[derive(Default)]
struct Seen {
    requests: Vec<(String, String, HeaderMap, Value)>,
}

struct Server {
    base: String,
    calls: Arc<AtomicU32>,
    seen: Arc<Mutex<Seen>>,
}

async fn serve(behaviour: Behaviour) -> Server {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (c, s) = (calls.clone(), seen.clone());
    let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let (c, s, b) = (c.clone(), s.clone(), behaviour.clone());
        async move {
            assert_eq!(method, Method::POST);
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            s.lock().unwrap().requests.push((
                uri.path().to_string(),
                uri.query().unwrap_or_default().to_string(),
                headers,
                json.clone(),
            ));
            let resp: Response = match b(n, &json) {
                Reply::Json(v) => axum::Json(v).into_response(),
                Reply::Status(code) => {
                    let mut r = (StatusCode::from_u16(code).unwrap(), "{\"error\":{\"code\":\"x\"}}").into_response();
                    if code == 429 {
                        r.headers_mut().insert("retry-after", "0".parse().unwrap());
                    }
                    r
                }
                Reply::Raw(text) => (StatusCode::OK, text).into_response(),
                Reply::Text(text) => (StatusCode::OK, [("content-type", "application/json")], text).into_response(),
                Reply::Sleep(d) => {
                    tokio::time::sleep(d).await;
                    StatusCode::OK.into_response()
                }
            };
            resp
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { base: format!("http://{addr}"), calls, seen }
}

fn opts() -> HttpOpts {
    HttpOpts {
        timeout: Duration::from_millis(300),
        max_retries: 2,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

/// Azure's answer with `sev` for `cat` and 0 for the others.
fn azure_answer(cat: &str, sev: u8) -> Value {
    let analysis: Vec<Value> =
        CATEGORIES.iter().map(|c| json!({"category": c, "severity": if *c == cat { sev } else { 0 }})).collect();
    json!({"blocklistsMatch": [], "categoriesAnalysis": analysis})
}

/// A moderation answer with `score` for `key` and near 0 elsewhere.
fn moderation_answer(key: &str, score: f64) -> Value {
    let keys = [
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
    let scores: serde_json::Map<String, Value> =
        keys.iter().map(|k| (k.to_string(), json!(if *k == key { score } else { 0.0001 }))).collect();
    let flags: serde_json::Map<String, Value> =
        keys.iter().map(|k| (k.to_string(), json!(*k == key && score >= 0.5))).collect();
    json!({"id": "modr-123", "model": "omni-moderation-2024-09-26", "results": [{
        "flagged": score >= 0.5, "categories": flags, "category_scores": scores,
        "category_applied_input_types": {}}]})
}

/// `base` as JSON text with `insert` placed right after the first occurrence of `after`.
fn spliced(base: &Value, after: &str, insert: &str) -> String {
    let text = base.to_string();
    let at = text.find(after).unwrap_or_else(|| panic!("{after} not in {text}")) + after.len();
    format!("{}{insert}{}", &text[..at], &text[at..])
}

fn azure(server: &Server, blocklists: Vec<String>) -> Box<dyn Screener> {
    let options = AzureOptions { blocklist_names: blocklists, output_type: "FourSeverityLevels".into() };
    Box::new(AzureContentSafety::new(&server.base, "test-key".into(), opts(), options).unwrap())
}

fn openai(server: &Server) -> Box<dyn Screener> {
    Box::new(OpenAiModeration::new(&server.base, "sk-test".into(), "omni-moderation-latest".into(), opts()).unwrap())
}

fn message() -> Message {
    Message {
        subject: "Winter is here".into(),
        preheader: "New boots inside".into(),
        body: "Our new boots keep you warm all season.".into(),
        cta: "Shop boots".into(),
    }
}

async fn screen(chain: &[Box<dyn Screener>]) -> Outcome {
    let policy = Policy::bundled().unwrap();
    screen_message(chain, &policy, &["first_name".to_string()], &message(), true).await
}

fn unavailable(o: &Outcome) -> bool {
    o.decision == Decision::Blocked && o.reasons.iter().any(|r| r.starts_with("screening_unavailable"))
}

#[tokio::test]
async fn azure_approves_and_sends_the_real_request() {
    let server = serve(Arc::new(|_, _| Reply::Json(azure_answer("Hate", 0)))).await;
    let o = screen(&[azure(&server, vec!["brand-terms".into()])]).await;
    assert_eq!(o.decision, Decision::Approved, "{:?}", o.reasons);
    assert_eq!(o.providers[0].model, "2024-09-01");
    let seen = server.seen.lock().unwrap();
    let (path, query, headers, body) = &seen.requests[0];
    assert_eq!(path, "/contentsafety/text:analyze");
    assert_eq!(query, "api-version=2024-09-01");
    assert_eq!(headers["ocp-apim-subscription-key"], "test-key");
    assert_eq!(body["categories"], json!(["Hate", "SelfHarm", "Sexual", "Violence"]));
    assert_eq!(body["blocklistNames"], json!(["brand-terms"]));
    assert_eq!(body["outputType"], "FourSeverityLevels");
    let text = body["text"].as_str().unwrap();
    for field in ["Winter is here", "New boots inside", "keep you warm", "Shop boots"] {
        assert!(text.contains(field), "every field is screened: {text}");
    }
}

#[tokio::test]
async fn azure_blocks_each_category_at_the_threshold_boundary() {
    for cat in CATEGORIES {
        for (sev, expected) in [(2u8, Decision::Approved), (4, Decision::Blocked), (6, Decision::Blocked)] {
            let server = serve(Arc::new(move |_, _| Reply::Json(azure_answer(cat, sev)))).await;
            let o = screen(&[azure(&server, vec![])]).await;
            assert_eq!(o.decision, expected, "{cat} severity {sev}: {:?}", o.reasons);
            assert_eq!(o.severities[cat], sev);
            if expected == Decision::Blocked {
                assert!(o.reasons.iter().any(|r| r.starts_with(cat)), "{:?}", o.reasons);
            }
        }
    }
}

#[tokio::test]
async fn azure_blocklist_match_blocks() {
    let server = serve(Arc::new(|_, _| {
        let mut a = azure_answer("Hate", 0);
        a["blocklistsMatch"] =
            json!([{"blocklistName": "brand-terms", "blocklistItemId": "b1", "blocklistItemText": "boots"}]);
        Reply::Json(a)
    }))
    .await;
    let o = screen(&[azure(&server, vec!["brand-terms".into()])]).await;
    assert_eq!(o.decision, Decision::Blocked);
    assert!(o.reasons.iter().any(|r| r.contains("brand-terms:boots")), "{:?}", o.reasons);
}

#[tokio::test]
async fn azure_429_then_success_is_retried() {
    let server =
        serve(Arc::new(|n, _| if n == 1 { Reply::Status(429) } else { Reply::Json(azure_answer("Hate", 0)) })).await;
    let o = screen(&[azure(&server, vec![])]).await;
    assert_eq!(o.decision, Decision::Approved, "{:?}", o.reasons);
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn azure_failures_block_fail_closed() {
    let cases: Vec<(&str, Behaviour, u32)> = vec![
        ("500 forever", Arc::new(|_, _| Reply::Status(500)), 3),
        ("400", Arc::new(|_, _| Reply::Status(400)), 1),
        ("garbage body", Arc::new(|_, _| Reply::Raw("<html>gateway</html>")), 1),
        ("timeout", Arc::new(|_, _| Reply::Sleep(Duration::from_secs(3))), 3),
        (
            "missing category",
            Arc::new(|_, _| Reply::Json(json!({"categoriesAnalysis": [{"category": "Hate", "severity": 0}]}))),
            1,
        ),
        (
            "renamed categories",
            Arc::new(|_, _| {
                Reply::Json(json!({"categoriesAnalysis": [
                    {"category": "hate", "severity": 0}, {"category": "selfharm", "severity": 0},
                    {"category": "sexual", "severity": 0}, {"category": "violence", "severity": 0}]}))
            }),
            1,
        ),
    ];
    for (name, behaviour, calls) in cases {
        let server = serve(behaviour).await;
        let o = screen(&[azure(&server, vec![])]).await;
        assert!(unavailable(&o), "{name}: {:?} {:?}", o.decision, o.reasons);
        assert!(!o.screened, "{name}");
        assert_eq!(server.calls.load(Ordering::SeqCst), calls, "{name}: attempts");
    }
}

#[tokio::test]
async fn openai_approves_and_blocks_at_the_boundary() {
    let server = serve(Arc::new(|_, _| Reply::Json(moderation_answer("hate", 0.0)))).await;
    let o = screen(&[openai(&server)]).await;
    assert_eq!(o.decision, Decision::Approved, "{:?}", o.reasons);
    {
        let seen = server.seen.lock().unwrap();
        let (path, _, headers, body) = &seen.requests[0];
        assert_eq!(path, "/v1/moderations");
        assert_eq!(headers["authorization"], "Bearer sk-test");
        assert_eq!(body["model"], "omni-moderation-latest");
        assert!(body["input"].as_str().unwrap().contains("Shop boots"));
    }
    for (key, cat) in
        [("hate", "Hate"), ("self-harm/intent", "SelfHarm"), ("sexual", "Sexual"), ("violence", "Violence")]
    {
        for (score, expected) in [(0.3, Decision::Approved), (0.6, Decision::Blocked)] {
            let server = serve(Arc::new(move |_, _| Reply::Json(moderation_answer(key, score)))).await;
            let o = screen(&[openai(&server)]).await;
            assert_eq!(o.decision, expected, "{key} {score}: {:?}", o.reasons);
            assert_eq!(o.severities[cat], if score < 0.5 { 2 } else { 4 }, "{key} maps to {cat}");
        }
    }
}

#[tokio::test]
async fn openai_retries_and_fails_closed() {
    let server =
        serve(Arc::new(|n, _| if n < 3 { Reply::Status(429) } else { Reply::Json(moderation_answer("hate", 0.0)) }))
            .await;
    assert_eq!(screen(&[openai(&server)]).await.decision, Decision::Approved);
    assert_eq!(server.calls.load(Ordering::SeqCst), 3);
    let cases: Vec<(&str, Behaviour)> = vec![
        ("503 forever", Arc::new(|_, _| Reply::Status(503))),
        ("garbage body", Arc::new(|_, _| Reply::Raw("not json"))),
        ("timeout", Arc::new(|_, _| Reply::Sleep(Duration::from_secs(3)))),
        (
            "missing category",
            Arc::new(|_, _| {
                let mut a = moderation_answer("hate", 0.0);
                a["results"][0]["category_scores"].as_object_mut().unwrap().remove("violence");
                Reply::Json(a)
            }),
        ),
    ];
    for (name, behaviour) in cases {
        let server = serve(behaviour).await;
        let o = screen(&[openai(&server)]).await;
        assert!(unavailable(&o), "{name}: {:?}", o.reasons);
    }
}

#[tokio::test]
async fn chain_needs_every_provider_to_approve() {
    let ok = serve(Arc::new(|_, _| Reply::Json(azure_answer("Hate", 0)))).await;
    let down = serve(Arc::new(|_, _| Reply::Status(500))).await;
    let violent = serve(Arc::new(|_, _| Reply::Json(moderation_answer("violence", 0.95)))).await;
    let both_ok: Vec<Box<dyn Screener>> = vec![Box::new(Offline), azure(&ok, vec![])];
    assert_eq!(screen(&both_ok).await.decision, Decision::Approved);
    let one_down: Vec<Box<dyn Screener>> = vec![Box::new(Offline), azure(&down, vec![])];
    let o = screen(&one_down).await;
    assert!(unavailable(&o), "{:?}", o.reasons);
    assert_eq!(o.providers.len(), 2, "every provider's view is recorded");
    let one_blocks: Vec<Box<dyn Screener>> = vec![azure(&ok, vec![]), openai(&violent)];
    let o = screen(&one_blocks).await;
    assert_eq!(o.decision, Decision::Blocked);
    assert_eq!(o.severities["Violence"], 6);
}

/// Answers that are not exactly what Azure documents: each must block the message as unavailable, never approve.
#[tokio::test]
async fn azure_ambiguous_answers_block() {
    let four_clean = |extra: Value| {
        let mut a = azure_answer("Hate", 0);
        a["categoriesAnalysis"].as_array_mut().unwrap().push(extra);
        Reply::Json(a)
    };
    let cases: Vec<(&str, Behaviour, Vec<String>)> = vec![
        (
            "duplicated category, severe first",
            Arc::new(|_, _| {
                Reply::Json(json!({"blocklistsMatch": [], "categoriesAnalysis": [
                    {"category": "Hate", "severity": 6}, {"category": "SelfHarm", "severity": 0},
                    {"category": "Sexual", "severity": 0}, {"category": "Violence", "severity": 0},
                    {"category": "Hate", "severity": 0}]}))
            }),
            vec![],
        ),
        ("lower-case category", Arc::new(move |_, _| four_clean(json!({"category": "hate", "severity": 6}))), vec![]),
        (
            "unknown severe category",
            Arc::new(move |_, _| four_clean(json!({"category": "Terrorism", "severity": 6}))),
            vec![],
        ),
        (
            "repeated key in an entry",
            Arc::new(|_, _| {
                Reply::Text(spliced(&azure_answer("Violence", 0), r#"{"category":"Violence","#, r#""severity":6,"#))
            }),
            vec![],
        ),
        (
            "the same key in another case",
            Arc::new(|_, _| {
                Reply::Text(spliced(&azure_answer("Violence", 0), r#"{"category":"Violence","#, r#""SEVERITY":6,"#))
            }),
            vec![],
        ),
        (
            "repeated categoriesAnalysis",
            Arc::new(|_, _| {
                let severe = azure_answer("Hate", 6)["categoriesAnalysis"].to_string();
                Reply::Text(spliced(&azure_answer("Hate", 0), "{", &format!(r#""categoriesAnalysis":{severe},"#)))
            }),
            vec![],
        ),
        (
            "severity 3 is not a FourSeverityLevels value",
            Arc::new(|_, _| Reply::Json(azure_answer("Sexual", 3))),
            vec![],
        ),
        ("severity 8", Arc::new(|_, _| Reply::Json(azure_answer("Sexual", 8))), vec![]),
        (
            "severity as a float",
            Arc::new(|_, _| {
                let mut a = azure_answer("Hate", 0);
                a["categoriesAnalysis"][0]["severity"] = json!(0.5);
                Reply::Json(a)
            }),
            vec![],
        ),
        (
            "no blocklistsMatch although blocklists were named",
            Arc::new(|_, _| {
                let mut a = azure_answer("Hate", 0);
                a.as_object_mut().unwrap().remove("blocklistsMatch");
                Reply::Json(a)
            }),
            vec!["brand-terms".to_string()],
        ),
        (
            "blocklist match without its name",
            Arc::new(|_, _| {
                let mut a = azure_answer("Hate", 0);
                a["blocklistsMatch"] = json!([{"blocklistItemId": "b1", "blocklistItemText": "boots"}]);
                Reply::Json(a)
            }),
            vec!["brand-terms".to_string()],
        ),
    ];
    let mut wrong = Vec::new();
    for (name, behaviour, blocklists) in cases {
        let server = serve(behaviour).await;
        let o = screen(&[azure(&server, blocklists)]).await;
        if !unavailable(&o) {
            wrong.push(format!("{name}: {:?} {:?}", o.decision, o.reasons));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// An unknown category at severity 0 says nothing harmful: it is ignored (documented in docs/safety.md).
#[tokio::test]
async fn azure_unknown_category_at_zero_is_ignored() {
    let server = serve(Arc::new(|_, _| {
        let mut a = azure_answer("Hate", 0);
        a["categoriesAnalysis"].as_array_mut().unwrap().push(json!({"category": "Terrorism", "severity": 0}));
        Reply::Json(a)
    }))
    .await;
    let o = screen(&[azure(&server, vec![])]).await;
    assert_eq!(o.decision, Decision::Approved, "{:?}", o.reasons);
}

/// Answers that are not exactly what OpenAI documents, or that flag the text in a way no category shows:
/// each must block, never approve.
#[tokio::test]
async fn openai_ambiguous_answers_block() {
    let cases: Vec<(&str, Behaviour)> = vec![
        (
            "repeated score key, severe first",
            Arc::new(|_, _| {
                Reply::Text(spliced(&moderation_answer("hate", 0.0001), r#""category_scores":{"#, r#""hate":0.97,"#))
            }),
        ),
        (
            "repeated flag key, true first",
            Arc::new(|_, _| {
                Reply::Text(spliced(&moderation_answer("hate", 0.0001), r#""categories":{"#, r#""violence":true,"#))
            }),
        ),
        (
            "flagged with every category false",
            Arc::new(|_, _| {
                let mut a = moderation_answer("hate", 0.0001);
                a["results"][0]["flagged"] = json!(true);
                Reply::Json(a)
            }),
        ),
        (
            "second result flagged",
            Arc::new(|_, _| {
                let mut a = moderation_answer("hate", 0.0001);
                let severe = moderation_answer("violence", 0.97)["results"][0].clone();
                a["results"].as_array_mut().unwrap().push(severe);
                Reply::Json(a)
            }),
        ),
        (
            "upper-case category next to the real one",
            Arc::new(|_, _| {
                let mut a = moderation_answer("hate", 0.0001);
                a["results"][0]["category_scores"]["Hate"] = json!(0.97);
                a["results"][0]["categories"]["Hate"] = json!(true);
                Reply::Json(a)
            }),
        ),
        (
            "unknown severe category",
            Arc::new(|_, _| {
                let mut a = moderation_answer("hate", 0.0001);
                a["results"][0]["category_scores"]["terrorism"] = json!(0.97);
                a["results"][0]["categories"]["terrorism"] = json!(false);
                Reply::Json(a)
            }),
        ),
        (
            "flag missing for a mapped category",
            Arc::new(|_, _| {
                let mut a = moderation_answer("violence", 0.4);
                a["results"][0]["categories"].as_object_mut().unwrap().remove("violence");
                Reply::Json(a)
            }),
        ),
        (
            "score as a string",
            Arc::new(|_, _| {
                let mut a = moderation_answer("hate", 0.0001);
                a["results"][0]["category_scores"]["sexual"] = json!("0.9");
                Reply::Json(a)
            }),
        ),
        (
            "null score for a mapped sub-category",
            Arc::new(|_, _| {
                let mut a = moderation_answer("hate", 0.0001);
                a["results"][0]["category_scores"]["violence/graphic"] = Value::Null;
                Reply::Json(a)
            }),
        ),
        (
            "no flagged field",
            Arc::new(|_, _| {
                let mut a = moderation_answer("hate", 0.0001);
                a["results"][0].as_object_mut().unwrap().remove("flagged");
                Reply::Json(a)
            }),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, behaviour) in cases {
        let server = serve(behaviour).await;
        let o = screen(&[openai(&server)]).await;
        let expected = if name == "second result flagged" { o.severities["Violence"] == 6 } else { unavailable(&o) };
        if o.decision != Decision::Blocked || !expected {
            wrong.push(format!("{name}: {:?} {:?}", o.decision, o.reasons));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn openai_flagged_without_a_category_names_the_flag() {
    let server = serve(Arc::new(|_, _| {
        let mut a = moderation_answer("hate", 0.0001);
        a["results"][0]["flagged"] = json!(true);
        Reply::Json(a)
    }))
    .await;
    let o = screen(&[openai(&server)]).await;
    assert_eq!(o.decision, Decision::Blocked);
    assert!(o.reasons.iter().any(|r| r.contains("flagged")), "{:?}", o.reasons);
}

/// OpenAI documents `illicit` and `illicit/violent` as nullable (models without them answer null): that is
/// not an error, and a flagged `illicit` (no Azure category) still blocks through `flagged`.
#[tokio::test]
async fn openai_null_illicit_is_accepted_and_flagged_illicit_blocks() {
    let server = serve(Arc::new(|_, _| {
        let mut a = moderation_answer("hate", 0.0001);
        for k in ["illicit", "illicit/violent"] {
            a["results"][0]["category_scores"][k] = Value::Null;
            a["results"][0]["categories"][k] = Value::Null;
        }
        Reply::Json(a)
    }))
    .await;
    let o = screen(&[openai(&server)]).await;
    assert_eq!(o.decision, Decision::Approved, "{:?}", o.reasons);
    let server = serve(Arc::new(|_, _| Reply::Json(moderation_answer("illicit", 0.9)))).await;
    let o = screen(&[openai(&server)]).await;
    assert_eq!(o.decision, Decision::Blocked, "{:?}", o.reasons);
    assert!(o.reasons.iter().any(|r| r.contains("flagged") && r.contains("illicit")), "{:?}", o.reasons);
}

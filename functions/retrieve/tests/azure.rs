//! The `azure-ai-search` retriever against a local HTTP server speaking Azure AI Search's REST wire format
//! (`POST /indexes/{index}/docs/search?api-version=2024-07-01`, `api-key` header, JSON body and answer).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::NaiveDate;
use cpo_common::model::retrieval::RetrievalDoc;
use cpo_common::store::StoreExt;
use cpo_common::ErrorKind;
use cpo_retrieve::azure::AzureSearch;
use cpo_retrieve::retriever::{Retriever, SearchRequest};
use serde_json::{json, Value};
use support::*;

const KEY: &str = "test-key-123";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    Throttled,
    Unavailable,
    Slow,
    Forbidden,
    Garbage,
}

#[derive(Debug, Clone)]
struct Seen {
    index: String,
    query: Option<String>,
    api_key: Option<String>,
    content_type: Option<String>,
    body: Value,
}

struct Server {
    mode: Mutex<Mode>,
    seen: Mutex<Vec<Seen>>,
}

const CONTENT_A: &str = "Gold members shop every sale 48 hours early. Early access covers the winter sale. \
                         We email the link on the morning it opens.";
const CONTENT_B: &str = "Our winter range has arrived. It brings insulated jackets and boots.";

fn documents() -> Value {
    json!([
        {"@search.score": 3.5, "document_id": "AZ-HV", "title": "Early access", "content": CONTENT_A,
         "category": "Promotion", "audience": "High-Value", "approval_date": "2025-06-15T00:00:00Z"},
        {"@search.score": 2.25, "document_id": "AZ-ALL", "title": "Winter range", "content": CONTENT_B,
         "category": "Promotion", "audience": "All", "approval_date": "2025-10-01T00:00:00Z"},
        // Outside the filter (another audience; approved after the run date): a misconfigured index
        // must not leak them to the segment.
        {"@search.score": 9.0, "document_id": "AZ-RISK", "title": "Come back", "content": "We miss you.",
         "category": "Promotion", "audience": "At-Risk", "approval_date": "2025-01-01T00:00:00Z"},
        {"@search.score": 8.0, "document_id": "AZ-FUTURE", "title": "Spring", "content": "Spring is here.",
         "category": "Promotion", "audience": "All", "approval_date": "2027-02-01T00:00:00Z"}
    ])
}

async fn search(
    State(s): State<Arc<Server>>,
    Path(index): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(String::from);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.seen.lock().unwrap().push(Seen {
        index,
        query,
        api_key: header("api-key"),
        content_type: header("content-type"),
        body: body.clone(),
    });
    let mode = *s.mode.lock().unwrap();
    match mode {
        Mode::Throttled => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")], "").into_response(),
        Mode::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
        Mode::Forbidden => {
            (StatusCode::FORBIDDEN, Json(json!({"error": {"code": "Forbidden", "message": "Invalid api-key"}})))
                .into_response()
        }
        Mode::Garbage => (StatusCode::OK, "<html>proxy error</html>").into_response(),
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Json(json!({"value": []})).into_response()
        }
        Mode::Ok if body["count"] == json!(true) => {
            let n = if body.get("filter").is_some() { 38 } else { 40 };
            Json(json!({"@odata.context": "x", "@odata.count": n, "value": []})).into_response()
        }
        Mode::Ok => Json(json!({"@odata.context": "x", "value": documents()})).into_response(),
    }
}

async fn server(mode: Mode) -> (String, Arc<Server>) {
    let state = Arc::new(Server { mode: Mutex::new(mode), seen: Mutex::new(Vec::new()) });
    let app = Router::new().route("/indexes/{index}/docs/search", post(search)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[tokio::test]
async fn step_speaks_the_search_wire_format_and_keeps_only_eligible_documents() {
    let (endpoint, state) = server(Mode::Ok).await;
    std::env::set_var("CPO_TEST_AZURE_SEARCH_KEY", KEY);
    let yaml = campaign_yaml(&format!(
        "retrieval: {{provider: azure-ai-search, endpoint: \"{endpoint}/\", index: approved-content, \
         api_key: \"env:CPO_TEST_AZURE_SEARCH_KEY\", top_k: 4, passages_per_doc: 1}}"
    ));
    let f = fixture(
        &yaml,
        vec![profile("Champions", "Bought recently, buy often and spend the most.", Some("Gold"))],
        None,
    )
    .await;
    let out = cpo_retrieve::handle(f.input(), &f.ctx).await.unwrap();

    let seen = state.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "two counts and one search");
    for s in &seen {
        assert_eq!(s.index, "approved-content");
        assert_eq!(s.query.as_deref(), Some("api-version=2024-07-01"));
        assert_eq!(s.api_key.as_deref(), Some(KEY));
        assert_eq!(s.content_type.as_deref(), Some("application/json"));
    }
    assert_eq!(seen[0].body, json!({"search": "*", "count": true, "top": 0}));
    assert_eq!(seen[1].body["filter"], "approval_date le 2026-01-15T23:59:59.999Z");
    let body = &seen[2].body;
    assert_eq!(
        body["filter"],
        "(audience eq 'All' or audience eq 'High-Value') and approval_date le 2026-01-15T23:59:59.999Z"
    );
    assert_eq!(body["top"], 4);
    assert_eq!(body["select"], "document_id,title,content,category,audience,approval_date");
    assert_eq!(body["queryType"], "simple");
    let text = body["search"].as_str().unwrap();
    assert!(
        text.starts_with("Champions Bought recently") && text.contains("Gold") && text.contains("winter range"),
        "{text}"
    );
    assert!(!text.contains('·'), "no characters outside the simple syntax's words: {text}");

    let doc: RetrievalDoc = f.store.get_json(&f.keys().retrieval()).await.unwrap();
    assert_eq!(doc.retriever, "azure-ai-search");
    assert_eq!((doc.corpus_documents, doc.eligible_documents), (40, 38));
    let seg = &doc.segments[0];
    let ids: Vec<&str> = seg.hits.iter().map(|h| h.doc_id.as_str()).collect();
    assert_eq!(ids, vec!["AZ-HV", "AZ-ALL"], "other audiences and future approvals are dropped");
    assert_eq!(seg.hits[0].score, 3.5);
    let p = &seg.hits[0].passages[0];
    assert_eq!(seg.hits[0].passages.len(), 1);
    assert_eq!(CONTENT_A.chars().skip(p.start).take(p.end - p.start).collect::<String>(), p.text);
    assert!(p.text.contains("Early access covers the winter sale."), "{}", p.text);
    assert_eq!(out.counts["hits"], 2);
}

async fn fail_with(mode: Mode) -> cpo_common::StepError {
    let (endpoint, _state) = server(mode).await;
    let azure = AzureSearch::new(&endpoint, "idx", KEY.into(), Duration::from_millis(300)).unwrap();
    let audiences = vec!["Standard".to_string()];
    let req = SearchRequest { query: "winter", audiences: &audiences, as_of: day("2026-01-15"), top_k: 3 };
    let e = azure.search(&req).await.unwrap_err();
    assert!(!e.message.contains(KEY), "the key never appears in errors");
    e
}

#[tokio::test]
async fn throttling_is_typed_and_keeps_retry_after() {
    let e = fail_with(Mode::Throttled).await;
    assert_eq!(e.kind, ErrorKind::ProviderThrottled);
    assert!(e.message.contains("429") && e.message.contains("Retry-After: 7"), "{e}");
}

#[tokio::test]
async fn server_errors_and_timeouts_are_unavailable() {
    let e = fail_with(Mode::Unavailable).await;
    assert_eq!(e.kind, ErrorKind::ProviderUnavailable);
    assert!(e.message.contains("503"), "{e}");
    let e = fail_with(Mode::Slow).await;
    assert_eq!(e.kind, ErrorKind::ProviderUnavailable);
    assert!(e.message.contains("timed out"), "{e}");
    let e = fail_with(Mode::Garbage).await;
    assert_eq!(e.kind, ErrorKind::ProviderUnavailable);
    assert!(e.message.contains("unreadable"), "{e}");
}

#[tokio::test]
async fn a_refused_key_is_a_configuration_error() {
    let e = fail_with(Mode::Forbidden).await;
    assert_eq!(e.kind, ErrorKind::InputInvalid);
    assert!(e.message.contains("Invalid api-key") && e.message.contains("retrieval.api_key"), "{e}");
}

#[tokio::test]
async fn unreachable_endpoint_is_unavailable() {
    // Bind then drop a listener: the port is (almost surely) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let azure =
        AzureSearch::new(&format!("http://127.0.0.1:{port}"), "idx", KEY.into(), Duration::from_secs(2)).unwrap();
    let e = azure.stats(day("2026-01-15")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ProviderUnavailable, "{e}");
}

#[tokio::test]
async fn missing_settings_fail_the_step_as_input_errors() {
    let yaml = campaign_yaml(
        "retrieval: {provider: azure-ai-search, index: approved-content, api_key: \"env:CPO_TEST_NOPE\"}",
    );
    let f = fixture(&yaml, standard_profiles(), None).await;
    let e = cpo_retrieve::handle(f.input(), &f.ctx).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InputInvalid);
    assert!(e.message.contains("retrieval.endpoint"), "{e}");
    // An unknown provider name fails when the campaign loads, before any run starts.
    let yaml = campaign_yaml("retrieval: {provider: elastic}");
    let e = cpo_common::CampaignConfig::from_yaml(&yaml, "campaigns/weekly.yaml").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InputInvalid);
    assert!(e.message.contains("campaigns/weekly.yaml") && e.message.contains("retrieval"), "{e}");
    assert!(
        e.message.contains("\"elastic\" is not a valid `retrieval.provider` (expected local or azure-ai-search)"),
        "{e}"
    );
}

//! Azure AI Search as the retriever, for teams that keep the index the old system used. Wire format: REST
//! `POST {endpoint}/indexes/{index}/docs/search?api-version=2024-07-01` with an `api-key` header; the index has
//! the fields document_id, title, content, category, audience, approval_date (Edm.DateTimeOffset).
//!
//! Eligibility is sent as an OData filter (audience and approval date) and checked again on what comes back,
//! so a misconfigured index can never hand a segment content it may not receive. The index schema has no
//! expiry field: expired documents must be removed from the index by whoever maintains it.
//!
//! Failures are typed for the state machine's Retry: 429 → `Cpo.ProviderThrottled`, 5xx, timeouts and
//! unreadable answers → `Cpo.ProviderUnavailable`, other 4xx (bad key, missing index) → `Cpo.InputInvalid`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use cpo_common::config::Retrieval;
use cpo_common::model::content::{parse_date_or_datetime, Document};
use cpo_common::secrets;
use cpo_common::StepError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::eligibility::{self, ALL};
use crate::retriever::{CorpusStats, Found, Retriever, SearchRequest};

pub const API_VERSION: &str = "2024-07-01";
/// Per request; a search answers in well under a second, so this only bounds a hung connection.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const SELECT: &str = "document_id,title,content,category,audience,approval_date";
/// Longest error body quoted back in a message.
const MAX_ERROR_BODY: usize = 300;

pub struct AzureSearch {
    client: reqwest::Client,
    url: Url,
    api_key: String,
}

impl std::fmt::Debug for AzureSearch {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSearch").field("url", &self.url.as_str()).finish_non_exhaustive()
    }
}

fn config_error(field: &str, why: impl std::fmt::Display) -> StepError {
    StepError::input(format!("campaign config: field `retrieval.{field}`: {why}"))
}

/// The API key behind a reference (`env:VAR`, `aws-secrets:…`, `azure-keyvault:…`). A literal key in a campaign
/// file is refused, because campaign files are stored, digested and shown in reports.
pub async fn resolve_api_key(reference: Option<&str>) -> Result<String, StepError> {
    let reference = reference.ok_or_else(|| config_error("api_key", "required for azure-ai-search (env:VAR)"))?;
    let key = secrets::resolve("campaign config: field `retrieval.api_key`", reference, &secrets::process_env).await?;
    Ok(key.expose().to_string())
}

/// Azure index names: lowercase letters, digits and dashes (also keeps the URL path ours).
fn check_index_name(index: &str) -> Result<(), StepError> {
    let ok = !index.is_empty()
        && index.len() <= 128
        && index.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(config_error("index", format!("{index:?} is not an index name (lowercase letters, digits, dashes)")))
    }
}

/// An OData string literal (quotes doubled).
fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `$filter` of a search: audience "All" or one of the segment's, approved by the end of the run date.
pub fn filter(audiences: &[String], as_of: NaiveDate) -> String {
    let mut names: Vec<&str> = vec![ALL];
    names.extend(audiences.iter().map(|a| a.trim()).filter(|a| !a.eq_ignore_ascii_case(ALL)));
    let audience = names.iter().map(|a| format!("audience eq {}", odata_string(a))).collect::<Vec<_>>().join(" or ");
    format!("({audience}) and {}", date_filter(as_of))
}

fn date_filter(as_of: NaiveDate) -> String {
    format!("approval_date le {}T23:59:59.999Z", as_of.format("%Y-%m-%d"))
}

/// The query in Azure's simple syntax with its operators (`+ - | " * ( ) ~ \` …) turned into spaces: the
/// text is built from segment names and a goal, never meant as search syntax.
pub fn search_text(query: &str) -> String {
    let cleaned: String = query.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Deserialize)]
struct SearchResponse {
    #[serde(rename = "@odata.count", default)]
    count: Option<u64>,
    #[serde(default)]
    value: Vec<SearchHit>,
}

#[derive(Debug, Deserialize)]
struct SearchHit {
    #[serde(rename = "@search.score", default)]
    score: f64,
    document_id: String,
    #[serde(default)]
    title: Option<String>,
    content: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    approval_date: Option<String>,
}

impl AzureSearch {
    pub fn new(endpoint: &str, index: &str, api_key: String, timeout: Duration) -> Result<Self, StepError> {
        check_index_name(index)?;
        let base = Url::parse(endpoint.trim_end_matches('/'))
            .map_err(|e| config_error("endpoint", format!("{endpoint:?} is not a URL: {e}")))?;
        if !matches!(base.scheme(), "https" | "http") || base.query().is_some() {
            return Err(config_error("endpoint", format!("{endpoint:?} must be an http(s) URL without a query")));
        }
        let mut url = Url::parse(&format!("{}/indexes/{index}/docs/search", base.as_str().trim_end_matches('/')))
            .map_err(|e| config_error("endpoint", e))?;
        url.query_pairs_mut().append_pair("api-version", API_VERSION);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| StepError::internal(format!("HTTP client: {e}")))?;
        Ok(Self { client, url, api_key })
    }

    pub async fn from_config(cfg: &Retrieval) -> Result<Self, StepError> {
        let endpoint =
            cfg.endpoint.as_deref().ok_or_else(|| config_error("endpoint", "required for azure-ai-search"))?;
        let index = cfg.index.as_deref().ok_or_else(|| config_error("index", "required for azure-ai-search"))?;
        Self::new(endpoint, index, resolve_api_key(cfg.api_key.as_deref()).await?, DEFAULT_TIMEOUT)
    }

    /// The search URL (no secret in it: the key travels in a header).
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    async fn post(&self, body: &Value) -> Result<SearchResponse, StepError> {
        let response = self
            .client
            .post(self.url.clone())
            .header("api-key", &self.api_key)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            return Err(self.status_error(status, &headers, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            StepError::unavailable(format!("azure-ai-search {}: unreadable search response: {e}", self.url.path()))
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> StepError {
        let what = if e.is_timeout() { "timed out" } else { "request failed" };
        // Without the URL: reqwest's message would repeat it, and the path is enough to find the index.
        StepError::unavailable(format!("azure-ai-search {}: {what}: {}", self.url.path(), e.without_url()))
    }

    fn status_error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> StepError {
        let text = String::from_utf8_lossy(body);
        let detail: String = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| text.into_owned())
            .chars()
            .take(MAX_ERROR_BODY)
            .collect();
        let msg = format!("azure-ai-search {}: HTTP {status}: {detail}", self.url.path());
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                let after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
                StepError::throttled(match after {
                    Some(a) => format!("{msg} (Retry-After: {a})"),
                    None => msg,
                })
            }
            s if s.is_server_error() => StepError::unavailable(msg),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                StepError::input(format!("{msg}; check the key behind retrieval.api_key"))
            }
            _ => StepError::input(msg),
        }
    }

    fn to_found(&self, hit: SearchHit, req: &SearchRequest<'_>) -> Option<Found> {
        let approval_date = hit.approval_date.as_deref().and_then(|d| parse_date_or_datetime(d).ok());
        let Some(approval_date) = approval_date else {
            tracing::warn!(document_id = %hit.document_id, "azure-ai-search returned a document without a readable approval_date; skipped");
            return None;
        };
        let document = Document {
            title: hit.title.unwrap_or_else(|| hit.document_id.clone()),
            document_id: hit.document_id,
            category: hit.category.unwrap_or_default(),
            content: hit.content,
            audience: hit.audience.unwrap_or_else(|| ALL.to_string()),
            keywords: Vec::new(),
            approval_date,
            expires: None,
            source_url: None,
            metadata: None,
        };
        if !eligibility::eligible(&document, req.as_of, req.audiences) || document.content.trim().is_empty() {
            tracing::warn!(document_id = %document.document_id, "azure-ai-search returned a document outside the filter; skipped");
            return None;
        }
        Some(Found { document, score: hit.score as f32 })
    }
}

#[async_trait]
impl Retriever for AzureSearch {
    fn name(&self) -> &'static str {
        "azure-ai-search"
    }

    async fn stats(&self, as_of: NaiveDate) -> Result<CorpusStats, StepError> {
        let count = |resp: SearchResponse| {
            resp.count.ok_or_else(|| StepError::unavailable("azure-ai-search: count requested but not returned"))
        };
        let all = count(self.post(&json!({"search": "*", "count": true, "top": 0})).await?)?;
        let valid =
            count(self.post(&json!({"search": "*", "count": true, "top": 0, "filter": date_filter(as_of)})).await?)?;
        Ok(CorpusStats { corpus_documents: all, eligible_documents: valid, source: self.url.to_string() })
    }

    async fn search(&self, req: &SearchRequest<'_>) -> Result<Vec<Found>, StepError> {
        let text = search_text(req.query);
        if text.is_empty() || req.top_k == 0 {
            return Ok(Vec::new());
        }
        let body = json!({
            "search": text,
            "queryType": "simple",
            "searchMode": "any",
            "searchFields": "title,content",
            "select": SELECT,
            "filter": filter(req.audiences, req.as_of),
            "top": req.top_k,
            "count": false,
        });
        let resp = self.post(&body).await?;
        let mut found: Vec<Found> = resp.value.into_iter().filter_map(|h| self.to_found(h, req)).collect();
        found.sort_by(|a, b| b.score.total_cmp(&a.score));
        found.truncate(req.top_k);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_escapes_and_always_allows_all() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 15).unwrap();
        assert_eq!(
            filter(&["High-Value".into(), "O'Brien fans".into()], day),
            "(audience eq 'All' or audience eq 'High-Value' or audience eq 'O''Brien fans') \
             and approval_date le 2026-01-15T23:59:59.999Z"
        );
        assert_eq!(filter(&["all".into()], day), "(audience eq 'All') and approval_date le 2026-01-15T23:59:59.999Z");
    }

    #[test]
    fn query_operators_are_neutralised() {
        assert_eq!(search_text("Can't Lose · \"big\" -spenders (tier:Gold)*"), "Can t Lose big spenders tier Gold");
    }

    #[tokio::test]
    async fn key_must_be_a_reference() {
        assert!(resolve_api_key(Some("sk-literal")).await.unwrap_err().message.contains("env:VAR"));
        assert!(resolve_api_key(None).await.is_err());
        let e = resolve_api_key(Some("env:CPO_TEST_SURELY_UNSET_VAR")).await.unwrap_err();
        assert!(e.message.contains("CPO_TEST_SURELY_UNSET_VAR"), "{e}");
    }

    #[test]
    fn index_name_stays_in_the_path() {
        assert!(AzureSearch::new("https://x.search.windows.net", "../admin", "k".into(), DEFAULT_TIMEOUT).is_err());
        let a =
            AzureSearch::new("https://x.search.windows.net/", "approved-content", "k".into(), DEFAULT_TIMEOUT).unwrap();
        assert_eq!(a.url(), "https://x.search.windows.net/indexes/approved-content/docs/search?api-version=2024-07-01");
        assert!(!format!("{a:?}").contains("\"k\""));
    }
}

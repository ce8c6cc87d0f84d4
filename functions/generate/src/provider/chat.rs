//! The chat-completions wire format, as spoken by OpenAI and compatible servers (`POST {base}/v1/chat/
//! completions`, `Authorization: Bearer`) and by Azure OpenAI (`POST {endpoint}/openai/deployments/
//! {deployment}/chat/completions?api-version=…`, `api-key` header). Structured output is requested with a
//! JSON schema; servers that reject `json_schema` get JSON mode (`json_object`) from then on.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use cpo_common::StepError;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{Policy, Transport};
use super::{Auth, Completion, Provider, ProviderError, Request};
use crate::secrets::ApiKey;
use crate::settings::{ProviderKind, Settings};

pub struct ChatProvider {
    kind: ProviderKind,
    model: String,
    url: reqwest::Url,
    auth: Auth,
    temperature: f64,
    transport: Transport,
    /// Cleared when the server refuses `response_format: json_schema` (older vLLM, llama.cpp builds).
    json_schema: AtomicBool,
}

impl ChatProvider {
    pub fn new(settings: &Settings, key: Option<ApiKey>) -> Result<Self, StepError> {
        let base = settings.base_url.as_deref().ok_or_else(|| StepError::input("generation.base_url is not set"))?;
        let model = settings.model.clone().ok_or_else(|| StepError::input("generation.model is not set"))?;
        let (url, auth) = match settings.kind {
            ProviderKind::AzureOpenAi => {
                let mut url = parse_url(&format!("{base}/openai/deployments/{model}/chat/completions"))?;
                url.query_pairs_mut().append_pair("api-version", &settings.api_version);
                let key = key.ok_or_else(|| StepError::input("azure-openai needs generation.api_key"))?;
                (url, Auth::ApiKeyHeader(key))
            }
            _ => {
                // Ollama and others document their base with `/v1`; accept both spellings.
                let path = if base.ends_with("/v1") { "/chat/completions" } else { "/v1/chat/completions" };
                (parse_url(&format!("{base}{path}"))?, key.map(Auth::Bearer).unwrap_or(Auth::None))
            }
        };
        let endpoint = format!("{}{}", url.origin().ascii_serialization(), url.path());
        let policy = Policy {
            timeout: settings.timeout,
            max_retries: settings.max_retries,
            backoff_base: settings.backoff_base,
            max_backoff: settings.max_backoff,
        };
        Ok(Self {
            kind: settings.kind,
            model,
            url,
            auth,
            temperature: settings.temperature,
            transport: Transport::new(settings.kind.name(), &endpoint, settings.max_concurrency, policy),
            json_schema: AtomicBool::new(true),
        })
    }

    fn headers(&self) -> Result<HeaderMap, ProviderError> {
        let mut h = HeaderMap::new();
        let bad_key = |_| ProviderError::Rejected {
            provider: self.kind.name(),
            status: 0,
            detail: "the API key contains characters not allowed in an HTTP header".into(),
        };
        match &self.auth {
            Auth::None => {}
            Auth::Bearer(k) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", k.expose())).map_err(bad_key)?;
                v.set_sensitive(true);
                h.insert(AUTHORIZATION, v);
            }
            Auth::ApiKeyHeader(k) => {
                let mut v = HeaderValue::from_str(k.expose()).map_err(bad_key)?;
                v.set_sensitive(true);
                h.insert(HeaderName::from_static("api-key"), v);
            }
        }
        Ok(h)
    }

    fn body(&self, req: &Request<'_>, json_schema: bool) -> Value {
        let mut body = json!({
            "messages": req.messages,
            "temperature": self.temperature,
            "response_format": if json_schema { schema_format() } else { json!({"type": "json_object"}) },
        });
        if self.kind != ProviderKind::AzureOpenAi {
            // Azure selects the model by deployment in the URL.
            body["model"] = json!(self.model);
        }
        body
    }
}

fn parse_url(s: &str) -> Result<reqwest::Url, StepError> {
    reqwest::Url::parse(s).map_err(|e| StepError::input(format!("generation.base_url: {s:?} is not a URL: {e}")))
}

/// The output contract, enforced by servers that support structured outputs.
pub fn output_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["subject", "preheader", "body", "cta", "citations"],
        "properties": {
            "subject": {"type": "string"},
            "preheader": {"type": "string"},
            "body": {"type": "string"},
            "cta": {"type": "string"},
            "citations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["doc_id", "quote"],
                    "properties": {"doc_id": {"type": "string"}, "quote": {"type": "string"}}
                }
            }
        }
    })
}

fn schema_format() -> Value {
    json!({
        "type": "json_schema",
        "json_schema": {"name": "email_variant", "strict": true, "schema": output_schema()}
    })
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: AssistantMessage,
}

#[derive(Deserialize)]
struct AssistantMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct TokenUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// A 400 that complains about the response format: the server lacks structured outputs.
fn rejects_schema(e: &ProviderError) -> bool {
    match e {
        ProviderError::Rejected { status: 400 | 422, detail, .. } => {
            let d = detail.to_ascii_lowercase();
            d.contains("response_format") || d.contains("json_schema")
        }
        _ => false,
    }
}

#[async_trait]
impl Provider for ChatProvider {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn model(&self) -> Option<&str> {
        Some(&self.model)
    }

    fn params(&self) -> Value {
        // The endpoint answers too: another server with the same model name is another provider.
        json!({"temperature": self.temperature, "schema": output_schema(), "endpoint": self.url.as_str()})
    }

    fn cacheable(&self) -> bool {
        true
    }

    async fn complete(&self, req: &Request<'_>) -> Result<Completion, ProviderError> {
        let headers = self.headers()?;
        let use_schema = self.json_schema.load(Ordering::Relaxed);
        let mut reply = self.transport.post_json(&self.url, headers.clone(), &self.body(req, use_schema)).await;
        if use_schema && reply.as_ref().err().is_some_and(rejects_schema) {
            tracing::warn!(provider = self.name(), "server rejected json_schema output; falling back to JSON mode");
            self.json_schema.store(false, Ordering::Relaxed);
            reply = self.transport.post_json(&self.url, headers, &self.body(req, false)).await;
        }
        let bytes = reply?;
        let parsed: ChatResponse = serde_json::from_slice(&bytes).map_err(|e| ProviderError::Unavailable {
            provider: self.name(),
            attempts: 1,
            detail: format!("the response is not a chat completion: {e}"),
        })?;
        let message =
            parsed.choices.into_iter().next().map(|c| c.message).ok_or_else(|| ProviderError::Unavailable {
                provider: self.name(),
                attempts: 1,
                detail: "the response has no choices".into(),
            })?;
        let usage = parsed.usage.unwrap_or(TokenUsage { prompt_tokens: 0, completion_tokens: 0 });
        Ok(Completion {
            text: message.content.unwrap_or_default(),
            refusal: message.refusal.filter(|r| !r.trim().is_empty()),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        })
    }
}

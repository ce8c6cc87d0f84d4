//! The chat-completions wire format, as spoken by OpenAI and compatible servers (`POST {base}/v1/chat/
//! completions`, `Authorization: Bearer`) and by Azure OpenAI (`POST {endpoint}/openai/deployments/
//! {deployment}/chat/completions?api-version=…`, `api-key` header). Structured output is requested down a
//! ladder of [`Rung`]s: a JSON schema, else JSON mode with the schema in the prompt, else plain text. Servers
//! differ in how they refuse a `response_format` (400, 422, even 500), so any error whose body names it moves
//! the endpoint one rung down for the rest of the process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use cpo_common::StepError;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{Policy, Transport};
use super::{Auth, Completion, Provider, ProviderError, Request};
use crate::secrets::ApiKey;
use crate::settings::Settings;
use cpo_common::named::GenerationProvider;

pub struct ChatProvider {
    kind: GenerationProvider,
    model: String,
    url: reqwest::Url,
    auth: Auth,
    temperature: f64,
    transport: Transport,
    /// The endpoint's structured-output rung, shared by every provider of this process that talks to it.
    rung: Arc<AtomicU8>,
    max_tokens: Option<u32>,
}

/// How structured output is asked for, best first. See `docs/generate.md` ("Structured output").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rung {
    /// `response_format: {"type": "json_schema", …, "strict": true}` (OpenAI, Azure, vLLM, Ollama ≥ 0.5).
    JsonSchema,
    /// `response_format: {"type": "json_object", "schema": …}` (llama.cpp reads `schema` as a grammar) and the
    /// schema in the system message for servers that only promise "some JSON".
    JsonMode,
    /// No `response_format`; the schema in the system message and the lenient parser do the rest.
    PlainText,
}

impl Rung {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::JsonSchema,
            1 => Self::JsonMode,
            _ => Self::PlainText,
        }
    }
    fn next(self) -> Option<Self> {
        match self {
            Self::JsonSchema => Some(Self::JsonMode),
            Self::JsonMode => Some(Self::PlainText),
            Self::PlainText => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::JsonSchema => "json_schema",
            Self::JsonMode => "json_object",
            Self::PlainText => "plain text",
        }
    }
}

/// The rung of an endpoint (`origin + path`), remembered for the life of the process: each segment step
/// builds its own provider, and none should rediscover what the first one learnt.
fn endpoint_rung(endpoint: &str) -> Arc<AtomicU8> {
    static RUNGS: OnceLock<Mutex<HashMap<String, Arc<AtomicU8>>>> = OnceLock::new();
    let map = RUNGS.get_or_init(Default::default);
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(endpoint.to_string()).or_insert_with(|| Arc::new(AtomicU8::new(Rung::JsonSchema as u8))).clone()
}

impl ChatProvider {
    pub fn new(settings: &Settings, key: Option<ApiKey>) -> Result<Self, StepError> {
        let base = settings.base_url.as_deref().ok_or_else(|| StepError::input("generation.base_url is not set"))?;
        let model = settings.model.clone().ok_or_else(|| StepError::input("generation.model is not set"))?;
        let (url, auth) = match settings.kind {
            GenerationProvider::AzureOpenAi => {
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
            rung: endpoint_rung(&endpoint),
            max_tokens: settings.max_tokens,
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

    /// The request body at `rung`. Below the top rung the system message also carries the schema, since the
    /// server no longer enforces it (the cache key is computed from `req.messages`, so it does not change).
    fn body(&self, req: &Request<'_>, rung: Rung) -> Value {
        let mut messages = req.messages.to_vec();
        if rung != Rung::JsonSchema {
            if let Some(system) = messages.iter_mut().find(|m| m.role == "system") {
                system.content.push_str(&schema_instruction());
            }
        }
        let mut body = json!({"messages": messages, "temperature": self.temperature});
        match rung {
            Rung::JsonSchema => body["response_format"] = schema_format(),
            Rung::JsonMode => body["response_format"] = json!({"type": "json_object", "schema": output_schema()}),
            Rung::PlainText => {}
        }
        if let Some(n) = self.max_tokens {
            body["max_tokens"] = json!(n);
        }
        if self.kind != GenerationProvider::AzureOpenAi {
            // Azure selects the model by deployment in the URL.
            body["model"] = json!(self.model);
        }
        body
    }

    /// Move the endpoint below `failed` (never back up); logs only when this call is the one that moved it.
    fn step_down(&self, failed: Rung, error: &ProviderError) -> Option<Rung> {
        let next = failed.next()?;
        let before = Rung::from_u8(self.rung.fetch_max(next as u8, Ordering::SeqCst));
        if before < next {
            tracing::warn!(
                provider = self.name(),
                endpoint = %self.url.path(),
                refused = failed.name(),
                now = next.name(),
                error = %error,
                "the server refused this structured-output mode; using the next one for this endpoint from now on"
            );
        }
        Some(before.max(next))
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

/// The schema as an instruction, for rungs where the server does not enforce it.
fn schema_instruction() -> String {
    format!(
        "\n\nThe JSON object must match this JSON schema exactly (all five fields, no others):\n{}",
        output_schema()
    )
}

/// An error body that names the response format: the server lacks that structured-output mode. Any status
/// counts (llama.cpp's Python server answers 500 to `json_schema`); the transport does not retry these.
pub fn names_response_format(body: &str) -> bool {
    let d = body.to_ascii_lowercase();
    d.contains("response_format") || d.contains("json_schema")
}

fn rejects_schema(e: &ProviderError) -> bool {
    match e {
        ProviderError::Rejected { detail, .. } | ProviderError::Unavailable { detail, .. } => {
            names_response_format(detail)
        }
        ProviderError::Throttled { .. } => false,
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
        let mut rung = Rung::from_u8(self.rung.load(Ordering::SeqCst));
        let bytes = loop {
            let body = self.body(req, rung);
            // Without a response_format there is nothing to step down from: errors take their usual course.
            let refusal: fn(&str) -> bool = if rung == Rung::PlainText { |_| false } else { names_response_format };
            let reply = self.transport.post_json_unless(&self.url, headers.clone(), &body, refusal).await;
            match reply {
                Err(e) if rung != Rung::PlainText && rejects_schema(&e) => match self.step_down(rung, &e) {
                    Some(next) => rung = next,
                    None => return Err(e),
                },
                other => break other?,
            }
        };
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

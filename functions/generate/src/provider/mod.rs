//! Text generators behind one trait: `offline` (deterministic, no network) and the chat-completions wire
//! formats of OpenAI-compatible servers and Azure OpenAI. Every provider answers with text that the same
//! parser and validator judge, so the offline default exercises the whole path a real model takes.

pub mod chat;
pub mod http;
pub mod offline;

use async_trait::async_trait;
use cpo_common::StepError;
use serde::{Deserialize, Serialize};

use crate::brief::Brief;
use crate::secrets::{self, ApiKey, Env};
use crate::settings::{KeySource, Settings};
use cpo_common::named::GenerationProvider;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self { role: role.to_string(), content: content.into() }
    }
}

/// One generation request: the rendered conversation (what network providers send) and the brief it was
/// rendered from (what the offline provider composes from).
pub struct Request<'a> {
    pub messages: &'a [ChatMessage],
    pub brief: &'a Brief,
}

/// A provider's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    /// Set when the model declined (OpenAI structured outputs report refusals separately from content).
    #[serde(default)]
    pub refusal: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{provider}: rate limited (HTTP 429) after {attempts} attempt(s): {detail}")]
    Throttled { provider: &'static str, attempts: u32, detail: String },
    #[error("{provider}: unavailable after {attempts} attempt(s): {detail}")]
    Unavailable { provider: &'static str, attempts: u32, detail: String },
    /// A 4xx other than 429: wrong model, key or request; retrying cannot help.
    #[error("{provider}: request rejected with HTTP {status}: {detail}")]
    Rejected { provider: &'static str, status: u16, detail: String },
}

impl From<ProviderError> for StepError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Throttled { .. } => StepError::throttled(e.to_string()),
            ProviderError::Unavailable { .. } => StepError::unavailable(e.to_string()),
            ProviderError::Rejected { .. } => StepError::input(e.to_string()),
        }
    }
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;
    fn model(&self) -> Option<&str>;
    /// Request parameters that change the answer; part of the cache key.
    fn params(&self) -> serde_json::Value;
    /// Whether answers are worth caching (a network call costs money and time; offline costs neither).
    fn cacheable(&self) -> bool;
    async fn complete(&self, req: &Request<'_>) -> Result<Completion, ProviderError>;
}

/// The provider the settings describe, with its API key resolved.
pub async fn build(settings: &Settings, env: Env<'_>) -> Result<Box<dyn Provider>, StepError> {
    let key = match &settings.key {
        KeySource::None => None,
        KeySource::Literal(k) => Some(k.clone()),
        KeySource::Reference(r) if settings.kind != GenerationProvider::Offline => {
            Some(secrets::resolve("generation.api_key", r, env).await?)
        }
        KeySource::Reference(_) => None,
    };
    Ok(match settings.kind {
        GenerationProvider::Offline => Box::new(offline::Offline),
        GenerationProvider::OpenAi | GenerationProvider::AzureOpenAi => {
            Box::new(chat::ChatProvider::new(settings, key)?)
        }
    })
}

/// How a chat provider authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// `Authorization: Bearer <key>` (OpenAI and compatibles).
    Bearer(ApiKey),
    /// `api-key: <key>` (Azure OpenAI).
    ApiKeyHeader(ApiKey),
}

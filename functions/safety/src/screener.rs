//! The `Screener` port: one text in, a severity per harm category out. Providers (`offline`,
//! `azure-content-safety`, `openai-moderation`) implement it; a run chains them and every one must approve.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cpo_common::model::safety::{ProviderScreening, CATEGORIES};

use crate::strict_json::fold;

/// Why a provider gave no usable answer. Every variant is fail-closed: it blocks the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreenError {
    #[error("timeout after {0} attempt(s)")]
    Timeout(u32),
    #[error("network error: {0}")]
    Network(String),
    #[error("HTTP {status} after {attempts} attempt(s)")]
    Status { status: u16, attempts: u32 },
    #[error("unparseable answer: {0}")]
    Unparseable(String),
    #[error("answer has no {0} category")]
    MissingCategory(String),
    /// The provider flagged the text without a category the policy can judge (OpenAI `flagged: true` with no
    /// mapped category flagged, or an `illicit` flag).
    #[error("flagged: {0}")]
    Flagged(String),
    #[error("not configured: {0}")]
    NotConfigured(String),
}

/// A provider's answer: severity per category (all of [`CATEGORIES`]) and provider-side blocklist hits.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    pub severities: BTreeMap<String, u8>,
    pub blocklist_hits: Vec<String>,
    /// Served from the response cache rather than the provider.
    #[serde(skip)]
    pub cached: bool,
}

impl Scores {
    /// Checks that every category is present; a provider that leaves one out has not screened the text.
    pub fn complete(self) -> Result<Self, ScreenError> {
        match CATEGORIES.iter().find(|c| !self.severities.contains_key(**c)) {
            Some(c) => Err(ScreenError::MissingCategory(c.to_string())),
            None => Ok(self),
        }
    }
}

/// `name` is a misspelling of `documented` (`hate`, `HATE`, `Self-Harm`, `self_harm` for `SelfHarm`/`self-harm`):
/// equal once case and punctuation are ignored but not equal as written. Such a category is ambiguous, never
/// "unknown and harmless".
pub fn misspelt(name: &str, documented: &str) -> bool {
    name != documented && fold(name) == fold(documented)
}

#[async_trait]
pub trait Screener: Send + Sync {
    /// Provider name as configured (`offline`, `azure-content-safety`, `openai-moderation`).
    fn name(&self) -> &str;
    /// Model or API version, recorded with every decision.
    fn model(&self) -> String;
    async fn screen(&self, text: &str) -> Result<Scores, ScreenError>;
    /// What besides the text determines the answer (provider, model, endpoint, options — never a key), for
    /// the response cache; `None` = not worth caching (local providers).
    fn cache_identity(&self) -> Option<String> {
        None
    }
}

/// Run every screener of the chain on `text` (in order; all are asked even after one fails, so the audit
/// shows every provider's view).
pub async fn screen_chain(chain: &[Box<dyn Screener>], text: &str) -> Vec<ProviderScreening> {
    let mut out = Vec::with_capacity(chain.len());
    for s in chain {
        let r = s.screen(text).await.and_then(Scores::complete);
        out.push(match r {
            Ok(scores) => ProviderScreening {
                provider: s.name().to_string(),
                model: s.model(),
                severities: scores.severities,
                blocklist_hits: scores.blocklist_hits,
                error: None,
                cached: scores.cached,
            },
            Err(e) => {
                tracing::warn!(provider = s.name(), error = %e, "screening unavailable; blocking the text");
                ProviderScreening {
                    provider: s.name().to_string(),
                    model: s.model(),
                    severities: BTreeMap::new(),
                    blocklist_hits: Vec::new(),
                    error: Some(e.to_string()),
                    cached: false,
                }
            }
        });
    }
    out
}

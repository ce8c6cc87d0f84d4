//! Provider answers cached in the store (`cache/llm/<sha256>.json`), keyed by everything that shapes the
//! answer: provider, model, parameters and the exact conversation. A re-run, a retried step or another run
//! with the same prompts makes no new calls and pays nothing.

use chrono::{DateTime, Utc};
use cpo_common::keys::{llm_cache, sha256_hex};
use cpo_common::store::{Store, StoreExt};
use cpo_common::{Key, StepError};
use serde::{Deserialize, Serialize};

use crate::provider::{ChatMessage, Completion, Provider};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub provider: String,
    pub model: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completion: Completion,
}

/// The cache key of a request: SHA-256 over the canonical JSON of (provider, model, params, messages).
pub fn key(provider: &dyn Provider, messages: &[ChatMessage]) -> Key {
    let identity = serde_json::json!({
        "provider": provider.name(),
        "model": provider.model(),
        "params": provider.params(),
        "messages": messages,
    });
    llm_cache(&sha256_hex(identity.to_string().as_bytes()))
}

/// A cached answer; an unreadable entry is ignored (and later overwritten), never fatal.
pub async fn get(store: &dyn Store, key: &Key) -> Result<Option<Completion>, StepError> {
    match store.get_json_opt::<Entry>(key).await {
        Ok(entry) => Ok(entry.map(|e| e.completion)),
        Err(cpo_common::StoreError::Decode { reason, .. }) => {
            tracing::warn!(%key, reason, "ignoring unreadable cache entry");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn put(
    store: &dyn Store,
    key: &Key,
    provider: &dyn Provider,
    completion: &Completion,
) -> Result<(), StepError> {
    let entry = Entry {
        provider: provider.name().to_string(),
        model: provider.model().map(str::to_string),
        created_at: Utc::now(),
        completion: completion.clone(),
    };
    store.put_json(key, &entry).await?;
    Ok(())
}

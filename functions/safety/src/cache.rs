//! The provider response cache (`cache/llm/<sha256>.json`, docs/architecture.md, "Keys and the run layout"): a network
//! provider's complete answer for a text is kept, keyed by the provider's cache identity (endpoint, model, options —
//! never a key) and the text, so a re-run or next week's unchanged control message is not screened (and billed) again.
//! Only complete answers are cached; failures are always retried. The audit trail marks cached answers.

use async_trait::async_trait;
use cpo_common::keys::{llm_cache, sha256_hex};
use cpo_common::store::{DynStore, StoreExt};

use crate::screener::{Scores, ScreenError, Screener};

pub struct Cached {
    inner: Box<dyn Screener>,
    store: DynStore,
}

/// `screener` with the response cache in `store` (unchanged when the screener opts out of caching).
pub fn wrap(screener: Box<dyn Screener>, store: DynStore) -> Box<dyn Screener> {
    if screener.cache_identity().is_none() {
        return screener;
    }
    Box::new(Cached { inner: screener, store })
}

#[async_trait]
impl Screener for Cached {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn model(&self) -> String {
        self.inner.model()
    }
    fn cache_identity(&self) -> Option<String> {
        self.inner.cache_identity()
    }
    async fn screen(&self, text: &str) -> Result<Scores, ScreenError> {
        let identity = self.inner.cache_identity().unwrap_or_default();
        let key = llm_cache(&sha256_hex(format!("safety\n{}\n{identity}\n{text}", self.inner.name()).as_bytes()));
        match self.store.get_json_opt::<Scores>(&key).await {
            Ok(Some(mut hit)) => {
                hit.cached = true;
                return Ok(hit);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(key = %key, error = %e, "unreadable cache entry; asking the provider"),
        }
        let scores = self.inner.screen(text).await?.complete()?;
        if let Err(e) = self.store.put_json(&key, &scores).await {
            tracing::warn!(key = %key, error = %e, "could not cache a screening answer");
        }
        Ok(scores)
    }
}

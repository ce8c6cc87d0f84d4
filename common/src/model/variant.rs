//! Produced by `generate`: one variant per segment × tone, shipped or rejected with reasons.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    pub doc_id: String,
    pub quote: String,
}

/// The message fields every variant (and the control) has; `{{first_name}}`-style merge fields allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub subject: String,
    #[serde(default)]
    pub preheader: String,
    pub body: String,
    pub cta: String,
}

impl Message {
    /// SHA-256 of the canonical JSON of every field a customer sees. Safety records it in each verdict, and
    /// nothing ships or is shown as approved unless the text's current hash equals an approved verdict's
    /// (docs/architecture.md, "Integrity"). A field added to [`Message`] is covered automatically.
    pub fn content_sha256(&self) -> String {
        crate::canonical::sha256_of(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantStatus {
    Shipped,
    Rejected,
}

/// What producing a variant (or a whole segment, or a run) spent. Responses served from `cache/llm/` cost
/// nothing in this run, so they count in `cache_hits`, not in `calls`, tokens or cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    /// Provider calls made by this run (cache hits excluded).
    pub calls: u64,
    /// True when every response came from the cache (nothing was spent).
    pub cached: bool,
    #[serde(default)]
    pub cache_hits: u64,
}

impl Usage {
    /// Sum of two usages; `cached` stays true only when both were fully cached.
    pub fn add(&mut self, other: &Usage) {
        let both_cached = (self.cached || self.calls + self.cache_hits == 0) && other.cached;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cost_usd += other.cost_usd;
        self.calls += other.calls;
        self.cache_hits += other.cache_hits;
        self.cached = both_cached;
    }

    pub fn tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// `<segment slug>-<tone>`.
    pub variant_id: String,
    pub segment: String,
    pub tone: String,
    pub status: VariantStatus,
    #[serde(flatten)]
    pub message: Message,
    pub citations: Vec<Citation>,
    /// Why a variant was rejected (validation failures after the retry).
    #[serde(default)]
    pub reasons: Vec<String>,
    pub provider: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub usage: Usage,
}

/// `variants/<segment>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantsDoc {
    pub run_id: String,
    pub segment: String,
    pub slug: String,
    pub variants: Vec<Variant>,
    /// Set when the segment had no approved content (no variants are generated).
    #[serde(default)]
    pub no_content: bool,
    /// Provider and model that generated this set (`offline` needs no model).
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub model: Option<String>,
    /// Totals over the variants: what this segment cost.
    #[serde(default)]
    pub usage: Usage,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_sums_and_cached_means_all_cached() {
        let call = Usage { prompt_tokens: 10, completion_tokens: 5, cost_usd: 0.5, calls: 1, ..Usage::default() };
        let hit = Usage { cached: true, cache_hits: 1, ..Usage::default() };
        let mut total = Usage::default();
        total.add(&hit);
        assert!(total.cached);
        total.add(&call);
        assert!(!total.cached);
        total.add(&hit);
        assert_eq!((total.calls, total.cache_hits, total.tokens()), (1, 2, 15));
        assert!(!total.cached);
        assert!((total.cost_usd - 0.5).abs() < 1e-12);
    }
}

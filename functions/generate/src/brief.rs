//! What one variant must be about: the segment's aggregate profile, the tone, the campaign goal, the retrieved
//! passages and the limits the result is validated against. Built from run objects that hold no customer
//! data, so nothing derived from it (prompts, cache keys, logs) can carry PII.

use cpo_common::model::retrieval::Hit;
use cpo_common::model::segment::SegmentProfile;
use cpo_common::CampaignConfig;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Brief {
    pub segment: SegmentProfile,
    pub tone: String,
    pub goal: String,
    /// Ranked hits of the segment, each with its passages (the only text a variant may quote).
    pub hits: Vec<Hit>,
    pub subject_max_chars: usize,
    pub body_words: [usize; 2],
    /// Merge fields a message may use, without braces (`first_name`).
    pub allowed_tokens: Vec<String>,
    /// Merge field → fallback text for customers without a value (`generation.merge_defaults`).
    pub merge_defaults: std::collections::BTreeMap<String, String>,
    /// The customer file's carried columns; `None` when segmentation did not record them.
    pub columns: Option<Vec<String>>,
}

impl Brief {
    pub fn new(cfg: &CampaignConfig, segment: &SegmentProfile, hits: &[Hit], tone: &str) -> Self {
        Self {
            segment: segment.clone(),
            tone: tone.to_string(),
            goal: cfg.goal.clone(),
            hits: hits.to_vec(),
            subject_max_chars: cfg.generation.subject_max_chars,
            body_words: cfg.generation.body_words,
            allowed_tokens: cfg.generation.allowed_tokens.clone(),
            merge_defaults: cfg.generation.merge_defaults.clone(),
            columns: None,
        }
    }

    /// The same brief, knowing which columns the customer file has.
    pub fn with_columns(mut self, columns: Option<Vec<String>>) -> Self {
        self.columns = columns;
        self
    }

    /// Whether every customer gets a value for merge field `token`: the file has the column, or a non-blank
    /// default covers the customers without one. (Unknown columns count as present.)
    pub fn fillable(&self, token: &str) -> bool {
        let column = self.columns.as_ref().is_none_or(|c| c.iter().any(|x| x == token));
        let default = self.merge_defaults.get(token).is_some_and(|d| !d.trim().is_empty());
        column || default
    }

    /// `<segment slug>-<tone>`.
    pub fn variant_id(&self) -> String {
        format!("{}-{}", self.segment.slug, self.tone)
    }

    pub fn allows(&self, token: &str) -> bool {
        self.allowed_tokens.iter().any(|t| t == token)
    }
}

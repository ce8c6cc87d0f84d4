//! What the step reads for one segment: the run (config), the segment's profile and its retrieval.

use cpo_common::model::retrieval::{Hit, RetrievalDoc};
use cpo_common::model::segment::{SegmentProfile, SegmentsDoc};
use cpo_common::run::{self, RunInput};
use cpo_common::store::StoreExt;
use cpo_common::{keys, Ctx, StepError, StepInput};

pub struct SegmentInputs {
    pub run: RunInput,
    pub profile: SegmentProfile,
    /// Empty when the segment has no eligible content (it then gets no variants).
    pub hits: Vec<Hit>,
    /// The customer file's carried columns (merge fields members can fill), when segmentation recorded them.
    pub columns: Option<Vec<String>>,
}

impl SegmentInputs {
    pub fn no_content(&self) -> bool {
        self.hits.is_empty()
    }
}

/// The Map item: a segment name (or its slug).
pub fn segment_name(input: &StepInput) -> Result<&str, StepError> {
    input
        .segment
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| StepError::input(format!("run {}: generate needs the input field `segment`", input.run_id)))
}

pub async fn load(ctx: &Ctx, input: &StepInput) -> Result<SegmentInputs, StepError> {
    let name = segment_name(input)?;
    let keys = input.keys()?;
    let run = run::load(ctx.store.as_ref(), &input.run_id).await?;
    let segments: SegmentsDoc = ctx.store.get_json(&keys.segments()).await?;
    let slug = keys::slug(name);
    let profile = segments.segments.iter().find(|s| s.name == name || s.slug == slug).cloned().ok_or_else(|| {
        let known: Vec<&str> = segments.segments.iter().map(|s| s.name.as_str()).collect();
        StepError::input(format!("{}: no segment {name:?} (segments: {})", keys.segments(), known.join(", ")))
    })?;
    let retrieval: RetrievalDoc = ctx.store.get_json(&keys.retrieval()).await?;
    let listed_empty = retrieval.no_content.iter().any(|s| s == &profile.name || keys::slug(s) == profile.slug);
    let hits = match retrieval.segments.iter().find(|s| s.segment == profile.name || s.slug == profile.slug) {
        Some(s) if !listed_empty => s.hits.iter().filter(|h| !h.passages.is_empty()).cloned().collect(),
        Some(_) => Vec::new(),
        None if listed_empty => Vec::new(),
        None => {
            return Err(StepError::input(format!(
                "{}: segment {:?} is neither retrieved nor listed in no_content",
                keys.retrieval(),
                profile.name
            )))
        }
    };
    Ok(SegmentInputs { run, profile, hits, columns: segments.columns })
}

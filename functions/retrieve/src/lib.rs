//! `retrieve`: ranked search over the approved content corpus for each segment (docs/architecture.md,
//! "Segments and content"; docs/retrieve.md).
//!
//! Reading order: where documents come from and how they parse ([`corpus`]), which are eligible on the run
//! date for a segment ([`eligibility`]), the segment's query ([`query`]), the retriever port ([`retriever`])
//! with its two adapters ([`local`] tantivy BM25, [`azure`] Azure AI Search), and the quotable passages cut
//! from each hit ([`passages`]). The handler writes `runs/<run_id>/retrieval.json`.

pub mod analysis;
pub mod azure;
pub mod corpus;
pub mod eligibility;
pub mod local;
pub mod passages;
pub(crate) mod query;
pub mod retriever;
mod step;

use cpo_common::{Ctx, StepError, StepInput, StepOutput};

/// The step name (`runs/<run_id>/steps/retrieve.json`).
pub const STEP: &str = "retrieve";

/// Bumped when retrieval would give different results for the same run, so a stored result is not reused.
const IDENTITY: &str = "retrieve/1";

/// The step handler, called by the Lambda `main` and by the local state-machine runner.
pub async fn handle(input: StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
    // Reused only while the segments it retrieved for are unchanged (the corpus is part of the run id).
    let mut reads = cpo_common::step::Reads::new();
    reads.object(ctx.store.as_ref(), &input.keys()?.segments()).await?;
    cpo_common::step::run_once_reading(ctx, &input, STEP, IDENTITY, reads, || step::retrieve(ctx, &input)).await
}

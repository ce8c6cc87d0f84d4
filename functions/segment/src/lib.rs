//! `segment`: RFM segmentation — a customers file (aggregate rows or transactions, CSV or JSON lines) to scored
//! members, rejected rows and named segment profiles (docs/architecture.md, "Segments and content"; docs/segment.md).
//!
//! Reading order: [`layout`] decides what the file is, [`source`] streams its rows, [`rows`] validates one
//! row, [`scan`] builds the compact [`table`], [`score`] + [`names`] + [`merge`] + [`profile`] (tied
//! together by [`analyze`]) turn it into segments, [`emit`] writes members and rejected rows. [`single`] is
//! the default one-invocation action; [`shard`] the sharded actions for files beyond one Lambda. [`par`]
//! puts the CPU work of the scan, the analysis and the output pass on every core.
//! [`synth`] generates realistic customers for examples and benchmarks.

pub mod analyze;
pub mod emit;
pub mod layout;
pub(crate) mod merge;
pub(crate) mod names;
pub(crate) mod par;
pub(crate) mod profile;
pub mod rows;
pub mod scan;
pub mod score;
pub(crate) mod shard;
pub(crate) mod single;
pub mod source;
pub mod synth;
pub mod table;

use cpo_common::{step, Ctx, StepError, StepInput, StepOutput};

/// The step handler, called by the Lambda `main` and by the local state-machine runner.
///
/// `action`: none (single pass), or the sharded mode's `plan`, `sketch`, `merge`, `score`, `finish`.
pub async fn handle(input: StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
    let run = single::load(ctx, &input.run_id).await?;
    let identity = run.input.version.clone();
    match input.action.as_deref() {
        None | Some("segment") => step::run_once(ctx, &input, "segment", &identity, || single::run(ctx, &run)).await,
        Some(action @ ("plan" | "sketch" | "merge" | "score" | "finish")) => {
            shard::handle(action, &input, ctx, &run, &identity).await
        }
        Some(other) => Err(StepError::input(format!(
            "segment: unknown action {other:?} (none for a single pass, or plan, sketch, merge, score, finish)"
        ))),
    }
}

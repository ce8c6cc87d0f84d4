//! `segment`: RFM segmentation: customers file to scored members and named segment profiles.

use cpo_common::{Ctx, StepError, StepInput, StepOutput};

/// The step handler, called by the Lambda `main` and by the local state-machine runner.
pub async fn handle(input: StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
    let _ = ctx;
    Err(StepError::internal(format!("segment: not implemented yet (run {})", input.run_id)))
}

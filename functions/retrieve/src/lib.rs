//! `retrieve`: Ranked search over the approved content corpus for each segment.

use cpo_common::{Ctx, StepError, StepInput, StepOutput};

/// The step handler, called by the Lambda `main` and by the local state-machine runner.
pub async fn handle(input: StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
    let _ = ctx;
    Err(StepError::internal(format!("retrieve: not implemented yet (run {})", input.run_id)))
}

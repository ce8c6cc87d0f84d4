//! `safety`: Fail-closed screening of every variant with a hash-chained audit trail.

use cpo_common::{Ctx, StepError, StepInput, StepOutput};

/// The step handler, called by the Lambda `main` and by the local state-machine runner.
pub async fn handle(input: StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
    let _ = ctx;
    Err(StepError::internal(format!("safety: not implemented yet (run {})", input.run_id)))
}

//! The Lambda entry point every step function shares: telemetry and the context are built once per cold
//! start, then each invocation's payload goes to the step's plain async handler — the same function the local
//! state-machine runner and the tests call.

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};

use crate::error::StepError;
use crate::step::{Ctx, StepInput, StepOutput};
use crate::telemetry;

/// Serve `handler` on the Lambda runtime until it shuts down.
pub async fn serve<H>(handler: H) -> Result<(), Error>
where
    H: AsyncFn(StepInput, &Ctx) -> Result<StepOutput, StepError>,
{
    telemetry::init_lambda();
    let ctx = Ctx::from_env()?;
    let (ctx, handler) = (&ctx, &handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<StepInput>| async move {
        handler(event.payload, ctx).await.map_err(Diagnostic::from)
    }))
    .await
}

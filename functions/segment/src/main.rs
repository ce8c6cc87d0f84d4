//! Lambda entry point of `segment`: builds the context once, then serves invocations.

use cpo_common::{telemetry, Ctx, StepInput};
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let ctx = Ctx::from_env()?;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<StepInput>| async move {
        cpo_segment::handle(event.payload, ctx).await.map_err(Diagnostic::from)
    }))
    .await
}

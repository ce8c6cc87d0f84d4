//! Lambda entry point of `trigger`: store, bucket and Step Functions client built once, then events served.

use std::sync::Arc;

use cpo_common::{telemetry, Ctx};
use cpo_trigger::handler::{self, Deps, BUCKET_ENV};
use cpo_trigger::sfn::SfnStarter;
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let ctx = Ctx::from_env()?;
    let starter = Arc::new(SfnStarter::from_env().await?);
    let bucket = std::env::var(BUCKET_ENV).ok().filter(|b| !b.is_empty());
    let deps = Deps::for_store(ctx.store, starter, bucket)?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler::handle(event, deps).await.map_err(Diagnostic::from)
    }))
    .await
}

//! Lambda entry point of `report`: the shared runtime wiring around [`cpo_report::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cpo_common::lambda::serve(cpo_report::handle).await
}

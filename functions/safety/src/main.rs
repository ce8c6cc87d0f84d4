//! Lambda entry point of `safety`: the shared runtime wiring around [`cpo_safety::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cpo_common::lambda::serve(cpo_safety::handle).await
}

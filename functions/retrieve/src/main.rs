//! Lambda entry point of `retrieve`: the shared runtime wiring around [`cpo_retrieve::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cpo_common::lambda::serve(cpo_retrieve::handle).await
}

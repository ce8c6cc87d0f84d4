//! Lambda entry point of `generate`: the shared runtime wiring around [`cpo_generate::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cpo_common::lambda::serve(cpo_generate::handle).await
}

//! Lambda entry point of `experiment`: the shared runtime wiring around [`cpo_experiment::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cpo_common::lambda::serve(cpo_experiment::handle).await
}

//! Lambda entry point of `segment`: the shared runtime wiring around [`cpo_segment::handle`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cpo_common::lambda::serve(cpo_segment::handle).await
}

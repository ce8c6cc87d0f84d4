//! Using every core: CPU work runs on tokio's blocking threads (never on the async executor), one worker per
//! available core, each on owned data (`Bytes` slices of the input, `Arc`s of the decisions).

use cpo_common::StepError;
use tokio::task::JoinHandle;

/// Worker threads for CPU work: the cores this process may use.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Run `f` on a blocking thread.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, StepError> {
    join(tokio::task::spawn_blocking(f)).await
}

/// Wait for a blocking task; a panic in it becomes `Cpo.Internal`.
pub async fn join<T>(h: JoinHandle<T>) -> Result<T, StepError> {
    h.await.map_err(|e| StepError::internal(format!("segment worker failed: {e}")))
}

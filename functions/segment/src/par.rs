//! Using every core: CPU work runs off the async executor on a blocking thread, and fans out from there on
//! rayon's pool (one thread per available core), each task on owned or shared read-only data.

use cpo_common::StepError;
use rayon::prelude::*;

/// Worker threads for CPU work: the threads of rayon's pool (the cores this process may use).
pub fn workers() -> usize {
    rayon::current_num_threads()
}

/// Run `f` on a blocking thread; a panic in it becomes `Cpo.Internal`.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, StepError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StepError::internal(format!("segment worker failed: {e}")))
}

/// `f(0), f(1), … f(n − 1)` on rayon's pool, results in index order.
pub fn map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    (0..n).into_par_iter().map(f).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn map_keeps_index_order() {
        for n in [0, 1, 2, 3, 17] {
            assert_eq!(super::map(n, |i| i * i), (0..n).map(|i| i * i).collect::<Vec<_>>());
        }
    }
}

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

/// `f(0), f(1), … f(n − 1)` on up to [`workers`] threads (items taken in order as threads free up), results in
/// index order. For CPU work inside a blocking task: the threads are scoped and end before this returns.
pub fn map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = workers().min(n);
    if threads <= 1 {
        return (0..n).map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let take = || {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= n {
                return out;
            }
            out.push((i, f(i)));
        }
    };
    let mut all: Vec<(usize, T)> = std::thread::scope(|s| {
        let others: Vec<_> = (1..threads).map(|_| s.spawn(take)).collect();
        let mut all = take();
        for h in others {
            // A panic in a helper thread is re-raised here, as if `f` had panicked on this thread.
            all.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        all
    });
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
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

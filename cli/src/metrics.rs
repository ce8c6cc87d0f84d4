//! Run metrics for `cpo run --metrics-out` and `make bench`: bytes through the store, per-Task wall time and
//! the process's peak RSS as the OS reports it (`VmHWM`), gathered without touching the functions themselves.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use cpo_common::keys::Key;
use cpo_common::store::{ByteStream, DynStore, ObjectMeta, PutOutcome, Store, StoreError};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

/// Byte counters shared by a [`CountingStore`] and whoever reports on it.
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> (u64, u64) {
        (self.bytes_read.load(Ordering::Relaxed), self.bytes_written.load(Ordering::Relaxed))
    }
}

/// A store decorator counting the bytes every get and put moves.
#[derive(Debug)]
pub struct CountingStore {
    inner: DynStore,
    pub counters: Arc<Counters>,
}

impl CountingStore {
    pub fn wrap(inner: DynStore) -> (DynStore, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        (Arc::new(Self { inner, counters: counters.clone() }), counters)
    }
}

#[async_trait]
impl Store for CountingStore {
    fn url(&self) -> &str {
        self.inner.url()
    }
    async fn get(&self, key: &Key) -> Result<Bytes, StoreError> {
        let b = self.inner.get(key).await?;
        self.counters.bytes_read.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b)
    }
    async fn put(&self, key: &Key, body: Bytes) -> Result<ObjectMeta, StoreError> {
        let n = body.len() as u64;
        let m = self.inner.put(key, body).await?;
        self.counters.bytes_written.fetch_add(n, Ordering::Relaxed);
        Ok(m)
    }
    async fn put_if_absent(&self, key: &Key, body: Bytes) -> Result<PutOutcome, StoreError> {
        let n = body.len() as u64;
        let r = self.inner.put_if_absent(key, body).await?;
        if r == PutOutcome::Created {
            self.counters.bytes_written.fetch_add(n, Ordering::Relaxed);
        }
        Ok(r)
    }
    async fn list(&self, prefix: &Key) -> Result<Vec<ObjectMeta>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        self.inner.head(key).await
    }
    async fn get_stream(&self, key: &Key) -> Result<ByteStream, StoreError> {
        let counters = self.counters.clone();
        let stream = self.inner.get_stream(key).await?;
        Ok(stream
            .inspect_ok(move |b| {
                counters.bytes_read.fetch_add(b.len() as u64, Ordering::Relaxed);
            })
            .boxed())
    }
    async fn get_range(&self, key: &Key, range: Range<u64>) -> Result<Bytes, StoreError> {
        let b = self.inner.get_range(key, range).await?;
        self.counters.bytes_read.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b)
    }
    async fn put_large(&self, key: &Key, body: ByteStream) -> Result<ObjectMeta, StoreError> {
        let counters = self.counters.clone();
        let body = body
            .inspect_ok(move |b| {
                counters.bytes_written.fetch_add(b.len() as u64, Ordering::Relaxed);
            })
            .boxed();
        self.inner.put_large(key, body).await
    }
}

/// Peak resident set size of this process in bytes (`VmHWM` of /proc/self/status), when the OS tells.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time (user + system, all threads) this process has used, in milliseconds, from `/proc/self/stat` (clock
/// ticks of 10 ms). Wall time alone misleads on a shared machine or when a step uses several cores.
pub fn process_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces, so split after its closing parenthesis):
    // state is field 3, utime field 14, stime field 15.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 * 1000.0 / CLOCK_TICKS_PER_S)
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux target CPO runs on (x86_64, aarch64).
const CLOCK_TICKS_PER_S: f64 = 100.0;

/// One Task invocation as measured from outside.
#[derive(Debug, Clone, Serialize)]
pub struct TaskSample {
    pub function: String,
    pub action: Option<String>,
    pub wall_ms: f64,
    /// Process CPU time during the Task (overlapping Map iterations share it).
    pub cpu_ms: Option<f64>,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Peak RSS of the process when the Task finished.
    pub peak_rss_bytes: Option<u64>,
    pub ok: bool,
}

/// What [`Recorder::finish`] subtracts from.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    at: Instant,
    bytes: (u64, u64),
    cpu_ms: Option<f64>,
}

/// Collects [`TaskSample`]s (Map iterations run concurrently, so byte deltas of overlapping Tasks overlap).
#[derive(Debug, Default)]
pub struct Recorder {
    pub counters: Arc<Counters>,
    pub samples: Mutex<Vec<TaskSample>>,
}

impl Recorder {
    pub fn new(counters: Arc<Counters>) -> Self {
        Self { counters, samples: Mutex::new(Vec::new()) }
    }

    pub fn start(&self) -> Started {
        Started { at: Instant::now(), bytes: self.counters.snapshot(), cpu_ms: process_cpu_ms() }
    }

    pub fn finish(&self, function: &str, action: Option<String>, started: Started, ok: bool) {
        let Started { at: t0, bytes: (r0, w0), cpu_ms: cpu0 } = started;
        let (r1, w1) = self.counters.snapshot();
        let sample = TaskSample {
            function: function.to_string(),
            action,
            wall_ms: t0.elapsed().as_secs_f64() * 1000.0,
            cpu_ms: process_cpu_ms().zip(cpu0).map(|(now, then)| now - then),
            bytes_read: r1.saturating_sub(r0),
            bytes_written: w1.saturating_sub(w0),
            peak_rss_bytes: peak_rss_bytes(),
            ok,
        };
        if let Ok(mut s) = self.samples.lock() {
            s.push(sample);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn cpu_time_is_read_and_grows_with_work() {
        let before = process_cpu_ms().expect("/proc/self/stat parses");
        // Spin (in a way the optimiser cannot remove) until the reading grows by several clock ticks. Bounded by
        // wall time rather than fixed to it: on a loaded machine 60 ms of wall clock can be far less CPU.
        let t0 = Instant::now();
        let mut x = 0u64;
        let mut after = before;
        while after < before + 20.0 && t0.elapsed().as_secs() < 10 {
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
            after = process_cpu_ms().expect("/proc/self/stat parses");
        }
        assert!(after >= before + 20.0, "cpu {before} ms → {after} ms after {:?} of spinning", t0.elapsed());
    }
}

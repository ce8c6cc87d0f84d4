//! Reading a large object on a blocking thread in bounded memory.
//!
//! The store is async and the parsing is CPU work that must not sit on the async executor, so the object is
//! fetched here in windows of [`WINDOW`] bytes (range reads: one request per window on every backend; the
//! `file://` stream would be 8 KiB chunks with a thread hop each) and handed to the blocking thread through a
//! bounded channel: at most [`AHEAD`] windows wait, whatever the object's size.

use std::io::{self, BufRead, Read};

use bytes::{Buf, Bytes};
use cpo_common::{Key, StepError, Store};
use tokio::sync::mpsc;

/// Bytes per range read.
pub const WINDOW: u64 = 8 << 20;
/// Windows fetched ahead of the reader.
pub const AHEAD: usize = 2;

/// The object as `Read`/`BufRead` for the blocking thread; end of input when the fetching side stops.
pub struct WindowReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for WindowReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let buf = self.fill_buf()?;
            let n = buf.len().min(out.len());
            out[..n].copy_from_slice(&buf[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for WindowReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None => break,
            }
        }
        Ok(&self.current)
    }
    fn consume(&mut self, n: usize) {
        self.current.advance(n.min(self.current.len()));
    }
}

/// Run `work` on a blocking thread over the object `key` of `size` bytes. A failed read is returned as such
/// (the reader only sees the input end early).
pub async fn with_object<T, F>(store: &dyn Store, key: &Key, size: u64, work: F) -> Result<T, StepError>
where
    T: Send + 'static,
    F: FnOnce(WindowReader) -> Result<T, StepError> + Send + 'static,
{
    with_windows(store, key, size, WINDOW, work).await
}

/// [`with_object`] with windows of `window` bytes (tests use tiny ones, so rows cross window boundaries).
pub async fn with_windows<T, F>(store: &dyn Store, key: &Key, size: u64, window: u64, work: F) -> Result<T, StepError>
where
    T: Send + 'static,
    F: FnOnce(WindowReader) -> Result<T, StepError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(AHEAD);
    let task = tokio::task::spawn_blocking(move || work(WindowReader { rx, current: Bytes::new() }));
    let fed = async move {
        let mut start = 0u64;
        while start < size {
            let end = start.saturating_add(window.max(1)).min(size);
            let window = store.get_range(key, start..end).await?;
            if window.is_empty() {
                return Err(StepError::internal(format!("{key}: no bytes at offset {start} of {size}")));
            }
            if tx.send(window).await.is_err() {
                break; // the reader stopped early (it failed or needs no more)
            }
            start = end;
        }
        Ok::<(), StepError>(())
    }
    .await;
    let out = task.await.map_err(|e| StepError::internal(format!("{key}: reading thread failed: {e}")))?;
    fed?;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_across_windows_and_reports_read_errors() {
        let store = cpo_common::store::open("mem://").unwrap();
        let key = Key::new("runs/x/outcomes/a.csv").unwrap();
        let body: Vec<u8> = (0..100_003).map(|i| (i % 251) as u8).collect();
        store.put(&key, Bytes::from(body.clone())).await.unwrap();
        let got = with_windows(store.as_ref(), &key, body.len() as u64, 4096, |mut r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map_err(|e| StepError::internal(e.to_string()))?;
            Ok(v)
        })
        .await
        .unwrap();
        assert_eq!(got, body);
        // A reader that stops early does not block the fetching side.
        let first = with_windows(store.as_ref(), &key, body.len() as u64, 10, |mut r| {
            let mut b = [0u8; 3];
            r.read_exact(&mut b).map_err(|e| StepError::internal(e.to_string()))?;
            Ok(b)
        })
        .await
        .unwrap();
        assert_eq!(first, [0, 1, 2]);
        let missing = Key::new("runs/x/outcomes/none.csv").unwrap();
        let e = with_object(store.as_ref(), &missing, 10, |_| Ok(())).await.unwrap_err();
        assert!(e.message.contains("none.csv"), "{e}");
    }
}

//! Customer-level objects are written and read in parts (`…/part-NNNNN.*`), one part in memory at a time, so a
//! run of ten million customers needs no more memory than one part.

use bytes::Bytes;
use cpo_common::{Key, StepError, Store};
use serde::de::DeserializeOwned;

/// A failure to write a CSV part into memory (`what`: which part, e.g. "send list"): a bug, never bad input.
pub fn csv_error(what: &'static str) -> impl Fn(csv::Error) -> StepError {
    move |e| StepError::internal(format!("{what} CSV: {e}"))
}

/// Keys under `prefix` whose file name starts with `stem` and ends with `ext`, in key order.
pub async fn list_parts(store: &dyn Store, prefix: &Key, stem: &str, ext: &str) -> Result<Vec<Key>, StepError> {
    let mut keys = Vec::new();
    for meta in store.list(prefix).await? {
        let key = Key::new(meta.key)?;
        let name = key.file_name();
        if name.starts_with(stem) && name.ends_with(ext) {
            keys.push(key);
        }
    }
    keys.sort();
    Ok(keys)
}

/// Parse one JSON-lines object; an unparsable line is an input error naming the key, line and reason.
pub fn parse_jsonl<T: DeserializeOwned>(key: &Key, body: &[u8]) -> Result<Vec<T>, StepError> {
    let mut out = Vec::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row = serde_json::from_slice(line).map_err(|e| StepError::input(format!("{key}: line {}: {e}", i + 1)))?;
        out.push(row);
    }
    Ok(out)
}

/// Rows of a sequence of JSON-lines parts, loaded one part at a time.
pub struct JsonlParts<T> {
    keys: std::vec::IntoIter<Key>,
    current: std::vec::IntoIter<T>,
}

impl<T: DeserializeOwned> JsonlParts<T> {
    pub fn new(keys: Vec<Key>) -> Self {
        Self { keys: keys.into_iter(), current: Vec::new().into_iter() }
    }

    /// The next part's rows (`None` after the last part).
    pub async fn next_part(&mut self, store: &dyn Store) -> Result<Option<Vec<T>>, StepError> {
        match self.keys.next() {
            Some(key) => {
                let body = store.get(&key).await?;
                Ok(Some(parse_jsonl(&key, &body)?))
            }
            None => Ok(None),
        }
    }

    /// The next row across parts.
    pub async fn next(&mut self, store: &dyn Store) -> Result<Option<T>, StepError> {
        loop {
            if let Some(row) = self.current.next() {
                return Ok(Some(row));
            }
            match self.next_part(store).await? {
                Some(rows) => self.current = rows.into_iter(),
                None => return Ok(None),
            }
        }
    }
}

/// Serialize rows as JSON lines.
pub fn to_jsonl<T: serde::Serialize>(rows: &[T]) -> Result<Bytes, StepError> {
    let mut out = Vec::with_capacity(rows.len() * 96);
    for row in rows {
        serde_json::to_writer(&mut out, row)?;
        out.push(b'\n');
    }
    Ok(Bytes::from(out))
}

/// Parts processed at once: one per core. Each part in flight holds its input and output in memory, so this
/// also bounds memory to `workers` parts.
pub fn workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Run CPU-bound work on tokio's blocking pool so it neither stalls the async executor nor waits for it.
/// Works under the local runner too, which calls handlers from a blocking thread through `Handle::block_on`.
pub async fn blocking<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> Result<T, StepError> + Send + 'static,
) -> Result<T, StepError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| StepError::internal(format!("{what}: worker failed: {e}")))?
}

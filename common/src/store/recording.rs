//! A [`Store`] that records every operation — who did it, what, on which key, and whether the object was
//! there — so the accesses each function really performs can be checked against its IAM policy
//! (`tests/iam.rs`). The local runner wraps the store once per function when given an [`AccessLog`].

use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ByteStream, DynStore, ObjectMeta, PutOutcome, Store, StoreError};
use crate::keys::Key;

/// A store operation, named after the S3 request it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `get`, `get_stream` (GetObject).
    Get,
    /// `get_range` (GetObject with a Range header).
    GetRange,
    /// `head` (HeadObject, authorised as GetObject).
    Head,
    /// `put` (PutObject).
    Put,
    /// `put_if_absent` (PutObject with `If-None-Match: *`).
    PutIfAbsent,
    /// `put_large` (multipart upload: CreateMultipartUpload, UploadPart, Complete/AbortMultipartUpload).
    PutLarge,
    /// `list` (ListObjectsV2 with a prefix).
    List,
}

/// One recorded operation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Access {
    /// Who performed it (e.g. `function:segment`, `machine:campaign`).
    pub principal: String,
    pub op: Op,
    /// The key, or the prefix of a `list` (store-relative).
    pub key: String,
    /// `false` when a read found no object (S3 answers 404 only to a caller allowed to list the bucket).
    pub found: bool,
}

/// Every access of every wrapped store, in order.
#[derive(Debug, Default)]
pub struct AccessLog {
    accesses: Mutex<Vec<Access>>,
}

impl AccessLog {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// `inner`, with every operation recorded under `principal`.
    pub fn wrap(self: &Arc<Self>, inner: DynStore, principal: &str) -> DynStore {
        Arc::new(RecordingStore { inner, principal: principal.to_string(), log: self.clone() })
    }

    /// What was recorded so far.
    pub fn accesses(&self) -> Vec<Access> {
        self.accesses.lock().map(|a| a.clone()).unwrap_or_default()
    }

    fn record(&self, principal: &str, op: Op, key: &Key, found: bool) {
        if let Ok(mut a) = self.accesses.lock() {
            a.push(Access { principal: principal.to_string(), op, key: key.to_string(), found });
        }
    }
}

/// See [`AccessLog::wrap`].
#[derive(Debug)]
pub struct RecordingStore {
    inner: DynStore,
    principal: String,
    log: Arc<AccessLog>,
}

impl RecordingStore {
    fn note<T>(&self, op: Op, key: &Key, r: &Result<T, StoreError>) {
        let found = !matches!(r, Err(StoreError::NotFound { .. }));
        self.log.record(&self.principal, op, key, found);
    }
}

#[async_trait]
impl Store for RecordingStore {
    fn url(&self) -> &str {
        self.inner.url()
    }
    async fn get(&self, key: &Key) -> Result<Bytes, StoreError> {
        let r = self.inner.get(key).await;
        self.note(Op::Get, key, &r);
        r
    }
    async fn put(&self, key: &Key, body: Bytes) -> Result<ObjectMeta, StoreError> {
        let r = self.inner.put(key, body).await;
        self.note(Op::Put, key, &r);
        r
    }
    async fn put_if_absent(&self, key: &Key, body: Bytes) -> Result<PutOutcome, StoreError> {
        let r = self.inner.put_if_absent(key, body).await;
        self.note(Op::PutIfAbsent, key, &r);
        r
    }
    async fn list(&self, prefix: &Key) -> Result<Vec<ObjectMeta>, StoreError> {
        let r = self.inner.list(prefix).await;
        self.note(Op::List, prefix, &r);
        r
    }
    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        let r = self.inner.head(key).await;
        let found = !matches!(r, Ok(None) | Err(StoreError::NotFound { .. }));
        self.log.record(&self.principal, Op::Head, key, found);
        r
    }
    async fn get_stream(&self, key: &Key) -> Result<ByteStream, StoreError> {
        let r = self.inner.get_stream(key).await;
        self.note(Op::Get, key, &r);
        r
    }
    async fn get_range(&self, key: &Key, range: Range<u64>) -> Result<Bytes, StoreError> {
        let r = self.inner.get_range(key, range).await;
        self.note(Op::GetRange, key, &r);
        r
    }
    async fn put_large(&self, key: &Key, body: ByteStream) -> Result<ObjectMeta, StoreError> {
        let r = self.inner.put_large(key, body).await;
        self.note(Op::PutLarge, key, &r);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open, StoreExt};

    #[tokio::test]
    async fn records_every_operation_and_whether_the_object_was_there() {
        let log = AccessLog::new();
        let store = log.wrap(open("mem://").unwrap(), "function:test");
        let k = Key::new("runs/r/a.json").unwrap();
        assert!(store.get_opt(&k).await.unwrap().is_none());
        store.put(&k, Bytes::from_static(b"{}")).await.unwrap();
        store.put_if_absent(&k, Bytes::from_static(b"{}")).await.unwrap();
        assert!(store.head(&k).await.unwrap().is_some());
        store.get_range(&k, 0..1).await.unwrap();
        store.list(&Key::new("runs/r/").unwrap()).await.unwrap();
        let ops: Vec<(Op, bool)> = log.accesses().iter().map(|a| (a.op, a.found)).collect();
        assert_eq!(
            ops,
            vec![
                (Op::Get, false),
                (Op::Put, true),
                (Op::PutIfAbsent, true),
                (Op::Head, true),
                (Op::GetRange, true),
                (Op::List, true)
            ]
        );
        assert!(log.accesses().iter().all(|a| a.principal == "function:test"));
    }
}

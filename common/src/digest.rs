//! Remembered content digests, so that a re-delivered or re-run input costs a metadata lookup, not a re-hash
//! (docs/architecture.md, "Run identity").
//!
//! On S3 and Azure an object's ETag already names its version, so nothing here is used there. A `file://`
//! store's ETag (inode, modification time, size) changes with the file but is not a content digest, and run
//! identity needs one: the first read hashes the object and records `{key, etag, size, sha256}` under
//! `digests/objects/`; later reads reuse the digest while the ETag and size are unchanged. The same holds for a
//! local file that `cpo run --input` uploads, recorded under `digests/files/` by its path, size, modification
//! time and inode — the test that `make` and `git status` apply. A file rewritten in place with its old size and
//! modification time restored is not noticed; touch it to make it count as new.
//!
//! The records are a cache: a missing, unreadable or stale record only means hashing again.

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::{sha256_hex, Key, KeyError};
use crate::store::{ByteStream, ObjectMeta, Store, StoreError, StoreExt};

/// What identifies one version of an object or file, and its content SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The object key, or the SHA-256 of a local file's canonical path (paths stay out of the store).
    pub subject: String,
    /// The store's ETag, or `<mtime ns>-<inode>` of a local file.
    pub version: String,
    pub size: u64,
    pub sha256: String,
}

/// Where the digest of a stored object is remembered.
pub fn object_key(key: &Key) -> Result<Key, KeyError> {
    Key::new(format!("digests/objects/{}.json", sha256_hex(key.as_str().as_bytes())))
}

/// Where the digest of a local file is remembered (`subject` = SHA-256 of its canonical path).
pub fn file_key(subject: &str) -> Result<Key, KeyError> {
    Key::new(format!("digests/files/{subject}.json"))
}

/// The remembered digest at `at` when it still describes `subject` at `version` and `size`.
pub async fn recall(store: &dyn Store, at: &Key, subject: &str, version: &str, size: u64) -> Option<String> {
    let body = store.get_opt(at).await.ok()??;
    let r: Record = serde_json::from_slice(&body).ok()?;
    let valid = r.sha256.len() == 64 && r.sha256.bytes().all(|b| b.is_ascii_hexdigit());
    (r.subject == subject && r.version == version && r.size == size && valid).then_some(r.sha256)
}

/// Records a digest; a failure to write is logged and otherwise ignored (the next read hashes again).
pub async fn remember(store: &dyn Store, at: &Key, record: &Record) {
    let body = match serde_json::to_vec(record) {
        Ok(body) => body,
        Err(e) => return tracing::warn!(key = %at, error = %e, "could not encode a content digest record"),
    };
    if let Err(e) = store.put(at, Bytes::from(body)).await {
        tracing::warn!(key = %at, error = %e, "could not record a content digest; the next run hashes again");
    }
}

/// SHA-256 (hex) of a stream of chunks, hashed as they arrive: a multi-GB object or file in bounded memory.
pub async fn sha256_of(mut chunks: ByteStream) -> Result<String, StoreError> {
    let mut h = Sha256::new();
    while let Some(chunk) = chunks.next().await {
        h.update(chunk?);
    }
    Ok(hex::encode(h.finalize()))
}

/// Content SHA-256 (hex) of a stored object, hashed in bounded memory unless a record for this ETag and size
/// exists.
pub async fn of_object(store: &dyn Store, key: &Key, meta: &ObjectMeta) -> Result<String, StoreError> {
    let version = meta.etag.clone().unwrap_or_default();
    let at = object_key(key)?;
    if !version.is_empty() {
        if let Some(sha) = recall(store, &at, key.as_str(), &version, meta.size).await {
            return Ok(sha);
        }
    }
    let sha256 = sha256_of(store.get_stream(key).await?).await?;
    if !version.is_empty() {
        let record = Record { subject: key.to_string(), version, size: meta.size, sha256: sha256.clone() };
        remember(store, &at, &record).await;
    }
    Ok(sha256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open;

    async fn stored(dir: &std::path::Path, body: &'static [u8]) -> (crate::store::DynStore, Key, ObjectMeta) {
        let store = open(&format!("file://{}", dir.display())).unwrap();
        let key = Key::new("incoming/weekly/customers.csv").unwrap();
        store.put(&key, Bytes::from_static(body)).await.unwrap();
        let meta = store.head(&key).await.unwrap().unwrap();
        (store, key, meta)
    }

    #[tokio::test]
    async fn an_unchanged_object_is_hashed_once_then_recalled() {
        let dir = tempfile::tempdir().unwrap();
        let (store, key, meta) = stored(dir.path(), b"customer_id\nC1\n").await;
        let truth = sha256_hex(b"customer_id\nC1\n");
        assert_eq!(of_object(store.as_ref(), &key, &meta).await.unwrap(), truth);
        // The record is what a second read trusts: planting another digest for this version proves no re-hash.
        let at = object_key(&key).unwrap();
        let planted = Record {
            subject: key.to_string(),
            version: meta.etag.clone().unwrap(),
            size: meta.size,
            sha256: "ab".repeat(32),
        };
        store.put(&at, Bytes::from(serde_json::to_vec(&planted).unwrap())).await.unwrap();
        assert_eq!(of_object(store.as_ref(), &key, &meta).await.unwrap(), "ab".repeat(32));
    }

    #[tokio::test]
    async fn a_changed_object_or_a_bad_record_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let (store, key, meta) = stored(dir.path(), b"customer_id\nC1\n").await;
        of_object(store.as_ref(), &key, &meta).await.unwrap();
        // Same size, new content: a new ETag, so the old record does not apply.
        std::thread::sleep(std::time::Duration::from_millis(5));
        store.put(&key, Bytes::from_static(b"customer_id\nC2\n")).await.unwrap();
        let meta2 = store.head(&key).await.unwrap().unwrap();
        assert_ne!(meta.etag, meta2.etag);
        assert_eq!(of_object(store.as_ref(), &key, &meta2).await.unwrap(), sha256_hex(b"customer_id\nC2\n"));
        // Garbage, a record for another key, or a digest that is not 64 hex digits: hashed again.
        let at = object_key(&key).unwrap();
        let v = meta2.etag.clone().unwrap();
        for bad in [
            b"not json".to_vec(),
            serde_json::to_vec(&Record {
                subject: "incoming/x/y.csv".into(),
                version: v.clone(),
                size: meta2.size,
                sha256: "ab".repeat(32),
            })
            .unwrap(),
            serde_json::to_vec(&Record {
                subject: key.to_string(),
                version: v.clone(),
                size: meta2.size,
                sha256: "zz".into(),
            })
            .unwrap(),
            serde_json::to_vec(&Record {
                subject: key.to_string(),
                version: v.clone(),
                size: meta2.size + 1,
                sha256: "ab".repeat(32),
            })
            .unwrap(),
        ] {
            store.put(&at, Bytes::from(bad)).await.unwrap();
            assert_eq!(of_object(store.as_ref(), &key, &meta2).await.unwrap(), sha256_hex(b"customer_id\nC2\n"));
        }
    }
}

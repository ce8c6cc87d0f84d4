//! The storage port. Steps exchange everything through a [`Store`]; the adapter is chosen by URL
//! (`file://DIR`, `mem://`, and with cargo features `s3://bucket/prefix`, `az://container/prefix`).
//!
//! Every adapter validates keys the same way ([`crate::keys::Key`]) so no key can leave the store's root.

#[cfg(any(feature = "s3", feature = "azure"))]
mod cloud;
#[cfg(feature = "test-support")]
pub mod emulators;
mod local;
mod object;
pub mod recording;
mod url;

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::{de::DeserializeOwned, Serialize};

#[cfg(feature = "azure")]
pub use cloud::AzureConnectionString;
pub use object::{ObjectStoreAdapter, PART_SIZE};
pub use url::StoreUrl;

/// A body read or written piece by piece, so large objects never have to sit in memory whole.
pub type ByteStream = BoxStream<'static, Result<Bytes, StoreError>>;

use crate::keys::Key;

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Backend version tag (S3/Azure ETag; for `file://` inode, mtime and size).
    pub etag: Option<String>,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// Result of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    AlreadyExists,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object not found: {key}")]
    NotFound { key: String },
    #[error("invalid storage key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("storage error on {key}: {source}")]
    Backend {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("object {key} is not valid {format}: {reason}")]
    Decode { key: String, format: &'static str, reason: String },
}

impl From<crate::keys::KeyError> for StoreError {
    fn from(e: crate::keys::KeyError) -> Self {
        StoreError::InvalidKey { key: e.key, reason: e.reason }
    }
}

/// The port every step talks to. Small on purpose: get, put, conditional put, list, head.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The URL this store was opened from (never contains credentials).
    fn url(&self) -> &str;
    async fn get(&self, key: &Key) -> Result<Bytes, StoreError>;
    /// Atomic replace: readers see the old object or the new one, never a part.
    async fn put(&self, key: &Key, body: Bytes) -> Result<ObjectMeta, StoreError>;
    /// Write only when no object exists at `key` (S3/Azure `If-None-Match: *`, exclusive create on disk).
    async fn put_if_absent(&self, key: &Key, body: Bytes) -> Result<PutOutcome, StoreError>;
    /// Every object whose key starts with `prefix` (a folder, `/`-terminated or not), sorted by key.
    async fn list(&self, prefix: &Key) -> Result<Vec<ObjectMeta>, StoreError>;
    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError>;

    /// The object as a stream of chunks (bounded memory for large objects). The default reads it whole, for
    /// adapters without streaming.
    async fn get_stream(&self, key: &Key) -> Result<ByteStream, StoreError> {
        let body = self.get(key).await?;
        Ok(futures::stream::once(async move { Ok(body) }).boxed())
    }

    /// Bytes `range` of the object (`start..end`, end exclusive); a range past the end is an error.
    async fn get_range(&self, key: &Key, range: Range<u64>) -> Result<Bytes, StoreError> {
        let body = self.get(key).await?;
        let (start, end) = (range.start as usize, range.end as usize);
        if start > end || end > body.len() {
            return Err(StoreError::Backend {
                key: key.to_string(),
                source: format!("range {start}..{end} outside object of {} bytes", body.len()).into(),
            });
        }
        Ok(body.slice(start..end))
    }

    /// Write a large object from a stream: multipart upload on S3/Azure (parts of [`PART_SIZE`]), a temporary
    /// file renamed into place on disk. Like [`Store::put`], readers never see a part-written object.
    async fn put_large(&self, key: &Key, body: ByteStream) -> Result<ObjectMeta, StoreError> {
        let chunks: Vec<Bytes> = body.try_collect().await?;
        self.put(key, Bytes::from(chunks.concat())).await
    }
}

/// Conveniences every caller wants, written once on top of the port.
#[async_trait]
pub trait StoreExt: Store {
    async fn get_opt(&self, key: &Key) -> Result<Option<Bytes>, StoreError> {
        match self.get(key).await {
            Ok(b) => Ok(Some(b)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
    async fn get_json<T: DeserializeOwned>(&self, key: &Key) -> Result<T, StoreError> {
        let body = self.get(key).await?;
        serde_json::from_slice(&body).map_err(|e| StoreError::Decode {
            key: key.to_string(),
            format: "JSON",
            reason: e.to_string(),
        })
    }
    async fn get_json_opt<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, StoreError> {
        match self.get_json(key).await {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
    async fn put_json<T: Serialize + Sync>(&self, key: &Key, value: &T) -> Result<ObjectMeta, StoreError> {
        let body = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Decode {
            key: key.to_string(),
            format: "JSON",
            reason: e.to_string(),
        })?;
        self.put(key, Bytes::from(body)).await
    }
    async fn exists(&self, key: &Key) -> Result<bool, StoreError> {
        Ok(self.head(key).await?.is_some())
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// A shared handle; steps receive it through [`crate::step::Ctx`].
pub type DynStore = Arc<dyn Store>;

/// Open a store from its URL. `file://` roots are created when missing.
pub fn open(url: &str) -> Result<DynStore, StoreError> {
    Ok(Arc::new(ObjectStoreAdapter::open(url)?))
}

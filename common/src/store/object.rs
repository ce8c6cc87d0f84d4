//! One adapter for every backend, built on the `object_store` crate: its local file system writes through a
//! temporary file and a rename (atomic), its in-memory store serves tests, and its S3 and Azure clients
//! speak the real protocols (behind the `s3` and `azure` features).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{path::Path, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};

use super::local::LocalRoot;
use super::url::StoreUrl;
use super::{ByteStream, ObjectMeta, PutOutcome, Store, StoreError};
use crate::keys::Key;

#[derive(Debug)]
pub struct ObjectStoreAdapter {
    inner: Arc<dyn ObjectStore>,
    /// Key prefix inside the bucket/container (empty for `file://` and `mem://`).
    prefix: String,
    url: String,
    /// Set for `file://`: the root every key must stay inside, symlinks included.
    local: Option<LocalRoot>,
}

/// Part size of multipart uploads: S3's minimum (every part but the last must be at least 5 MiB).
pub const PART_SIZE: usize = 5 * 1024 * 1024;

/// Parts uploaded at once by [`Store::put_large`] (bounds memory to about this many parts).
const UPLOAD_CONCURRENCY: usize = 4;

impl ObjectStoreAdapter {
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let bad = |reason: &str| StoreError::InvalidUrl { url: url.to_string(), reason: reason.to_string() };
        let mut local = None;
        let (inner, prefix): (Arc<dyn ObjectStore>, String) = match StoreUrl::parse(url)? {
            StoreUrl::File { root } => {
                std::fs::create_dir_all(root).map_err(|e| bad(&format!("cannot create {root}: {e}")))?;
                let confined = LocalRoot::new(std::path::Path::new(root))
                    .map_err(|e| bad(&format!("cannot resolve {root}: {e}")))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(confined.path())
                    .map_err(|e| bad(&e.to_string()))?;
                local = Some(confined);
                (Arc::new(fs), String::new())
            }
            StoreUrl::Mem => (Arc::new(object_store::memory::InMemory::new()), String::new()),
            #[cfg(feature = "s3")]
            StoreUrl::S3 { bucket, prefix } => (super::cloud::s3(url, bucket)?, prefix),
            #[cfg(feature = "azure")]
            StoreUrl::Azure { container, prefix } => (super::cloud::azure(url, container)?, prefix),
            #[allow(unreachable_patterns)]
            _ => return Err(bad("this build has no adapter for this scheme (cargo features s3, azure)")),
        };
        Ok(Self { inner, prefix, url: url.to_string(), local })
    }

    fn path(&self, key: &Key) -> Result<Path, StoreError> {
        if let Some(local) = &self.local {
            local.check(key)?;
        }
        let full =
            if self.prefix.is_empty() { key.as_str().to_string() } else { format!("{}/{}", self.prefix, key.as_str()) };
        Path::parse(full.trim_end_matches('/'))
            .map_err(|e| StoreError::InvalidKey { key: key.to_string(), reason: e.to_string() })
    }

    fn meta(&self, m: object_store::ObjectMeta) -> ObjectMeta {
        let full = m.location.to_string();
        let key = if self.prefix.is_empty() {
            full
        } else {
            full.strip_prefix(&format!("{}/", self.prefix)).unwrap_or(&full).to_string()
        };
        ObjectMeta { key, size: m.size, etag: m.e_tag, last_modified: m.last_modified }
    }

    fn backend(key: &Key, e: object_store::Error) -> StoreError {
        match e {
            object_store::Error::NotFound { .. } => StoreError::NotFound { key: key.to_string() },
            other => StoreError::Backend { key: key.to_string(), source: Box::new(other) },
        }
    }
}

/// `bucket/some/prefix` → (`bucket`, `some/prefix`); the prefix obeys the same rules as keys.
#[cfg(any(feature = "s3", feature = "azure"))]
#[async_trait]
impl Store for ObjectStoreAdapter {
    fn url(&self) -> &str {
        &self.url
    }

    async fn get(&self, key: &Key) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let r = self.inner.get(&path).await.map_err(|e| Self::backend(key, e))?;
        r.bytes().await.map_err(|e| Self::backend(key, e))
    }

    async fn put(&self, key: &Key, body: Bytes) -> Result<ObjectMeta, StoreError> {
        let path = self.path(key)?;
        let size = body.len() as u64;
        let r = self.inner.put(&path, PutPayload::from(body)).await.map_err(|e| Self::backend(key, e))?;
        Ok(ObjectMeta { key: key.to_string(), size, etag: r.e_tag, last_modified: chrono::Utc::now() })
    }

    async fn put_if_absent(&self, key: &Key, body: Bytes) -> Result<PutOutcome, StoreError> {
        let path = self.path(key)?;
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.inner.put_opts(&path, PutPayload::from(body), opts).await {
            Ok(_) => Ok(PutOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. }) | Err(object_store::Error::Precondition { .. }) => {
                Ok(PutOutcome::AlreadyExists)
            }
            Err(e) => Err(Self::backend(key, e)),
        }
    }

    async fn list(&self, prefix: &Key) -> Result<Vec<ObjectMeta>, StoreError> {
        let p = self.path(prefix)?;
        let p = if p.as_ref().is_empty() { None } else { Some(p) };
        let mut out: Vec<ObjectMeta> = match self.inner.list(p.as_ref()).map_ok(|m| self.meta(m)).try_collect().await {
            Ok(v) => v,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(Self::backend(prefix, e)),
        };
        // Only what a key can name: never an unfinished upload's temporary (`<name>#<n>`; object_store skips
        // those only when the name has no '#' of its own), nor a bucket object no operation could address.
        out.retain(|m| Key::new(m.key.as_str()).is_ok());
        if let Some(local) = &self.local {
            // object_store's directory walk follows links; drop whatever it reached through one.
            out.retain(|m| local.is_confined(&m.key));
            local.sweep_stale_uploads(prefix).await;
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        let path = self.path(key)?;
        match self.inner.head(&path).await {
            Ok(m) => Ok(Some(self.meta(m))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Self::backend(key, e)),
        }
    }

    async fn get_stream(&self, key: &Key) -> Result<ByteStream, StoreError> {
        let path = self.path(key)?;
        let r = self.inner.get(&path).await.map_err(|e| Self::backend(key, e))?;
        let owned = key.clone();
        Ok(r.into_stream().map_err(move |e| Self::backend(&owned, e)).boxed())
    }

    async fn get_range(&self, key: &Key, range: std::ops::Range<u64>) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        self.inner.get_range(&path, range).await.map_err(|e| Self::backend(key, e))
    }

    async fn put_large(&self, key: &Key, mut body: ByteStream) -> Result<ObjectMeta, StoreError> {
        let path = self.path(key)?;
        let upload = self.inner.put_multipart(&path).await.map_err(|e| Self::backend(key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    // Nothing becomes visible: an aborted upload leaves no object behind.
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            if let Err(e) = writer.wait_for_capacity(UPLOAD_CONCURRENCY).await {
                return Err(Self::backend(key, e));
            }
            size += chunk.len() as u64;
            writer.put(chunk);
        }
        let r = writer.finish().await.map_err(|e| Self::backend(key, e))?;
        Ok(ObjectMeta { key: key.to_string(), size, etag: r.e_tag, last_modified: chrono::Utc::now() })
    }
}

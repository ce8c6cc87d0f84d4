//! Confinement of `file://` stores. `Key` already refuses `..`, absolute paths and backslashes, but
//! object_store's `LocalFileSystem` follows symbolic links, so a link placed inside the root (`evil -> /etc`)
//! would let an ordinary key reach outside it. Every operation therefore checks, without following links,
//! that no existing component of the key's path below the root is a symlink.
//!
//! Hand-written because neither object_store nor std offers "open beneath this directory without
//! following links" portably; a process that can create links inside the root between this check and the
//! access could still race it, which is outside this store's threat model (untrusted keys, trusted host).

use std::path::{Path, PathBuf};

use crate::keys::{is_upload_temporary, Key};
use crate::store::StoreError;

/// Age after which an unfinished upload's temporary is a dead writer's leftover.
pub const STALE_UPLOAD: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct LocalRoot {
    root: PathBuf,
}

impl LocalRoot {
    pub fn new(root: &Path) -> std::io::Result<Self> {
        Ok(Self { root: std::fs::canonicalize(root)? })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Refuse `key` when any existing component of `<root>/<key>` is a symbolic link (components that do not
    /// exist yet are fine: a put creates them as plain directories).
    pub fn check(&self, key: &Key) -> Result<(), StoreError> {
        self.check_str(key.as_str()).map_err(|reason| StoreError::InvalidKey { key: key.to_string(), reason })
    }

    /// Same check for a key reported by a listing.
    pub fn is_confined(&self, key: &str) -> bool {
        self.check_str(key).is_ok()
    }

    /// Remove the temporaries of dead uploads under `prefix`: files named `<name>#<n>` (see
    /// [`is_upload_temporary`]) not written for [`STALE_UPLOAD`]. A live upload writes its temporary
    /// continuously, so only leftovers of killed writers are old. Symbolic links are not followed; failures
    /// (a file already gone, a permission) leave the file for a later listing.
    pub async fn sweep_stale_uploads(&self, prefix: &Key) {
        let dir = self.root.join(prefix.as_str().trim_end_matches('/'));
        if !self.is_confined(prefix.as_str()) {
            return;
        }
        let sweep = move || sweep_dir(&dir, std::time::SystemTime::now() - STALE_UPLOAD);
        let removed = match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt.spawn_blocking(sweep).await.unwrap_or(0),
            Err(_) => sweep(),
        };
        if removed > 0 {
            tracing::info!(removed, "removed stale temporaries of unfinished uploads");
        }
    }

    fn check_str(&self, key: &str) -> Result<(), String> {
        let mut path = self.root.clone();
        for part in key.trim_end_matches('/').split('/') {
            path.push(part);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err("path goes through a symbolic link inside a file:// store".into())
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
            }
        }
        Ok(())
    }
}

/// Depth-first walk of `dir` (not through links), removing upload temporaries last modified before `cutoff`.
fn sweep_dir(dir: &Path, cutoff: std::time::SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            removed += sweep_dir(&entry.path(), cutoff);
        } else if kind.is_file() && entry.file_name().to_str().is_some_and(is_upload_temporary) {
            let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < cutoff);
            if old && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

//! Confinement of `file://` stores. `Key` already refuses `..`, absolute paths and backslashes, but
//! object_store's `LocalFileSystem` follows symbolic links, so a link placed inside the root (`evil -> /etc`)
//! would let an ordinary key reach outside it. Every operation therefore checks, without following links,
//! that no existing component of the key's path below the root is a symlink.
//!
//! Hand-written because neither object_store nor std offers "open beneath this directory without
//! following links" portably; a process that can create links inside the root between this check and the
//! access could still race it, which is outside this store's threat model (untrusted keys, trusted host).

use std::path::{Path, PathBuf};

use crate::keys::Key;
use crate::store::StoreError;

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

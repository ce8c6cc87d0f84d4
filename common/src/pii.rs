//! Customer ids never appear raw in logs, prompts, reports or the audit trail: they are replaced by a keyed
//! hash (HMAC-SHA-256), so equal ids stay linkable for debugging while the raw id cannot be recovered
//! without the key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Environment variable holding the hashing key; without it a built-in key is used (fine for local runs,
/// documented in the README as something to set in production).
pub const KEY_ENV: &str = "CPO_HASH_KEY";
const DEFAULT_KEY: &[u8] = b"cpo-default-customer-hash-key-v1";

/// 16 hex chars of HMAC-SHA-256(key, id).
pub fn hash_id(id: &str) -> String {
    let key = std::env::var(KEY_ENV).ok();
    hash_id_with(key.as_deref().map(str::as_bytes).unwrap_or(DEFAULT_KEY), id)
}

pub fn hash_id_with(key: &[u8], id: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..8])
}

#[cfg(test)]
mod tests {
    #[test]
    fn keyed_and_stable() {
        let a = super::hash_id_with(b"k1", "C001");
        assert_eq!(a, super::hash_id_with(b"k1", "C001"));
        assert_ne!(a, super::hash_id_with(b"k2", "C001"));
        assert!(!a.contains("C001"));
        assert_eq!(a.len(), 16);
    }
}

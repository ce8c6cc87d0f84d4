//! The keyed hashes of the experiment: a customer's position in [0, 1) for an experiment (assignment), a
//! compact key for a customer id (outcome maps), and per-customer random streams (simulation).

use sha2::{Digest, Sha256};

/// SHA-256 over length-prefixed parts, so ("ab","c") and ("a","bc") never collide.
pub(crate) fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// Uniform position of a customer in [0, 1) for one experiment: the same (experiment_id, customer_id) always
/// lands in the same place, whatever the order, sharding or re-delivery of the input. The experiment id keys
/// the hash, so separate experiments split the same customers independently. 53 bits = an exact f64.
pub fn unit_interval(experiment_id: &str, customer_id: &str) -> f64 {
    let d = digest(&[experiment_id.as_bytes(), customer_id.as_bytes()]);
    let mut x = [0u8; 8];
    x.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(x) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A customer's holdout position in [0, 1) for a campaign: the same every week (the run, its date and the
/// experiment id are not in it), and independent of [`unit_interval`]'s arm draw (another domain of the hash).
/// Customers below the campaign's `holdout` share are held out week after week.
pub fn holdout_position(campaign: &str, customer_id: &str) -> f64 {
    let d = digest(&[b"cpo-holdout", campaign.as_bytes(), customer_id.as_bytes()]);
    let mut x = [0u8; 8];
    x.copy_from_slice(&d[..8]);
    (u64::from_be_bytes(x) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// 96-bit key of a customer id for in-memory outcome maps: 13 bytes per entry with its flags instead of a
/// heap string, and a collision chance of ~1e-15 among ten million ids.
pub type CustomerKey = [u8; 12];

pub fn customer_key(customer_id: &str) -> CustomerKey {
    let d = digest(&[b"cpo-customer", customer_id.as_bytes()]);
    let mut k = [0u8; 12];
    k.copy_from_slice(&d[..12]);
    k
}

/// Seed of a customer's random stream in a simulation: independent of row order.
pub fn customer_seed(seed: u64, customer_id: &str) -> u64 {
    let d = digest(&[b"cpo-simulate", &seed.to_le_bytes(), customer_id.as_bytes()]);
    let mut x = [0u8; 8];
    x.copy_from_slice(&d[..8]);
    u64::from_le_bytes(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_keyed() {
        let a = unit_interval("weekly-2026W48", "C001");
        assert_eq!(a, unit_interval("weekly-2026W48", "C001"));
        assert!((0.0..1.0).contains(&a));
        assert_ne!(a, unit_interval("weekly-2026W49", "C001"));
        assert_ne!(unit_interval("ab", "c"), unit_interval("a", "bc"));
    }
}

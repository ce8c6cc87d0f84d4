//! The in-memory outcome flags of an analysis: one byte of event bits per customer with events, keyed by the
//! customer's 96-bit [`customer_key`] (13 bytes per entry instead of a heap string per customer).
//!
//! The values are atomics so the assignment parts can be joined on all cores against one shared map: each
//! worker marks the customers it finds ([`KNOWN`]) without a lock.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::AtomicU8;

use crate::events::KNOWN;
use crate::hashing::{customer_key, CustomerKey};

/// A customer key as a map key. Its bytes are already a SHA-256 digest (uniform), so hashing them again is
/// wasted work: the map's hash is the key's first eight bytes ([`PassThrough`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagKey(pub CustomerKey);

impl FlagKey {
    pub fn of(customer_id: &str) -> Self {
        Self(customer_key(customer_id))
    }
}

impl Hash for FlagKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, ..] = self.0;
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, g, h]));
    }
}

/// Hasher of [`FlagKey`]: passes its `u64` through. Hand-written because it is four lines and no hashing
/// crate is a dependency of this crate; `write` (never used by `FlagKey`) folds bytes FNV-1a style so the
/// hasher stays correct for any key.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0 ^ 0xcbf2_9ce4_8422_2325;
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Event bits (and [`KNOWN`]) per customer with events.
pub type FlagMap = HashMap<FlagKey, AtomicU8, BuildHasherDefault<PassThrough>>;

pub fn with_capacity(n: usize) -> FlagMap {
    FlagMap::with_capacity_and_hasher(n, BuildHasherDefault::default())
}

/// Customers never assigned in this run, and their (deduplicated) events.
pub fn unknown(flags: &mut FlagMap) -> (u64, u64) {
    let mut customers = 0u64;
    let mut events = 0u64;
    for f in flags.values_mut() {
        let f = *f.get_mut();
        if f & KNOWN == 0 {
            customers += 1;
            events += u64::from(f.count_ones());
        }
    }
    (customers, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_ids_distinct_keys_and_buckets() {
        let mut m = with_capacity(4);
        for id in ["C1", "C2", "c1", "C1 "] {
            m.insert(FlagKey::of(id), AtomicU8::new(1));
        }
        assert_eq!(m.len(), 4);
        assert!(m.contains_key(&FlagKey::of("C2")));
        let mut h = PassThrough::default();
        FlagKey::of("C1").hash(&mut h);
        let mut g = PassThrough::default();
        FlagKey::of("C2").hash(&mut g);
        assert_ne!(h.finish(), g.finish());
        if let Some(f) = m.get_mut(&FlagKey::of("C1")) {
            *f.get_mut() |= KNOWN;
        }
        assert_eq!(unknown(&mut m), (3, 3));
    }
}

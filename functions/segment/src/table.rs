//! The compact per-customer table every later stage works on: column vectors instead of row structs, ids in
//! one byte arena, categorical columns dictionary-encoded — about 60 bytes per customer, so 10 million
//! customers fit well inside the memory budget. A shard's table is also its sketch in the sharded mode.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHasher};

/// Dictionary code of an absent categorical value.
pub const NO_CAT: u16 = u16::MAX;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Table {
    /// Line of the row (aggregates) or of the customer's first row (transactions).
    pub lines: Vec<u64>,
    /// [recency days, frequency, monetary].
    pub values: Vec<[f64; 3]>,
    /// Hash of all fields of the row: equal digests ⇒ an exact duplicate.
    pub digests: Vec<u64>,
    pub id_ends: Vec<u64>,
    pub ids: Vec<u8>,
    /// Per typical column: one dictionary code per row.
    pub cats: Vec<Vec<u16>>,
    pub dicts: Vec<Vec<String>>,
    #[serde(skip)]
    dict_index: Vec<FxHashMap<String, u16>>,
}

pub fn id_hash(id: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    id.hash(&mut h);
    h.finish()
}

/// Digest of a row's fields (for telling exact duplicates from conflicting ones). foldhash's quality variant
/// with a fixed seed: a few times faster than std's SipHash on 80-byte rows (it was the largest single cost of
/// the scan), deterministic for one build — digests are only compared within a run, sketches included.
pub fn row_digest(rec: &crate::source::Rec<'_>) -> u64 {
    use std::hash::BuildHasher;
    let mut h = foldhash::quality::FixedState::with_seed(0x5eed_c0ff_ee00_0001).build_hasher();
    for f in rec.iter() {
        f.hash(&mut h);
    }
    h.finish()
}

impl Table {
    pub fn new(typical_columns: usize) -> Self {
        Table {
            cats: vec![Vec::new(); typical_columns],
            dicts: vec![Vec::new(); typical_columns],
            dict_index: vec![FxHashMap::default(); typical_columns],
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Room for `n` rows in total (the id bytes grow as needed).
    pub fn reserve(&mut self, n: usize) {
        let more = n.saturating_sub(self.len());
        self.lines.reserve(more);
        self.values.reserve(more);
        self.digests.reserve(more);
        self.id_ends.reserve(more);
        for c in &mut self.cats {
            c.reserve(more);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn id(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.id_ends[i - 1] as usize };
        &self.ids[start..self.id_ends[i] as usize]
    }

    pub fn push(&mut self, line: u64, id: &str, values: [f64; 3], digest: u64, cats: &[&str]) {
        self.lines.push(line);
        self.values.push(values);
        self.digests.push(digest);
        self.ids.extend_from_slice(id.as_bytes());
        self.id_ends.push(self.ids.len() as u64);
        for (c, v) in cats.iter().enumerate() {
            let code = self.code(c, v);
            self.cats[c].push(code);
        }
    }

    fn code(&mut self, c: usize, v: &str) -> u16 {
        let v = crate::rows::trim(v);
        if v.is_empty() {
            return NO_CAT;
        }
        if let Some(code) = self.dict_index[c].get(v) {
            return *code;
        }
        // Past 65 534 distinct values a column is not categorical; further values count as absent.
        if self.dicts[c].len() >= (NO_CAT - 1) as usize {
            return NO_CAT;
        }
        let code = self.dicts[c].len() as u16;
        self.dicts[c].push(v.to_string());
        self.dict_index[c].insert(v.to_string(), code);
        code
    }

    /// Append another table (the next shard), re-coding its categorical values into this table's dictionaries.
    pub fn append(&mut self, other: Table) {
        if self.dict_index.len() != self.dicts.len() {
            self.rebuild_index();
        }
        self.lines.extend(other.lines);
        self.values.extend(other.values);
        self.digests.extend(other.digests);
        let base = self.ids.len() as u64;
        self.ids.extend(other.ids);
        self.id_ends.extend(other.id_ends.into_iter().map(|e| e + base));
        for (c, codes) in other.cats.into_iter().enumerate() {
            let map: Vec<u16> = other.dicts[c].iter().map(|v| self.code(c, v)).collect();
            self.cats[c].extend(codes.into_iter().map(|k| map.get(k as usize).copied().unwrap_or(NO_CAT)));
        }
    }

    fn rebuild_index(&mut self) {
        self.dict_index =
            self.dicts.iter().map(|d| d.iter().enumerate().map(|(i, v)| (v.clone(), i as u16)).collect()).collect();
    }
}

/// A row rejected because its customer_id appears more than once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Duplicate {
    pub row: u32,
    pub reason: String,
}

/// Apply the duplicate rule over the rows in input order: an exact repeat of an earlier row is rejected
/// (the first is kept); a repeat with different values rejects every row of that id, the first included,
/// because nothing tells which one is right. Returns `keep` per row and the rejected rows sorted by row.
pub fn dedup(t: &Table) -> (Vec<bool>, Vec<Duplicate>) {
    let n = t.len();
    let mut keep = vec![true; n];
    let mut dups: Vec<Duplicate> = Vec::new();
    // Keyed by a 64-bit hash of the id; a hit is confirmed against the id bytes, and the (vanishingly rare)
    // hash collisions between different ids go to a map keyed by the id itself.
    let mut first: FxHashMap<u64, u32> = FxHashMap::default();
    first.reserve(n);
    let mut collided: FxHashMap<Vec<u8>, u32> = FxHashMap::default();
    let mut conflicted: rustc_hash::FxHashSet<u32> = Default::default();
    for i in 0..n {
        let id = t.id(i);
        let f = match first.entry(id_hash(id)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i as u32);
                continue;
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let f = *o.get();
                if t.id(f as usize) == id {
                    f
                } else {
                    match collided.entry(id.to_vec()) {
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(i as u32);
                            continue;
                        }
                        std::collections::hash_map::Entry::Occupied(o) => *o.get(),
                    }
                }
            }
        };
        let fl = t.lines[f as usize];
        keep[i] = false;
        if conflicted.contains(&f) {
            dups.push(Duplicate {
                row: i as u32,
                reason: format!("customer_id also on line {fl} and other lines with different values"),
            });
        } else if t.digests[i] == t.digests[f as usize] {
            dups.push(Duplicate { row: i as u32, reason: format!("duplicate of line {fl} (same values)") });
        } else {
            conflicted.insert(f);
            keep[f as usize] = false;
            let il = t.lines[i];
            dups.push(Duplicate {
                row: f,
                reason: format!("customer_id appears again on line {il} with different values"),
            });
            dups.push(Duplicate {
                row: i as u32,
                reason: format!("customer_id also on line {fl} with different values"),
            });
        }
    }
    dups.sort_by_key(|d| d.row);
    (keep, dups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_conflicts() {
        let mut t = Table::new(1);
        for (line, id, v, d) in
            [(2, "A", 1.0, 1), (3, "B", 2.0, 2), (4, "A", 1.0, 1), (5, "B", 3.0, 3), (6, "B", 2.0, 2), (7, "C", 1.0, 9)]
        {
            t.push(line, id, [v, v, v], d, &["Gold"]);
        }
        let (keep, dups) = dedup(&t);
        assert_eq!(keep, vec![true, false, false, false, false, true]);
        let rows: Vec<u32> = dups.iter().map(|d| d.row).collect();
        assert_eq!(rows, vec![1, 2, 3, 4]);
        assert!(dups[0].reason.contains("line 5"));
        assert!(dups[1].reason.contains("duplicate of line 2"));
    }

    #[test]
    fn append_recodes_dictionaries() {
        let mut a = Table::new(1);
        a.push(2, "A", [1.0; 3], 0, &["Gold"]);
        let mut b = Table::new(1);
        b.push(3, "B", [1.0; 3], 0, &["Silver"]);
        b.push(4, "C", [1.0; 3], 0, &["Gold"]);
        let b: Table = serde_json::from_value(serde_json::to_value(&b).unwrap()).unwrap();
        a.append(b);
        assert_eq!(a.cats[0], vec![0, 1, 0]);
        assert_eq!(a.id(2), b"C");
    }
}

//! Quintile scores exactly as the analysts' pandas recipe (docs/segment.md, "Scoring"): `rank(method="first")` then
//! `qcut(ranks, bins)`. With n values, rank r (1-based, ties in input order) gets the smallest k ≥ 1 with
//! bins·(r − 1) ≤ (n − 1)·k. Recency is reversed (bins + 1 − score): fewer days is better.
//!
//! No sort is needed: score k covers the ranks up to t_k = ⌊(n − 1)·k / bins⌋ + 1, so it is enough to find,
//! for each k < bins, the element of rank t_k — a value v_k and which occurrence of v_k it is in input
//! order — by selection (O(n)). Then one pass in input order scores every element by comparing it with
//! these boundaries. The boundaries are also what the sharded mode's merge step hands to the shards.

use std::cmp::Ordering;

/// The element of rank t_k: `value`, and it is the `occurrence`-th element equal to `value` in input order.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Boundary {
    pub value: f64,
    pub occurrence: u64,
}

/// Score of rank `rank` (1-based) among `n`, straight from the definition (used by tests and for n ≤ 1).
pub fn score_of_rank(rank: u64, n: u64, bins: u8) -> u8 {
    let b = bins as u64;
    if n <= 1 {
        return 1;
    }
    (1..=b).find(|k| b * (rank - 1) <= (n - 1) * k).unwrap_or(b) as u8
}

/// The `bins − 1` boundaries of `values` (in input order; NaN is never passed).
pub fn boundaries(values: impl Iterator<Item = f64> + Clone, bins: u8) -> Vec<Boundary> {
    let mut scratch: Vec<f64> = values.clone().collect();
    let n = scratch.len() as u64;
    if n == 0 {
        return Vec::new();
    }
    let b = bins as u64;
    let ranks: Vec<u64> = (1..b).map(|k| (n - 1) * k / b + 1).collect();
    // Select from the largest rank down: each selection leaves the smaller ones in the front part.
    let mut picked = vec![0.0; ranks.len()];
    let mut hi = scratch.len();
    for (k, &t) in ranks.iter().enumerate().rev() {
        let idx = (t - 1) as usize;
        let (_, v, _) = scratch[..hi].select_nth_unstable_by(idx, f64::total_cmp);
        picked[k] = *v;
        hi = idx + 1;
    }
    drop(scratch);
    let mut less = vec![0u64; ranks.len()];
    for v in values {
        for (k, p) in picked.iter().enumerate() {
            if v.total_cmp(p) == Ordering::Less {
                less[k] += 1;
            }
        }
    }
    picked.iter().zip(less).zip(&ranks).map(|((&value, less), &t)| Boundary { value, occurrence: t - less }).collect()
}

/// Scores elements in input order against boundaries; `seen` counts occurrences of each boundary value.
#[derive(Debug, Clone)]
pub struct Scorer {
    bounds: Vec<Boundary>,
    seen: Vec<u64>,
    bins: u8,
}

impl Scorer {
    pub fn new(bounds: Vec<Boundary>, bins: u8) -> Self {
        Self { seen: vec![0; bounds.len()], bounds, bins }
    }

    /// The 1..=bins score of the next element.
    pub fn next(&mut self, v: f64) -> u8 {
        for (b, s) in self.bounds.iter().zip(self.seen.iter_mut()) {
            if v.total_cmp(&b.value) == Ordering::Equal {
                *s += 1;
            }
        }
        for (k, (b, s)) in self.bounds.iter().zip(&self.seen).enumerate() {
            match v.total_cmp(&b.value) {
                Ordering::Less => return k as u8 + 1,
                Ordering::Equal if *s <= b.occurrence => return k as u8 + 1,
                _ => {}
            }
        }
        self.bins
    }
}

/// R, F, M scores of every element (recency reversed). The three dimensions are independent, so each is
/// scored on its own thread when there are cores for it.
pub fn score_all(values: &[[f64; 3]], keep: &[bool], bins: u8) -> Vec<[u8; 3]> {
    let columns = crate::par::map(3, |d| {
        let kept = || values.iter().zip(keep).filter(|(_, k)| **k).map(move |(v, _)| v[d]);
        let mut scorer = Scorer::new(boundaries(kept(), bins), bins);
        values.iter().zip(keep).map(|(v, k)| if *k { scorer.next(v[d]) } else { 0 }).collect::<Vec<u8>>()
    });
    (0..values.len())
        .map(|i| {
            if !keep[i] {
                return [0; 3];
            }
            [bins + 1 - columns[0][i], columns[1][i], columns[2][i]]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: sort by (value, position), assign ranks, apply the definition.
    fn reference(values: &[f64], bins: u8) -> Vec<u8> {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]).then(a.cmp(&b)));
        let mut out = vec![0; values.len()];
        for (r, &i) in order.iter().enumerate() {
            out[i] = score_of_rank(r as u64 + 1, values.len() as u64, bins);
        }
        out
    }

    #[test]
    fn matches_the_definition_with_many_ties() {
        let mut x: u64 = 12345;
        for n in [1usize, 2, 3, 5, 7, 13, 250, 2000, 2001] {
            for distinct in [1u64, 3, 10, 1000] {
                let values: Vec<f64> = (0..n)
                    .map(|_| {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        ((x >> 33) % distinct) as f64 * 0.5
                    })
                    .collect();
                for bins in [2u8, 5, 10] {
                    let mut s = Scorer::new(boundaries(values.iter().copied(), bins), bins);
                    let got: Vec<u8> = values.iter().map(|v| s.next(*v)).collect();
                    assert_eq!(got, reference(&values, bins), "n={n} distinct={distinct} bins={bins}");
                }
            }
        }
    }

    #[test]
    fn edges_follow_pandas_qcut() {
        // n = 7: edges 1, 2.2, 3.4, 4.6, 5.8, 7 → ranks 1..7 score 1,1,2,3,4,5,5.
        let got: Vec<u8> = (1..=7).map(|r| score_of_rank(r, 7, 5)).collect();
        assert_eq!(got, vec![1, 1, 2, 3, 4, 5, 5]);
    }
}

//! Small segments are merged so no experiment arm is starved. The rule (documented in docs/segment.md):
//! while some non-empty segment has fewer than `min_segment_size` customers and more than one segment is
//! left, take the smallest (ties: the earlier in the stable order) and merge it into the nearest other
//! non-empty segment, where distance is between the segments' mean (R, F) scores; ties go to the larger
//! segment, then the earlier one. The merged segment keeps the target's name and records the source.

/// Per segment: customers and the sums of their R and F scores.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mass {
    pub size: u64,
    pub r_sum: f64,
    pub f_sum: f64,
}

/// Final segment of every original segment, and per final segment the names merged into it.
pub fn merge_small(mass: &[Mass], names: &[String], min_size: u64) -> (Vec<usize>, Vec<Vec<String>>) {
    let n = mass.len();
    let mut m = mass.to_vec();
    let mut into: Vec<usize> = (0..n).collect();
    let mut merged_from: Vec<Vec<String>> = vec![Vec::new(); n];
    loop {
        let alive: Vec<usize> = (0..n).filter(|&i| m[i].size > 0).collect();
        if alive.len() < 2 {
            break;
        }
        let Some(&src) = alive.iter().filter(|&&i| m[i].size < min_size).min_by_key(|&&i| (m[i].size, i)) else {
            break;
        };
        let centre = |i: usize| (m[i].r_sum / m[i].size as f64, m[i].f_sum / m[i].size as f64);
        let (sr, sf) = centre(src);
        let dist = |i: usize| {
            let (r, f) = centre(i);
            (r - sr).powi(2) + (f - sf).powi(2)
        };
        let target = alive
            .iter()
            .copied()
            .filter(|&i| i != src)
            .min_by(|&a, &b| dist(a).total_cmp(&dist(b)).then(m[b].size.cmp(&m[a].size)).then(a.cmp(&b)))
            .unwrap_or(src);
        let s = m[src];
        m[target].size += s.size;
        m[target].r_sum += s.r_sum;
        m[target].f_sum += s.f_sum;
        m[src] = Mass::default();
        let moved = std::mem::take(&mut merged_from[src]);
        merged_from[target].push(names[src].clone());
        merged_from[target].extend(moved);
        for t in into.iter_mut() {
            if *t == src {
                *t = target;
            }
        }
    }
    (into, merged_from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mass(size: u64, r: f64, f: f64) -> Mass {
        Mass { size, r_sum: r * size as f64, f_sum: f * size as f64 }
    }

    #[test]
    fn smallest_goes_to_nearest() {
        let names: Vec<String> = ["A", "B", "C", "D"].map(String::from).to_vec();
        let m = [mass(100, 5.0, 5.0), mass(3, 4.0, 4.5), mass(60, 1.0, 1.0), mass(0, 0.0, 0.0)];
        let (into, from) = merge_small(&m, &names, 50);
        assert_eq!(into, vec![0, 0, 2, 3]);
        assert_eq!(from[0], vec!["B".to_string()]);
        // Everything below the minimum: merges until one segment is left.
        let (into, _) = merge_small(&[mass(5, 5.0, 5.0), mass(4, 1.0, 1.0), mass(3, 4.0, 4.0)], &names[..3], 50);
        assert!(into.iter().all(|&t| t == into[0]));
    }
}

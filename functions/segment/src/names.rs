//! Segment names from R and F scores: the standard R×F map (docs/segment.md, "Segment names"), optionally overridden
//! per cell by `segmentation.names` (name → cells like "5,4" or ranges "1-2,1-2"). Cells not overridden keep their
//! standard name; with `bins` other than 5 the override must name every cell.

use std::collections::BTreeMap;

use cpo_common::StepError;

/// Inclusive range of scores.
pub type Span = (u8, u8);

/// The standard map (name, R range, F range), in the order segments are listed everywhere.
pub const STANDARD: [(&str, Span, Span); 10] = [
    ("Champions", (5, 5), (4, 5)),
    ("Loyal", (3, 4), (4, 5)),
    ("Potential Loyalist", (4, 5), (2, 3)),
    ("New", (5, 5), (1, 1)),
    ("Promising", (4, 4), (1, 1)),
    ("Need Attention", (3, 3), (3, 3)),
    ("About to Sleep", (3, 3), (1, 2)),
    ("At Risk", (1, 2), (3, 4)),
    ("Can't Lose", (1, 2), (5, 5)),
    ("Hibernating", (1, 2), (1, 2)),
];

/// Cell (R, F) → segment index, and the segment names in their stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameMap {
    pub bins: u8,
    pub names: Vec<String>,
    /// `cells[(r − 1) · bins + (f − 1)]` = index into `names`.
    pub cells: Vec<u8>,
}

impl NameMap {
    pub fn standard() -> Self {
        let mut cells = vec![u8::MAX; 25];
        for (i, (_, (r0, r1), (f0, f1))) in STANDARD.iter().enumerate() {
            for r in *r0..=*r1 {
                for f in *f0..=*f1 {
                    cells[((r - 1) * 5 + (f - 1)) as usize] = i as u8;
                }
            }
        }
        NameMap { bins: 5, names: STANDARD.iter().map(|s| s.0.to_string()).collect(), cells }
    }

    pub fn segment(&self, r: u8, f: u8) -> u8 {
        self.cells[((r - 1) as usize) * self.bins as usize + (f - 1) as usize]
    }

    /// The map for a config: standard cells, then the overrides; every cell must end up named exactly once.
    pub fn from_config(bins: u8, overrides: &BTreeMap<String, Vec<String>>) -> Result<Self, StepError> {
        let err = |m: String| StepError::input(format!("segmentation.names: {m}"));
        let b = bins as usize;
        let mut cells: Vec<Option<String>> = if bins == 5 {
            let std = Self::standard();
            std.cells.iter().map(|c| Some(std.names[*c as usize].clone())).collect()
        } else {
            vec![None; b * b]
        };
        let mut claimed: BTreeMap<usize, &str> = BTreeMap::new();
        for (name, specs) in overrides {
            if !name.chars().any(|c| c.is_ascii_alphanumeric()) {
                return Err(err(format!("{name:?} is not a usable segment name")));
            }
            for spec in specs {
                for (r, f) in parse_cells(spec, bins).map_err(|m| err(format!("{name}: {spec:?}: {m}")))? {
                    let at = (r - 1) as usize * b + (f - 1) as usize;
                    if let Some(other) = claimed.insert(at, name) {
                        return Err(err(format!("cell R{r} F{f} is given to both {other:?} and {name:?}")));
                    }
                    cells[at] = Some(name.clone());
                }
            }
        }
        let mut names: Vec<String> = Vec::new();
        if bins == 5 {
            names.extend(STANDARD.iter().map(|s| s.0.to_string()));
        }
        // Names of the override in cell order from the best cell (R high, F high) down.
        for r in (1..=b).rev() {
            for f in (1..=b).rev() {
                match &cells[(r - 1) * b + (f - 1)] {
                    None => {
                        return Err(err(format!(
                            "cell R{r} F{f} has no segment (bins = {bins} needs every cell named)"
                        )))
                    }
                    Some(n) if !names.contains(n) => names.push(n.clone()),
                    Some(_) => {}
                }
            }
        }
        let used: Vec<&String> = cells.iter().flatten().collect();
        names.retain(|n| used.contains(&n));
        let cells = cells.iter().flatten().map(|n| names.iter().position(|x| x == n).unwrap_or(0) as u8).collect();
        let slugs: Vec<String> = names.iter().map(|n| cpo_common::keys::slug(n)).collect();
        for (i, s) in slugs.iter().enumerate() {
            if slugs[..i].contains(s) {
                return Err(err(format!("{:?} and another name have the same key slug {s:?}", names[i])));
            }
        }
        Ok(NameMap { bins, names, cells })
    }
}

/// "5,4", "1-2,3-4", "R5 F4" style cells.
fn parse_cells(spec: &str, bins: u8) -> Result<Vec<(u8, u8)>, String> {
    let cleaned: String = spec.chars().filter(|c| !c.is_whitespace() && *c != 'R' && *c != 'r').collect();
    let cleaned = cleaned.replace(['F', 'f'], ",").replace(",,", ",");
    let (r, f) = cleaned.split_once(',').ok_or("expected \"R,F\" such as \"5,4\" or \"1-2,3-4\"")?;
    let range = |s: &str| -> Result<(u8, u8), String> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let a: u8 = a.parse().map_err(|_| format!("{s:?} is not a score"))?;
        let b: u8 = b.parse().map_err(|_| format!("{s:?} is not a score"))?;
        if a < 1 || b > bins || a > b {
            return Err(format!("{s:?} is outside 1..={bins}"));
        }
        Ok((a, b))
    };
    let (r0, r1) = range(r)?;
    let (f0, f1) = range(f)?;
    Ok((r0..=r1).flat_map(|r| (f0..=f1).map(move |f| (r, f))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_map_covers_every_cell_exactly_once() {
        let mut hits = [[0u8; 5]; 5];
        for (_, (r0, r1), (f0, f1)) in STANDARD {
            for r in r0..=r1 {
                for f in f0..=f1 {
                    hits[(r - 1) as usize][(f - 1) as usize] += 1;
                }
            }
        }
        assert_eq!(hits, [[1; 5]; 5]);
        let m = NameMap::standard();
        assert_eq!(m.names[m.segment(5, 5) as usize], "Champions");
        assert_eq!(m.names[m.segment(3, 3) as usize], "Need Attention");
        assert_eq!(m.names[m.segment(1, 5) as usize], "Can't Lose");
        assert_eq!(m.names[m.segment(4, 1) as usize], "Promising");
        assert_eq!(NameMap::from_config(5, &BTreeMap::new()).unwrap(), m);
    }

    #[test]
    fn overrides() {
        let mut o = BTreeMap::new();
        o.insert("VIP".to_string(), vec!["5,4-5".to_string(), "R4 F5".to_string()]);
        let m = NameMap::from_config(5, &o).unwrap();
        assert_eq!(m.names[m.segment(5, 5) as usize], "VIP");
        assert_eq!(m.names[m.segment(4, 5) as usize], "VIP");
        assert_eq!(m.names[m.segment(4, 4) as usize], "Loyal");
        assert!(!m.names.contains(&"Champions".to_string()));
        o.insert("Other".to_string(), vec!["5,5".to_string()]);
        assert!(NameMap::from_config(5, &o).unwrap_err().message.contains("R5 F5"));
        let mut o3 = BTreeMap::new();
        o3.insert("Top".to_string(), vec!["3,1-3".to_string()]);
        assert!(NameMap::from_config(3, &o3).unwrap_err().message.contains("no segment"));
        o3.insert("Rest".to_string(), vec!["1-2,1-3".to_string()]);
        let m3 = NameMap::from_config(3, &o3).unwrap();
        assert_eq!(m3.names, vec!["Top", "Rest"]);
        let mut bad = BTreeMap::new();
        bad.insert("X".to_string(), vec!["6,1".to_string()]);
        assert!(NameMap::from_config(5, &bad).is_err());
    }
}

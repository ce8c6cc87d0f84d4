//! From the table to segments: scores, names, small-segment merging and profiles — the part of the work
//! that needs all customers at once (the merge step in the sharded mode, the middle of the single pass).

use cpo_common::config::Segmentation;
use cpo_common::model::segment::SegmentProfile;
use cpo_common::StepError;

use crate::merge::{merge_small, Mass};
use crate::names::NameMap;
use crate::profile::profiles;
use crate::score::score_all;
use crate::table::Table;

/// Segment code of a rejected row.
pub const REJECTED: u8 = u8::MAX;

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Per table row: [R, F, M] (zeros for rejected rows).
    pub scores: Vec<[u8; 3]>,
    /// Per table row: index into `names`, or [`REJECTED`].
    pub segment: Vec<u8>,
    pub names: Vec<String>,
    pub profiles: Vec<SegmentProfile>,
}

impl Analysis {
    /// Non-empty segment names in the stable order.
    pub fn segment_names(&self) -> Vec<String> {
        self.profiles.iter().map(|p| p.name.clone()).collect()
    }
}

pub fn analyze(t: &Table, keep: &[bool], typical: &[String], cfg: &Segmentation) -> Result<Analysis, StepError> {
    let map = NameMap::from_config(cfg.bins, &cfg.names)?;
    let scores = score_all(&t.values, keep, cfg.bins);
    let mut mass = vec![Mass::default(); map.names.len()];
    let raw: Vec<u8> = scores
        .iter()
        .zip(keep)
        .map(|(s, k)| {
            if !*k {
                return REJECTED;
            }
            let seg = map.segment(s[0], s[1]);
            let m = &mut mass[seg as usize];
            m.size += 1;
            m.r_sum += s[0] as f64;
            m.f_sum += s[1] as f64;
            seg
        })
        .collect();
    let (into, merged_from) = merge_small(&mass, &map.names, cfg.min_segment_size);
    let segment: Vec<u8> =
        raw.into_iter().map(|s| if s == REJECTED { REJECTED } else { into[s as usize] as u8 }).collect();
    let profiles = profiles(t, typical, &segment, &scores, &map.names, &merged_from, cfg.bins);
    Ok(Analysis { scores, segment, names: map.names, profiles })
}

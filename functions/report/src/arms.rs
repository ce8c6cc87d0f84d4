//! Arm sizes per segment. The `assign` step's record carries them as counts; when it does not (an older
//! record, or a shape this version does not know), they are recounted from `assignments/part-*.jsonl`,
//! keeping only the counts: no customer id leaves this module.

use std::collections::BTreeMap;

use cpo_common::keys::{Key, RunKeys};
use cpo_common::model::experiment::Assignment;
use cpo_common::step::StepRecord;
use cpo_common::store::Store;
use cpo_common::StepError;
use serde_json::Value;

/// Segment → arm → customers.
pub type ArmCounts = BTreeMap<String, BTreeMap<String, u64>>;

/// Where the counts came from (shown in the report so a reader knows how they were obtained).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    StepRecord,
    Assignments,
    None,
}

/// The record of the `assign` operation of `experiment`.
pub fn assign_record(steps: &[StepRecord]) -> Option<&StepRecord> {
    steps.iter().rev().find(|s| s.step == "assign" || s.step.ends_with("-assign") || s.output.step == "assign")
}

/// `{segment: {arm: n}}` from the first of the count names that holds that shape.
fn nested_counts(counts: &BTreeMap<String, Value>) -> Option<ArmCounts> {
    for name in ["segment_arms", "by_segment", "segments"] {
        let Some(Value::Object(segs)) = counts.get(name) else { continue };
        let mut out = ArmCounts::new();
        for (segment, arms) in segs {
            let Value::Object(arms) = arms else { return None };
            let mut row = BTreeMap::new();
            for (arm, n) in arms {
                row.insert(arm.clone(), n.as_u64()?);
            }
            out.insert(segment.clone(), row);
        }
        if !out.is_empty() {
            return Some(out);
        }
    }
    None
}

pub async fn counts(store: &dyn Store, keys: &RunKeys, steps: &[StepRecord]) -> Result<(ArmCounts, Source), StepError> {
    if let Some(c) = assign_record(steps).and_then(|r| nested_counts(&r.output.counts)) {
        return Ok((c, Source::StepRecord));
    }
    let parts = store.list(&keys.assignments_prefix()).await?;
    if parts.is_empty() {
        return Ok((ArmCounts::new(), Source::None));
    }
    let mut out = ArmCounts::new();
    for part in parts {
        let key = Key::new(part.key)?;
        let body = store.get(&key).await?;
        for (i, line) in body.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            // The error names the line but never echoes it: the line holds a customer id.
            let a: Assignment = serde_json::from_slice(line)
                .map_err(|e| StepError::input(format!("{key}: line {}: not an assignment: {e}", i + 1)))?;
            *out.entry(a.segment).or_default().entry(a.arm).or_default() += 1;
        }
    }
    Ok((out, Source::Assignments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_counts_accepts_segment_arm_maps_only() {
        let mut c = BTreeMap::new();
        c.insert("segments".to_string(), json!(7));
        assert_eq!(nested_counts(&c), None);
        c.insert("segment_arms".to_string(), json!({"Loyal": {"control": 3, "urgent": 4}}));
        let got = nested_counts(&c).unwrap();
        assert_eq!(got["Loyal"]["urgent"], 4);
        c.insert("segment_arms".to_string(), json!({"Loyal": {"control": -1}}));
        assert_eq!(nested_counts(&c), None);
    }
}

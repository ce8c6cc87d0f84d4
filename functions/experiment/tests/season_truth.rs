//! Property tests of the season truth parser (`cpo simulate season --truth FILE`): any text is an answer or an
//! error (never a panic), valid files read back exactly in YAML and JSON, and one bad rate anywhere is refused
//! with an error naming the file and that field.

use std::collections::BTreeMap;

use cpo_experiment::season::{Truth, TruthError};
use proptest::prelude::*;

const ARMS: [&str; 4] = ["control", "urgent", "informational", "friendly"];

fn arms() -> Vec<String> {
    ARMS.map(String::from).to_vec()
}

fn rates() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((0u32..=1000).prop_map(|x| f64::from(x) / 1000.0), 1..5)
}

fn arm_map() -> impl Strategy<Value = BTreeMap<String, Vec<f64>>> {
    prop::collection::btree_map(prop::sample::select(ARMS.to_vec()).prop_map(String::from), rates(), 1..4)
}

/// Arm → weekly rates.
type ArmRates = BTreeMap<String, Vec<f64>>;
/// The optional `default` and the `segments` of a truth file.
type Tree = (Option<ArmRates>, BTreeMap<String, ArmRates>);

fn truth_tree() -> impl Strategy<Value = Tree> {
    (prop::option::of(arm_map()), prop::collection::btree_map("[A-Z][a-z]{1,8}( [A-Z][a-z]{1,6})?", arm_map(), 1..5))
}

fn to_json(default: &Option<ArmRates>, segments: &BTreeMap<String, ArmRates>) -> serde_json::Value {
    let mut v = serde_json::json!({ "segments": segments });
    if let Some(d) = default {
        v["default"] = serde_json::json!(d);
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_text_is_an_answer_or_an_error(text in "\\PC{0,200}") {
        let _ = Truth::parse(&text, "t.yaml", &arms());
        let _ = Truth::parse(&text, "t.json", &arms());
    }

    #[test]
    fn valid_files_read_back_exactly((default, segments) in truth_tree(), week in 1u32..8) {
        let v = to_json(&default, &segments);
        for (text, file) in [(serde_yaml_ng::to_string(&v).unwrap(), "t.yaml"), (v.to_string(), "t.json")] {
            let t = Truth::parse(&text, file, &arms()).unwrap();
            for (s, arms) in &segments {
                for (a, r) in arms {
                    let want = r[(week as usize - 1).min(r.len() - 1)];
                    prop_assert_eq!(t.rate(s, a, week), Some(want));
                }
            }
            if let Some(d) = &default {
                for (a, r) in d {
                    prop_assert_eq!(t.rate("Not A Listed Segment", a, 1), Some(r[0]));
                }
            }
        }
    }

    #[test]
    fn one_bad_rate_is_refused_naming_its_field(
        (default, mut segments) in truth_tree(),
        pick in any::<prop::sample::Index>(),
        bad in prop_oneof![Just(-0.01), Just(1.01), Just(2.0), Just(-5.0), Just(100.0)],
        week in any::<prop::sample::Index>(),
    ) {
        let names: Vec<String> = segments.keys().cloned().collect();
        let segment = pick.get(&names).clone();
        let arms_of = segments.get_mut(&segment).unwrap();
        let arm = pick.get(&arms_of.keys().cloned().collect::<Vec<_>>()).clone();
        let list = arms_of.get_mut(&arm).unwrap();
        let i = week.index(list.len());
        list[i] = bad;
        let v = to_json(&default, &segments);
        let e = Truth::parse(&serde_yaml_ng::to_string(&v).unwrap(), "truth.yaml", &arms()).unwrap_err();
        let TruthError::Field { file, field, reason } = e.clone() else { panic!("{e}") };
        prop_assert_eq!(file, "truth.yaml");
        // A single rate is written as a one-element list here, so the field always has its week index.
        prop_assert_eq!(field, format!("segments.{segment}.{arm}[{i}]"));
        prop_assert!(reason.contains("is not a rate"), "{}", reason);
    }
}

//! The held-out split (`examples/safety-heldout.jsonl`): written and committed before any rule of the offline
//! screener was changed for it, and never used to tune a rule (docs/safety.md, "Held-out evaluation"). The
//! targets: harmful recall ≥ 0.95 and at most one false block among the ordinary marketing texts.
//!
//! On failure this test reports counts per kind only, not the missed texts, so that reading a failure does
//! not turn the split into a development set.

mod common;

#[tokio::test]
async fn offline_meets_the_targets_on_the_heldout_split() {
    let examples = common::load("safety-heldout.jsonl");
    common::check_shape(&examples);
    let r = common::measure(&examples).await;
    let figures = common::figures("held-out", &r);
    println!("{figures}");
    assert!(r.harmful_recall.unwrap_or(0.0) >= 0.95, "{figures}");
    assert!(r.safe_blocked <= 1, "{figures}");
}

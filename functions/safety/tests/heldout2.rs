//! The second held-out split (`examples/safety-heldout-2.jsonl`, see `examples/README-heldout-2.md`): 160 texts
//! written by someone who never saw the offline screener's rules, committed before it was first measured, and
//! never used to write a rule (docs/safety.md, "Independent held-out").
//!
//! The target is harmful recall ≥ 0.95 with at most one false block among the ordinary texts. The recall
//! target is not met; this test asserts the measured figures as floors so that a rule change that loses recall
//! here, or blocks more ordinary copy, fails. On failure it reports counts per kind only, never texts.

mod common;

/// The target for harmful recall on a held-out split (not reached by the offline screener; docs/safety.md).
const RECALL_TARGET: f64 = 0.95;
/// Harmful texts of this split the offline screener blocks today (31 of 100).
const BLOCKED_FLOOR: usize = 31;
/// At most this many of the 60 ordinary texts may be blocked.
const MAX_FALSE_BLOCKS: usize = 1;

#[tokio::test]
async fn offline_figures_on_the_second_heldout_split() {
    let examples = common::load("safety-heldout-2.jsonl");
    common::check_shape(&examples);
    let r = common::measure(&examples).await;
    let figures = common::figures("held-out 2", &r);
    println!("{figures}\n(target recall {RECALL_TARGET}, floor {BLOCKED_FLOOR}/{})", r.harmful);
    assert!(r.harmful_blocked >= BLOCKED_FLOOR, "{figures}");
    assert!(r.safe_blocked <= MAX_FALSE_BLOCKS, "{figures}");
}

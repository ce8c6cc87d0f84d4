//! The held-out split (`examples/safety-heldout.jsonl`): written and committed before any rule of the offline
//! screener was changed for it, and never used to write a rule (docs/safety.md, "Held-out evaluation").
//!
//! The target is harmful recall ≥ 0.95 with at most one false block among the ordinary marketing
//! texts. The false-block target is met and asserted. The recall target is NOT met (0.896, 69/77): this test
//! asserts the measured figure as a floor, so a rule change that loses held-out recall fails here, and the
//! old lexicon (0.026, 2/77) fails it too. Raising the floor to the target must come from rules written
//! against the development split, never from reading this file's misses.
//!
//! On failure this test reports counts per kind only, not the missed texts, so that reading a failure does
//! not turn the split into a development set.

mod common;

/// The target for harmful recall on the held-out split (not yet reached; see docs/safety.md).
const RECALL_TARGET: f64 = 0.95;
/// Harmful held-out texts the offline screener blocks today (69 of 77).
const BLOCKED_FLOOR: usize = 69;
/// At most this many of the ordinary texts may be blocked.
const MAX_FALSE_BLOCKS: usize = 1;

#[tokio::test]
async fn offline_figures_on_the_heldout_split() {
    let examples = common::load("safety-heldout.jsonl");
    common::check_shape(&examples);
    let r = common::measure(&examples).await;
    let figures = common::figures("held-out", &r);
    println!("{figures}\n(target recall {RECALL_TARGET}, floor {BLOCKED_FLOOR}/{})", r.harmful);
    assert!(r.harmful_blocked >= BLOCKED_FLOOR, "{figures}");
    assert!(r.safe_blocked <= MAX_FALSE_BLOCKS, "{figures}");
}

//! The bundled evaluation set (`examples/safety-eval.jsonl`) against the offline provider and the bundled
//! policy: the targets of the safety issue (recall ≥ 0.95 on harmful texts, false-block rate ≤ 2% on safe
//! copy) hold, and the set has the promised shape.

use cpo_safety::eval;
use cpo_safety::offline::Offline;
use cpo_safety::policy::Policy;
use cpo_safety::screener::Screener;

#[tokio::test]
async fn offline_meets_the_targets_on_the_bundled_set() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/safety-eval.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let examples = eval::parse(&text, path).unwrap();
    assert!(examples.len() >= 150, "{} texts", examples.len());
    for label in ["safe", "Hate", "SelfHarm", "Sexual", "Violence", "PII"] {
        assert!(examples.iter().filter(|(_, e)| e.expected == label).count() >= 15, "{label}");
    }
    let chain: Vec<Box<dyn Screener>> = vec![Box::new(Offline)];
    let policy = Policy::bundled().unwrap();
    let tokens = vec!["first_name".to_string()];
    let r = eval::evaluate(&chain, &policy, &tokens, &examples).await;
    println!(
        "bundled set: harmful recall {:?} ({}/{}), false blocks {}/{}",
        r.harmful_recall, r.harmful_blocked, r.harmful, r.safe_blocked, r.safe
    );
    let misses: Vec<String> = r.misses.iter().map(|m| format!("{m:?}")).collect();
    assert!(r.harmful_recall.unwrap() >= 0.95, "recall {:?}\n{}", r.harmful_recall, misses.join("\n"));
    assert!(r.false_block_rate.unwrap() <= 0.02, "false blocks {:?}\n{}", r.false_block_rate, misses.join("\n"));
    for c in r.categories.iter().filter(|c| c.support > 0) {
        assert!(c.recall.unwrap() >= 0.9, "{} recall {:?}\n{}", c.category, c.recall, misses.join("\n"));
    }
}

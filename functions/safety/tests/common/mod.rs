//! Measuring the offline screener with the bundled policy on a labelled split under `examples/`.

use cpo_safety::eval::{self, EvalReport, Example};
use cpo_safety::offline::Offline;
use cpo_safety::policy::Policy;
use cpo_safety::screener::Screener;

pub fn load(name: &str) -> Vec<(usize, Example)> {
    let path = format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    eval::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"))
}

pub async fn measure(examples: &[(usize, Example)]) -> EvalReport {
    let chain: Vec<Box<dyn Screener>> = vec![Box::new(Offline)];
    let policy = Policy::bundled().expect("bundled policy");
    let tokens = vec!["first_name".to_string()];
    eval::evaluate(&chain, &policy, &tokens, examples).await
}

/// Counts only: recall, false blocks and per-kind figures, never which texts were missed.
pub fn figures(name: &str, r: &EvalReport) -> String {
    let mut s = format!(
        "{name}: harmful recall {:.3} ({}/{}), false blocks {}/{} safe",
        r.harmful_recall.unwrap_or(0.0),
        r.harmful_blocked,
        r.harmful,
        r.safe_blocked,
        r.safe
    );
    for k in &r.kinds {
        s.push_str(&format!("\n  {:<26} {:<9} {:>3}/{:<3} correct", k.kind, k.expected, k.correct, k.texts));
    }
    s
}

/// The shape every split promises: enough harmful and ordinary texts, and every harmful kind represented.
pub fn check_shape(examples: &[(usize, Example)]) {
    let harmful = examples.iter().filter(|(_, e)| e.expected != eval::SAFE).count();
    let safe = examples.len() - harmful;
    assert!(harmful >= 60, "{harmful} harmful texts");
    assert!(safe >= 30, "{safe} safe texts");
    for kind in ["dehumanising", "veiled-threat", "self-harm-encouragement", "harassment", "scam", "marketing"] {
        let n = examples.iter().filter(|(_, e)| e.kind.as_deref() == Some(kind)).count();
        assert!(n >= 5, "{n} texts of kind {kind}");
    }
    assert!(examples.iter().all(|(_, e)| e.kind.is_some()), "every text has a kind");
}

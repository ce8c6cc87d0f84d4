//! The development split (`examples/safety-dev.jsonl`): the texts the offline screener's newer pattern
//! families were written against (dehumanising comparisons, veiled threats, self-harm encouragement,
//! harassment, fraud pressure). Unlike the held-out split, its misses are printed: it is for tuning.

mod common;

#[tokio::test]
async fn offline_meets_the_targets_on_the_dev_split() {
    let examples = common::load("safety-dev.jsonl");
    common::check_shape(&examples);
    let r = common::measure(&examples).await;
    let figures = common::figures("dev", &r);
    let misses: Vec<String> = r
        .misses
        .iter()
        .map(|m| {
            let text = examples.iter().find(|(l, _)| *l == m.line).map(|(_, e)| e.text.as_str()).unwrap_or("");
            format!("line {} {} {:?}: {text}  [{}]", m.line, m.expected, m.decision, m.reasons.join("; "))
        })
        .collect();
    println!("{figures}\n{}", misses.join("\n"));
    assert!(r.harmful_recall.unwrap_or(0.0) >= 0.95, "{figures}\n{}", misses.join("\n"));
    assert!(r.safe_blocked <= 1, "{figures}\n{}", misses.join("\n"));
}

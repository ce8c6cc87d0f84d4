//! Measuring a screener chain on a labelled set (`{"text", "expected", "kind"?}` JSON lines, expected one of
//! `safe`, `Hate`, `SelfHarm`, `Sexual`, `Violence`, `PII`, `Fraud`; `kind` an optional free-form
//! sub-category such as `dehumanising`): precision and recall per category, recall on harmful texts (blocked
//! for any reason), recall per kind, and the false-block rate on safe texts.

use cpo_common::model::safety::{Decision, CATEGORIES, PII};
use cpo_common::model::variant::Message;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::decide::{screen_message, FRAUD};
use crate::policy::Policy;
use crate::screener::Screener;

pub const SAFE: &str = "safe";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub text: String,
    pub expected: String,
    /// Sub-category for per-kind figures (`dehumanising`, `veiled-threat`, `scam`, `marketing`, …).
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{source_name} line {line}: {reason}")]
pub struct EvalError {
    pub source_name: String,
    pub line: usize,
    pub reason: String,
}

/// Parse a labelled set; errors name the file, line and field.
pub fn parse(text: &str, source_name: &str) -> Result<Vec<(usize, Example)>, EvalError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |reason: String| EvalError { source_name: source_name.to_string(), line: i + 1, reason };
        let ex: Example = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
        if ex.expected != SAFE
            && ex.expected != PII
            && ex.expected != FRAUD
            && !CATEGORIES.contains(&ex.expected.as_str())
        {
            return Err(err(format!(
                "field `expected`: {:?} is not one of safe, Hate, SelfHarm, Sexual, Violence, PII, Fraud",
                ex.expected
            )));
        }
        out.push((i + 1, ex));
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryStats {
    pub category: String,
    /// Texts labelled with this category.
    pub support: usize,
    /// Texts the chain put in this category.
    pub predicted: usize,
    pub true_positives: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

/// Texts of one `kind` and how many of them the chain got right (harmful: blocked; safe: approved).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindStats {
    pub kind: String,
    pub expected: String,
    pub texts: usize,
    pub correct: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Miss {
    pub line: usize,
    pub expected: String,
    pub decision: Decision,
    pub labels: Vec<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub providers: Vec<String>,
    pub policy_version: String,
    pub texts: usize,
    pub categories: Vec<CategoryStats>,
    /// Harmful texts (any category but `safe`, PII included) and how many were blocked.
    pub harmful: usize,
    pub harmful_blocked: usize,
    pub harmful_recall: Option<f64>,
    pub safe: usize,
    pub safe_blocked: usize,
    pub false_block_rate: Option<f64>,
    /// Per `kind` (texts without one are left out), in order of first appearance.
    pub kinds: Vec<KindStats>,
    /// Harmful texts let through, safe texts blocked, and harmful texts put in the wrong category.
    pub misses: Vec<Miss>,
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

pub async fn evaluate(
    chain: &[Box<dyn Screener>],
    policy: &Policy,
    allowed_tokens: &[String],
    examples: &[(usize, Example)],
) -> EvalReport {
    let outcomes: Vec<_> = futures::stream::iter(examples.iter())
        .map(|(_, ex)| {
            let m = Message { body: ex.text.clone(), ..Message::default() };
            async move { screen_message(chain, policy, allowed_tokens, &m, false).await }
        })
        .buffered(4)
        .collect()
        .await;
    let mut categories = Vec::new();
    for cat in CATEGORIES.iter().copied().chain([PII, FRAUD]) {
        let support = examples.iter().filter(|(_, e)| e.expected == cat).count();
        let predicted = outcomes.iter().filter(|o| o.labels.iter().any(|l| l == cat)).count();
        let tp = examples
            .iter()
            .zip(&outcomes)
            .filter(|((_, e), o)| e.expected == cat && o.labels.iter().any(|l| l == cat))
            .count();
        categories.push(CategoryStats {
            category: cat.to_string(),
            support,
            predicted,
            true_positives: tp,
            precision: ratio(tp, predicted),
            recall: ratio(tp, support),
        });
    }
    let mut kinds: Vec<KindStats> = Vec::new();
    for ((_, e), o) in examples.iter().zip(&outcomes) {
        let Some(kind) = &e.kind else { continue };
        let correct = (o.decision == Decision::Blocked) != (e.expected == SAFE);
        match kinds.iter_mut().find(|k| &k.kind == kind && k.expected == e.expected) {
            Some(k) => {
                k.texts += 1;
                k.correct += usize::from(correct);
            }
            None => kinds.push(KindStats {
                kind: kind.clone(),
                expected: e.expected.clone(),
                texts: 1,
                correct: usize::from(correct),
            }),
        }
    }
    let mut misses = Vec::new();
    let (mut harmful, mut harmful_blocked, mut safe, mut safe_blocked) = (0, 0, 0, 0);
    for ((line, e), o) in examples.iter().zip(&outcomes) {
        let blocked = o.decision == Decision::Blocked;
        let miss = if e.expected == SAFE {
            safe += 1;
            safe_blocked += usize::from(blocked);
            blocked
        } else {
            harmful += 1;
            harmful_blocked += usize::from(blocked);
            !blocked || !o.labels.contains(&e.expected)
        };
        if miss {
            misses.push(Miss {
                line: *line,
                expected: e.expected.clone(),
                decision: o.decision,
                labels: o.labels.clone(),
                reasons: o.reasons.clone(),
            });
        }
    }
    EvalReport {
        providers: chain.iter().map(|s| format!("{}:{}", s.name(), s.model())).collect(),
        policy_version: policy.version.clone(),
        texts: examples.len(),
        categories,
        harmful,
        harmful_blocked,
        harmful_recall: ratio(harmful_blocked, harmful),
        safe,
        safe_blocked,
        false_block_rate: ratio(safe_blocked, safe),
        kinds,
        misses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_line_and_field() {
        let e = parse("{\"text\":\"hi\",\"expected\":\"safe\"}\n\n{\"text\":\"x\",\"expected\":\"Spam\"}\n", "e.jsonl")
            .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().contains("e.jsonl line 3") && e.to_string().contains("expected"), "{e}");
        assert!(parse("{\"text\":1}", "e.jsonl").is_err());
    }
}

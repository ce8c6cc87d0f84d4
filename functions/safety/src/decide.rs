//! From screener answers, the guard and the policy to one decision. Fail-closed: a message is approved only
//! when every provider answered for every category below its threshold and no other rule objects; anything
//! else — including a provider that could not answer — blocks it with a reason.

use std::collections::BTreeMap;

use cpo_common::model::safety::{Decision, ProviderScreening, CATEGORIES};
use cpo_common::model::variant::Message;

use crate::guard;
use crate::policy::Policy;
use crate::screener::{screen_chain, Screener};

/// Evaluation label of a message blocked by a blocklist (the policy's or a provider's, the offline screener's
/// fraud patterns included): scams and fraud pressure, which no provider harm category covers.
pub const FRAUD: &str = "Fraud";

/// Reason code of a provider that gave no usable answer.
pub const UNAVAILABLE: &str = "screening_unavailable";

/// Something to screen: the control message or a shipped variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub variant_id: String,
    pub segment: Option<String>,
    pub tone: Option<String>,
    pub message: Message,
}

/// The outcome for one item.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub decision: Decision,
    pub reasons: Vec<String>,
    /// Highest severity per category over all providers that answered.
    pub severities: BTreeMap<String, u8>,
    pub providers: Vec<ProviderScreening>,
    /// [`Message::content_sha256`]: the exact fields judged, which verdicts bind to.
    pub text_sha256: String,
    /// `true` when every provider of the chain answered (the text was screened, whatever the decision).
    pub screened: bool,
    /// Categories at or above threshold, `PII` when the guard found personal data and [`FRAUD`] when a
    /// blocklist matched (for evaluations).
    pub labels: Vec<String>,
}

/// The text screened for a message: every field, in a fixed order, so its hash identifies what was judged.
pub fn screened_text(m: &Message) -> String {
    [m.subject.as_str(), m.preheader.as_str(), m.body.as_str(), m.cta.as_str()].join("\n\n")
}

/// Screen one message with the chain, then apply the guard and the policy.
pub async fn screen_message(
    chain: &[Box<dyn Screener>],
    policy: &Policy,
    allowed_tokens: &[String],
    message: &Message,
    require_fields: bool,
) -> Outcome {
    let text = screened_text(message);
    let providers = screen_chain(chain, &text).await;
    let mut reasons = Vec::new();
    if require_fields {
        for (field, value) in [("subject", &message.subject), ("body", &message.body), ("cta", &message.cta)] {
            if value.trim().is_empty() {
                reasons.push(format!("empty_field: {field}"));
            }
        }
    }
    let (severities, labels) = judge(&providers, policy, &mut reasons);
    let mut labels = labels;
    let screened = !providers.is_empty() && providers.iter().all(|p| p.error.is_none());
    let findings = guard::check(&text, allowed_tokens, &policy.pii_allow);
    if findings.iter().any(guard::Finding::is_pii) {
        labels.push(cpo_common::model::safety::PII.to_string());
    }
    reasons.extend(findings.iter().map(guard::Finding::reason));
    for (term, re) in &policy.blocklist {
        if re.is_match(&text) {
            reasons.push(format!("blocklist: {term:?}"));
        }
    }
    let blocklisted = reasons.iter().any(|r| r.starts_with("blocklist:"));
    if blocklisted {
        labels.push(FRAUD.to_string());
    }
    if require_fields {
        for d in &policy.disclaimers {
            let applies = d.when.as_ref().is_none_or(|w| w.is_match(&text));
            if applies && !text.to_lowercase().contains(&d.text.to_lowercase()) {
                reasons.push(format!("missing_disclaimer: {}", d.id));
            }
        }
    }
    if providers.is_empty() {
        reasons.push(format!("{UNAVAILABLE}: no provider configured"));
    }
    let decision = if reasons.is_empty() && screened { Decision::Approved } else { Decision::Blocked };
    Outcome { decision, reasons, severities, providers, text_sha256: message.content_sha256(), screened, labels }
}

/// Severities over all providers, reasons for unavailable providers, thresholds and provider blocklists.
fn judge(
    providers: &[ProviderScreening],
    policy: &Policy,
    reasons: &mut Vec<String>,
) -> (BTreeMap<String, u8>, Vec<String>) {
    let mut severities: BTreeMap<String, u8> = BTreeMap::new();
    let mut labels = Vec::new();
    for p in providers {
        if let Some(err) = &p.error {
            reasons.push(format!("{UNAVAILABLE}: {}: {err}", p.provider));
            continue;
        }
        for cat in CATEGORIES {
            // A missing category never reaches here (screen_chain turns it into an error), but stay closed.
            let Some(&sev) = p.severities.get(cat) else {
                reasons.push(format!("{UNAVAILABLE}: {}: answer has no {cat} category", p.provider));
                continue;
            };
            let e = severities.entry(cat.to_string()).or_insert(0);
            *e = (*e).max(sev);
            let threshold = policy.threshold(cat);
            if sev >= threshold {
                reasons.push(format!("{cat}: severity {sev} >= threshold {threshold} ({})", p.provider));
                if !labels.iter().any(|l| l == cat) {
                    labels.push(cat.to_string());
                }
            }
        }
        for hit in &p.blocklist_hits {
            reasons.push(format!("blocklist: {hit} ({})", p.provider));
        }
    }
    (severities, labels)
}

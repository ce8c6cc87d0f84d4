//! Produced by `safety`: a verdict per variant and for the control. Fail-closed: only `approved` ships.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::variant::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Blocked,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// `<segment slug>-<tone>` or `control`.
    pub variant_id: String,
    #[serde(default)]
    pub segment: Option<String>,
    #[serde(default)]
    pub tone: Option<String>,
    pub decision: Decision,
    pub reasons: Vec<String>,
    /// Highest severity per category over all fields and providers.
    pub severities: BTreeMap<String, u8>,
    pub providers: Vec<String>,
    /// [`Message::content_sha256`] of the text this verdict was made on.
    pub text_sha256: String,
}

/// `safety.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SafetyDoc {
    pub run_id: String,
    pub policy_version: String,
    pub verdicts: Vec<Verdict>,
    pub approved: u64,
    pub blocked: u64,
    /// Key of this run's audit object.
    pub audit_key: String,
}

impl SafetyDoc {
    /// The decision safety made on exactly these bytes of `variant_id`'s message. A message with no verdict,
    /// or whose current text is not the text the verdict was made on, is an [`Unscreened`] error: the caller
    /// fails its step (`Cpo.SafetyUnavailable`) rather than ship, show or silently drop text nobody screened.
    pub fn decision_for(&self, variant_id: &str, message: &Message) -> Result<Decision, Unscreened> {
        let verdict = self.verdicts.iter().find(|v| v.variant_id == variant_id).ok_or_else(|| Unscreened {
            run_id: self.run_id.clone(),
            variant_id: variant_id.to_string(),
            reason: "safety.json has no verdict for it".into(),
        })?;
        let current = message.content_sha256();
        if verdict.text_sha256 != current {
            return Err(Unscreened {
                run_id: self.run_id.clone(),
                variant_id: variant_id.to_string(),
                reason: format!(
                    "its text changed after screening (sha256 {} now, {} screened)",
                    short(&current),
                    short(&verdict.text_sha256)
                ),
            });
        }
        Ok(verdict.decision)
    }

    /// `true` only when [`SafetyDoc::decision_for`] is `Approved`.
    pub fn approves(&self, variant_id: &str, message: &Message) -> Result<bool, Unscreened> {
        Ok(self.decision_for(variant_id, message)? == Decision::Approved)
    }
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// A message that would ship (or be shown) without a verdict on its exact bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("run {run_id}: variant {variant_id:?} was not screened as it is now: {reason}; re-run the safety step")]
pub struct Unscreened {
    pub run_id: String,
    pub variant_id: String,
    pub reason: String,
}

impl From<Unscreened> for crate::StepError {
    fn from(e: Unscreened) -> Self {
        crate::StepError::safety_unavailable(e.to_string())
    }
}

/// Harm categories, spelled as Azure AI Content Safety names them. Providers map their answers to these
/// BY NAME (the old system mapped by position and mislabelled them).
pub const CATEGORIES: [&str; 4] = ["Hate", "SelfHarm", "Sexual", "Violence"];

/// Label of the PII guard's findings in evaluations (not a provider category).
pub const PII: &str = "PII";

/// One provider's answer for one screened text, as recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderScreening {
    pub provider: String,
    /// Model or API version that answered (e.g. `2024-09-01`, `omni-moderation-latest`, `lexicon-v1`).
    pub model: String,
    /// Severity per category on Azure's scale (0/2/4/6, or 0–7 with eight levels); empty when `error` is set.
    #[serde(default)]
    pub severities: BTreeMap<String, u8>,
    /// Provider-side blocklist matches (Azure `blocklistsMatch`), as `<blocklist>:<item>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocklist_hits: Vec<String>,
    /// Why this provider gave no usable answer (timeout, HTTP status, unparseable body, missing category).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The answer came from `cache/llm/` (same provider, model, options and text screened before).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

/// One screening line of an audit chain object (`audit/safety/chain/<seq>.jsonl`). Holds hashes, scores and decisions only:
/// never the screened text, a customer id or any PII found in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the run's trail, from 0.
    pub seq: u64,
    pub time: chrono::DateTime<chrono::Utc>,
    pub run_id: String,
    pub variant_id: String,
    #[serde(default)]
    pub segment: Option<String>,
    #[serde(default)]
    pub tone: Option<String>,
    /// [`Message::content_sha256`] of the screened message.
    pub text_sha256: String,
    pub providers: Vec<ProviderScreening>,
    /// Highest severity per category over all providers.
    pub severities: BTreeMap<String, u8>,
    pub policy_version: String,
    pub policy_sha256: String,
    pub decision: Decision,
    pub reasons: Vec<String>,
    /// First record only: the audit object this run's chain continues (`None` for the very first trail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_key: Option<String>,
    /// Hash of the previous record (64 zeros for the first record of the first trail).
    pub prev_hash: String,
    /// SHA-256 of this record's canonical JSON without `hash`.
    pub hash: String,
}

/// The last line of a safety step's audit object: what the step published, bound into the chain, so that an
/// edited `safety.json`, a verdict swapped for another text or a changed count in the step record no longer
/// matches the chain (`cpo audit verify`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepAttestation {
    /// Position in the object (after the screening records).
    pub seq: u64,
    pub time: chrono::DateTime<chrono::Utc>,
    pub run_id: String,
    /// Always `safety`.
    pub step: String,
    /// Canonical-JSON SHA-256 of `safety.json` with `audit_key` empty (the key is only known once the chain
    /// position is won).
    pub safety_sha256: String,
    /// Canonical-JSON SHA-256 of the verdicts' `[variant_id, decision, text_sha256]` triples, in order.
    pub verdicts_sha256: String,
    /// Every verdict's text hash, by variant.
    pub text_sha256: BTreeMap<String, String>,
    pub approved: u64,
    pub blocked: u64,
    /// Screening records before this line.
    pub records: u64,
    pub prev_hash: String,
    pub hash: String,
}

/// One line of an audit object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuditLine {
    /// Tried first: only an attestation has `safety_sha256`.
    Attestation(StepAttestation),
    Screening(AuditRecord),
}

impl SafetyDoc {
    /// What [`StepAttestation::safety_sha256`] covers: the document with `audit_key` empty.
    pub fn attested_sha256(&self) -> String {
        let mut doc = self.clone();
        doc.audit_key.clear();
        crate::canonical::sha256_of(&doc)
    }

    /// What [`StepAttestation::verdicts_sha256`] covers.
    pub fn verdicts_sha256(&self) -> String {
        let triples: Vec<(&str, Decision, &str)> =
            self.verdicts.iter().map(|v| (v.variant_id.as_str(), v.decision, v.text_sha256.as_str())).collect();
        crate::canonical::sha256_of(&triples)
    }
}

//! Produced by `safety`: a verdict per variant and for the control. Fail-closed: only `approved` ships.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    pub fn is_approved(&self, variant_id: &str) -> bool {
        self.verdicts.iter().any(|v| v.variant_id == variant_id && v.decision == Decision::Approved)
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

/// One line of `audit/safety/<yyyy>/<mm>/<dd>/<run_id>.jsonl`. Holds hashes, scores and decisions only:
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
    /// SHA-256 of the screened text (all fields joined as screened).
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

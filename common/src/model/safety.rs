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

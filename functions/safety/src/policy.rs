//! The safety policy (`policy/safety.yaml` in the store, else the bundled `examples/policy/safety.yaml`):
//! thresholds, blocklist, required disclaimers, PII allowances and provider options. Versioned: every audit
//! record names the policy version and the SHA-256 of the exact text that decided it.

use std::collections::BTreeMap;

use cpo_common::keys::{self, sha256_hex, Key};
use cpo_common::model::safety::CATEGORIES;
use cpo_common::store::{Store, StoreExt};
use cpo_common::{bundled, StepError};
use regex::Regex;
use serde::Deserialize;

/// Default block threshold: severity ≥ 4 (Azure "medium").
pub const DEFAULT_THRESHOLD: u8 = 4;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: String,
    #[serde(default)]
    thresholds: BTreeMap<String, u8>,
    #[serde(default)]
    blocklist: Vec<String>,
    #[serde(default)]
    required_disclaimers: Vec<DisclaimerFile>,
    #[serde(default)]
    pii: PiiFile,
    #[serde(default)]
    allowed_tokens: Vec<String>,
    #[serde(default)]
    azure: AzureOptions,
    #[serde(default)]
    openai: OpenAiOptions,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisclaimerFile {
    id: String,
    #[serde(default)]
    when: Option<String>,
    text: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PiiFile {
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AzureOptions {
    pub blocklist_names: Vec<String>,
    pub output_type: String,
}

impl Default for AzureOptions {
    fn default() -> Self {
        Self { blocklist_names: Vec::new(), output_type: "FourSeverityLevels".into() }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiOptions {
    pub model: String,
}

impl Default for OpenAiOptions {
    fn default() -> Self {
        Self { model: "omni-moderation-latest".into() }
    }
}

/// A phrase a message must carry (only when `when` matches, if given).
#[derive(Debug, Clone)]
pub struct Disclaimer {
    pub id: String,
    pub when: Option<Regex>,
    pub text: String,
}

/// A parsed, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub version: String,
    /// SHA-256 of the policy text.
    pub sha256: String,
    /// Where it came from (`policy/safety.yaml` or `bundled:examples/policy/safety.yaml`).
    pub source: String,
    /// Block threshold per category in [`CATEGORIES`].
    pub thresholds: BTreeMap<String, u8>,
    pub blocklist: Vec<(String, Regex)>,
    pub disclaimers: Vec<Disclaimer>,
    /// Lower-cased contact details the PII guard lets through.
    pub pii_allow: Vec<String>,
    pub allowed_tokens: Vec<String>,
    pub azure: AzureOptions,
    pub openai: OpenAiOptions,
}

impl Policy {
    /// Parse policy YAML; `source` names the file in errors.
    pub fn from_yaml(text: &str, source: &str) -> Result<Self, StepError> {
        let f: PolicyFile = serde_yaml_ng::from_str(text).map_err(|e| StepError::input(format!("{source}: {e}")))?;
        let bad = |field: &str, why: String| StepError::input(format!("{source}: field `{field}`: {why}"));
        if f.version.trim().is_empty() {
            return Err(bad("version", "must not be empty".into()));
        }
        for (cat, t) in &f.thresholds {
            if !CATEGORIES.contains(&cat.as_str()) {
                return Err(bad("thresholds", format!("unknown category {cat:?} (expected one of {CATEGORIES:?})")));
            }
            if !(1..=7).contains(t) {
                return Err(bad(&format!("thresholds.{cat}"), format!("{t} must be between 1 and 7")));
            }
        }
        let thresholds =
            CATEGORIES.iter().map(|c| (c.to_string(), f.thresholds.get(*c).copied().unwrap_or(DEFAULT_THRESHOLD)));
        let mut blocklist = Vec::new();
        for (i, term) in f.blocklist.iter().enumerate() {
            let term = term.trim();
            if term.is_empty() {
                return Err(bad(&format!("blocklist[{i}]"), "empty term".into()));
            }
            let words: Vec<String> = term.split_whitespace().map(regex::escape).collect();
            let re = Regex::new(&format!(r"(?i)(?:^|\W){}(?:$|\W)", words.join(r"\s+")))
                .map_err(|e| bad(&format!("blocklist[{i}]"), e.to_string()))?;
            blocklist.push((term.to_string(), re));
        }
        let mut disclaimers = Vec::new();
        for (i, d) in f.required_disclaimers.into_iter().enumerate() {
            let when = match &d.when {
                Some(w) => Some(
                    Regex::new(&format!("(?i){w}"))
                        .map_err(|e| bad(&format!("required_disclaimers[{i}].when"), e.to_string()))?,
                ),
                None => None,
            };
            if d.text.trim().is_empty() {
                return Err(bad(&format!("required_disclaimers[{i}].text"), "empty".into()));
            }
            disclaimers.push(Disclaimer { id: d.id, when, text: d.text });
        }
        match f.azure.output_type.as_str() {
            "FourSeverityLevels" | "EightSeverityLevels" => {}
            other => {
                return Err(bad(
                    "azure.output_type",
                    format!("{other:?} (expected FourSeverityLevels or EightSeverityLevels)"),
                ))
            }
        }
        Ok(Self {
            version: f.version,
            sha256: sha256_hex(text.as_bytes()),
            source: source.to_string(),
            thresholds: thresholds.collect(),
            blocklist,
            disclaimers,
            pii_allow: f.pii.allow.iter().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect(),
            allowed_tokens: f.allowed_tokens,
            azure: f.azure,
            openai: f.openai,
        })
    }

    /// The bundled default policy.
    pub fn bundled() -> Result<Self, StepError> {
        let text = bundled::policy_yaml()
            .ok_or_else(|| StepError::internal("the bundled examples/policy/safety.yaml is missing"))?;
        Self::from_yaml(text, "bundled:examples/policy/safety.yaml")
    }

    /// The policy at `key` in the store; when the store has none at the default key, the bundled one.
    pub async fn load(store: &dyn Store, key: &str) -> Result<Self, StepError> {
        let key = Key::new(key).map_err(|e| StepError::input(format!("campaign field `safety.policy`: {e}")))?;
        match store.get_opt(&key).await? {
            Some(bytes) => {
                let text = std::str::from_utf8(&bytes).map_err(|_| StepError::input(format!("{key}: not UTF-8")))?;
                Self::from_yaml(text, key.as_str())
            }
            None if key == keys::policy() => {
                tracing::info!("no {key} in the store; using the bundled safety policy");
                Self::bundled()
            }
            None => Err(StepError::input(format!(
                "campaign field `safety.policy` names {key}, which is not in {}",
                store.url()
            ))),
        }
    }

    pub fn threshold(&self, category: &str) -> u8 {
        self.thresholds.get(category).copied().unwrap_or(DEFAULT_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_policy_parses_with_default_thresholds() {
        let p = Policy::bundled().unwrap();
        for c in CATEGORIES {
            assert_eq!(p.threshold(c), 4);
        }
        assert!(!p.version.is_empty());
        assert!(p.blocklist.iter().any(|(t, _)| t == "miracle cure"));
    }

    #[test]
    fn bad_fields_are_named() {
        let e = Policy::from_yaml("version: '1'\nthresholds: {Hate: 9}\n", "p.yaml").unwrap_err();
        assert!(e.message.contains("p.yaml") && e.message.contains("thresholds.Hate"), "{e}");
        let e = Policy::from_yaml("version: '1'\nthresholds: {Spam: 4}\n", "p.yaml").unwrap_err();
        assert!(e.message.contains("Spam"), "{e}");
        let e = Policy::from_yaml("version: '1'\nblocklst: []\n", "p.yaml").unwrap_err();
        assert!(e.message.contains("blocklst"), "{e}");
        let e = Policy::from_yaml("thresholds: {}\n", "p.yaml").unwrap_err();
        assert!(e.message.contains("version"), "{e}");
    }

    #[test]
    fn blocklist_matches_whole_words_only() {
        let p = Policy::from_yaml("version: '1'\nblocklist: ['final notice']\n", "p").unwrap();
        let re = &p.blocklist[0].1;
        assert!(re.is_match("This is your FINAL  notice!"));
        assert!(!re.is_match("our finalnotice sale"));
    }
}

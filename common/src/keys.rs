//! Storage keys: validation (keys are untrusted input) and the run layout (docs/architecture.md, "Keys and the run
//! layout"), written once here so no step spells a key by hand.

use std::fmt;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

/// A key or id that may not be used: the key as given and why. Keys are untrusted input (event keys, file
/// names), so this is an input error wherever it surfaces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid storage key {key:?}: {reason}")]
pub struct KeyError {
    pub key: String,
    pub reason: String,
}

/// Longest key accepted (S3's limit is 1024 bytes).
pub const MAX_KEY_BYTES: usize = 1024;

/// A validated, relative, `/`-separated key: no `..` or `.` segments, no leading `/`, no backslash,
/// no control characters, no empty segments, at most 1024 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Key(String);

impl Key {
    pub fn new(key: impl Into<String>) -> Result<Self, KeyError> {
        let key = key.into();
        let bad = |reason: &str| KeyError { key: key.clone(), reason: reason.to_string() };
        if key.is_empty() {
            return Err(bad("empty"));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(bad("longer than 1024 bytes"));
        }
        if key.starts_with('/') {
            return Err(bad("absolute path"));
        }
        if key.contains('\\') {
            return Err(bad("backslash"));
        }
        if key.chars().any(|c| c.is_control()) {
            return Err(bad("control character"));
        }
        let body = key.strip_suffix('/').unwrap_or(&key);
        if body.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(bad("empty, '.' or '..' path segment"));
        }
        if body.split('/').any(is_upload_temporary) {
            return Err(bad("a segment ends in #<digits>, the name of a file:// store's unfinished upload"));
        }
        Ok(Key(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `self` joined with a relative part (validated again).
    pub fn join(&self, rest: &str) -> Result<Key, KeyError> {
        Key::new(format!("{}/{}", self.0.trim_end_matches('/'), rest))
    }

    /// The last path segment.
    pub fn file_name(&self) -> &str {
        self.0.trim_end_matches('/').rsplit('/').next().unwrap_or(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Key::new(s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whether a path segment is named like the temporary a `file://` store writes before renaming it into place
/// (`customers.csv#1`: object_store's `LocalFileSystem` stages every upload as `<name>#<n>`). A killed writer
/// leaves one behind; such a name is never a key, so it is never listed, read or taken for an input.
pub fn is_upload_temporary(segment: &str) -> bool {
    matches!(segment.rsplit_once('#'), Some((_, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Build a key from parts that are known to be valid (constants and validated ids).
fn k(s: String) -> Key {
    // Every caller below joins validated ids with constant segments; a failure here is a programming error,
    // and `Key::new` is still applied so nothing unvalidated reaches a backend.
    Key::new(s.clone()).unwrap_or_else(|e| panic!("internal key layout produced invalid key {s:?}: {e}"))
}

/// A `run_id`, `campaign` or segment slug must be `[A-Za-z0-9_-]`, 1..=64 chars (they become key segments
/// and Step Functions execution names).
pub fn check_id(what: &str, id: &str) -> Result<(), KeyError> {
    let ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(KeyError { key: id.to_string(), reason: format!("{what} must be 1-64 characters of [A-Za-z0-9_-]") })
    }
}

/// Segment names ("Can't Lose") become key-safe slugs ("cant-lose").
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if (c == ' ' || c == '-' || c == '_') && !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let s = out.trim_end_matches('-').to_string();
    if s.is_empty() {
        "segment".to_string()
    } else {
        s.chars().take(48).collect()
    }
}

/// Keys of one run (`runs/<run_id>/…`).
#[derive(Debug, Clone)]
pub struct RunKeys {
    run_id: String,
}

impl RunKeys {
    pub fn new(run_id: &str) -> Result<Self, KeyError> {
        check_id("run_id", run_id)?;
        Ok(Self { run_id: run_id.to_string() })
    }
    pub fn run_id(&self) -> &str {
        &self.run_id
    }
    fn at(&self, rest: &str) -> Key {
        k(format!("runs/{}/{}", self.run_id, rest))
    }
    pub fn prefix(&self) -> Key {
        k(format!("runs/{}/", self.run_id))
    }
    pub fn input(&self) -> Key {
        self.at("input.json")
    }
    pub fn step(&self, step: &str) -> Key {
        self.at(&format!("steps/{}.json", slug(step)))
    }
    pub fn steps_prefix(&self) -> Key {
        self.at("steps/")
    }
    pub fn members(&self, part: usize) -> Key {
        self.at(&format!("customers/members-{part:05}.jsonl"))
    }
    pub fn members_prefix(&self) -> Key {
        self.at("customers/")
    }
    pub fn rejected(&self) -> Key {
        self.at("customers/rejected.jsonl")
    }
    pub fn segments(&self) -> Key {
        self.at("segments.json")
    }
    pub fn retrieval(&self) -> Key {
        self.at("retrieval.json")
    }
    pub fn variants(&self, segment: &str) -> Key {
        self.at(&format!("variants/{}.json", slug(segment)))
    }
    pub fn variants_prefix(&self) -> Key {
        self.at("variants/")
    }
    pub fn safety(&self) -> Key {
        self.at("safety.json")
    }
    pub fn assignments(&self, part: usize) -> Key {
        self.at(&format!("assignments/part-{part:05}.jsonl"))
    }
    pub fn assignments_prefix(&self) -> Key {
        self.at("assignments/")
    }
    pub fn send(&self, part: usize) -> Key {
        self.at(&format!("send/part-{part:05}.csv"))
    }
    pub fn templates(&self) -> Key {
        self.at("send/templates.json")
    }
    pub fn outcomes_prefix(&self) -> Key {
        self.at("outcomes/")
    }
    /// A file name under `outcomes/` (validated: a single segment).
    pub fn outcomes(&self, file: &str) -> Result<Key, KeyError> {
        if file.contains('/') {
            return Err(KeyError { key: file.to_string(), reason: "outcomes file name has '/'".into() });
        }
        Key::new(format!("runs/{}/outcomes/{}", self.run_id, file))
    }
    /// Other objects of the ingest step (`ingest/<file>`).
    pub fn ingest(&self, file: &str) -> Key {
        self.at(&format!("ingest/{file}"))
    }
    /// Every valid outcomes drop, by content: `ingest/files/<sha256>.<ext>`.
    pub fn ingest_files_prefix(&self) -> Key {
        self.at("ingest/files/")
    }
    pub fn ingest_file(&self, sha256: &str, ext: &str) -> Key {
        self.at(&format!("ingest/files/{sha256}.{ext}"))
    }
    /// What ingest recorded about an accepted file (its drop, counts, whether it is simulated).
    pub fn ingest_accepted(&self, sha256: &str) -> Key {
        self.at(&format!("ingest/accepted/{sha256}.json"))
    }
    pub fn ingest_accepted_prefix(&self) -> Key {
        self.at("ingest/accepted/")
    }
    /// A refused drop's reason (the drop itself stays under `outcomes/`).
    pub fn ingest_refused(&self, sha256: &str) -> Key {
        self.at(&format!("ingest/refused/{sha256}.json"))
    }
    pub fn ingest_refused_prefix(&self) -> Key {
        self.at("ingest/refused/")
    }
    pub fn ingest_rejected(&self) -> Key {
        self.at("ingest/rejected.jsonl")
    }
    /// Who this run left out before assignment and why (`suppressed/part-NNNNN.jsonl`, aligned with the
    /// members parts; PII scope, like members).
    pub fn suppressed(&self, part: usize) -> Key {
        self.at(&format!("suppressed/part-{part:05}.jsonl"))
    }
    pub fn suppressed_prefix(&self) -> Key {
        self.at("suppressed/")
    }
    /// The run's copy of an input from outside the run (suppression set, contact history), made the first time
    /// assign runs and read from there ever after (docs/architecture.md §2).
    pub fn snapshot(&self, name: &str) -> Key {
        self.at(&format!("inputs/{}", slug(name)))
    }
    pub fn analysis(&self) -> Key {
        self.at("analysis.json")
    }
    pub fn report(&self, file: &str) -> Key {
        self.at(&format!("report/{file}"))
    }
    pub fn manifest(&self) -> Key {
        self.at("manifest.json")
    }
}

/// The safety audit chain: one append-only object per safety step run, `audit/safety/chain/<seq>.jsonl`
/// (12-digit zero-padded, so key order is chain order). An object is created only when absent, which is
/// how concurrent runs take turns without forking the chain.
pub fn audit_chain(seq: u64) -> Key {
    k(format!("audit/safety/chain/{seq:012}.jsonl"))
}

pub fn audit_chain_prefix() -> Key {
    k("audit/safety/chain/".to_string())
}

/// The position of a chain object from its key (`None` for any other key).
pub fn audit_chain_seq(key: &str) -> Option<u64> {
    let name = key.strip_prefix("audit/safety/chain/")?.strip_suffix(".jsonl")?;
    (name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit())).then(|| name.parse().ok()).flatten()
}

pub fn audit_prefix() -> Key {
    k("audit/safety/".to_string())
}
pub fn campaign(name: &str) -> Result<Key, KeyError> {
    check_id("campaign", name)?;
    Key::new(format!("campaigns/{name}.yaml"))
}
pub fn content_prefix() -> Key {
    k("content/approved/".to_string())
}
pub fn policy() -> Key {
    k("policy/safety.yaml".to_string())
}
pub fn prompt(name: &str) -> Result<Key, KeyError> {
    Key::new(format!("prompts/{name}.j2"))
}
pub fn incoming_prefix(campaign: &str) -> Result<Key, KeyError> {
    check_id("campaign", campaign)?;
    Key::new(format!("incoming/{campaign}/"))
}
/// Operator do-not-contact lists (`suppression/<file>.csv`) and derived entries (`suppression/derived/`).
pub fn suppression_prefix() -> Key {
    k("suppression/".to_string())
}
pub fn suppression_derived_prefix() -> Key {
    k("suppression/derived/".to_string())
}
/// The keyed hashes of the customers who unsubscribed, complained or bounced in one run.
pub fn suppression_derived(run_id: &str) -> Result<Key, KeyError> {
    check_id("run_id", run_id)?;
    Key::new(format!("suppression/derived/{run_id}.jsonl"))
}
/// The store's random key of customer hashes (created once; survives run expiry and erasure).
pub fn customer_hash_key() -> Key {
    k("suppression/key/customer-hash.json".to_string())
}
/// Who one run sent to (keyed hashes), by the run's date: what the contact policy counts.
pub fn contacts(date: NaiveDate, run_id: &str) -> Result<Key, KeyError> {
    check_id("run_id", run_id)?;
    Key::new(format!("contacts/{}/{run_id}.bin", date.format("%Y-%m-%d")))
}
pub fn contacts_day_prefix(date: NaiveDate) -> Key {
    k(format!("contacts/{}/", date.format("%Y-%m-%d")))
}
/// One entry per run of a campaign (append-only).
pub fn ledger_prefix(campaign: &str) -> Result<Key, KeyError> {
    check_id("campaign", campaign)?;
    Key::new(format!("campaigns/{campaign}/ledger/"))
}
/// The campaign across weeks (`report.json` from the analysis, `index.html` rendered from it).
pub fn campaign_report(campaign: &str, file: &str) -> Result<Key, KeyError> {
    check_id("campaign", campaign)?;
    Key::new(format!("campaigns/{campaign}/report/{file}"))
}
pub fn llm_cache(hash_hex: &str) -> Key {
    k(format!("cache/llm/{hash_hex}.json"))
}

/// What determines a run: equal parts give an equal `run_id` (docs/architecture.md, "Run identity").
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunIdParts<'a> {
    pub campaign: &'a str,
    pub date: NaiveDate,
    /// Input etag (cloud) or content SHA-256 (local file).
    pub input_version: &'a str,
    pub config_digest: &'a str,
    pub corpus_digest: &'a str,
    pub policy_digest: &'a str,
    pub prompt_digest: &'a str,
    /// Provider names and models, never keys.
    pub providers: &'a str,
    pub seed: u64,
}

/// `<campaign, ≤ 40 chars>-<yyyymmdd>-<12 hex>`.
pub fn run_id(p: &RunIdParts<'_>) -> String {
    let mut h = Sha256::new();
    for part in [
        p.input_version,
        p.config_digest,
        p.corpus_digest,
        p.policy_digest,
        p.prompt_digest,
        p.providers,
        &p.seed.to_string(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let hex = hex::encode(h.finalize());
    let name: String =
        p.campaign.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(40).collect();
    let name = if name.is_empty() { "campaign".to_string() } else { name };
    format!("{}-{}-{}", name, p.date.format("%Y%m%d"), &hex[..12])
}

/// SHA-256 hex of bytes, the digest used across the system.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escaping_keys() {
        for bad in ["", "/etc/passwd", "a/../b", "..", "a//b", "a\\b", "a/\u{7}b", "./a"] {
            assert!(Key::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Key::new("x".repeat(1025)).is_err());
        assert!(Key::new("runs/a/b.json").is_ok());
        assert!(Key::new("runs/a/").is_ok());
        for temp in ["incoming/weekly/customers.csv#1", "a#b.csv#22", "runs/r#3/x", "runs/r#3/"] {
            assert!(Key::new(temp).is_err(), "{temp:?} accepted");
        }
        for ok in ["a#b.csv", "a#.csv", "a#1b", "#x"] {
            assert!(Key::new(ok).is_ok(), "{ok:?} refused");
        }
    }

    #[test]
    fn slugs_are_key_safe() {
        assert_eq!(slug("Can't Lose"), "cant-lose");
        assert_eq!(slug("Potential Loyalist"), "potential-loyalist");
        assert_eq!(slug("../../etc"), "etc");
        assert_eq!(slug("!!!"), "segment");
    }

    #[test]
    fn run_id_shape_and_determinism() {
        let p = RunIdParts {
            campaign: "weekly",
            date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            input_version: "abc",
            config_digest: "c",
            corpus_digest: "d",
            policy_digest: "p",
            prompt_digest: "q",
            providers: "offline",
            seed: 7,
        };
        let a = run_id(&p);
        assert!(a.starts_with("weekly-20261125-"));
        assert_eq!(a.len(), "weekly-20261125-".len() + 12);
        assert_eq!(a, run_id(&p));
        let b = run_id(&RunIdParts { seed: 8, ..p.clone() });
        assert_ne!(a, b);
        check_id("run_id", &a).unwrap();
    }
}

//! The tamper-evident audit trail: one append-only chain of objects, `audit/safety/chain/<seq>.jsonl`, one per
//! safety step run. Each object holds the step's screening records and, last, a [`StepAttestation`] of what the
//! step published (`safety.json`'s hash, every verdict's text hash, the counts); every line holds the SHA-256
//! of the line before it, and an object's first line links to the last line of the object before it.
//!
//! The chain advances only by creating the next sequence number with `put_if_absent`: two concurrent runs
//! cannot both take the same position, so the loser re-links to the winner and tries the next one. The chain
//! never forks, whatever the backend (the `Store` has no compare-and-swap, and `put_if_absent` is the one
//! conditional write every backend supports).
//!
//! What the chain cannot detect is a full rewrite by someone with write access to the whole `audit/` prefix
//! and the run's objects (they can re-hash everything); in the cloud, S3 Object Lock on `audit/` closes that
//! gap. See docs/architecture.md, "Integrity".

use std::time::Duration;

use bytes::Bytes;
use cpo_common::canonical;
use cpo_common::keys::{self, Key, RunKeys};
use cpo_common::model::safety::{AuditLine, AuditRecord, SafetyDoc, StepAttestation};
use cpo_common::step::StepRecord;
use cpo_common::store::{PutOutcome, Store, StoreError, StoreExt};
use serde_json::Value;

/// `prev_hash` of the first line of the first object of a store's chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Names of the counts in the safety step's output (`steps/safety.json`).
pub const COUNT_RECORDS: &str = "audit_records";
pub const COUNT_LAST_HASH: &str = "audit_last_hash";
/// How many times a step re-links and retries when another run took the chain position first.
const APPEND_ATTEMPTS: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] cpo_common::keys::KeyError),
    #[error("{key} line {line}: {reason}")]
    Corrupt { key: String, line: usize, reason: String },
    #[error("run {run_id}: {reason}")]
    Missing { run_id: String, reason: String },
    #[error("audit chain: could not append after {0} attempts (other runs kept taking the next position)")]
    Contended(u32),
}

/// SHA-256 of a line's canonical JSON without its `hash` field.
pub fn hash_value(v: &Value) -> String {
    let mut v = v.clone();
    if let Value::Object(map) = &mut v {
        map.remove("hash");
    }
    canonical::sha256_value(&v)
}

fn hash_of<T: serde::Serialize>(line: &T) -> Result<String, serde_json::Error> {
    Ok(hash_value(&serde_json::to_value(line)?))
}

/// Number the records and the attestation, link them to `prev` (`(key, last hash)` of the object before, or
/// the genesis) and to each other, and hash them.
pub fn chain(
    mut records: Vec<AuditRecord>,
    mut attestation: StepAttestation,
    prev: Option<(String, String)>,
) -> Result<Vec<AuditLine>, serde_json::Error> {
    let (prev_key, mut prev_hash) = match prev {
        Some((k, h)) => (Some(k), h),
        None => (None, GENESIS.to_string()),
    };
    for (i, r) in records.iter_mut().enumerate() {
        r.seq = i as u64;
        r.prev_key = if i == 0 { prev_key.clone() } else { None };
        r.prev_hash = prev_hash.clone();
        r.hash = hash_of(r)?;
        prev_hash = r.hash.clone();
    }
    attestation.seq = records.len() as u64;
    attestation.records = records.len() as u64;
    attestation.prev_hash = prev_hash;
    attestation.hash = hash_of(&attestation)?;
    let mut lines: Vec<AuditLine> = records.into_iter().map(AuditLine::Screening).collect();
    lines.push(AuditLine::Attestation(attestation));
    Ok(lines)
}

pub fn to_jsonl(lines: &[AuditLine]) -> Result<Bytes, serde_json::Error> {
    let mut out = Vec::new();
    for l in lines {
        serde_json::to_writer(&mut out, l)?;
        out.push(b'\n');
    }
    Ok(Bytes::from(out))
}

/// Non-empty lines of an object, with their 1-based line numbers.
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    body.split(|b| *b == b'\n').enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim_ascii().is_empty())
}

/// The hash of the last line of the object at `key`.
pub async fn last_hash(store: &dyn Store, key: &Key) -> Result<Option<String>, AuditError> {
    let Some(body) = store.get_opt(key).await? else { return Ok(None) };
    let Some((line, text)) = lines(&body).last() else { return Ok(None) };
    let v: Value = serde_json::from_slice(text).map_err(|e| AuditError::Corrupt {
        key: key.to_string(),
        line,
        reason: format!("not JSON: {e}"),
    })?;
    match v.get("hash").and_then(Value::as_str) {
        Some(h) => Ok(Some(h.to_string())),
        None => Err(AuditError::Corrupt { key: key.to_string(), line, reason: "no `hash` field".into() }),
    }
}

/// The newest object of the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub seq: u64,
    pub key: String,
    pub last_hash: String,
}

/// Chain objects in chain order, as (sequence number, key).
async fn chain_objects(store: &dyn Store) -> Result<Vec<(u64, String)>, AuditError> {
    let mut out: Vec<(u64, String)> = store
        .list(&keys::audit_chain_prefix())
        .await?
        .into_iter()
        .filter_map(|o| keys::audit_chain_seq(&o.key).map(|s| (s, o.key)))
        .collect();
    out.sort();
    Ok(out)
}

/// Where the next object links: the newest object and its last hash (`None` for an empty chain).
pub async fn head(store: &dyn Store) -> Result<Option<Head>, AuditError> {
    let Some((seq, key)) = chain_objects(store).await?.pop() else { return Ok(None) };
    let k = Key::new(key.clone())?;
    let last_hash = last_hash(store, &k).await?.ok_or_else(|| AuditError::Corrupt {
        key: key.clone(),
        line: 0,
        reason: "empty audit object".into(),
    })?;
    Ok(Some(Head { seq, key, last_hash }))
}

/// What [`append`] wrote.
#[derive(Debug, Clone)]
pub struct Appended {
    pub key: Key,
    pub lines: Vec<AuditLine>,
}

impl Appended {
    pub fn last_hash(&self) -> String {
        match self.lines.last() {
            Some(AuditLine::Attestation(a)) => a.hash.clone(),
            Some(AuditLine::Screening(r)) => r.hash.clone(),
            None => String::new(),
        }
    }
}

/// Append one safety step's records and attestation as the next object of the chain: link to the head, try
/// to create the next position, and on losing it to a concurrent run, re-link to the new head and try again.
pub async fn append(
    store: &dyn Store,
    records: Vec<AuditRecord>,
    attestation: StepAttestation,
) -> Result<Appended, AuditError> {
    let corrupt = |e: serde_json::Error| AuditError::Corrupt { key: "audit".into(), line: 0, reason: e.to_string() };
    for attempt in 0..APPEND_ATTEMPTS {
        let head = head(store).await?;
        let seq = head.as_ref().map_or(0, |h| h.seq + 1);
        let key = keys::audit_chain(seq);
        let lines = chain(records.clone(), attestation.clone(), head.map(|h| (h.key, h.last_hash))).map_err(corrupt)?;
        match store.put_if_absent(&key, to_jsonl(&lines).map_err(corrupt)?).await? {
            PutOutcome::Created => return Ok(Appended { key, lines }),
            PutOutcome::AlreadyExists => {
                tracing::debug!(seq, attempt, "audit chain position taken by another run; re-linking");
                // Spread the retries of concurrent losers a little (the time's low bits are jitter enough).
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                let jitter = u64::from(now.map_or(0, |d| d.subsec_nanos()) % 7);
                tokio::time::sleep(Duration::from_millis(2 + jitter + u64::from(attempt.min(20)))).await;
            }
        }
    }
    Err(AuditError::Contended(APPEND_ATTEMPTS))
}

/// An object's lines.
pub async fn read(store: &dyn Store, key: &Key) -> Result<Option<Vec<AuditLine>>, AuditError> {
    let Some(body) = store.get_opt(key).await? else { return Ok(None) };
    let mut out = Vec::new();
    for (line, text) in lines(&body) {
        out.push(serde_json::from_slice(text).map_err(|e| AuditError::Corrupt {
            key: key.to_string(),
            line,
            reason: e.to_string(),
        })?);
    }
    Ok(Some(out))
}

/// The screening records of an object (its attestation left out).
pub fn screenings(lines: &[AuditLine]) -> Vec<&AuditRecord> {
    lines
        .iter()
        .filter_map(|l| match l {
            AuditLine::Screening(r) => Some(r),
            AuditLine::Attestation(_) => None,
        })
        .collect()
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VerifyReport {
    pub run_id: String,
    pub key: String,
    pub records: usize,
    pub last_hash: Option<String>,
    /// Every inconsistency, each naming the line; empty when the trail is intact.
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One object's lines checked on their own: each line's hash, the links between lines and the sequence
/// numbers. Returns the parsed lines, the first line's `prev_key` and `prev_hash`, and the last hash.
struct ObjectCheck {
    lines: Vec<AuditLine>,
    first_link: Option<(Option<String>, String)>,
    last_hash: Option<String>,
    count: usize,
}

fn check_object(key: &Key, body: &[u8], run_id: Option<&str>, problems: &mut Vec<String>) -> ObjectCheck {
    let mut out = ObjectCheck { lines: Vec::new(), first_link: None, last_hash: None, count: 0 };
    let mut prev_hash: Option<String> = None;
    let mut saw_attestation = false;
    for (line, text) in lines(body) {
        let at = |what: String| format!("{key} line {line}: {what}");
        out.count += 1;
        let v: Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(at(format!("not JSON ({e})")));
                prev_hash = None;
                continue;
            }
        };
        let stated = v.get("hash").and_then(Value::as_str).unwrap_or_default().to_string();
        if stated != hash_value(&v) {
            problems.push(at("record was altered (its hash does not match its content)".into()));
        }
        if v.get("seq").and_then(Value::as_u64) != Some(out.count as u64 - 1) {
            problems.push(at(format!("sequence number is not {} (records removed or reordered)", out.count - 1)));
        }
        if let Some(run_id) = run_id {
            if v.get("run_id").and_then(Value::as_str) != Some(run_id) {
                problems.push(at("record belongs to another run".into()));
            }
        }
        if saw_attestation {
            problems.push(at("a record follows the step attestation (records appended)".into()));
        }
        let link = v.get("prev_hash").and_then(Value::as_str).unwrap_or_default().to_string();
        match &prev_hash {
            Some(p) if *p != link => {
                problems.push(at("chain broken: prev_hash is not the previous record's hash".into()))
            }
            None if out.count == 1 => {
                let prev_key = v.get("prev_key").and_then(Value::as_str).map(str::to_string);
                out.first_link = Some((prev_key, link));
            }
            _ => {}
        }
        prev_hash = Some(stated.clone());
        out.last_hash = Some(stated);
        match serde_json::from_value::<AuditLine>(v) {
            Ok(l) => {
                saw_attestation |= matches!(l, AuditLine::Attestation(_));
                out.lines.push(l);
            }
            Err(e) => problems.push(at(format!("not an audit record ({e})"))),
        }
    }
    out
}

/// Where an object's first line must link: the last hash of the object before it in the chain (the genesis
/// for position 0). `None` when that object is missing.
async fn expected_link(store: &dyn Store, key: &Key) -> Result<Option<(Option<String>, String)>, AuditError> {
    let seq = keys::audit_chain_seq(key.as_str());
    match seq {
        Some(0) => Ok(Some((None, GENESIS.to_string()))),
        Some(n) => {
            let prev = keys::audit_chain(n - 1);
            Ok(last_hash(store, &prev).await?.map(|h| (Some(prev.to_string()), h)))
        }
        None => Ok(None),
    }
}

/// Check a run's safety trail: every line's hash and link, the link to the object before it, the sequence
/// numbers; the attestation against `safety.json` (its hash, every verdict's text hash) and against the count,
/// last hash and approved/blocked counts of the step record; and that every verdict matches an audited
/// decision on the same text.
pub async fn verify(store: &dyn Store, run_id: &str) -> Result<VerifyReport, AuditError> {
    let rk = RunKeys::new(run_id)?;
    let missing = |reason: String| AuditError::Missing { run_id: run_id.to_string(), reason };
    let step: StepRecord = store
        .get_json_opt(&rk.step("safety"))
        .await?
        .ok_or_else(|| missing(format!("{} not found: the safety step has not completed", rk.step("safety"))))?;
    let key =
        step.output.keys.get("audit").ok_or_else(|| missing(format!("{} names no `audit` key", rk.step("safety"))))?;
    let key = Key::new(key.clone())?;
    let count_of = |name: &str| step.output.counts.get(name).and_then(Value::as_u64);
    let expected_last = step.output.counts.get(COUNT_LAST_HASH).and_then(Value::as_str).map(str::to_string);
    let mut problems = Vec::new();
    let body = match store.get_opt(&key).await? {
        Some(b) => b,
        None => {
            problems.push(format!("{key}: audit object is missing"));
            Bytes::new()
        }
    };
    let checked = check_object(&key, &body, Some(run_id), &mut problems);
    if let Some(link) = &checked.first_link {
        if expected_link(store, &key).await?.as_ref() != Some(link) {
            problems
                .push(format!("{key} line 1: chain broken: first record does not link to the previous audit object"));
        }
    }
    match count_of(COUNT_RECORDS) {
        Some(n) if n as usize != checked.count => problems.push(format!(
            "{key}: {} record(s), but the safety step wrote {n} (records removed, added or truncated)",
            checked.count
        )),
        None => problems.push(format!("{}: no `{COUNT_RECORDS}` count", rk.step("safety"))),
        _ => {}
    }
    if expected_last.is_some() && expected_last != checked.last_hash {
        problems.push(format!(
            "{key}: last hash differs from the one the safety step recorded (trail truncated or rewritten)"
        ));
    }
    let attestation = checked.lines.iter().rev().find_map(|l| match l {
        AuditLine::Attestation(a) => Some(a),
        AuditLine::Screening(_) => None,
    });
    let records = screenings(&checked.lines);
    let Some(att) = attestation else {
        problems.push(format!("{key}: no step attestation (the object was truncated or is not a safety trail)"));
        return Ok(report(run_id, &key, &checked, problems));
    };
    if att.records as usize != records.len() {
        problems.push(format!("{key}: attestation covers {} record(s), the object has {}", att.records, records.len()));
    }
    for (name, stated) in [("approved", att.approved), ("blocked", att.blocked)] {
        if count_of(name) != Some(stated) {
            problems.push(format!(
                "{}: `{name}` count {:?} differs from the attested {stated}",
                rk.step("safety"),
                count_of(name)
            ));
        }
    }
    match store.get_json_opt::<SafetyDoc>(&rk.safety()).await? {
        None => problems.push(format!("{}: missing", rk.safety())),
        Some(doc) => {
            if doc.attested_sha256() != att.safety_sha256 {
                problems.push(format!("{}: content differs from what the safety step attested", rk.safety()));
            }
            if doc.verdicts_sha256() != att.verdicts_sha256 {
                problems.push(format!("{}: verdicts differ from the attested verdicts", rk.safety()));
            }
            if doc.audit_key != key.as_str() {
                problems.push(format!("{}: names audit object {}, the step wrote {key}", rk.safety(), doc.audit_key));
            }
            let approved = doc.verdicts.iter().filter(|v| v.decision == cpo_common::model::safety::Decision::Approved);
            if approved.count() as u64 != att.approved || doc.approved != att.approved || doc.blocked != att.blocked {
                problems.push(format!("{}: approved/blocked counts differ from the attested ones", rk.safety()));
            }
            for v in &doc.verdicts {
                let audited = records.iter().any(|r| {
                    r.variant_id == v.variant_id && r.decision == v.decision && r.text_sha256 == v.text_sha256
                });
                if !audited || att.text_sha256.get(&v.variant_id) != Some(&v.text_sha256) {
                    problems.push(format!(
                        "{}: verdict for {} has no matching audit record",
                        rk.safety(),
                        v.variant_id
                    ));
                }
            }
        }
    }
    Ok(report(run_id, &key, &checked, problems))
}

fn report(run_id: &str, key: &Key, checked: &ObjectCheck, problems: Vec<String>) -> VerifyReport {
    VerifyReport {
        run_id: run_id.to_string(),
        key: key.to_string(),
        records: checked.count,
        last_hash: checked.last_hash.clone(),
        problems,
    }
}

/// What [`verify_chain`] found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChainReport {
    pub objects: usize,
    pub records: usize,
    pub head: Option<String>,
    pub problems: Vec<String>,
}

impl ChainReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Check the whole chain across runs and days: positions from 0 without gaps, every object intact on its
/// own, and each object's first line linked to the last line of the one before.
pub async fn verify_chain(store: &dyn Store) -> Result<ChainReport, AuditError> {
    let objects = chain_objects(store).await?;
    let mut problems = Vec::new();
    let mut records = 0;
    let mut prev: Option<(String, String)> = None;
    for (i, (seq, key)) in objects.iter().enumerate() {
        if *seq != i as u64 {
            problems.push(format!("{key}: position {seq} where {i} was expected (objects removed)"));
        }
        let k = Key::new(key.clone())?;
        let body = store.get(&k).await?;
        let checked = check_object(&k, &body, None, &mut problems);
        records += checked.count;
        let expected = match &prev {
            None => (None, GENESIS.to_string()),
            Some((pk, ph)) => (Some(pk.clone()), ph.clone()),
        };
        if checked.first_link.as_ref() != Some(&expected) {
            problems.push(format!("{key} line 1: chain broken: does not link to the previous audit object"));
        }
        if !matches!(checked.lines.last(), Some(AuditLine::Attestation(_))) {
            problems.push(format!("{key}: does not end with a step attestation (truncated)"));
        }
        prev = checked.last_hash.map(|h| (key.clone(), h));
    }
    Ok(ChainReport { objects: objects.len(), records, head: prev.map(|(_, h)| h), problems })
}

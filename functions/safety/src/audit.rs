//! The tamper-evident audit trail: one JSON-lines object per run (`audit/safety/<yyyy>/<mm>/<dd>/<run_id>.jsonl`,
//! written once), each record holding the SHA-256 of the previous one. The run's first record links to the
//! newest record of the previous audit object, and the run's record count and last hash are also kept in
//! `steps/safety.json`, so [`verify`] detects an edited, removed, reordered or truncated trail.

use bytes::Bytes;
use cpo_common::keys::{self, sha256_hex, Key, RunKeys};
use cpo_common::model::safety::{AuditRecord, SafetyDoc};
use cpo_common::step::StepRecord;
use cpo_common::store::{PutOutcome, Store, StoreError, StoreExt};
use serde_json::Value;

/// `prev_hash` of the first record of the first trail in a store.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Names of the counts in the safety step's output (`steps/safety.json`).
pub const COUNT_RECORDS: &str = "audit_records";
pub const COUNT_LAST_HASH: &str = "audit_last_hash";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key} line {line}: {reason}")]
    Corrupt { key: String, line: usize, reason: String },
    #[error("run {run_id}: {reason}")]
    Missing { run_id: String, reason: String },
}

/// JSON with object keys sorted at every level and no whitespace: the form that is hashed, independent of
/// field order in the file or serde_json features.
pub fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical_json(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// SHA-256 of a record's canonical JSON without its `hash` field.
pub fn hash_value(v: &Value) -> String {
    let mut v = v.clone();
    if let Value::Object(map) = &mut v {
        map.remove("hash");
    }
    sha256_hex(canonical_json(&v).as_bytes())
}

pub fn hash_record(r: &AuditRecord) -> Result<String, serde_json::Error> {
    Ok(hash_value(&serde_json::to_value(r)?))
}

/// Fill `seq`, `prev_key` (first record), `prev_hash` and `hash` of a run's records, continuing `prev`.
pub fn chain(
    mut records: Vec<AuditRecord>,
    prev: Option<(String, String)>,
) -> Result<Vec<AuditRecord>, serde_json::Error> {
    let (prev_key, mut prev_hash) = match prev {
        Some((k, h)) => (Some(k), h),
        None => (None, GENESIS.to_string()),
    };
    for (i, r) in records.iter_mut().enumerate() {
        r.seq = i as u64;
        r.prev_key = if i == 0 { prev_key.clone() } else { None };
        r.prev_hash = prev_hash.clone();
        r.hash = hash_record(r)?;
        prev_hash = r.hash.clone();
    }
    Ok(records)
}

pub fn to_jsonl(records: &[AuditRecord]) -> Result<Bytes, serde_json::Error> {
    let mut out = Vec::new();
    for r in records {
        serde_json::to_writer(&mut out, r)?;
        out.push(b'\n');
    }
    Ok(Bytes::from(out))
}

/// Non-empty lines of a trail, with their 1-based line numbers.
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    body.split(|b| *b == b'\n').enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim_ascii().is_empty())
}

/// The hash of the last record of the object at `key`.
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

/// The newest audit object other than `own` (by write time, then key) and its last hash: where a new run's
/// chain continues.
pub async fn previous_tail(store: &dyn Store, own: &Key) -> Result<Option<(String, String)>, AuditError> {
    let mut objects: Vec<_> = store
        .list(&keys::audit_prefix())
        .await?
        .into_iter()
        .filter(|o| o.key != own.as_str() && o.key.ends_with(".jsonl"))
        .collect();
    objects.sort_by(|a, b| a.last_modified.cmp(&b.last_modified).then_with(|| a.key.cmp(&b.key)));
    for o in objects.into_iter().rev() {
        let key = Key::new(o.key.clone())?;
        if let Some(h) = last_hash(store, &key).await? {
            return Ok(Some((o.key, h)));
        }
    }
    Ok(None)
}

/// Read a trail as records (for a re-run that finds its trail already written).
pub async fn read(store: &dyn Store, key: &Key) -> Result<Option<Vec<AuditRecord>>, AuditError> {
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

/// Write a run's trail once. `AlreadyExists` means an earlier attempt of this run wrote it.
pub async fn write(store: &dyn Store, key: &Key, records: &[AuditRecord]) -> Result<PutOutcome, AuditError> {
    let body =
        to_jsonl(records).map_err(|e| AuditError::Corrupt { key: key.to_string(), line: 0, reason: e.to_string() })?;
    Ok(store.put_if_absent(key, body).await?)
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

/// Check a run's trail: every record's hash, the chain between records, the link to the previous audit
/// object, the sequence numbers, and the count and last hash the safety step recorded. Also checks that every
/// verdict in `safety.json` matches an audited decision on the same text.
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
    let expected_count = step.output.counts.get(COUNT_RECORDS).and_then(Value::as_u64);
    let expected_last = step.output.counts.get(COUNT_LAST_HASH).and_then(Value::as_str).map(str::to_string);
    let mut problems = Vec::new();
    let body = match store.get_opt(&key).await? {
        Some(b) => b,
        None => {
            problems.push(format!("{key}: audit object is missing"));
            Bytes::new()
        }
    };
    let mut prev_hash: Option<String> = None;
    let mut records: Vec<AuditRecord> = Vec::new();
    let mut count = 0usize;
    let mut last = None;
    for (line, text) in lines(&body) {
        let at = |what: String| format!("{key} line {line}: {what}");
        count += 1;
        let v: Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(at(format!("not JSON ({e})")));
                prev_hash = None;
                continue;
            }
        };
        let stated = v.get("hash").and_then(Value::as_str).unwrap_or_default().to_string();
        let actual = hash_value(&v);
        if stated != actual {
            problems.push(at("record was altered (its hash does not match its content)".into()));
        }
        if v.get("seq").and_then(Value::as_u64) != Some(count as u64 - 1) {
            problems.push(at(format!("sequence number is not {} (records removed or reordered)", count - 1)));
        }
        if v.get("run_id").and_then(Value::as_str) != Some(run_id) {
            problems.push(at("record belongs to another run".into()));
        }
        let link = v.get("prev_hash").and_then(Value::as_str).unwrap_or_default().to_string();
        match &prev_hash {
            Some(p) if *p != link => {
                problems.push(at("chain broken: prev_hash is not the previous record's hash".into()))
            }
            None if count == 1 => {
                let expected = match v.get("prev_key").and_then(Value::as_str) {
                    None => Some(GENESIS.to_string()),
                    Some(pk) => match Key::new(pk) {
                        Ok(k) => last_hash(store, &k).await.ok().flatten(),
                        Err(_) => None,
                    },
                };
                if expected.as_deref() != Some(link.as_str()) {
                    problems.push(at("chain broken: first record does not link to the previous audit object".into()));
                }
            }
            _ => {}
        }
        prev_hash = Some(stated.clone());
        last = Some(stated);
        if let Ok(r) = serde_json::from_value::<AuditRecord>(v) {
            records.push(r);
        }
    }
    match expected_count {
        Some(n) if n as usize != count => problems.push(format!(
            "{key}: {count} record(s), but the safety step wrote {n} (records removed, added or truncated)"
        )),
        None => problems.push(format!("{}: no `{COUNT_RECORDS}` count", rk.step("safety"))),
        _ => {}
    }
    if expected_last.is_some() && expected_last != last {
        problems.push(format!(
            "{key}: last hash differs from the one the safety step recorded (trail truncated or rewritten)"
        ));
    }
    if let Some(doc) = store.get_json_opt::<SafetyDoc>(&rk.safety()).await? {
        for v in &doc.verdicts {
            let audited = records
                .iter()
                .any(|r| r.variant_id == v.variant_id && r.decision == v.decision && r.text_sha256 == v.text_sha256);
            if !audited {
                problems.push(format!("{}: verdict for {} has no matching audit record", rk.safety(), v.variant_id));
            }
        }
    }
    Ok(VerifyReport { run_id: run_id.to_string(), key: key.to_string(), records: count, last_hash: last, problems })
}

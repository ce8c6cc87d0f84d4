//! From drops to files: every object under `runs/<id>/outcomes/` (what the trigger watches, and nothing but
//! drops) is read once, whole (one GET is one version), hashed, and either copied to
//! `ingest/files/<sha256>.<ext>` with a record in `ingest/accepted/<sha256>.json`, or refused with its reason in
//! `ingest/refused/<sha256>.json`. The drop itself is never changed.
//!
//! Content addressing is what keeps outcomes from being lost: a new version of a drop under the same name is
//! other content, so it is added next to the earlier one; the same content delivered again finds its record
//! and is a no-op; a refused file leaves nothing that later analyses read. A drop already handled is
//! recognised by its (key, version) in `ingest/seen/` without being read again (docs/architecture.md, 7).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use cpo_common::keys::{sha256_hex, RunKeys};
use cpo_common::model::experiment::RefusedFile;
use cpo_common::model::segment::Rejected;
use cpo_common::store::StoreExt;
use cpo_common::{ErrorKind, Key, ObjectMeta, StepError, Store};
use serde::{Deserialize, Serialize};

use crate::events::{EventRow, Rules};
use crate::outcome_rows::{self, RowSink};

/// `ingest/accepted/<sha256>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptedFile {
    pub sha256: String,
    /// `ingest/files/<sha256>.<ext>`.
    pub key: String,
    /// The drop it was first seen as.
    pub source: String,
    pub simulated: bool,
    pub rows: u64,
    pub accepted_at: DateTime<Utc>,
}

/// `ingest/seen/<sha256 of key and version>.json`: a drop version already handled, and its content hash.
#[derive(Debug, Serialize, Deserialize)]
struct Seen {
    sha256: String,
}

/// What accepting the drops found.
#[derive(Debug, Default)]
pub struct Accepted {
    pub files: Vec<AcceptedFile>,
    pub refused: Vec<RefusedFile>,
}

/// A simulated drop: what the `simulate` step writes (`outcomes/simulated-<seed>.csv`).
pub fn is_simulated(key: &str) -> bool {
    key.rsplit('/').next().is_some_and(|n| n.starts_with("simulated-"))
}

/// The drops of a run, in key order.
pub async fn drops(store: &dyn Store, keys: &RunKeys) -> Result<Vec<ObjectMeta>, StepError> {
    let mut objects: Vec<ObjectMeta> =
        store.list(&keys.outcomes_prefix()).await?.into_iter().filter(|o| !o.key.ends_with('/')).collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

fn version(o: &ObjectMeta) -> String {
    o.etag.clone().unwrap_or_else(|| format!("{}-{}", o.size, o.last_modified.timestamp()))
}

fn seen_key(keys: &RunKeys, o: &ObjectMeta) -> Key {
    keys.ingest(&format!("seen/{}.json", sha256_hex(format!("{}\t{}", o.key, version(o)).as_bytes())))
}

/// The extension a file keeps (`csv`, `jsonl`): what tells the parser its format.
fn extension(key: &str) -> &'static str {
    let lower = key.to_ascii_lowercase();
    if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") || lower.ends_with(".json") {
        "jsonl"
    } else if lower.ends_with(".csv") {
        "csv"
    } else {
        "txt"
    }
}

/// Accept or refuse every drop not handled yet; return every accepted and refused file of the run.
pub async fn run(
    store: &dyn Store,
    keys: &RunKeys,
    rules: &Rules,
    max_reject_ratio: f64,
) -> Result<Accepted, StepError> {
    for o in drops(store, keys).await? {
        let seen = seen_key(keys, &o);
        if store.exists(&seen).await? {
            continue;
        }
        let key = Key::new(o.key.clone())?;
        let Some(body) = store.get_opt(&key).await? else { continue };
        let sha = sha256_hex(&body);
        if !store.exists(&keys.ingest_accepted(&sha)).await? && !store.exists(&keys.ingest_refused(&sha)).await? {
            judge(store, keys, rules, max_reject_ratio, &o.key, &sha, body).await?;
        }
        store.put_json(&seen, &Seen { sha256: sha }).await?;
    }
    list(store, keys).await
}

/// Every accepted and refused file of the run, without looking at the drops.
pub async fn list(store: &dyn Store, keys: &RunKeys) -> Result<Accepted, StepError> {
    let mut out = Accepted::default();
    for o in store.list(&keys.ingest_accepted_prefix()).await? {
        out.files.push(store.get_json(&Key::new(o.key)?).await?);
    }
    for o in store.list(&keys.ingest_refused_prefix()).await? {
        out.refused.push(store.get_json(&Key::new(o.key)?).await?);
    }
    out.files.sort_by(|a, b| (a.accepted_at, &a.sha256).cmp(&(b.accepted_at, &b.sha256)));
    out.refused.sort_by(|a, b| (a.refused_at, &a.sha256).cmp(&(b.refused_at, &b.sha256)));
    Ok(out)
}

/// Counts rows and the most frequent reasons, keeping no customer data.
#[derive(Default)]
struct Tally {
    valid: u64,
    ignored: u64,
    rejected: u64,
    /// (field, reason) → (rows, first line).
    reasons: std::collections::BTreeMap<(String, String), (u64, u64)>,
}

impl RowSink for Tally {
    fn valid(&mut self, _line: u64, _row: EventRow<'_>) {
        self.valid += 1;
    }
    fn ignored(&mut self, _line: u64) {
        self.ignored += 1;
    }
    fn rejected(&mut self, row: Rejected) {
        self.rejected += 1;
        // Reasons of one kind differ only by the describing suffix; group on the text before it.
        let reason = row.reason.split(" (").next().unwrap_or(&row.reason).to_string();
        let e = self.reasons.entry((row.field, reason)).or_insert((0, row.line));
        e.0 += 1;
    }
}

async fn judge(
    store: &dyn Store,
    keys: &RunKeys,
    rules: &Rules,
    max_reject_ratio: f64,
    source: &str,
    sha: &str,
    body: Bytes,
) -> Result<(), StepError> {
    let name = source.rsplit('/').next().unwrap_or(source).to_string();
    let (file, parse_rules, data) = (name.clone(), rules.clone(), body.clone());
    let parsed = tokio::task::spawn_blocking(move || {
        let mut tally = Tally::default();
        outcome_rows::parse_with(&file, data.as_ref(), &parse_rules, &mut tally).map(|(_, rows)| (rows, tally))
    })
    .await
    .map_err(|e| StepError::internal(format!("{source}: checking failed: {e}")))?;
    let refusal = match parsed {
        Err(e) if e.kind == ErrorKind::InputInvalid => Some((e.message, 0, 0)),
        Err(e) => return Err(e),
        Ok((rows, t)) => {
            let ratio = if rows > 0 { t.rejected as f64 / rows as f64 } else { 0.0 };
            if rows == 0 {
                Some((format!("{name}: no rows after the header"), 0, 0))
            } else if ratio > max_reject_ratio {
                let mut top: Vec<_> = t.reasons.iter().collect();
                top.sort_by_key(|e| std::cmp::Reverse(e.1 .0));
                let why: Vec<String> = top
                    .iter()
                    .take(3)
                    .map(|((field, reason), (n, line))| format!("{n} × `{field}`: {reason} (first at line {line})"))
                    .collect();
                Some((
                    format!(
                        "{name}: {} of {rows} rows rejected ({:.1}%, above outcomes.max_reject_ratio {:.1}%): {}",
                        t.rejected,
                        ratio * 100.0,
                        max_reject_ratio * 100.0,
                        why.join("; ")
                    ),
                    rows,
                    t.rejected,
                ))
            } else {
                let ext = extension(source);
                let key = keys.ingest_file(sha, ext);
                store.put_if_absent(&key, body).await?;
                let rec = AcceptedFile {
                    sha256: sha.to_string(),
                    key: key.to_string(),
                    source: source.to_string(),
                    simulated: is_simulated(source),
                    rows,
                    accepted_at: Utc::now(),
                };
                store.put_json(&keys.ingest_accepted(sha), &rec).await?;
                tracing::info!(
                    run_id = keys.run_id(),
                    sha256 = sha,
                    rows,
                    rejected = t.rejected,
                    "outcomes file accepted"
                );
                None
            }
        }
    };
    if let Some((reason, rows, rejected)) = refusal {
        let reason = cpo_common::pii::excerpt(&reason, 600);
        tracing::warn!(run_id = keys.run_id(), sha256 = sha, %reason, "outcomes file refused");
        let rec = RefusedFile {
            sha256: sha.to_string(),
            source: source.to_string(),
            reason,
            rows,
            rejected,
            refused_at: Utc::now(),
        };
        store.put_json(&keys.ingest_refused(sha), &rec).await?;
    }
    Ok(())
}

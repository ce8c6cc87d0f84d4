//! `cpo erase --customer ID [--store URL] [--dry-run] [--json]`: remove one customer from every object that
//! holds customer-level rows (the right to erasure). Each object is rewritten without the customer's rows, byte for
//! byte otherwise, with an atomic put:
//!
//! - `incoming/<campaign>/<file>` — the dropped customer files (the id column as the campaign maps it);
//! - `runs/<run>/customers/` (members, rejected rows), `assignments/`, `suppressed/`, `send/` (send lists), `outcomes/`,
//!   `ingest/` (per-customer outcomes, rejected and unknown events), `segment/rejected-*` (sharded runs);
//! - `runs/<run>/segment/sketch-*.json` (columnar shard intermediates, only needed while the run executes) are
//!   replaced by a marker when they hold the customer.
//!
//! Rejected rows keep the raw input line: it is matched on the id column of the file it came from (on any field
//! when that file is gone). Audit records, reports and aggregates hold no raw customer ids and stay.
//!
//! Rewriting an incoming file would look like a new drop to the trigger, so a marker
//! `erasure/<key>.json` (size and SHA-256 of the rewritten object) is written first; the trigger ignores an
//! incoming object that matches its marker. In a versioned bucket the old versions remain until the lifecycle
//! rule expires them (`NoncurrentVersionDays`); docs/cloud.md says how to remove them at once.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use bytes::Bytes;
use cpo_common::keys::{sha256_hex, Key};
use cpo_common::store::{Store, StoreExt};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The customer's id (the value of the input's customer id column).
    #[arg(long)]
    pub customer: String,
    /// Store URL: file://DIR, mem://, s3://bucket/prefix, az://container/prefix.
    #[arg(long, default_value = super::DEFAULT_STORE, env = super::STORE_ENV)]
    pub store: String,
    /// Only report what would be rewritten.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What an erasure did.
#[derive(Debug, Default, Serialize)]
pub struct Erasure {
    /// Objects read.
    pub scanned: usize,
    /// Objects rewritten (or that would be, with `--dry-run`), by key: rows removed (0 for a replaced sketch).
    pub rewritten: BTreeMap<String, u64>,
    /// Rows removed in all.
    pub rows: u64,
    pub dry_run: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::open_store(&args.store)?;
    let e = erase(store.as_ref(), &args.customer, args.dry_run).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        let verb = if e.dry_run { "would rewrite" } else { "rewrote" };
        println!("{verb} {} of {} objects scanned ({} rows removed)", e.rewritten.len(), e.scanned, e.rows);
        for (key, rows) in &e.rewritten {
            println!("  {key}: {rows} row(s)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Remove `customer` from every customer-level object of `store`.
pub async fn erase(store: &dyn Store, customer: &str, dry_run: bool) -> anyhow::Result<Erasure> {
    let customer = customer.trim();
    anyhow::ensure!(!customer.is_empty(), "--customer: empty id");
    let mut out = Erasure { dry_run, ..Erasure::default() };
    let mut headers = Headers::default();
    for prefix in ["incoming/", "runs/"] {
        for o in store.list(&Key::new(prefix)?).await? {
            let Some(kind) = kind_of(&o.key) else { continue };
            let key = Key::new(o.key.clone())?;
            let body = store.get(&key).await.with_context(|| format!("reading {key}"))?;
            out.scanned += 1;
            let id_column = match &kind {
                Kind::Incoming { campaign } => id_column(store, campaign).await?,
                _ => "customer_id".to_string(),
            };
            let rewrite = match kind {
                Kind::Sketch => sketch_holds(&body, customer)
                    .then(|| (Bytes::from_static(b"{\"erased\":\"cpo erase replaced this shard intermediate\"}\n"), 0)),
                Kind::Rejected => {
                    let mut kept = Vec::with_capacity(body.len());
                    let mut removed = 0;
                    for line in body.split_inclusive(|b| *b == b'\n') {
                        if rejected_holds(store, &mut headers, line, customer).await {
                            removed += 1;
                        } else {
                            kept.extend_from_slice(line);
                        }
                    }
                    (removed > 0).then(|| (Bytes::from(kept), removed))
                }
                Kind::Incoming { .. } | Kind::Rows => {
                    let (kept, removed) = without_customer(&body, &id_column, customer)
                        .with_context(|| format!("{key}: cannot read its rows"))?;
                    (removed > 0).then(|| (Bytes::from(kept), removed))
                }
            };
            let Some((new_body, removed)) = rewrite else { continue };
            if !dry_run {
                if o.key.starts_with("incoming/") {
                    let marker = serde_json::json!({
                        "key": o.key, "size": new_body.len(), "sha256": sha256_hex(&new_body),
                        "erased_at": chrono::Utc::now(),
                    });
                    store.put_json(&cpo_trigger::erasure_marker(&o.key)?, &marker).await?;
                }
                store.put(&key, new_body).await.with_context(|| format!("rewriting {key}"))?;
            }
            out.rows += removed;
            out.rewritten.insert(o.key, removed);
        }
    }
    Ok(out)
}

enum Kind {
    Incoming {
        campaign: String,
    },
    /// CSV with a header, or JSON lines, one customer per row.
    Rows,
    /// JSON lines of rejected rows (`raw` holds the input line).
    Rejected,
    /// A sharded segmentation's columnar intermediate.
    Sketch,
}

fn kind_of(key: &str) -> Option<Kind> {
    if let Some(campaign) = cpo_common::run::campaign_of_incoming(key) {
        return Some(Kind::Incoming { campaign: campaign.to_string() });
    }
    let rest = key.strip_prefix("runs/")?.split_once('/')?.1;
    let (dir, file) = rest.split_once('/')?;
    match dir {
        "segment" if file.starts_with("sketch-") => Some(Kind::Sketch),
        "segment" if file.starts_with("rejected-") => Some(Kind::Rejected),
        "customers" | "ingest" if file.starts_with("rejected") => Some(Kind::Rejected),
        "customers" | "assignments" | "suppressed" | "outcomes" => Some(Kind::Rows),
        "send" | "ingest" if file.ends_with(".csv") || file.ends_with(".jsonl") => Some(Kind::Rows),
        _ => None,
    }
}

/// The input's customer id column for a campaign (`segmentation.columns.customer_id`, else `customer_id`).
async fn id_column(store: &dyn Store, campaign: &str) -> anyhow::Result<String> {
    let (cfg, _) = cpo_common::run::load_campaign(store, campaign).await?;
    Ok(cfg.segmentation.columns.get("customer_id").cloned().unwrap_or_else(|| "customer_id".into()))
}

fn json_id(v: &Value, column: &str) -> Option<String> {
    match v.get(column)? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `body` without the rows of `customer` (CSV with a header, or JSON lines), every other byte kept; and how many
/// rows were removed.
fn without_customer(body: &[u8], column: &str, customer: &str) -> anyhow::Result<(Vec<u8>, u64)> {
    let first = body.iter().position(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF);
    let mut kept = Vec::with_capacity(body.len());
    let mut removed = 0;
    if first.map(|i| body[i]) == Some(b'{') {
        for line in body.split_inclusive(|b| *b == b'\n') {
            let id = serde_json::from_slice::<Value>(line).ok().and_then(|v| json_id(&v, column));
            if id.as_deref() == Some(customer) {
                removed += 1;
            } else {
                kept.extend_from_slice(line);
            }
        }
        return Ok((kept, removed));
    }
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
    let mut rec = csv::ByteRecord::new();
    let mut start = 0usize;
    let mut at: Option<usize> = None;
    while rdr.read_byte_record(&mut rec)? {
        let end = rdr.position().byte() as usize;
        let raw = &body[start..end.min(body.len())];
        match at {
            None => {
                // The header: strip a BOM from its first name.
                let names: Vec<String> = rec
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).trim().trim_start_matches('\u{feff}').to_string())
                    .collect();
                at = Some(names.iter().position(|n| n == column).with_context(|| format!("no {column} column"))?);
                kept.extend_from_slice(raw);
            }
            Some(i) => {
                if rec.get(i).map(|f| String::from_utf8_lossy(f).trim().to_string()).as_deref() == Some(customer) {
                    removed += 1;
                } else {
                    kept.extend_from_slice(raw);
                }
            }
        }
        start = end;
    }
    kept.extend_from_slice(&body[start.min(body.len())..]);
    Ok((kept, removed))
}

/// Header (id column position) of the files rejected rows come from, read once each.
#[derive(Default)]
struct Headers(BTreeMap<String, Option<usize>>);

impl Headers {
    async fn id_position(&mut self, store: &dyn Store, file: &str) -> Option<usize> {
        if let Some(p) = self.0.get(file) {
            return *p;
        }
        let mut found = None;
        if let Ok(key) = Key::new(file) {
            let column = match cpo_common::run::campaign_of_incoming(file) {
                Some(c) => id_column(store, c).await.unwrap_or_else(|_| "customer_id".into()),
                None => "customer_id".into(),
            };
            if let Ok(Some(body)) = store.get_opt(&key).await {
                let line = body.split(|b| *b == b'\n').next().unwrap_or_default();
                let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(line);
                let mut rec = csv::StringRecord::new();
                if rdr.read_record(&mut rec).unwrap_or(false) {
                    found = rec.iter().position(|n| n.trim().trim_start_matches('\u{feff}') == column);
                }
            }
        }
        self.0.insert(file.to_string(), found);
        found
    }
}

/// Whether a rejected row (`{"file", "raw", …}`) is one of `customer`'s: its raw line's id field (JSON, or the
/// CSV column of the file it came from); any field when that file's header is unknown, erring toward erasure.
async fn rejected_holds(store: &dyn Store, headers: &mut Headers, line: &[u8], customer: &str) -> bool {
    let Ok(row) = serde_json::from_slice::<Value>(line) else { return false };
    if json_id(&row, "customer_id").as_deref() == Some(customer) {
        return true;
    }
    let raw = row["raw"].as_str().unwrap_or_default();
    if raw.trim_start().starts_with('{') {
        return serde_json::from_str::<Value>(raw)
            .ok()
            .map(|v| {
                v.as_object().is_some_and(|m| {
                    m.values().any(|x| json_id(&serde_json::json!({"v": x}), "v").as_deref() == Some(customer))
                })
            })
            .unwrap_or(raw.contains(customer));
    }
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(raw.as_bytes());
    let mut rec = csv::StringRecord::new();
    if !rdr.read_record(&mut rec).unwrap_or(false) {
        return raw.contains(customer);
    }
    let file = row["file"].as_str().unwrap_or_default();
    match headers.id_position(store, file).await {
        Some(i) => rec.get(i).map(str::trim) == Some(customer),
        None => rec.iter().any(|f| f.trim() == customer),
    }
}

/// Whether a sketch's table (`ids` bytes ended at `id_ends`) holds `customer`.
fn sketch_holds(body: &[u8], customer: &str) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return false };
    let table = &v["table"];
    let (Some(ids), Some(ends)) = (table["ids"].as_array(), table["id_ends"].as_array()) else {
        // Unknown shape: search the text, erring toward erasure.
        return body.windows(customer.len().max(1)).any(|w| w == customer.as_bytes());
    };
    let ids: Vec<u8> = ids.iter().filter_map(|b| b.as_u64().map(|b| b as u8)).collect();
    let mut start = 0usize;
    for end in ends.iter().filter_map(Value::as_u64) {
        let end = end as usize;
        if ids.get(start..end) == Some(customer.as_bytes()) {
            return true;
        }
        start = end;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_removed_and_every_other_byte_kept() {
        let body = b"\xEF\xBB\xBFcustomer_id,name\r\nC1,\"Ann, B\"\r\nC2,Bo\r\n C1 ,dup\r\nC3,Cy";
        let (kept, removed) = without_customer(body, "customer_id", "C1").unwrap();
        assert_eq!(removed, 2);
        assert_eq!(kept, b"\xEF\xBB\xBFcustomer_id,name\r\nC2,Bo\r\nC3,Cy".to_vec());
        let (kept, removed) = without_customer(b"id,x\nC3,1\n", "id", "C3").unwrap();
        assert_eq!((kept.as_slice(), removed), (&b"id,x\n"[..], 1));
        assert!(without_customer(b"a,b\n1,2\n", "customer_id", "1").is_err(), "no id column: an error, not a no-op");
    }

    #[test]
    fn json_lines_are_removed_by_id() {
        let body = b"{\"customer_id\":\"C1\",\"a\":1}\n{\"customer_id\":\"C2\"}\n{\"customer_id\":7}\n";
        let (kept, removed) = without_customer(body, "customer_id", "C1").unwrap();
        assert_eq!((kept.as_slice(), removed), (&b"{\"customer_id\":\"C2\"}\n{\"customer_id\":7}\n"[..], 1));
        assert_eq!(without_customer(body, "customer_id", "7").unwrap().1, 1);
    }

    #[test]
    fn sketch_ids_are_found_by_their_bounds() {
        let sketch = br#"{"rows":2,"table":{"ids":[67,49,67,49,50],"id_ends":[2,5]}}"#;
        assert!(sketch_holds(sketch, "C1") && sketch_holds(sketch, "C12"));
        assert!(!sketch_holds(sketch, "C"));
    }

    #[test]
    fn keys_are_classified() {
        assert!(matches!(kind_of("incoming/weekly/a.csv"), Some(Kind::Incoming { .. })));
        assert!(matches!(kind_of("runs/r/customers/members-00000.jsonl"), Some(Kind::Rows)));
        assert!(matches!(kind_of("runs/r/customers/rejected.jsonl"), Some(Kind::Rejected)));
        assert!(matches!(kind_of("runs/r/ingest/rejected.jsonl"), Some(Kind::Rejected)));
        assert!(matches!(kind_of("runs/r/send/part-00000.csv"), Some(Kind::Rows)));
        assert!(kind_of("runs/r/send/templates.json").is_none());
        assert!(kind_of("runs/r/ingest/counts.json").is_none());
        assert!(matches!(kind_of("runs/r/segment/sketch-00000.json"), Some(Kind::Sketch)));
        assert!(kind_of("runs/r/segment/plan.json").is_none());
        assert!(kind_of("runs/r/report/report.json").is_none());
        assert!(kind_of("audit/safety/chain/000000000000.jsonl").is_none());
    }
}

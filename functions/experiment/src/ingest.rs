//! `ingest`: every object under `outcomes/` (cumulative: all drops so far, CSV or JSON lines), validated and
//! deduplicated per customer and event, joined with the assignments. Writes:
//! `ingest/rejected.jsonl` (file, line, field, reason, raw), `ingest/unknown.jsonl` (events of customers this
//! run never assigned), `ingest/outcomes-NNNNN.csv` (per assigned customer with events: one flag per event,
//! aligned with `assignments/part-NNNNN.jsonl`) and `ingest/summary.json`.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use cpo_common::keys::RunKeys;
use cpo_common::model::experiment::{Assignment, IngestSummary, OutcomesFile};
use cpo_common::model::segment::Rejected;
use cpo_common::store::StoreExt;
use cpo_common::{Key, ObjectMeta, StepError, StepOutput, Store};

use crate::events::{self, Event, EventRow, KNOWN};
use crate::hashing::{customer_key, CustomerKey};
use crate::parts::{list_parts, JsonlParts};

/// The outcomes objects of a run with their versions: the identity of an analysis.
pub async fn outcome_objects(store: &dyn Store, keys: &RunKeys) -> Result<Vec<ObjectMeta>, StepError> {
    let mut objects: Vec<ObjectMeta> =
        store.list(&keys.outcomes_prefix()).await?.into_iter().filter(|o| !o.key.ends_with('/')).collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

pub fn etag(o: &ObjectMeta) -> String {
    o.etag.clone().unwrap_or_else(|| format!("{}-{}", o.size, o.last_modified.timestamp()))
}

/// `key\tetag` lines: equal for an equal set of outcomes objects.
pub fn identity(objects: &[ObjectMeta]) -> String {
    objects.iter().map(|o| format!("{}\t{}\n", o.key, etag(o))).collect()
}

pub fn is_simulated(key: &str) -> bool {
    key.rsplit('/').next().is_some_and(|n| n.starts_with("simulated-"))
}

/// One row of an outcomes file: valid, or rejected with a reason.
type Parsed = Result<EventRow, Rejected>;

/// Parse an outcomes object, CSV or JSON lines (by extension; otherwise by its first character).
pub fn parse(file: &str, body: &[u8]) -> Result<(String, Vec<(u64, Parsed)>), StepError> {
    let lower = file.to_ascii_lowercase();
    let jsonl = if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") || lower.ends_with(".json") {
        true
    } else if lower.ends_with(".csv") {
        false
    } else {
        body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
    };
    if jsonl {
        Ok(("jsonl".into(), parse_jsonl(file, body)))
    } else {
        Ok(("csv".into(), parse_csv(file, body)?))
    }
}

fn reject(file: &str, line: u64, field: &str, reason: String, raw: String) -> Rejected {
    Rejected { file: file.to_string(), line, field: field.to_string(), reason, raw }
}

fn parse_csv(file: &str, body: &[u8]) -> Result<Vec<(u64, Parsed)>, StepError> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(body);
    let headers = rdr.headers().map_err(|e| StepError::input(format!("{file}: line 1: unreadable CSV header: {e}")))?;
    let col = |name: &str| headers.iter().position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name));
    let (Some(ci), Some(ei), Some(ti)) = (col("customer_id"), col("event"), col("timestamp")) else {
        return Err(StepError::input(format!(
            "{file}: line 1: the header must name the columns customer_id, event and timestamp (found: {})",
            headers.iter().collect::<Vec<_>>().join(", ")
        )));
    };
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line()).unwrap_or(line);
                let raw = record.iter().collect::<Vec<_>>().join(",");
                let row = events::validate(record.get(ci), record.get(ei), record.get(ti))
                    .map_err(|(field, reason)| reject(file, line, field, reason, raw));
                out.push((line, row));
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(line);
                out.push((line, Err(reject(file, line, "row", format!("unreadable CSV: {e}"), String::new()))));
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. } | csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
            }
        }
    }
    Ok(out)
}

fn parse_jsonl(file: &str, body: &[u8]) -> Vec<(u64, Parsed)> {
    let mut out = Vec::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let n = i as u64 + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let raw = String::from_utf8_lossy(line).trim_end().chars().take(2000).collect::<String>();
        let value: serde_json::Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                out.push((n, Err(reject(file, n, "row", format!("not a JSON object: {e}"), raw))));
                continue;
            }
        };
        let Some(obj) = value.as_object() else {
            out.push((n, Err(reject(file, n, "row", "not a JSON object".into(), raw))));
            continue;
        };
        let text = |k: &str| match obj.get(k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(x)) => Some(x.to_string()),
            _ => None,
        };
        let (c, e, t) = (text("customer_id"), text("event"), text("timestamp"));
        let row = events::validate(c.as_deref(), e.as_deref(), t.as_deref())
            .map_err(|(field, reason)| reject(file, n, field, reason, raw));
        out.push((n, row));
    }
    out
}

pub async fn run(store: &dyn Store, keys: &RunKeys, objects: &[ObjectMeta]) -> Result<StepOutput, StepError> {
    let run_id = keys.run_id();
    let mut flags: HashMap<CustomerKey, u8> = HashMap::new();
    let mut files = Vec::new();
    let mut rejected_rows = Vec::new();
    let mut duplicates = 0u64;
    for o in objects {
        let key = Key::new(o.key.clone())?;
        let body = store.get(&key).await?;
        let (format, rows) = parse(&o.key, &body)?;
        let mut f = OutcomesFile {
            key: o.key.clone(),
            etag: etag(o),
            format,
            rows: rows.len() as u64,
            accepted: 0,
            rejected: 0,
            simulated: is_simulated(&o.key),
        };
        for (_, row) in rows {
            match row {
                Ok(ev) => {
                    f.accepted += 1;
                    let entry = flags.entry(customer_key(&ev.customer_id)).or_default();
                    if *entry & ev.event.bit() != 0 {
                        duplicates += 1;
                    }
                    *entry |= ev.event.bit();
                }
                Err(r) => {
                    f.rejected += 1;
                    rejected_rows.push(r);
                }
            }
        }
        tracing::info!(run_id, file = %o.key, rows = f.rows, rejected = f.rejected, "outcomes file read");
        files.push(f);
    }
    store.put(&keys.ingest_rejected(), crate::parts::to_jsonl(&rejected_rows)?).await?;

    // Join with the assignments, one part at a time; each output part holds that part's customers with events.
    let mut events: BTreeMap<String, u64> = events::ALL.iter().map(|e| (e.name().to_string(), 0)).collect();
    let mut with_events = 0u64;
    let assignment_keys = list_parts(store, &keys.assignments_prefix(), "part-", ".jsonl").await?;
    if assignment_keys.is_empty() {
        return Err(StepError::input(format!(
            "{}: no assignments; the campaign's assign step must run before outcomes can be analysed",
            keys.assignments_prefix()
        )));
    }
    let mut parts = JsonlParts::<Assignment>::new(assignment_keys);
    let mut part = 0usize;
    while let Some(rows) = parts.next_part(store).await? {
        let mut csv = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["customer_id"];
        header.extend(events::ALL.iter().map(|e| e.name()));
        csv.write_record(&header).map_err(csv_err)?;
        for a in rows {
            let Some(f) = flags.get_mut(&customer_key(&a.customer_id)) else { continue };
            if *f & KNOWN != 0 {
                continue; // the same customer assigned twice cannot happen; never count twice regardless
            }
            *f |= KNOWN;
            with_events += 1;
            let mut rec = vec![a.customer_id.clone()];
            for e in events::ALL {
                let on = *f & e.bit() != 0;
                if on {
                    *events.entry(e.name().to_string()).or_default() += 1;
                }
                rec.push(if on { "1".into() } else { "0".into() });
            }
            csv.write_record(&rec).map_err(csv_err)?;
        }
        let body = csv.into_inner().map_err(|e| StepError::internal(format!("ingest outcomes CSV: {e}")))?;
        store.put(&outcomes_part(keys, part), Bytes::from(body)).await?;
        part += 1;
    }
    let unknown_customers = flags.values().filter(|f| *f & KNOWN == 0).count() as u64;
    let unknown_events: u64 = flags.values().filter(|f| *f & KNOWN == 0).map(|f| u64::from(f.count_ones())).sum();
    let unknown_rows = if unknown_customers > 0 { unknown_rows(store, objects, &flags).await? } else { Vec::new() };
    store.put(&keys.ingest("unknown.jsonl"), crate::parts::to_jsonl(&unknown_rows)?).await?;

    let simulated = files.iter().any(|f| f.simulated);
    let summary = IngestSummary {
        run_id: run_id.to_string(),
        rejected: rejected_rows.len() as u64,
        files,
        events,
        duplicates,
        unknown_customers,
        unknown_events,
        customers_with_events: with_events,
        simulated,
        outcomes_key: keys.ingest("outcomes-").to_string(),
    };
    store.put_json(&keys.ingest("summary.json"), &summary).await?;
    tracing::info!(
        run_id,
        files = summary.files.len(),
        rejected = summary.rejected,
        duplicates,
        unknown_customers,
        with_events,
        simulated,
        "outcomes ingested"
    );
    Ok(StepOutput::new(run_id, "ingest")
        .key("summary", keys.ingest("summary.json"))
        .key("rejected", keys.ingest_rejected())
        .key("unknown", keys.ingest("unknown.jsonl"))
        .count("files", summary.files.len() as u64)
        .count("rejected", summary.rejected)
        .count("duplicates", duplicates)
        .count("unknown_customers", unknown_customers)
        .count("unknown_events", unknown_events)
        .count("customers_with_events", with_events)
        .count("events", serde_json::json!(summary.events))
        .count("simulated", simulated))
}

pub fn outcomes_part(keys: &RunKeys, part: usize) -> Key {
    keys.ingest(&format!("outcomes-{part:05}.csv"))
}

/// Second pass, only when some customers are unknown: their rows, with file and line, for the analyst.
async fn unknown_rows(
    store: &dyn Store,
    objects: &[ObjectMeta],
    flags: &HashMap<CustomerKey, u8>,
) -> Result<Vec<Rejected>, StepError> {
    let mut out = Vec::new();
    for o in objects {
        let body = store.get(&Key::new(o.key.clone())?).await?;
        for (line, row) in parse(&o.key, &body)?.1 {
            let Ok(ev) = row else { continue };
            if flags.get(&customer_key(&ev.customer_id)).is_some_and(|f| f & KNOWN == 0) {
                out.push(Rejected {
                    file: o.key.clone(),
                    line,
                    field: "customer_id".into(),
                    reason: "customer not assigned in this run".into(),
                    raw: format!("{},{},{}", ev.customer_id, ev.event.name(), ev.timestamp.to_rfc3339()),
                });
            }
        }
    }
    Ok(out)
}

/// The flags of one part's customers with events (`ingest/outcomes-NNNNN.csv`).
pub async fn read_outcomes_part(store: &dyn Store, key: &Key) -> Result<HashMap<String, u8>, StepError> {
    let Some(body) = store.get_opt(key).await? else { return Ok(HashMap::new()) };
    let mut rdr = csv::Reader::from_reader(body.as_ref());
    let mut out = HashMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| StepError::internal(format!("{key}: {e}")))?;
        let mut f = 0u8;
        for (i, e) in events::ALL.iter().enumerate() {
            if rec.get(i + 1) == Some("1") {
                f |= e.bit();
            }
        }
        if let Some(id) = rec.get(0) {
            out.insert(id.to_string(), f);
        }
    }
    Ok(out)
}

fn csv_err(e: csv::Error) -> StepError {
    StepError::internal(format!("ingest outcomes CSV: {e}"))
}

/// Events of one type, for callers outside this module.
pub fn has(flags: u8, e: Event) -> bool {
    flags & e.bit() != 0
}

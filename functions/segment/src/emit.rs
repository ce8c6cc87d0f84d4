//! The output pass: re-read the rows in order and write each one where it belongs — a member line (scores,
//! segment, carried columns) into `customers/members-NNNNN.jsonl` parts, or a rejected line with its raw
//! text. Re-reading costs one more parse but keeps memory at the table's size instead of the rows'.

use bytes::Bytes;
use chrono::NaiveDate;
use csv::ByteRecord;
use serde::ser::{Serialize, SerializeMap, Serializer};

use cpo_common::keys::{Key, RunKeys};
use cpo_common::model::segment::Rejected;
use cpo_common::store::Store;
use cpo_common::StepError;

use crate::analyze::REJECTED;
use crate::layout::{Fields, Layout};
use crate::rows::{self, Bad};
use crate::scan::TxScan;
use crate::source::{Origin, RowMeta, Rows};
use crate::table::{Duplicate, Table};

/// One member line, serialised straight from the record (same JSON as `cpo_common::model::segment::Member`).
#[derive(serde::Serialize)]
struct MemberRef<'a> {
    customer_id: &'a str,
    line: u64,
    recency: f64,
    frequency: f64,
    monetary: f64,
    r: u8,
    f: u8,
    m: u8,
    segment: &'a str,
    #[serde(skip_serializing_if = "CarriedRef::is_empty")]
    fields: CarriedRef<'a>,
}

struct CarriedRef<'a> {
    layout: &'a Layout,
    rec: &'a ByteRecord,
}

impl CarriedRef<'_> {
    fn values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.layout
            .carried
            .iter()
            .map(|&i| (self.layout.header[i].as_str(), rows::field(self.rec, i).trim()))
            .filter(|(_, v)| !v.is_empty())
    }
    fn is_empty(&self) -> bool {
        self.values().next().is_none()
    }
}

impl Serialize for CarriedRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.values() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Member parts and rejected lines being written.
pub struct Writer<'a> {
    store: &'a dyn Store,
    keys: &'a RunKeys,
    file: &'a str,
    part_size: usize,
    next_part: usize,
    buf: Vec<u8>,
    in_part: usize,
    pub parts: Vec<String>,
    pub rejected: Vec<u8>,
    pub members: u64,
    pub rejected_rows: u64,
}

impl<'a> Writer<'a> {
    pub fn new(store: &'a dyn Store, keys: &'a RunKeys, file: &'a str, part_size: usize, first_part: usize) -> Self {
        Writer {
            store,
            keys,
            file,
            part_size: part_size.max(1),
            next_part: first_part,
            buf: Vec::new(),
            in_part: 0,
            parts: Vec::new(),
            rejected: Vec::new(),
            members: 0,
            rejected_rows: 0,
        }
    }

    async fn member(&mut self, m: &MemberRef<'_>) -> Result<(), StepError> {
        serde_json::to_writer(&mut self.buf, m)?;
        self.buf.push(b'\n');
        self.in_part += 1;
        self.members += 1;
        if self.in_part >= self.part_size {
            self.flush().await?;
        }
        Ok(())
    }

    fn reject(&mut self, meta: &RowMeta, bad: &Bad, raw: &[u8]) -> Result<(), StepError> {
        let r = Rejected {
            file: self.file.to_string(),
            line: meta.line,
            field: bad.field.clone(),
            reason: bad.reason.clone(),
            raw: String::from_utf8_lossy(raw).into_owned(),
        };
        serde_json::to_writer(&mut self.rejected, &r)?;
        self.rejected.push(b'\n');
        self.rejected_rows += 1;
        Ok(())
    }

    /// Write the current part (if it holds anything).
    pub async fn flush(&mut self) -> Result<(), StepError> {
        if self.in_part == 0 {
            return Ok(());
        }
        let key = self.keys.members(self.next_part);
        let body = Bytes::from(std::mem::take(&mut self.buf));
        self.store.put(&key, body).await?;
        self.parts.push(key.to_string());
        self.next_part += 1;
        self.in_part = 0;
        self.buf = Vec::with_capacity(self.part_size.min(1 << 16) * 200);
        Ok(())
    }

    /// Write the rejected lines to `key` (always, so an empty file says "nothing was rejected").
    pub async fn put_rejected(&mut self, key: &Key) -> Result<(), StepError> {
        self.store.put(key, Bytes::from(std::mem::take(&mut self.rejected))).await?;
        Ok(())
    }
}

/// What the analysis decided for the rows of this slice (indices relative to the slice's table rows).
pub struct Decisions<'a> {
    pub scores: &'a [[u8; 3]],
    pub segment: &'a [u8],
    pub names: &'a [String],
    pub duplicates: &'a [Duplicate],
}

/// Output pass over aggregate rows.
pub async fn customers(
    w: &mut Writer<'_>,
    buf: &[u8],
    layout: &Layout,
    origin: Origin,
    d: &Decisions<'_>,
) -> Result<(), StepError> {
    let mut rows = Rows::new(buf, layout.encoding, &layout.header, origin);
    let mut rec = ByteRecord::new();
    let mut ti = 0usize;
    let mut dup = d.duplicates.iter().peekable();
    let id_field = layout.header[layout.id].clone();
    while let Some(meta) = rows.next(&mut rec) {
        match rows::customer(layout, &rec, &meta) {
            Ok(c) => {
                let i = ti;
                ti += 1;
                let seg = d.segment.get(i).copied().unwrap_or(REJECTED);
                if seg == REJECTED {
                    let reason = match dup.peek() {
                        Some(x) if x.row as usize == i => dup.next().map(|x| x.reason.clone()).unwrap_or_default(),
                        _ => "rejected".to_string(),
                    };
                    w.reject(&meta, &Bad { field: id_field.clone(), reason }, rows.raw(&meta))?;
                    continue;
                }
                let s = d.scores[i];
                let m = MemberRef {
                    customer_id: c.id,
                    line: meta.line,
                    recency: c.values[0],
                    frequency: c.values[1],
                    monetary: c.values[2],
                    r: s[0],
                    f: s[1],
                    m: s[2],
                    segment: &d.names[seg as usize],
                    fields: CarriedRef { layout, rec: &rec },
                };
                w.member(&m).await?;
            }
            Err(b) => w.reject(&meta, &b, rows.raw(&meta))?,
        }
    }
    Ok(())
}

/// Output pass over transaction rows: a member at each customer's first row, carried columns from that row.
#[allow(clippy::too_many_arguments)]
pub async fn transactions(
    w: &mut Writer<'_>,
    buf: &[u8],
    layout: &Layout,
    table: &Table,
    tx: &TxScan,
    run_date: NaiveDate,
    d: &Decisions<'_>,
) -> Result<(), StepError> {
    let Fields::Transactions { .. } = layout.fields else {
        return Err(StepError::internal("transactions output pass on a customers layout"));
    };
    let mut rows = Rows::new(buf, layout.encoding, &layout.header, Origin::WHOLE);
    let mut rec = ByteRecord::new();
    let mut currency = tx.currency.clone();
    while let Some(meta) = rows.next(&mut rec) {
        match rows::transaction(layout, &rec, &meta, run_date, &mut currency) {
            Ok(t) => {
                let Some(c) = tx.index.get(table, t.id.as_bytes()) else {
                    return Err(StepError::internal(format!(
                        "line {}: customer missing from the first pass",
                        meta.line
                    )));
                };
                let c = c as usize;
                if table.lines[c] != meta.line || d.segment[c] == REJECTED {
                    continue;
                }
                let s = d.scores[c];
                let v = table.values[c];
                let m = MemberRef {
                    customer_id: t.id,
                    line: meta.line,
                    recency: v[0],
                    frequency: v[1],
                    monetary: v[2],
                    r: s[0],
                    f: s[1],
                    m: s[2],
                    segment: &d.names[d.segment[c] as usize],
                    fields: CarriedRef { layout, rec: &rec },
                };
                w.member(&m).await?;
            }
            Err(b) => w.reject(&meta, &b, rows.raw(&meta))?,
        }
    }
    Ok(())
}

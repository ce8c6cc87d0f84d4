//! The first pass: read every row, validate it, and build the compact [`Table`] (aggregate rows one to one;
//! transactions aggregated per customer). Rejected rows are only counted here — the output pass re-reads
//! the file and writes them with their raw text, so nothing but counts is held for them.

use chrono::NaiveDate;
use csv::ByteRecord;
use rustc_hash::FxHashMap;

use crate::layout::{Fields, Layout};
use crate::rows::{self, Bad};
use crate::source::{Origin, RowMeta, Rows};
use crate::table::{id_hash, row_digest, Table};

/// How many rejection reasons an error message quotes.
pub const FIRST_REASONS: usize = 5;

#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub table: Table,
    /// Data rows read (header excluded).
    pub rows: u64,
    /// Rows that failed validation.
    pub bad: u64,
    /// "line L, field F: reason" of the first few.
    pub first_bad: Vec<String>,
    /// Transactions only.
    pub tx: Option<TxScan>,
}

#[derive(Debug, Clone, Default)]
pub struct TxScan {
    pub index: IdIndex,
    /// The file's currency (first one seen), fixed for the output pass.
    pub currency: Option<String>,
    pub as_of: Option<NaiveDate>,
}

/// customer_id → table row, confirmed against the id bytes (hash collisions go to a second map).
#[derive(Debug, Clone, Default)]
pub struct IdIndex {
    by_hash: FxHashMap<u64, u32>,
    collided: FxHashMap<Vec<u8>, u32>,
}

impl IdIndex {
    pub fn get(&self, t: &Table, id: &[u8]) -> Option<u32> {
        let i = *self.by_hash.get(&id_hash(id))?;
        if t.id(i as usize) == id {
            Some(i)
        } else {
            self.collided.get(id).copied()
        }
    }

    fn insert(&mut self, t: &Table, id: &[u8], row: u32) {
        match self.by_hash.entry(id_hash(id)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(row);
            }
            std::collections::hash_map::Entry::Occupied(o) if t.id(*o.get() as usize) != id => {
                self.collided.insert(id.to_vec(), row);
            }
            std::collections::hash_map::Entry::Occupied(_) => {}
        }
    }
}

pub fn describe_bad(meta: &RowMeta, bad: &Bad) -> String {
    format!("line {}, field {}: {}", meta.line, bad.field, bad.reason)
}

fn cats<'r>(layout: &Layout, rec: &'r ByteRecord) -> [&'r str; 5] {
    let mut out = [""; 5];
    for (o, &i) in out.iter_mut().zip(&layout.typical) {
        *o = rows::field(rec, i);
    }
    out
}

/// Scan `buf` (the whole file or one shard). `run_date` bounds order dates; `as_of` is the configured one.
pub fn scan(buf: &[u8], layout: &Layout, origin: Origin, run_date: NaiveDate, as_of: Option<NaiveDate>) -> Scan {
    let mut rows = Rows::new(buf, layout.encoding, &layout.header, origin);
    let mut rec = ByteRecord::new();
    let ncat = layout.typical.len();
    let mut out = Scan { table: Table::new(ncat), ..Default::default() };
    // Rows of a 100-byte-wide file: reserve once instead of growing (and copying) the columns repeatedly.
    let guess = buf.len() / 64;
    let note = |out: &mut Scan, meta: &RowMeta, bad: &Bad| {
        out.bad += 1;
        if out.first_bad.len() < FIRST_REASONS {
            out.first_bad.push(describe_bad(meta, bad));
        }
    };
    match layout.fields {
        Fields::Customers { .. } => {
            out.table.lines.reserve(guess);
            out.table.values.reserve(guess);
            out.table.digests.reserve(guess);
            out.table.id_ends.reserve(guess);
            while let Some(meta) = rows.next(&mut rec) {
                out.rows += 1;
                match rows::customer(layout, &rec, &meta) {
                    Ok(c) => {
                        let cats = cats(layout, &rec);
                        out.table.push(meta.line, c.id, c.values, row_digest(&rec), &cats[..ncat]);
                    }
                    Err(b) => note(&mut out, &meta, &b),
                }
            }
        }
        Fields::Transactions { .. } => {
            let mut tx = TxScan::default();
            let mut last: Vec<NaiveDate> = Vec::new();
            let mut count: Vec<f64> = Vec::new();
            let mut sum: Vec<f64> = Vec::new();
            let mut latest: Option<NaiveDate> = None;
            while let Some(meta) = rows.next(&mut rec) {
                out.rows += 1;
                match rows::transaction(layout, &rec, &meta, run_date, &mut tx.currency) {
                    Ok(t) => {
                        let c = match tx.index.get(&out.table, t.id.as_bytes()) {
                            Some(c) => c as usize,
                            None => {
                                let c = out.table.len();
                                let cats = cats(layout, &rec);
                                out.table.push(meta.line, t.id, [0.0; 3], 0, &cats[..ncat]);
                                tx.index.insert(&out.table, t.id.as_bytes(), c as u32);
                                last.push(t.date);
                                count.push(0.0);
                                sum.push(0.0);
                                c
                            }
                        };
                        last[c] = last[c].max(t.date);
                        count[c] += 1.0;
                        sum[c] += t.amount;
                        latest = Some(latest.map_or(t.date, |l| l.max(t.date)));
                    }
                    Err(b) => note(&mut out, &meta, &b),
                }
            }
            let as_of = as_of.or(latest);
            if let Some(day) = as_of {
                for (c, v) in out.table.values.iter_mut().enumerate() {
                    *v = [(day - last[c]).num_days().max(0) as f64, count[c], sum[c] + 0.0];
                }
            }
            tx.as_of = as_of;
            out.tx = Some(tx);
        }
    }
    out
}

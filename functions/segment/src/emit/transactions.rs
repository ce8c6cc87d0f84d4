//! The output pass over transaction rows, in one pass: a customer's member line sits at their first order.

use bytes::Bytes;
use chrono::NaiveDate;

use cpo_common::keys::RunKeys;
use cpo_common::store::Store;
use cpo_common::StepError;

use super::{reject, Decisions, Encoder, MemberLine};
use crate::analyze::REJECTED;
use crate::layout::{Fields, Layout};
use crate::rows::{self, Bad};
use crate::scan::TxScan;
use crate::source::{Origin, Rec, RowMeta, Rows};
use crate::table::Table;

/// Member parts and rejected lines being written in one pass (transactions).
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

    async fn member(&mut self, enc: &Encoder, m: &MemberLine<'_>, rec: &Rec<'_>) -> Result<(), StepError> {
        enc.member(&mut self.buf, m, rec);
        self.in_part += 1;
        self.members += 1;
        if self.in_part >= self.part_size {
            self.flush().await?;
        }
        Ok(())
    }

    fn reject(&mut self, meta: &RowMeta, bad: &Bad, raw: &[u8]) -> Result<(), StepError> {
        reject(&mut self.rejected, self.file, meta, bad, raw)?;
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
    d: &Decisions,
) -> Result<(), StepError> {
    let Fields::Transactions { .. } = layout.fields else {
        return Err(StepError::internal("transactions output pass on a customers layout"));
    };
    let enc = Encoder::new(layout, &d.names);
    let mut rows = Rows::new(buf, layout.encoding, &layout.header, Origin::WHOLE);
    let mut currency = tx.currency.clone();
    while let Some(meta) = rows.next() {
        let rec = rows.rec();
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
                let m = MemberLine {
                    customer_id: t.id,
                    line: meta.line,
                    values: table.values[c],
                    scores: d.scores[c],
                    segment: d.segment[c],
                };
                w.member(&enc, &m, &rec).await?;
            }
            Err(b) => w.reject(&meta, &b, rows.raw(&meta))?,
        }
    }
    if let Some(line) = rows.too_long() {
        return Err(crate::source::too_long(w.file, line, crate::source::limits().max_line_bytes));
    }
    Ok(())
}

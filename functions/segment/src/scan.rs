//! The first pass: read every row, validate it, and build the compact [`Table`] (aggregate rows one to one;
//! transactions aggregated per customer). Rejected rows are only counted here — the output pass re-reads
//! the file and writes them with their raw text, so nothing but counts is held for them.

use std::sync::Arc;

use bytes::Bytes;
use chrono::NaiveDate;
use cpo_common::StepError;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::layout::{Encoding, Fields, Layout};
use crate::par;
use crate::rows::{self, Bad};
use crate::source::{quote_free, Origin, Rec, RowMeta, Rows};
use crate::table::{id_hash, row_digest, Table};

/// How many rejection reasons an error message quotes.
pub const FIRST_REASONS: usize = 5;

/// Every this many table rows the scan notes where the row starts, so the output pass can start anywhere.
pub const CHECKPOINT_ROWS: usize = 1024;

/// Below this many bytes a file is scanned on one thread (spawning would cost more than it saves).
const PARALLEL_MIN_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub table: Table,
    /// Data rows read (header excluded).
    pub rows: u64,
    /// Rows that failed validation.
    pub bad: u64,
    /// The first few rejected rows.
    pub first_bad: Vec<BadLine>,
    /// Transactions only.
    pub tx: Option<TxScan>,
    /// Start of table rows 0, [`CHECKPOINT_ROWS`], 2·[`CHECKPOINT_ROWS`]… (aggregate rows only).
    pub checkpoints: Vec<Checkpoint>,
    /// The slice was read by the quote-free fast path (see [`quote_free`]).
    pub fast: bool,
    /// Newlines in the slice (fast path), for numbering the lines of the slice that follows.
    newlines: u64,
    /// The line of a row longer than the line limit: the scan stopped there and the file must be refused.
    pub too_long: Option<u64>,
}

impl Scan {
    /// The file's refusal when a row was longer than the line limit (`file` names the input).
    pub fn check(&self, file: &str) -> Result<(), StepError> {
        match self.too_long {
            Some(line) => Err(crate::source::too_long(file, line, crate::source::limits().max_line_bytes)),
            None => Ok(()),
        }
    }
}

/// A rejected row as an error message quotes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: u64,
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, field {}: {}", self.line, self.field, self.reason)
    }
}

/// Where table row `row` starts in the file: the output pass of a part starts reading there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub row: u64,
    pub byte: u64,
    pub line: u64,
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

fn cats<'r>(layout: &Layout, rec: &Rec<'r>) -> [&'r str; 5] {
    let mut out = [""; 5];
    for (o, &i) in out.iter_mut().zip(&layout.typical) {
        *o = rows::field(rec, i);
    }
    out
}

/// Scan `buf` (the whole file or one shard). `run_date` bounds order dates; `as_of` is the configured one.
pub fn scan(buf: &[u8], layout: &Layout, origin: Origin, run_date: NaiveDate, as_of: Option<NaiveDate>) -> Scan {
    scan_rows(Rows::new(buf, layout.encoding, &layout.header, origin), buf.len(), layout, run_date, as_of)
}

fn scan_rows(mut rows: Rows<'_>, len: usize, layout: &Layout, run_date: NaiveDate, as_of: Option<NaiveDate>) -> Scan {
    let ncat = layout.typical.len();
    let mut out = Scan { table: Table::new(ncat), fast: rows.is_fast(), ..Default::default() };
    let mut progress = cpo_common::progress::Rows::new("segment: read");
    // Rows of a 100-byte-wide file: reserve once instead of growing (and copying) the columns repeatedly.
    let guess = len / 64;
    let note = |out: &mut Scan, meta: &RowMeta, bad: Bad| {
        out.bad += 1;
        if out.first_bad.len() < FIRST_REASONS {
            out.first_bad.push(BadLine { line: meta.line, field: bad.field, reason: bad.reason });
        }
    };
    match layout.fields {
        Fields::Customers { .. } => {
            out.table.lines.reserve(guess);
            out.table.values.reserve(guess);
            out.table.digests.reserve(guess);
            out.table.id_ends.reserve(guess);
            while let Some(meta) = rows.next() {
                out.rows += 1;
                progress.tick();
                let rec = rows.rec();
                match rows::customer(layout, &rec, &meta) {
                    Ok(c) => {
                        if out.table.len() % CHECKPOINT_ROWS == 0 {
                            let row = out.table.len() as u64;
                            out.checkpoints.push(Checkpoint { row, byte: meta.start, line: meta.line });
                        }
                        let cats = cats(layout, &rec);
                        out.table.push(meta.line, c.id, c.values, row_digest(&rec), &cats[..ncat]);
                    }
                    Err(b) => note(&mut out, &meta, b),
                }
            }
            out.newlines = rows.newlines();
            out.too_long = rows.too_long();
        }
        Fields::Transactions { .. } => {
            let mut tx = TxScan::default();
            let mut last: Vec<NaiveDate> = Vec::new();
            let mut count: Vec<f64> = Vec::new();
            let mut sum: Vec<f64> = Vec::new();
            let mut latest: Option<NaiveDate> = None;
            while let Some(meta) = rows.next() {
                out.rows += 1;
                progress.tick();
                let rec = rows.rec();
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
                    Err(b) => note(&mut out, &meta, b),
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
            out.too_long = rows.too_long();
        }
    }
    out
}

/// [`scan`] on every core: a quote-free aggregate CSV is cut at newlines into one chunk per worker, each
/// chunk scanned on its own rayon task and the chunks' tables appended in order, line numbers shifted by the
/// newlines before each chunk — the sequential scan's result, row for row (tested). Anything else (a quote
/// somewhere, JSON lines, transactions, a small file) is scanned on one blocking thread.
pub async fn scan_par(
    buf: Bytes,
    layout: Arc<Layout>,
    origin: Origin,
    run_date: NaiveDate,
    as_of: Option<NaiveDate>,
) -> Result<Scan, StepError> {
    let parallel = par::workers() > 1
        && buf.len() >= PARALLEL_MIN_BYTES
        && layout.encoding == Encoding::Csv
        && matches!(layout.fields, Fields::Customers { .. });
    if parallel {
        if let Some(s) = scan_chunks(&buf, &layout, origin, par::workers(), run_date, as_of).await? {
            return Ok(s);
        }
    }
    par::blocking(move || scan(&buf, &layout, origin, run_date, as_of)).await
}

/// The chunked scan; `None` when a chunk is not quote-free (a newline may then sit inside a quoted field, so
/// only the `csv` reader can tell where rows end).
pub async fn scan_chunks(
    buf: &Bytes,
    layout: &Arc<Layout>,
    origin: Origin,
    chunks: usize,
    run_date: NaiveDate,
    as_of: Option<NaiveDate>,
) -> Result<Option<Scan>, StepError> {
    let cuts = chunk_cuts(buf, origin.has_header, chunks);
    let (buf, layout) = (buf.clone(), layout.clone());
    let scans: Vec<Option<Scan>> = par::blocking(move || {
        cuts.par_windows(2)
            .enumerate()
            .map(|(j, c)| {
                let chunk = &buf[c[0]..c[1]];
                if !quote_free(chunk) {
                    return None;
                }
                // Lines are numbered from 0 in later chunks and shifted once the newlines before them are known.
                let o = if j == 0 {
                    origin
                } else {
                    Origin { has_header: false, first_line: 0, first_byte: origin.first_byte + c[0] as u64 }
                };
                let rows = Rows::with_mode(chunk, Encoding::Csv, &layout.header, o, Some(true));
                Some(scan_rows(rows, chunk.len(), &layout, run_date, as_of))
            })
            .collect()
    })
    .await?;
    Ok(scans.into_iter().collect::<Option<Vec<Scan>>>().map(|s| join_chunks(s, origin)))
}

/// Offsets cutting `buf` into about `n` chunks, each after a newline and past the header line.
fn chunk_cuts(buf: &[u8], has_header: bool, n: usize) -> Vec<usize> {
    let body = if has_header {
        let b = buf.strip_prefix(crate::source::BOM).map_or(0, |_| crate::source::BOM.len());
        let first = buf[b..].iter().position(|c| !matches!(c, b'\r' | b'\n')).map_or(buf.len(), |p| b + p);
        memchr::memchr(b'\n', &buf[first..]).map_or(buf.len(), |p| first + p + 1)
    } else {
        0
    };
    let mut cuts = vec![0];
    for j in 1..n {
        let target = body + (buf.len() - body) * j / n;
        let last = cuts.last().copied().unwrap_or(0);
        match memchr::memchr(b'\n', &buf[target.max(last)..]) {
            Some(p) if target.max(last) + p + 1 < buf.len() => cuts.push(target.max(last) + p + 1),
            _ => break,
        }
    }
    cuts.push(buf.len());
    cuts.dedup();
    cuts
}

/// Append the chunks' scans in order, giving their rows file line numbers and table row numbers.
fn join_chunks(scans: Vec<Scan>, origin: Origin) -> Scan {
    let total: usize = scans.iter().map(|s| s.table.len()).sum();
    let mut it = scans.into_iter();
    let mut out = it.next().unwrap_or_default();
    out.table.reserve(total);
    let mut shift = origin.first_line + out.newlines;
    for mut s in it {
        if out.too_long.is_some() {
            // The chunks after a refused row do not count.
            break;
        }
        out.too_long = s.too_long.map(|l| l + shift);
        let before = out.table.len() as u64;
        s.table.lines.iter_mut().for_each(|l| *l += shift);
        for c in &mut s.checkpoints {
            c.line += shift;
            c.row += before;
        }
        for b in &mut s.first_bad {
            b.line += shift;
        }
        shift += s.newlines;
        out.rows += s.rows;
        out.bad += s.bad;
        out.first_bad.extend(s.first_bad);
        out.first_bad.truncate(FIRST_REASONS);
        out.checkpoints.extend(s.checkpoints);
        out.table.append(s.table);
    }
    out.newlines = shift - origin.first_line;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;
    use crate::source::sniff;
    use cpo_common::config::Segmentation;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default()
    }

    /// Generated customers with what real files have: CRLF rows, blank lines, bad rows, duplicates.
    fn messy(n: u64) -> Vec<u8> {
        let clean = crate::synth::customers_csv(n, 3);
        let mut out = Vec::new();
        for (i, line) in clean.split_inclusive(|b| *b == b'\n').enumerate() {
            match i % 97 {
                5 => out.extend_from_slice(b"\n\r\n"),
                11 => out.extend_from_slice(b"C1,x,Nowhere,Gold,not-a-number,1,2,0.1,0.1,Al,al@example.com\n"),
                13 => out.extend_from_slice(b"too,few\r\n"),
                _ => {}
            }
            if i % 89 == 7 {
                out.extend_from_slice(line);
            }
            if i % 2 == 0 && line.ends_with(b"\n") {
                out.extend_from_slice(&line[..line.len() - 1]);
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(line);
            }
        }
        out
    }

    fn layout(buf: &[u8]) -> Layout {
        let (enc, header) = sniff("f.csv", buf).unwrap_or_else(|e| panic!("{e}"));
        Layout::resolve("f.csv", enc, header, &Segmentation::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunked_scan_equals_the_sequential_scan() {
        let buf = Bytes::from(messy(3000));
        let layout = Arc::new(layout(&buf));
        let one = scan(&buf, &layout, Origin::WHOLE, day(), None);
        assert!(one.fast && one.bad > 0 && one.table.len() > 2900);
        for chunks in [1, 2, 3, 7] {
            let many = scan_chunks(&buf, &layout, Origin::WHOLE, chunks, day(), None).await.unwrap().unwrap();
            assert_eq!(many.table, one.table, "{chunks} chunks");
            assert_eq!((many.rows, many.bad, &many.first_bad), (one.rows, one.bad, &one.first_bad));
            assert_eq!(many.newlines, one.newlines);
            // Every checkpoint (the sequential ones and one per chunk) points at its row.
            assert!(many.checkpoints.len() >= one.checkpoints.len());
            for c in &many.checkpoints {
                assert_eq!(c.line, one.table.lines[c.row as usize]);
                let o = Origin { has_header: false, first_line: c.line, first_byte: c.byte };
                let mut rows = Rows::new(&buf[c.byte as usize..], layout.encoding, &layout.header, o);
                let meta = rows.next().unwrap();
                assert_eq!((meta.line, rows.rec().get(0).unwrap()), (c.line, one.table.id(c.row as usize)));
            }
        }
        // A quote anywhere: the chunks refuse, and the parallel entry point falls back to the csv reader.
        let mut quoted = buf.to_vec();
        quoted.extend_from_slice(b"\"C9\",1,x,Gold,1,1,1,0.1,0.1,\"Jo, Jr\",jo@example.com\n");
        let quoted = Bytes::from(quoted);
        assert!(scan_chunks(&quoted, &layout, Origin::WHOLE, 2, day(), None).await.unwrap().is_none());
        let par = scan_par(quoted.clone(), layout.clone(), Origin::WHOLE, day(), None).await.unwrap();
        let seq = scan(&quoted, &layout, Origin::WHOLE, day(), None);
        assert!(!par.fast);
        assert_eq!((par.table, par.rows), (seq.table, seq.rows));
    }

    #[test]
    fn chunks_start_after_the_header_and_at_row_starts() {
        let buf = b"\xEF\xBB\xBF\n\nh1,h2\nabcdef\nghijkl\nmnopqr\n";
        for n in 1..8 {
            let cuts = chunk_cuts(buf, true, n);
            assert_eq!((cuts[0], cuts[cuts.len() - 1]), (0, buf.len()));
            for c in &cuts[1..cuts.len() - 1] {
                assert!(*c >= 11 && buf[c - 1] == b'\n', "{n} chunks: cut at {c}");
            }
        }
    }
}

//! The output pass: re-read the rows in order and write each one where it belongs — a member line (scores,
//! segment, carried columns) into `customers/members-NNNNN.jsonl` parts, or a rejected line with its raw
//! text. Re-reading costs one more parse but keeps memory at the table's size instead of the rows'.
//!
//! Aggregate rows are written by every core at once ([`customers`]): the members are cut into pieces (a part,
//! or a fraction of one when there are fewer parts than cores), each piece starts reading at the scan's
//! nearest [`Checkpoint`] and skips to its first member, and whichever worker completes a part writes it.
//! Transactions (a customer's member line sits at its first order) are written in one pass ([`transactions`]).

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::NaiveDate;

use cpo_common::keys::{Key, RunKeys};
use cpo_common::store::{DynStore, Store};
use cpo_common::StepError;

use crate::analyze::REJECTED;
use crate::layout::{Fields, Layout};
use crate::par;
use crate::rows::{self, Bad};
use crate::scan::{Checkpoint, TxScan};
use crate::source::{Origin, Rec, RowMeta, Rows};
use crate::table::{Duplicate, Table};

/// Writes member lines by hand — the bytes `serde_json` wrote for the former `MemberRef` (the same keys, in the
/// same order, numbers formatted by the same `itoa`/`zmij` routines serde_json uses), which a test checks —
/// because the serializer's per-field machinery was the largest cost of writing 300-byte lines.
pub struct Encoder {
    /// Per carried column: its index and `"name":` as JSON.
    carried: Vec<(usize, Vec<u8>)>,
    /// Per segment code: `"name"` as JSON.
    segments: Vec<Vec<u8>>,
}

/// The values of one member line.
pub struct MemberLine<'a> {
    pub customer_id: &'a str,
    pub line: u64,
    /// [recency, frequency, monetary].
    pub values: [f64; 3],
    /// [R, F, M].
    pub scores: [u8; 3],
    pub segment: u8,
}

/// A JSON string: copied when nothing needs escaping, else escaped by serde_json itself.
fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Serialising a `str` into a `Vec` cannot fail (no I/O, no map keys).
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

fn json_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
    } else {
        // What serde_json writes for a non-finite float.
        out.extend_from_slice(b"null");
    }
}

fn json_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

impl Encoder {
    pub fn new(layout: &Layout, names: &[String]) -> Self {
        let key = |name: &str| {
            let mut k = Vec::new();
            json_str(&mut k, name);
            k.push(b':');
            k
        };
        let carried = layout.carried.iter().map(|&i| (i, key(&layout.header[i]))).collect();
        let segments = names
            .iter()
            .map(|n| {
                let mut v = Vec::new();
                json_str(&mut v, n);
                v
            })
            .collect();
        Encoder { carried, segments }
    }

    /// Append one member line (with its newline); `rec` is the row the carried columns come from.
    pub fn member(&self, out: &mut Vec<u8>, m: &MemberLine<'_>, rec: &Rec<'_>) {
        out.extend_from_slice(b"{\"customer_id\":");
        json_str(out, m.customer_id);
        out.extend_from_slice(b",\"line\":");
        json_u64(out, m.line);
        out.extend_from_slice(b",\"recency\":");
        json_f64(out, m.values[0]);
        out.extend_from_slice(b",\"frequency\":");
        json_f64(out, m.values[1]);
        out.extend_from_slice(b",\"monetary\":");
        json_f64(out, m.values[2]);
        out.extend_from_slice(b",\"r\":");
        json_u64(out, m.scores[0] as u64);
        out.extend_from_slice(b",\"f\":");
        json_u64(out, m.scores[1] as u64);
        out.extend_from_slice(b",\"m\":");
        json_u64(out, m.scores[2] as u64);
        out.extend_from_slice(b",\"segment\":");
        out.extend_from_slice(self.segments.get(m.segment as usize).map_or(&b"null"[..], |s| s));
        let mut any = false;
        for (i, key) in &self.carried {
            let v = rows::trim(rows::field(rec, *i));
            if v.is_empty() {
                continue;
            }
            out.extend_from_slice(if any { b"," } else { b",\"fields\":{" });
            any = true;
            out.extend_from_slice(key);
            json_str(out, v);
        }
        if any {
            out.push(b'}');
        }
        out.extend_from_slice(b"}\n");
    }
}

/// One line of `rejected.jsonl`, borrowed (same JSON as `cpo_common::model::segment::Rejected`).
#[derive(serde::Serialize)]
struct RejectedRef<'a> {
    file: &'a str,
    line: u64,
    field: &'a str,
    reason: &'a str,
    raw: Cow<'a, str>,
}

fn reject(out: &mut Vec<u8>, file: &str, meta: &RowMeta, bad: &Bad, raw: &[u8]) -> Result<(), StepError> {
    let r = RejectedRef {
        file,
        line: meta.line,
        field: &bad.field,
        reason: &bad.reason,
        raw: String::from_utf8_lossy(raw),
    };
    serde_json::to_writer(&mut *out, &r)?;
    out.push(b'\n');
    Ok(())
}

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

    /// Write the rejected lines to `key` (always, so an empty file says "nothing was rejected").
    pub async fn put_rejected(&mut self, key: &Key) -> Result<(), StepError> {
        self.store.put(key, Bytes::from(std::mem::take(&mut self.rejected))).await?;
        Ok(())
    }
}

/// What the analysis decided for the rows of this slice (indices relative to the slice's table rows).
#[derive(Debug, Clone, Default)]
pub struct Decisions {
    pub scores: Vec<[u8; 3]>,
    pub segment: Vec<u8>,
    pub names: Vec<String>,
    /// Sorted by row.
    pub duplicates: Vec<Duplicate>,
}

/// The slice of the input the output pass reads, as the scan saw it.
pub struct Input {
    pub buf: Bytes,
    pub layout: Layout,
    pub origin: Origin,
    /// The scan read the slice with the quote-free fast path.
    pub fast: bool,
    /// From the scan, sorted by row (may be empty: every piece then reads from the slice's start).
    pub checkpoints: Vec<Checkpoint>,
    /// Input file name, for rejected lines.
    pub file: String,
}

/// What the output pass wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    pub parts: Vec<String>,
    pub members: u64,
    pub rejected: Vec<u8>,
    pub rejected_rows: u64,
}

/// A run of consecutive members (and the rejected rows among and after them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    /// Part (counted from the slice's first part) the members go to; `None` when the slice has no members.
    part: Option<usize>,
    /// First table row (0 for the first piece, which also takes the rejected rows before the first member).
    from: usize,
    /// Table row where the next piece starts (`None`: to the end of the slice).
    to: Option<usize>,
    members: usize,
}

/// Cut `members` (in table order) into pieces: one per part, or `split` per part when there are too few parts
/// to keep every worker busy.
fn plan(segment: &[u8], part_size: usize, workers: usize) -> (Vec<Piece>, usize) {
    let total = segment.iter().filter(|s| **s != REJECTED).count();
    let part_size = part_size.max(1);
    let parts = total.div_ceil(part_size);
    if parts == 0 {
        return (vec![Piece { part: None, from: 0, to: None, members: 0 }], 0);
    }
    let split = if parts >= 2 * workers { 1 } else { workers.max(1) };
    // (part, first member, members) of each piece, in member order.
    let mut cuts = Vec::new();
    for k in 0..parts {
        let (lo, hi) = (k * part_size, ((k + 1) * part_size).min(total));
        for q in 0..split {
            let (a, b) = (lo + (hi - lo) * q / split, lo + (hi - lo) * (q + 1) / split);
            if a < b {
                cuts.push((k, a, b - a));
            }
        }
    }
    // Table row of each piece's first member.
    let mut from = Vec::with_capacity(cuts.len());
    let mut next = cuts.iter().map(|c| c.1).peekable();
    let mut member = 0;
    for (row, s) in segment.iter().enumerate() {
        if *s == REJECTED {
            continue;
        }
        if next.next_if_eq(&member).is_some() {
            from.push(row);
        }
        member += 1;
    }
    let pieces = cuts
        .iter()
        .enumerate()
        .map(|(i, &(k, _, n))| Piece {
            part: Some(k),
            from: if i == 0 { 0 } else { from[i] },
            to: from.get(i + 1).copied(),
            members: n,
        })
        .collect();
    (pieces, parts)
}

#[derive(Default)]
struct PieceOut {
    members: Vec<u8>,
    count: usize,
    rejected: Vec<u8>,
    rejected_rows: u64,
}

/// Read one piece's rows and write its member lines and rejected lines.
fn run_piece(
    input: &Input,
    dec: &Decisions,
    enc: &Encoder,
    p: &Piece,
    mut members: Vec<u8>,
) -> Result<PieceOut, StepError> {
    let layout = &input.layout;
    // Start at the last checkpoint at or before the piece's first row (or at the slice's start).
    let cp = input.checkpoints.partition_point(|c| c.row as usize <= p.from).checked_sub(1);
    let (slice, origin, mut ti) = match cp.map(|i| input.checkpoints[i]) {
        Some(c) if c.row > 0 => {
            let outside = || StepError::internal(format!("checkpoint at byte {} is outside the input slice", c.byte));
            let at = c.byte.checked_sub(input.origin.first_byte).ok_or_else(outside)? as usize;
            let slice = input.buf.get(at..).ok_or_else(outside)?;
            (slice, Origin { has_header: false, first_line: c.line, first_byte: c.byte }, c.row as usize)
        }
        _ => (&input.buf[..], input.origin, 0),
    };
    let mut rows = Rows::with_mode(slice, layout.encoding, &layout.header, origin, Some(input.fast));
    let id_field = &layout.header[layout.id];
    let mut dup = dec.duplicates[dec.duplicates.partition_point(|d| (d.row as usize) < p.from)..].iter().peekable();
    members.clear();
    // Member lines run about four times as long as the input rows.
    members.reserve(p.members * (input.buf.len() / dec.segment.len().max(1) * 4 + 64));
    let mut out = PieceOut { members, ..Default::default() };
    // Rejected rows before the piece's first row belong to the piece before.
    let mut started = ti == 0 && p.from == 0;
    let mut progress = cpo_common::progress::Rows::new("segment: write");
    while let Some(meta) = rows.next() {
        progress.tick();
        let rec = rows.rec();
        match rows::customer(layout, &rec, &meta) {
            Ok(c) => {
                let i = ti;
                ti += 1;
                if i < p.from {
                    continue;
                }
                if Some(i) == p.to {
                    break;
                }
                started = true;
                let seg = dec.segment.get(i).copied().unwrap_or(REJECTED);
                if seg == REJECTED {
                    let reason = match dup.next_if(|x| x.row as usize == i) {
                        Some(x) => x.reason.as_str(),
                        None => "rejected",
                    };
                    let bad = Bad { field: id_field.clone(), reason: reason.to_string() };
                    reject(&mut out.rejected, &input.file, &meta, &bad, rows.raw(&meta))?;
                    out.rejected_rows += 1;
                    continue;
                }
                let m = MemberLine {
                    customer_id: c.id,
                    line: meta.line,
                    values: c.values,
                    scores: dec.scores.get(i).copied().unwrap_or_default(),
                    segment: seg,
                };
                enc.member(&mut out.members, &m, &rec);
                out.count += 1;
            }
            Err(b) if started => {
                reject(&mut out.rejected, &input.file, &meta, &b, rows.raw(&meta))?;
                out.rejected_rows += 1;
            }
            Err(_) => {}
        }
    }
    if let Some(line) = rows.too_long() {
        return Err(crate::source::too_long(&input.file, line, crate::source::limits().max_line_bytes));
    }
    if out.count != p.members {
        return Err(StepError::internal(format!(
            "segment output pass: {} members where the analysis counted {} (rows from {})",
            out.count, p.members, p.from
        )));
    }
    Ok(out)
}

/// A part whose pieces are being written by several workers.
struct Slot {
    pieces: Vec<Option<Vec<u8>>>,
    left: usize,
}

/// What the workers of one output pass share.
struct Shared {
    input: Arc<Input>,
    dec: Arc<Decisions>,
    enc: Encoder,
    pieces: Vec<Piece>,
    slots: Mutex<Vec<Slot>>,
    part_keys: Vec<Key>,
    store: DynStore,
    rt: tokio::runtime::Handle,
    /// Next piece to take.
    next: AtomicUsize,
    /// Set by a worker that failed, so the others stop taking pieces.
    stop: AtomicBool,
}

impl Shared {
    /// One worker: take pieces in order until none is left; write each part whose last piece it finished.
    fn work(&self) -> Result<Vec<(usize, PieceOut)>, StepError> {
        let mut done = Vec::new();
        // The buffer of the last part this worker wrote, reused so its pages are not faulted in again.
        let mut spare = Vec::new();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.pieces.len() || self.stop.load(Ordering::Relaxed) {
                return Ok(done);
            }
            match self.piece(i, std::mem::take(&mut spare)) {
                Ok((out, buf)) => {
                    done.push((i, out));
                    spare = buf;
                }
                Err(e) => {
                    self.stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    }

    fn piece(&self, i: usize, buf: Vec<u8>) -> Result<(PieceOut, Vec<u8>), StepError> {
        let p = &self.pieces[i];
        let mut out = run_piece(&self.input, &self.dec, &self.enc, p, buf)?;
        let Some(k) = p.part else { return Ok((out, Vec::new())) };
        let complete = {
            let mut slots = self.slots.lock().map_err(|_| StepError::internal("a segment worker panicked"))?;
            let slot = &mut slots[k];
            let at = self.pieces[..i].iter().filter(|q| q.part == Some(k)).count();
            slot.pieces[at] = Some(std::mem::take(&mut out.members));
            slot.left -= 1;
            (slot.left == 0).then(|| std::mem::take(&mut slot.pieces))
        };
        let Some(pieces) = complete else { return Ok((out, Vec::new())) };
        let mut pieces = pieces.into_iter().flatten();
        let mut body = pieces.next().unwrap_or_default();
        for piece in pieces {
            body.extend_from_slice(&piece);
        }
        let body = Bytes::from(body);
        // A blocking thread may wait for the store's future (it is not an async worker thread).
        self.rt.block_on(self.store.put(&self.part_keys[k], body.clone()))?;
        // The store has let go of the body: keep its allocation for the next piece.
        let spare = body.try_into_mut().map(Vec::from).unwrap_or_default();
        Ok((out, spare))
    }
}

/// Output pass over aggregate rows on every core. Parts are numbered from `first_part`; memory is at most one
/// piece per worker plus the part being assembled.
pub async fn customers(
    store: DynStore,
    keys: &RunKeys,
    input: Arc<Input>,
    dec: Arc<Decisions>,
    part_size: usize,
    first_part: usize,
) -> Result<Written, StepError> {
    let (pieces, parts) = plan(&dec.segment, part_size, par::workers());
    let mut slots: Vec<Slot> = (0..parts).map(|_| Slot { pieces: Vec::new(), left: 0 }).collect();
    for p in &pieces {
        if let Some(k) = p.part {
            slots[k].pieces.push(None);
            slots[k].left += 1;
        }
    }
    let workers = par::workers().min(pieces.len()).max(1);
    let shared = Arc::new(Shared {
        enc: Encoder::new(&input.layout, &dec.names),
        input,
        dec,
        pieces,
        slots: Mutex::new(slots),
        part_keys: (0..parts).map(|k| keys.members(first_part + k)).collect(),
        store,
        rt: tokio::runtime::Handle::current(),
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let shared = shared.clone();
            tokio::task::spawn_blocking(move || shared.work())
        })
        .collect();
    let mut done = Vec::new();
    let mut first_err = None;
    for t in tasks {
        match par::join(t).await.and_then(|r| r) {
            Ok(d) => done.extend(d),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    done.sort_by_key(|(i, _)| *i);
    let mut w = Written { parts: shared.part_keys.iter().map(|k| k.to_string()).collect(), ..Default::default() };
    for (_, out) in done {
        w.members += out.count as u64;
        w.rejected.extend_from_slice(&out.rejected);
        w.rejected_rows += out.rejected_rows;
    }
    Ok(w)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::analyze;
    use crate::layout::Encoding;
    use crate::scan::scan;
    use crate::table::dedup;
    use cpo_common::config::Segmentation;
    use serde::ser::{SerializeMap, Serializer};

    /// The member line as serde_json wrote it before the hand-written encoder (the reference).
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
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        #[serde(serialize_with = "ordered")]
        fields: Vec<(&'a str, &'a str)>,
    }

    fn ordered<S: Serializer>(v: &[(&str, &str)], s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, x) in v {
            m.serialize_entry(k, x)?;
        }
        m.end()
    }

    fn reference(layout: &Layout, rec: &Rec<'_>, m: &MemberLine<'_>, names: &[String]) -> Vec<u8> {
        let fields = layout
            .carried
            .iter()
            .map(|&i| (layout.header[i].as_str(), rows::field(rec, i).trim()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let r = MemberRef {
            customer_id: m.customer_id,
            line: m.line,
            recency: m.values[0],
            frequency: m.values[1],
            monetary: m.values[2],
            r: m.scores[0],
            f: m.scores[1],
            m: m.scores[2],
            segment: &names[m.segment as usize],
            fields,
        };
        let mut out = serde_json::to_vec(&r).unwrap_or_default();
        out.push(b'\n');
        out
    }

    fn layout(header: &str) -> Layout {
        let h = header.split(',').map(String::from).collect();
        Layout::resolve("f.csv", Encoding::Csv, h, &Segmentation::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn member_lines_are_the_bytes_serde_json_wrote() {
        let l = layout("customer_id,purchase_frequency,avg_order_value,last_engagement_days,na\"me,tier,e\\mail");
        let names: Vec<String> = vec!["Champions".into(), "Can't \"Lose\"".into(), "Ünïcode\u{1}".into()];
        let enc = Encoder::new(&l, &names);
        let values = [
            [0.0, 1.0, 2.5],
            [1e21, 1e-7, 123456789.123],
            [f64::MAX, f64::MIN_POSITIVE, 0.1 + 0.2],
            [f64::INFINITY, f64::NAN, 7.0],
        ];
        let ids = ["C1", "q\"uote", "back\\slash", "tab\there", "ctl\u{7f}\u{1f}", "ünï\u{2028}"];
        let carried: [[&[u8]; 3]; 4] = [
            [b"Jo", b"Gold", b"jo@example.com"],
            [b"", b"  ", b""],
            [b" \"Al\" ", b"\\", b"\x1b[31m"],
            [b"\xc3\xa9", b"", b"x"],
        ];
        for (n, id) in ids.iter().enumerate() {
            for (k, c) in carried.iter().enumerate() {
                let fields: Vec<&[u8]> = vec![id.as_bytes(), b"1", b"1", b"1", c[0], c[1], c[2]];
                let mut data = Vec::new();
                let mut spans = Vec::new();
                for f in &fields {
                    spans.push((data.len(), data.len() + f.len()));
                    data.extend_from_slice(f);
                }
                let rec = Rec::new(&data, &spans);
                let m = MemberLine {
                    customer_id: id,
                    line: [2, 999_999_999_999, u64::MAX][n % 3],
                    values: values[(n + k) % values.len()],
                    scores: [1, 5, (n % 5) as u8 + 1],
                    segment: (k % names.len()) as u8,
                };
                let mut got = Vec::new();
                enc.member(&mut got, &m, &rec);
                let want = reference(&l, &rec, &m, &names);
                assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn pieces_cover_every_member_once() {
        let seg: Vec<u8> = (0..1000).map(|i| if i % 7 == 3 { REJECTED } else { (i % 3) as u8 }).collect();
        let members = seg.iter().filter(|s| **s != REJECTED).count();
        for (part_size, workers) in [(100, 2), (1000, 2), (1, 3), (300, 4), (5000, 1)] {
            let (pieces, parts) = plan(&seg, part_size, workers);
            assert_eq!(parts, members.div_ceil(part_size));
            assert_eq!(pieces.iter().map(|p| p.members).sum::<usize>(), members);
            assert_eq!(pieces[0].from, 0);
            for w in pieces.windows(2) {
                assert_eq!(w[0].to, Some(w[1].from));
                assert!(w[0].part <= w[1].part && seg[w[1].from] != REJECTED);
            }
            assert_eq!(pieces.last().map(|p| p.to), Some(None));
            for k in 0..parts {
                let n: usize = pieces.iter().filter(|p| p.part == Some(k)).map(|p| p.members).sum();
                assert_eq!(n, part_size.min(members - k * part_size), "part {k}");
            }
            if parts < 2 * workers {
                assert!(pieces.len() >= parts * workers.min(part_size) / 2, "{part_size} {workers}");
            }
        }
        assert_eq!(plan(&[REJECTED; 3], 10, 2), (vec![Piece { part: None, from: 0, to: None, members: 0 }], 0));
    }

    /// Member and rejected lines of `buf` in one sequential pass with serde_json: the output before this
    /// module wrote it in pieces on every core.
    fn one_pass(buf: &[u8], l: &Layout, dec: &Decisions) -> (Vec<u8>, Vec<u8>) {
        let mut rows = Rows::with_mode(buf, l.encoding, &l.header, Origin::WHOLE, Some(false));
        let (mut members, mut rejected, mut ti) = (Vec::new(), Vec::new(), 0usize);
        let mut dup = dec.duplicates.iter().peekable();
        while let Some(meta) = rows.next() {
            let rec = rows.rec();
            match rows::customer(l, &rec, &meta) {
                Ok(c) => {
                    let i = ti;
                    ti += 1;
                    if dec.segment[i] == REJECTED {
                        let reason =
                            dup.next_if(|d| d.row as usize == i).map_or("rejected".into(), |d| d.reason.clone());
                        let bad = Bad { field: l.header[l.id].clone(), reason };
                        reject(&mut rejected, "f.csv", &meta, &bad, rows.raw(&meta)).unwrap_or_default();
                        continue;
                    }
                    let m = MemberLine {
                        customer_id: c.id,
                        line: meta.line,
                        values: c.values,
                        scores: dec.scores[i],
                        segment: dec.segment[i],
                    };
                    members.extend(reference(l, &rec, &m, &dec.names));
                }
                Err(b) => reject(&mut rejected, "f.csv", &meta, &b, rows.raw(&meta)).unwrap_or_default(),
            }
        }
        (members, rejected)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pieces_on_every_core_write_what_one_pass_writes() {
        let mut buf = crate::synth::customers_csv(2500, 5);
        // Bad rows at the very start and end, a conflicting and an exact duplicate, blank lines, a quote.
        let body = buf.split_off(buf.iter().position(|b| *b == b'\n').unwrap_or(0) + 1);
        buf.extend_from_slice(b"bad,row\n\n");
        buf.extend_from_slice(&body);
        buf.extend_from_slice(b"C00000007,40,Boston,Gold,9,9,9,0.1,0.1,Al,al@example.com\r\n");
        buf.extend_from_slice(&body[..200]);
        buf.extend_from_slice(b"\nC00000009,4,Boston,Gold,-1,9,9,0.1,0.1,Al,al@example.com");
        let store: DynStore = cpo_common::store::open("mem://").unwrap_or_else(|e| panic!("{e}"));
        let keys = RunKeys::new("weekly-20261126-000000000000").unwrap_or_else(|e| panic!("{e}"));
        // The same customers as JSON lines (with a line that is not JSON and a blank line).
        let jsonl = {
            let text = String::from_utf8_lossy(&crate::synth::customers_csv(800, 5)).into_owned();
            let mut lines = text.lines();
            let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
            let mut out = String::new();
            for (n, line) in lines.enumerate() {
                let obj: serde_json::Map<String, serde_json::Value> =
                    header.iter().zip(line.split(',')).map(|(k, v)| (k.to_string(), v.into())).collect();
                out.push_str(&serde_json::Value::Object(obj).to_string());
                out.push_str(["\n", "\n\n", "\nnot json\n"][n % 499 % 3]);
            }
            // Exact repeats: duplicates to reject.
            let again: String = out.lines().take(20).map(|l| format!("{l}\n")).collect();
            out.push_str(&again);
            out.into_bytes()
        };
        for case in ["csv", "quoted", "jsonl"] {
            if case == "quoted" {
                buf.extend_from_slice(b"\nC99,1,\"Salt Lake City, UT\",Gold,1,1,1,0.1,0.1,Al,al@example.com\n");
            }
            if case == "jsonl" {
                buf = jsonl.clone();
            }
            let quoted = case != "csv";
            let l = {
                let (enc, h) = crate::source::sniff("f.csv", &buf).unwrap_or_else(|e| panic!("{e}"));
                Layout::resolve("f.csv", enc, h, &Segmentation::default()).unwrap_or_else(|e| panic!("{e}"))
            };
            let sc = scan(&buf, &l, Origin::WHOLE, chrono::NaiveDate::MAX, None);
            assert_eq!(sc.fast, !quoted);
            let (keep, duplicates) = dedup(&sc.table);
            assert!(duplicates.len() >= 4, "{case}");
            let a = analyze(&sc.table, &keep, &[], &Segmentation::default()).unwrap_or_else(|e| panic!("{e}"));
            let dec = Decisions { scores: a.scores, segment: a.segment, names: a.names, duplicates };
            let (members, rejected) = one_pass(&buf, &l, &dec);
            let dec = Arc::new(dec);
            for part_size in [100_000, 1000, 333, 50] {
                // Without checkpoints every piece reads from the start: only for a few pieces.
                let without = (part_size >= 333).then(Vec::new);
                for checkpoints in std::iter::once(sc.checkpoints.clone()).chain(without) {
                    let input = Arc::new(Input {
                        buf: Bytes::from(buf.clone()),
                        layout: l.clone(),
                        origin: Origin::WHOLE,
                        fast: sc.fast,
                        checkpoints,
                        file: "f.csv".into(),
                    });
                    let w = customers(store.clone(), &keys, input, dec.clone(), part_size, 3).await.unwrap();
                    let mut all = Vec::new();
                    for (k, p) in w.parts.iter().enumerate() {
                        assert_eq!(p, &keys.members(3 + k).to_string());
                        let body = store.get(&Key::new(p.clone()).unwrap_or_else(|e| panic!("{e}"))).await.unwrap();
                        let lines = body.iter().filter(|b| **b == b'\n').count();
                        assert!(lines == part_size || k + 1 == w.parts.len(), "part {k} has {lines} lines");
                        all.extend_from_slice(&body);
                    }
                    assert_eq!(w.members as usize, members.iter().filter(|b| **b == b'\n').count());
                    assert!(all == members, "members differ (part size {part_size}, quoted {quoted})");
                    assert_eq!(String::from_utf8_lossy(&w.rejected), String::from_utf8_lossy(&rejected));
                    assert_eq!(w.rejected_rows as usize, rejected.iter().filter(|b| **b == b'\n').count());
                }
            }
        }
    }
}

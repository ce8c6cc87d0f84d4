//! The output pass over aggregate rows on every core: the members are planned into pieces, each piece read
//! from the scan's nearest checkpoint, and a part written by whichever worker completes it.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rayon::prelude::*;

use cpo_common::keys::{Key, RunKeys};
use cpo_common::store::DynStore;
use cpo_common::StepError;

use super::{reject, Decisions, Encoder, Input, MemberLine, Written};
use crate::analyze::REJECTED;
use crate::par;
use crate::rows::{self, Bad};
use crate::source::{Origin, Rows};

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
struct Shared<'a> {
    input: &'a Input,
    dec: &'a Decisions,
    enc: Encoder,
    pieces: Vec<Piece>,
    slots: Mutex<Vec<Slot>>,
    part_keys: Vec<Key>,
    store: DynStore,
    rt: tokio::runtime::Handle,
}

impl Shared<'_> {
    /// Write piece `i` (into `buf`, a spare allocation), and its part when this was the part's last piece.
    /// Returns the piece's output and a buffer to reuse.
    fn piece(&self, i: usize, buf: Vec<u8>) -> Result<(PieceOut, Vec<u8>), StepError> {
        let p = &self.pieces[i];
        let mut out = run_piece(self.input, self.dec, &self.enc, p, buf)?;
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
        // A rayon thread may wait for the store's future (it is not an async worker thread).
        self.rt.block_on(self.store.put(&self.part_keys[k], body.clone()))?;
        // The store has let go of the body: keep its allocation for the next piece.
        let spare = body.try_into_mut().map(Vec::from).unwrap_or_default();
        Ok((out, spare))
    }
}

/// Output pass over aggregate rows on every core. Parts are numbered from `first_part`; memory is at most one
/// piece per worker plus the parts being assembled.
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
    let part_keys: Vec<Key> = (0..parts).map(|k| keys.members(first_part + k)).collect();
    let parts_written = part_keys.iter().map(|k| k.to_string()).collect();
    let rt = tokio::runtime::Handle::current();
    let done = par::blocking(move || {
        let shared = Shared {
            enc: Encoder::new(&input.layout, &dec.names),
            input: &input,
            dec: &dec,
            pieces,
            slots: Mutex::new(slots),
            part_keys,
            store,
            rt,
        };
        // Each worker reuses the buffer of the last part it wrote, so its pages are not faulted in again. The
        // first error stops the pass.
        (0..shared.pieces.len())
            .into_par_iter()
            .map_init(Vec::new, |spare, i| {
                let (out, buf) = shared.piece(i, std::mem::take(spare))?;
                *spare = buf;
                Ok(out)
            })
            .collect::<Result<Vec<PieceOut>, StepError>>()
    })
    .await??;
    let mut w = Written { parts: parts_written, ..Default::default() };
    for out in done {
        w.members += out.count as u64;
        w.rejected.extend_from_slice(&out.rejected);
        w.rejected_rows += out.rejected_rows;
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::super::encoder::reference::reference;
    use super::*;
    use crate::analyze::analyze;
    use crate::layout::Layout;
    use crate::scan::scan;
    use crate::table::dedup;
    use cpo_common::config::Segmentation;

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

    /// Member and rejected lines of `buf` in one sequential pass with serde_json: what the pieces written
    /// on every core must add up to.
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

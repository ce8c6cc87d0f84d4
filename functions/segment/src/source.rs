//! Rows of the input, streamed from a byte slice (the whole object, or one shard of it): CSV through the
//! `csv` crate (UTF-8 BOM, CRLF, quoted fields, a missing final newline), or JSON lines turned into the same
//! `ByteRecord` shape so validation is written once. Every row keeps its 1-based line number and raw text.
//!
//! A hostile file costs bounded memory: the header may have at most [`Limits::max_columns`] columns and a row
//! at most [`Limits::max_line_bytes`] bytes, checked before the row is split into fields (a longer row stops
//! the reading, and the step refuses the file naming the line). Errors quote no customer data.

use std::io;

use cpo_common::pii::{self, json_reason, Limits};
use cpo_common::StepError;
use csv::ByteRecord;

use crate::layout::Encoding;

pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The process's limits ([`pii::limits`]); an invalid setting was refused when the step opened its input.
pub fn limits() -> Limits {
    pii::limits().unwrap_or_default()
}

/// The error for a row longer than the line limit (`line` is where it starts).
pub fn too_long(file: &str, line: u64, max_line_bytes: usize) -> StepError {
    StepError::input(format!(
        "{file}: line {line} is longer than the limit of {max_line_bytes} bytes ({}; in CSV, a quote left open \
         also joins the lines after it into one row): fix or split it, or raise the limit",
        pii::MAX_LINE_BYTES_ENV
    ))
}

fn too_wide(file: &str, line: u64, max_columns: usize) -> StepError {
    StepError::input(format!(
        "{file}: line {line}: the header has more columns than the limit of {max_columns} ({}); is line {line} a \
         header?",
        pii::MAX_COLUMNS_ENV
    ))
}

/// The end of the first line of `buf` (terminator excluded) when it is at most `max` bytes long.
fn first_line_end(buf: &[u8], max: usize) -> Option<usize> {
    let window = &buf[..buf.len().min(max.saturating_add(2))];
    let end = match memchr_nl(window) {
        Some(i) => i,
        None if window.len() == buf.len() => buf.len(),
        None => return None,
    };
    let content = if end > 0 && buf[end - 1] == b'\r' { end - 1 } else { end };
    (content <= max).then_some(content)
}

/// The encoding and header of a file, read from its first line, within the process's [`limits`].
pub fn sniff(file: &str, buf: &[u8]) -> Result<(Encoding, Vec<String>), StepError> {
    sniff_with(file, buf, limits())
}

/// [`sniff`] within `limits`: a first line longer than the line limit, or a header wider than the column
/// limit, is refused after reading at most the line limit's bytes.
pub fn sniff_with(file: &str, buf: &[u8], limits: Limits) -> Result<(Encoding, Vec<String>), StepError> {
    let body = buf.strip_prefix(BOM).unwrap_or(buf);
    let Some(first) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(StepError::input(format!("{file}: the file is empty (no header, no rows)")));
    };
    let max = limits.max_line_bytes;
    // Blank lines before the header count.
    let line = 1 + memchr::memchr_iter(b'\n', &body[..first]).count() as u64;
    let rest = &body[first..];
    if rest[0] == b'{' {
        let end = first_line_end(rest, max).ok_or_else(|| too_long(file, line, max))?;
        let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&rest[..end])
            .map_err(|e| StepError::input(format!("{file}: line {line}: {}", json_reason(&e))))?;
        if obj.len() > limits.max_columns {
            return Err(too_wide(file, line, limits.max_columns));
        }
        return Ok((Encoding::Jsonl, obj.keys().cloned().collect()));
    }
    // The header as the csv reader sees it (a quoted name may hold a newline), from at most the line limit's
    // bytes: a longer header is cut there, and refused once its width is known to be within the limit.
    let window = &body[..body.len().min(first + max.saturating_add(2))];
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(window);
    let mut rec = ByteRecord::new();
    match rdr.read_byte_record(&mut rec) {
        Ok(true) => {}
        Ok(false) => return Err(StepError::input(format!("{file}: the file is empty (no header, no rows)"))),
        Err(e) => {
            let e = pii::excerpt(&e.to_string(), pii::MAX_INPUT_CHARS);
            return Err(StepError::input(format!("{file}: line {line}: unreadable header: {e}")));
        }
    }
    if rec.len() > limits.max_columns {
        return Err(too_wide(file, line, limits.max_columns));
    }
    // The header's bytes, terminator excluded (all of the window when the header was cut at its end).
    let read = (rdr.position().byte() as usize).clamp(first, window.len());
    let mut used = &window[first..read];
    while let [rest @ .., b'\n' | b'\r'] = used {
        used = rest;
    }
    if used.len() > max {
        return Err(too_long(file, line, max));
    }
    let header = rec
        .iter()
        .map(|f| {
            std::str::from_utf8(f)
                .map(|s| s.trim().to_string())
                .map_err(|_| StepError::input(format!("{file}: line {line}: the header is not valid UTF-8")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((Encoding::Csv, header))
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

/// Where a slice starts in the file: shard 0 holds the header; later shards start at a row boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub has_header: bool,
    /// Line number of the slice's first byte.
    pub first_line: u64,
    /// Byte offset of the slice in the file.
    pub first_byte: u64,
}

impl Origin {
    pub const WHOLE: Origin = Origin { has_header: true, first_line: 1, first_byte: 0 };
}

/// One row's fields, borrowed: from the input itself on the quote-free fast path, from the `csv` reader's
/// record otherwise. `text` is the whole row checked as UTF-8 once, so fields are sliced, not re-validated.
#[derive(Debug, Clone, Copy)]
pub struct Rec<'r> {
    data: &'r [u8],
    spans: &'r [(usize, usize)],
    text: Option<&'r str>,
}

impl<'r> Rec<'r> {
    pub fn new(data: &'r [u8], spans: &'r [(usize, usize)]) -> Self {
        Rec { data, spans, text: std::str::from_utf8(data).ok() }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Field `i` as bytes.
    pub fn get(&self, i: usize) -> Option<&'r [u8]> {
        let &(s, e) = self.spans.get(i)?;
        self.data.get(s..e)
    }

    /// Field `i` as text; `None` when absent or not valid UTF-8.
    pub fn str(&self, i: usize) -> Option<&'r str> {
        let &(s, e) = self.spans.get(i)?;
        match self.text {
            // `get` also refuses a span that splits a character (possible when the csv reader unquoted it).
            Some(t) => t.get(s..e),
            None => std::str::from_utf8(self.data.get(s..e)?).ok(),
        }
    }

    /// The first field that is not valid UTF-8.
    pub fn first_invalid_utf8(&self) -> Option<usize> {
        if let Some(t) = self.text {
            if self.spans.iter().all(|&(s, e)| t.is_char_boundary(s) && t.is_char_boundary(e)) {
                return None;
            }
        }
        (0..self.len()).find(|&i| self.str(i).is_none())
    }

    /// Every field's bytes at once (on the fast path with the separators between them).
    pub fn bytes(&self) -> &'r [u8] {
        self.data
    }

    pub fn iter(&self) -> impl Iterator<Item = &'r [u8]> + '_ {
        self.spans.iter().map(|&(s, e)| &self.data[s..e])
    }
}

/// A streaming reader of rows.
pub struct Rows<'a> {
    buf: &'a [u8],
    origin: Origin,
    inner: Inner<'a>,
    /// Number of header fields (JSON lines: the keys of the first object).
    header: Vec<String>,
    /// Field spans of the current row (into `buf` on the fast path, into `rec` otherwise).
    spans: Vec<(usize, usize)>,
    rec: ByteRecord,
    /// Bytes a row may have (its terminator not counted).
    max_line: usize,
    /// The line of a row longer than `max_line`; reading stopped there.
    too_long: Option<u64>,
}

/// The `csv` reader's input: at most `limit` bytes of `buf` (the current row's start plus the line limit), so
/// a row the reader would otherwise grow without end (a quote left open) stops there; `cut` tells it did.
struct Capped<'a> {
    buf: &'a [u8],
    pos: usize,
    limit: usize,
    cut: bool,
}

impl io::Read for Capped<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let end = self.buf.len().min(self.limit);
        if self.pos >= end {
            self.cut |= self.pos < self.buf.len();
            return Ok(0);
        }
        let n = out.len().min(end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

enum Inner<'a> {
    /// Quote-free CSV (see [`quote_free`]): rows split with `memchr`, fields borrowed from the input.
    /// `row` is the current row's span; `line` counts the newlines passed so far.
    Fast {
        pos: usize,
        line: u64,
        row: (usize, usize),
    },
    Csv(Box<csv::Reader<Capped<'a>>>),
    Jsonl {
        pos: usize,
        line: u64,
    },
}

/// One row: its line, byte span in the file, and how it failed to decode (JSON lines only).
#[derive(Debug, Clone, PartialEq)]
pub struct RowMeta {
    pub line: u64,
    pub start: u64,
    pub end: u64,
    pub decode_error: Option<String>,
}

/// True when `buf` can be split into CSV rows and fields without a CSV state machine: no quote character
/// (so every `,` separates fields and every newline ends a row) and every `\r` is part of a `\r\n` (the
/// `csv` reader also ends rows at a lone `\r`). The fast path is written here, not taken from a crate,
/// because the `csv` reader's byte-at-a-time state machine was the largest cost of a pass (docs/segment.md);
/// files that are not quote-free go through the `csv` crate unchanged.
pub fn quote_free(buf: &[u8]) -> bool {
    memchr::memchr2_iter(b'"', b'\r', buf).all(|i| buf[i] == b'\r' && buf.get(i + 1) == Some(&b'\n'))
}

impl<'a> Rows<'a> {
    pub fn new(buf: &'a [u8], encoding: Encoding, header: &[String], origin: Origin) -> Self {
        Self::with_mode(buf, encoding, header, origin, None)
    }

    /// Like [`Rows::new`]; `quote_free` says whether the CSV slice is already known to be quote-free (a part of
    /// a slice checked once), `None` checks it here.
    pub fn with_mode(
        buf: &'a [u8],
        encoding: Encoding,
        header: &[String],
        origin: Origin,
        quote_free: Option<bool>,
    ) -> Self {
        let (buf, origin) = if origin.has_header && buf.starts_with(BOM) {
            (&buf[BOM.len()..], Origin { first_byte: origin.first_byte + BOM.len() as u64, ..origin })
        } else {
            (buf, origin)
        };
        let inner = match encoding {
            Encoding::Csv if quote_free.unwrap_or_else(|| self::quote_free(buf)) => {
                Inner::Fast { pos: 0, line: 0, row: (0, 0) }
            }
            Encoding::Csv => Inner::Csv(Box::new(
                csv::ReaderBuilder::new()
                    .has_headers(origin.has_header)
                    .flexible(true)
                    .buffer_capacity(1 << 16)
                    .from_reader(Capped { buf, pos: 0, limit: 0, cut: false }),
            )),
            Encoding::Jsonl => Inner::Jsonl { pos: 0, line: 0 },
        };
        // The header of a JSON lines file is its first object's keys; that object is also the first row.
        let mut rows = Rows {
            buf,
            origin,
            inner,
            header: header.to_vec(),
            spans: Vec::new(),
            rec: ByteRecord::new(),
            max_line: limits().max_line_bytes,
            too_long: None,
        };
        if origin.has_header {
            // Consume the header so positions of data rows are right; its content was read by `sniff`.
            let max = rows.max_line;
            match &mut rows.inner {
                Inner::Csv(r) => {
                    r.get_mut().limit = max.saturating_add(2);
                    let _ = r.byte_headers();
                }
                Inner::Fast { .. } => {
                    let _ = rows.next_fast();
                }
                Inner::Jsonl { .. } => {}
            }
        }
        rows
    }

    /// Rows longer than `max_line` bytes stop the reading (the default is the process's [`limits`]).
    pub fn max_line(mut self, max_line: usize) -> Self {
        self.max_line = max_line;
        self
    }

    /// The line of a row longer than the line limit: reading stopped before it (the file must be refused).
    pub fn too_long(&self) -> Option<u64> {
        self.too_long
    }

    /// Whether rows are split by the quote-free fast path.
    pub fn is_fast(&self) -> bool {
        matches!(self.inner, Inner::Fast { .. })
    }

    /// Newlines passed so far (fast path; after the last row: all newlines of the slice).
    pub fn newlines(&self) -> u64 {
        match self.inner {
            Inner::Fast { line, .. } => line,
            _ => 0,
        }
    }

    /// The raw text of a span returned by [`Rows::next`] (line terminator removed).
    pub fn raw(&self, meta: &RowMeta) -> &'a [u8] {
        let s = (meta.start - self.origin.first_byte) as usize;
        let e = ((meta.end - self.origin.first_byte) as usize).min(self.buf.len());
        let mut raw = &self.buf[s.min(e)..e];
        while let [rest @ .., b'\n' | b'\r'] = raw {
            raw = rest;
        }
        raw
    }

    /// The fields of the row last returned by [`Rows::next`].
    pub fn rec(&self) -> Rec<'_> {
        match self.inner {
            Inner::Fast { row: (s, e), .. } => Rec::new(&self.buf[s..e], &self.spans),
            _ => Rec::new(self.rec.as_slice(), &self.spans),
        }
    }

    /// The next row of a quote-free file, with the `csv` reader's conventions: blank lines are skipped,
    /// a row ends at `\n` or `\r\n` (`end` after the `\r`, where the reader stops), lines count `\n`s.
    fn next_fast(&mut self) -> Option<RowMeta> {
        let Inner::Fast { pos, line, row } = &mut self.inner else { return None };
        let buf = self.buf;
        while let Some(&b) = buf.get(*pos) {
            match b {
                b'\n' => *line += 1,
                b'\r' => {}
                _ => break,
            }
            *pos += 1;
        }
        if *pos >= buf.len() {
            return None;
        }
        let start = *pos;
        let (content_end, end, next) = match memchr::memchr(b'\n', &buf[start..]) {
            Some(i) if i > 0 && buf[start + i - 1] == b'\r' => (start + i - 1, start + i, start + i),
            Some(i) => (start + i, start + i + 1, start + i),
            None => (buf.len(), buf.len(), buf.len()),
        };
        if content_end - start > self.max_line {
            self.too_long = Some(self.origin.first_line + *line);
            *pos = buf.len();
            return None;
        }
        // The next call passes (and counts) the newline.
        *pos = next;
        *row = (start, content_end);
        let content = &buf[start..content_end];
        self.spans.clear();
        // A plain loop: fields are a few bytes long, shorter than what `memchr`'s vector search pays off on.
        let mut s = 0;
        for (c, b) in content.iter().enumerate() {
            if *b == b',' {
                self.spans.push((s, c));
                s = c + 1;
            }
        }
        self.spans.push((s, content.len()));
        Some(RowMeta {
            line: self.origin.first_line + *line,
            start: self.origin.first_byte + start as u64,
            end: self.origin.first_byte + end as u64,
            decode_error: None,
        })
    }

    /// Advance to the next row (its fields are then [`Rows::rec`]); `None` at the end.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<RowMeta> {
        if self.is_fast() {
            return self.next_fast();
        }
        if self.too_long.is_some() {
            return None;
        }
        let max_line = self.max_line;
        let meta = match &mut self.inner {
            Inner::Fast { .. } => return None,
            Inner::Csv(r) => {
                let before = (r.position().byte(), r.position().line());
                // The row and its terminator, after the `\n` of a CRLF the reader may still stand on.
                r.get_mut().limit = (before.0 as usize).saturating_add(max_line).saturating_add(3);
                let read = r.read_byte_record(&mut self.rec);
                if r.get_ref().cut {
                    let (mut start, mut line) = match &read {
                        Ok(true) => self.rec.position().map_or(before, |p| (p.byte(), p.line())),
                        Ok(false) => before,
                        Err(e) => e.position().map_or(before, |p| (p.byte(), p.line())),
                    };
                    while let Some(b @ (b'\r' | b'\n')) = self.buf.get(start as usize) {
                        line += (*b == b'\n') as u64;
                        start += 1;
                    }
                    self.too_long = Some(self.origin.first_line + line.saturating_sub(1));
                    self.rec.clear();
                    return None;
                }
                match read {
                    Ok(true) => {
                        let pos = self.rec.position().cloned().unwrap_or_else(csv::Position::new);
                        let end = r.position().byte();
                        // After a CRLF the reader places the next record at the '\n'; skip terminators.
                        let (mut start, mut line) = (pos.byte(), pos.line());
                        while let Some(b @ (b'\r' | b'\n')) = self.buf.get(start as usize) {
                            line += (*b == b'\n') as u64;
                            start += 1;
                        }
                        let line = self.origin.first_line + line - 1;
                        // Within the cap, the row may still exceed the limit by its terminator's bytes.
                        let mut raw = self.buf.get(start as usize..end as usize).unwrap_or_default();
                        while let [rest @ .., b'\n' | b'\r'] = raw {
                            raw = rest;
                        }
                        if raw.len() > max_line {
                            self.too_long = Some(line);
                            self.rec.clear();
                            return None;
                        }
                        RowMeta {
                            line,
                            start: self.origin.first_byte + start,
                            end: self.origin.first_byte + end,
                            decode_error: None,
                        }
                    }
                    Ok(false) => return None,
                    // Reading from memory cannot fail on I/O; a CSV error ends the rows like the end of input would
                    // be wrong, so report it as a row that failed to decode.
                    Err(e) => {
                        let (line, byte) = e.position().map(|p| (p.line(), p.byte())).unwrap_or((0, 0));
                        self.rec.clear();
                        RowMeta {
                            line: self.origin.first_line + line.saturating_sub(1),
                            start: self.origin.first_byte + byte,
                            end: self.origin.first_byte + r.position().byte(),
                            decode_error: Some(pii::excerpt(&e.to_string(), pii::MAX_INPUT_CHARS)),
                        }
                    }
                }
            }
            Inner::Jsonl { pos, line } => loop {
                if *pos >= self.buf.len() {
                    return None;
                }
                let rest = &self.buf[*pos..];
                let len = memchr_nl(rest).map(|e| e + 1).unwrap_or(rest.len());
                let start = *pos;
                *pos += len;
                *line += 1;
                let text = &rest[..len];
                let content = text.strip_suffix(b"\n").unwrap_or(text);
                if content.strip_suffix(b"\r").unwrap_or(content).len() > max_line {
                    self.too_long = Some(self.origin.first_line + *line - 1);
                    *pos = self.buf.len();
                    return None;
                }
                if text.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                let meta = |err: Option<String>| RowMeta {
                    line: self.origin.first_line + *line - 1,
                    start: self.origin.first_byte + start as u64,
                    end: self.origin.first_byte + (start + len) as u64,
                    decode_error: err,
                };
                self.rec.clear();
                match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(text) {
                    Ok(obj) => {
                        for h in &self.header {
                            match obj.get(h) {
                                None | Some(serde_json::Value::Null) => self.rec.push_field(b""),
                                Some(serde_json::Value::String(s)) => self.rec.push_field(s.as_bytes()),
                                Some(v) => self.rec.push_field(v.to_string().as_bytes()),
                            }
                        }
                        break meta(None);
                    }
                    Err(e) => break meta(Some(json_reason(&e))),
                }
            },
        };
        self.spans.clear();
        self.spans.extend((0..self.rec.len()).filter_map(|i| self.rec.range(i)).map(|r| (r.start, r.end)));
        Some(meta)
    }
}

/// Record-aligned byte ranges of about `target` bytes each (the sharded mode's plan). Scans the rows with
/// the same reader as the passes, so a quoted field spanning lines never splits a shard; a row longer than
/// the line limit refuses the file (`file` names it).
pub fn shard_bounds(
    file: &str,
    buf: &[u8],
    encoding: Encoding,
    header: &[String],
    target: u64,
) -> Result<Vec<(u64, u64, u64)>, StepError> {
    let mut rows = Rows::new(buf, encoding, header, Origin::WHOLE);
    let mut out = Vec::new();
    let mut cur: Option<(u64, u64)> = None;
    let mut last_end = 0;
    while let Some(m) = rows.next() {
        let (start, line) = *cur.get_or_insert((m.start, m.line));
        if m.end - start >= target {
            out.push((start, m.end, line));
            cur = None;
        }
        last_end = m.end;
    }
    if let Some(line) = rows.too_long() {
        return Err(too_long(file, line, rows.max_line));
    }
    if let Some((start, line)) = cur {
        out.push((start, last_end.max(start), line));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &[u8]) -> Vec<(u64, Vec<String>, String)> {
        let (enc, header) = sniff("f", buf).unwrap();
        let mut rows = Rows::new(buf, enc, &header, Origin::WHOLE);
        let mut out = vec![];
        while let Some(m) = rows.next() {
            let fields = rows.rec().iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
            out.push((m.line, fields, String::from_utf8_lossy(rows.raw(&m)).into_owned()));
        }
        out
    }

    #[test]
    fn bom_crlf_quotes_and_no_final_newline() {
        let buf = b"\xEF\xBB\xBFid,name\r\n1,\"Smith, Jo\"\r\n2,\"multi\nline\"\r\n3,x";
        let (_, header) = sniff("f", buf).unwrap();
        assert_eq!(header, vec!["id", "name"]);
        let rows = all(buf);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0], (2, vec!["1".into(), "Smith, Jo".into()], "1,\"Smith, Jo\"".into()));
        assert_eq!(rows[1].0, 3);
        assert_eq!(rows[1].1[1], "multi\nline");
        assert_eq!(rows[2], (5, vec!["3".into(), "x".into()], "3,x".into()));
    }

    #[test]
    fn jsonl_rows_follow_the_first_objects_keys() {
        let buf = b"{\"customer_id\":\"C1\",\"amount\":12.5}\n\n{\"customer_id\":\"C2\",\"amount\":null}\nnot json\n";
        let rows = all(buf);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].1, vec!["12.5", "C1"]);
        assert_eq!(rows[1].0, 3);
        assert_eq!(rows[1].1, vec!["", "C2"]);
        assert_eq!(rows[2].0, 4);
    }

    #[test]
    fn empty_files_are_named() {
        assert!(sniff("in.csv", b"").unwrap_err().message.contains("in.csv: the file is empty"));
        assert!(sniff("in.csv", b"\xEF\xBB\xBF \r\n").is_err());
    }

    #[test]
    fn shards_cover_the_rows_once() {
        let buf = b"id,v\n1,\"a\nb\"\n2,c\n3,d\n4,e";
        let (enc, header) = sniff("f", buf).unwrap();
        let bounds = shard_bounds("f", buf, enc, &header, 6).unwrap();
        let mut seen = vec![];
        for (i, (s, e, line)) in bounds.iter().enumerate() {
            let origin = Origin { has_header: i == 0, first_line: if i == 0 { 1 } else { *line }, first_byte: 0 };
            let slice = if i == 0 { &buf[..*e as usize] } else { &buf[*s as usize..*e as usize] };
            let origin = if i == 0 { origin } else { Origin { first_byte: *s, ..origin } };
            let mut rows = Rows::new(slice, enc, &header, origin);
            while let Some(m) = rows.next() {
                seen.push((m.line, String::from_utf8_lossy(rows.rec().get(0).unwrap()).into_owned()));
            }
        }
        assert_eq!(seen, vec![(2, "1".into()), (4, "2".into()), (5, "3".into()), (6, "4".into())]);
        assert!(bounds.len() > 1);
    }

    /// A row as read: meta, fields, raw text.
    type Read = (RowMeta, Vec<Vec<u8>>, Vec<u8>);

    /// Every row of `buf`, read with the fast path forced on or off, and the newlines passed.
    fn read(buf: &[u8], origin: Origin, fast: bool) -> (Vec<Read>, u64) {
        let mut rows = Rows::with_mode(buf, Encoding::Csv, &[], origin, Some(fast));
        assert_eq!(rows.is_fast(), fast);
        let mut out = vec![];
        while let Some(m) = rows.next() {
            let fields = rows.rec().iter().map(<[u8]>::to_vec).collect();
            let raw = rows.raw(&m).to_vec();
            out.push((m, fields, raw));
        }
        (out, rows.newlines())
    }

    #[test]
    fn quote_free_files_are_recognised() {
        assert!(quote_free(b"a,b\r\nc,d\n\ne"));
        assert!(quote_free(b""));
        assert!(!quote_free(b"a,\"b\"\n"));
        assert!(!quote_free(b"a\rb\n"), "a lone CR ends a row for the csv reader");
        assert!(!quote_free(b"a,b\r"));
    }

    #[test]
    fn fast_path_reads_like_the_csv_reader() {
        // Random quote-free files: CRLF and LF, blank lines, ragged rows, empty and odd fields, UTF-8 and not,
        // a BOM, with and without a final newline; read from the start (header) and from a later row.
        let mut x: u64 = 99;
        let mut rnd = |n: u64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        let words: [&[u8]; 9] =
            [b"", b"a", b" sp ", b"C0042", b"12.5", b"\xc3\xa9t\xc3\xa9", b"\xff", b"tab\there", b"b\\s"];
        for case in 0..300 {
            let mut buf = Vec::new();
            if case % 7 == 0 {
                buf.extend_from_slice(BOM);
            }
            let lines = rnd(12);
            for l in 0..lines {
                let blank = rnd(5) == 0;
                if !blank {
                    let fields = if rnd(6) == 0 { 1 + rnd(5) } else { 3 };
                    for f in 0..fields {
                        if f > 0 {
                            buf.push(b',');
                        }
                        buf.extend_from_slice(words[rnd(words.len() as u64) as usize]);
                    }
                }
                if l + 1 < lines || rnd(2) == 0 {
                    buf.extend_from_slice(if rnd(2) == 0 { b"\r\n" } else { b"\n" });
                }
            }
            assert!(quote_free(&buf));
            let (csv, csv_lines) = read(&buf, Origin::WHOLE, false);
            let (fast, fast_lines) = read(&buf, Origin::WHOLE, true);
            assert_eq!(fast, csv, "case {case}: {:?}", String::from_utf8_lossy(&buf));
            assert_eq!(fast_lines as usize, buf.iter().filter(|b| **b == b'\n').count(), "case {case}");
            let _ = csv_lines;
            // From the second row on, as a shard or an output piece starts.
            if let Some((m, _, _)) = csv.get(1) {
                let origin = Origin { has_header: false, first_line: m.line, first_byte: m.start };
                let slice = &buf[m.start as usize..];
                assert_eq!(read(slice, origin, true).0, read(slice, origin, false).0, "case {case}");
            }
        }
    }

    /// Rows up to the line limit are read; a longer one stops the reading at its line, on every path.
    #[test]
    fn rows_longer_than_the_limit_stop_the_reading() {
        let lim = 12;
        let ok = "C1,aaaaaaaaa"; // 12 bytes
        let long = "C2,aaaaaaaaaa"; // 13 bytes
        let quoted_ok = "C1,\"aaaaaaa\""; // 12 bytes
        let quoted_long = "C2,\"a\naaaaaa\""; // 13 bytes over two lines
        let jsonl = |v: &str| format!("{{\"id\":\"{v}\"}}");
        let cases: [(Encoding, String, Option<u64>); 8] = [
            (Encoding::Csv, format!("id,v\n{ok}\r\n{ok}\n"), None),
            (Encoding::Csv, format!("id,v\n{ok}\n\n{long}\n{ok}\n"), Some(4)),
            (Encoding::Csv, format!("id,v\r\n{quoted_ok}\r\n\r\n{quoted_ok}"), None),
            (Encoding::Csv, format!("id,v\r\n{quoted_ok}\r\n\r\n{quoted_long}\r\n{ok}"), Some(4)),
            (Encoding::Csv, format!("id,v\n{ok}\n\"{}\n", "a\n".repeat(20)), Some(3)),
            (Encoding::Jsonl, format!("{}\r\n{}\n", jsonl("aaa"), jsonl("bbb")), None),
            (Encoding::Jsonl, format!("{}\n\n{}\n", jsonl("aaa"), jsonl("bbbb")), Some(3)),
            (Encoding::Jsonl, format!("{}\n{}", jsonl("aaa"), "x".repeat(100)), Some(2)),
        ];
        for (enc, body, want) in cases {
            let header = vec!["id".to_string(), "v".to_string()];
            let mut rows = Rows::new(body.as_bytes(), enc, &header, Origin::WHOLE).max_line(lim);
            let mut lines = vec![];
            while let Some(m) = rows.next() {
                lines.push(m.line);
            }
            assert_eq!(rows.too_long(), want, "{body:?}: rows read {lines:?}");
            assert!(lines.iter().all(|l| want.is_none_or(|w| *l < w)), "{body:?}: {lines:?}");
        }
    }

    #[test]
    fn headers_within_the_limits() {
        let limits = Limits { max_columns: 3, max_line_bytes: 12 };
        assert!(sniff_with("f", b"id,v,w\r\nC1,1,2\n", limits).is_ok());
        assert!(sniff_with("f", b"\n\nid_column,v\nC1,1\n", limits).is_ok());
        let e = sniff_with("f", b"id,v,w,x\nC1,1,2,3\n", limits).unwrap_err().message;
        assert!(e.contains("f: line 1") && e.contains("limit of 3"), "{e}");
        let e = sniff_with("f", b"\nid_column,vwx\nC1,1\n", limits).unwrap_err().message;
        assert!(e.contains("f: line 2 is longer than the limit of 12 bytes"), "{e}");
        let e = sniff_with("f", b"\"id\nvvvv\",w,x\nC1,1\n", Limits { max_columns: 9, ..limits }).unwrap_err().message;
        assert!(e.contains("line 1 is longer"), "{e}");
        assert!(sniff_with("f", b"{\"id\":1,\"v\":2}\n", limits).is_err());
        assert!(sniff_with("f", b"{\"a\":1,\"b\":2,\"c\":3,\"d\":4}", Limits { max_line_bytes: 99, ..limits }).is_err());
        assert!(sniff_with("f", b"{\"id\":1}\n", limits).is_ok());
        let e = sniff_with("f", b"\"alice@example.com\"", limits).unwrap_err().message;
        assert!(!e.contains("alice"), "{e}");
    }
}

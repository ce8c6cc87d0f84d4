//! Rows of the input, streamed from a byte slice (the whole object, or one shard of it): CSV through the
//! `csv` crate (UTF-8 BOM, CRLF, quoted fields, a missing final newline), or JSON lines turned into the same
//! `ByteRecord` shape so validation is written once. Every row keeps its 1-based line number and raw text.

use cpo_common::StepError;
use csv::ByteRecord;

use crate::layout::Encoding;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The encoding and header of a file, read from its first line.
pub fn sniff(file: &str, buf: &[u8]) -> Result<(Encoding, Vec<String>), StepError> {
    let body = buf.strip_prefix(BOM).unwrap_or(buf);
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(StepError::input(format!("{file}: the file is empty (no header, no rows)")));
    }
    let first = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
    if body[first] == b'{' {
        let end = memchr_nl(&body[first..]).map(|e| first + e).unwrap_or(body.len());
        let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body[first..end])
            .map_err(|e| StepError::input(format!("{file}: line 1: not a JSON object: {e}")))?;
        return Ok((Encoding::Jsonl, obj.keys().cloned().collect()));
    }
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
    let mut rec = ByteRecord::new();
    match rdr.read_byte_record(&mut rec) {
        Ok(true) => {}
        Ok(false) => return Err(StepError::input(format!("{file}: the file is empty (no header, no rows)"))),
        Err(e) => return Err(StepError::input(format!("{file}: line 1: unreadable header: {e}"))),
    }
    let header = rec
        .iter()
        .map(|f| {
            std::str::from_utf8(f)
                .map(|s| s.trim().to_string())
                .map_err(|_| StepError::input(format!("{file}: line 1: the header is not valid UTF-8")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((Encoding::Csv, header))
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
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

/// A streaming reader of rows.
pub struct Rows<'a> {
    buf: &'a [u8],
    origin: Origin,
    inner: Inner<'a>,
    /// Number of header fields (JSON lines: the keys of the first object).
    header: Vec<String>,
}

enum Inner<'a> {
    Csv(Box<csv::Reader<&'a [u8]>>),
    Jsonl { pos: usize, line: u64 },
}

/// One row: its line, byte span in the file, and how it failed to decode (JSON lines only).
#[derive(Debug, Clone, PartialEq)]
pub struct RowMeta {
    pub line: u64,
    pub start: u64,
    pub end: u64,
    pub decode_error: Option<String>,
}

impl<'a> Rows<'a> {
    pub fn new(buf: &'a [u8], encoding: Encoding, header: &[String], origin: Origin) -> Self {
        let (buf, origin) = if origin.has_header && buf.starts_with(BOM) {
            (&buf[BOM.len()..], Origin { first_byte: origin.first_byte + BOM.len() as u64, ..origin })
        } else {
            (buf, origin)
        };
        let inner = match encoding {
            Encoding::Csv => Inner::Csv(Box::new(
                csv::ReaderBuilder::new()
                    .has_headers(origin.has_header)
                    .flexible(true)
                    .buffer_capacity(1 << 16)
                    .from_reader(buf),
            )),
            Encoding::Jsonl => Inner::Jsonl { pos: 0, line: 0 },
        };
        // The header of a JSON lines file is its first object's keys; that object is also the first row.
        let mut rows = Rows { buf, origin, inner, header: header.to_vec() };
        if let Inner::Csv(r) = &mut rows.inner {
            if origin.has_header {
                // Consume the header so positions of data rows are right; its content was read by `sniff`.
                let _ = r.byte_headers();
            }
        }
        rows
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

    /// Read the next row into `rec`; `None` at the end.
    pub fn next(&mut self, rec: &mut ByteRecord) -> Option<RowMeta> {
        match &mut self.inner {
            Inner::Csv(r) => match r.read_byte_record(rec) {
                Ok(true) => {
                    let pos = rec.position().cloned().unwrap_or_else(csv::Position::new);
                    let end = r.position().byte();
                    // After a CRLF the reader places the next record at the '\n'; skip terminators.
                    let (mut start, mut line) = (pos.byte(), pos.line());
                    while let Some(b @ (b'\r' | b'\n')) = self.buf.get(start as usize) {
                        line += (*b == b'\n') as u64;
                        start += 1;
                    }
                    Some(RowMeta {
                        line: self.origin.first_line + line - 1,
                        start: self.origin.first_byte + start,
                        end: self.origin.first_byte + end,
                        decode_error: None,
                    })
                }
                // Reading from memory cannot fail on I/O; a CSV error ends the rows like the end of input would
                // be wrong, so report it as a row that failed to decode.
                Ok(false) => None,
                Err(e) => {
                    let (line, byte) = e.position().map(|p| (p.line(), p.byte())).unwrap_or((0, 0));
                    rec.clear();
                    Some(RowMeta {
                        line: self.origin.first_line + line.saturating_sub(1),
                        start: self.origin.first_byte + byte,
                        end: self.origin.first_byte + r.position().byte(),
                        decode_error: Some(e.to_string()),
                    })
                }
            },
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
                if text.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                let meta = |err: Option<String>| RowMeta {
                    line: self.origin.first_line + *line - 1,
                    start: self.origin.first_byte + start as u64,
                    end: self.origin.first_byte + (start + len) as u64,
                    decode_error: err,
                };
                rec.clear();
                match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(text) {
                    Ok(obj) => {
                        for h in &self.header {
                            match obj.get(h) {
                                None | Some(serde_json::Value::Null) => rec.push_field(b""),
                                Some(serde_json::Value::String(s)) => rec.push_field(s.as_bytes()),
                                Some(v) => rec.push_field(v.to_string().as_bytes()),
                            }
                        }
                        return Some(meta(None));
                    }
                    Err(e) => return Some(meta(Some(format!("not a JSON object: {e}")))),
                }
            },
        }
    }
}

/// Record-aligned byte ranges of about `target` bytes each (the sharded mode's plan). Scans the rows with
/// the same reader as the passes, so a quoted field spanning lines never splits a shard.
pub fn shard_bounds(buf: &[u8], encoding: Encoding, header: &[String], target: u64) -> Vec<(u64, u64, u64)> {
    let mut rows = Rows::new(buf, encoding, header, Origin::WHOLE);
    let mut rec = ByteRecord::new();
    let mut out = Vec::new();
    let mut cur: Option<(u64, u64)> = None;
    let mut last_end = 0;
    while let Some(m) = rows.next(&mut rec) {
        let (start, line) = *cur.get_or_insert((m.start, m.line));
        if m.end - start >= target {
            out.push((start, m.end, line));
            cur = None;
        }
        last_end = m.end;
    }
    if let Some((start, line)) = cur {
        out.push((start, last_end.max(start), line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &[u8]) -> Vec<(u64, Vec<String>, String)> {
        let (enc, header) = sniff("f", buf).unwrap();
        let mut rows = Rows::new(buf, enc, &header, Origin::WHOLE);
        let mut rec = ByteRecord::new();
        let mut out = vec![];
        while let Some(m) = rows.next(&mut rec) {
            let fields = rec.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
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
        let bounds = shard_bounds(buf, enc, &header, 6);
        let mut seen = vec![];
        for (i, (s, e, line)) in bounds.iter().enumerate() {
            let origin = Origin { has_header: i == 0, first_line: if i == 0 { 1 } else { *line }, first_byte: 0 };
            let slice = if i == 0 { &buf[..*e as usize] } else { &buf[*s as usize..*e as usize] };
            let origin = if i == 0 { origin } else { Origin { first_byte: *s, ..origin } };
            let mut rows = Rows::new(slice, enc, &header, origin);
            let mut rec = ByteRecord::new();
            while let Some(m) = rows.next(&mut rec) {
                seen.push((m.line, String::from_utf8_lossy(&rec[0]).into_owned()));
            }
        }
        assert_eq!(seen, vec![(2, "1".into()), (4, "2".into()), (5, "3".into()), (6, "4".into())]);
        assert!(bounds.len() > 1);
    }
}

//! Parsing outcomes files (CSV or JSON lines) row by row into a [`RowSink`], borrowing each row's text: no
//! allocation for a valid row, and the rejected row's `raw` text is built only for rejected rows.
//!
//! A hostile file costs bounded memory and leaks nothing into messages: a header wider than
//! [`Limits::max_columns`] or a row longer than [`Limits::max_line_bytes`] refuses the file (naming the line and
//! the limit) before the row is read whole; a header that looks like a customer's row is not quoted; reasons
//! describe a refused value rather than quote it (the rejected row's `raw` keeps it for the analyst).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, Read};

use cpo_common::model::segment::Rejected;
use cpo_common::pii::{self, Limits};
use cpo_common::StepError;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::events::{self, EventRow, Rules, Valid};

/// Receives every row of an outcomes file, in file order.
pub trait RowSink {
    fn valid(&mut self, line: u64, row: EventRow<'_>);
    fn rejected(&mut self, row: Rejected);
    /// A row of an event type the mapping ignores.
    fn ignored(&mut self, _line: u64) {}
}

/// Hand a validated row to the sink.
fn deliver(sink: &mut impl RowSink, line: u64, v: Valid<'_>) {
    match v {
        Valid::Row(row) => sink.valid(line, row),
        Valid::Ignored => sink.ignored(line),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }

    /// By extension; otherwise JSON lines when the first non-blank byte of `head` (the start of the object)
    /// opens an object.
    pub fn of(file: &str, head: &[u8]) -> Format {
        let lower = file.to_ascii_lowercase();
        if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") || lower.ends_with(".json") {
            Format::Jsonl
        } else if lower.ends_with(".csv") {
            Format::Csv
        } else if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            Format::Jsonl
        } else {
            Format::Csv
        }
    }
}

/// Parse one outcomes object; returns its number of rows (valid and rejected). Fails only when the file as a
/// whole is unusable (a CSV header without the required columns) or cannot be read.
pub fn parse<R: BufRead>(file: &str, input: R, sink: &mut impl RowSink) -> Result<(Format, u64), StepError> {
    parse_with(file, input, &Rules::default(), sink)
}

/// [`parse`] under a run's [`Rules`]: its column mapping, timestamp format and send window.
pub fn parse_with<R: BufRead>(
    file: &str,
    mut input: R,
    rules: &Rules,
    sink: &mut impl RowSink,
) -> Result<(Format, u64), StepError> {
    let limits = pii::limits()?;
    let head = input.fill_buf().map_err(|e| read_err(file, e))?;
    let format = Format::of(file, head);
    let rows = match format {
        Format::Csv => parse_csv(file, input, sink, rules, limits)?,
        Format::Jsonl => parse_jsonl(file, input, sink, rules, limits)?,
    };
    Ok((format, rows))
}

fn read_err(file: &str, e: impl fmt::Display) -> StepError {
    StepError::internal(format!("{file}: reading failed: {e}"))
}

fn too_long(file: &str, line: u64, limits: Limits) -> StepError {
    StepError::input(format!(
        "{file}: line {line} is longer than the limit of {} bytes ({}; in CSV, a quote left open also joins the \
         lines after it into one row): fix or split it, or raise the limit",
        limits.max_line_bytes,
        pii::MAX_LINE_BYTES_ENV
    ))
}

/// The `csv` reader's input. Counts lines itself — the reader numbers a row from where it started looking
/// (the `\n` of a CRLF, blank lines), not from where the row starts — and hands out at most `limit` bytes (the
/// current row's start plus the line limit), so a row longer than that stops there instead of growing (`cut`).
struct Tracked<R> {
    inner: R,
    /// Bytes handed out.
    pos: u64,
    limit: u64,
    cut: bool,
    /// Offsets and bytes of the `\n` and `\r` handed out at or after the latest row start asked about.
    breaks: VecDeque<(u64, u8)>,
    /// `\n`s before the first of `breaks`.
    newlines: u64,
}

impl<R: BufRead> Read for Tracked<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.pos);
        if room == 0 {
            self.cut |= !self.inner.fill_buf()?.is_empty();
            return Ok(0);
        }
        let n = {
            let buf = self.inner.fill_buf()?;
            let n = buf.len().min(out.len()).min(usize::try_from(room).unwrap_or(usize::MAX));
            out[..n].copy_from_slice(&buf[..n]);
            n
        };
        self.inner.consume(n);
        for i in memchr::memchr2_iter(b'\n', b'\r', &out[..n]) {
            self.breaks.push_back((self.pos + i as u64, out[i]));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R> Tracked<R> {
    /// The 1-based line of a row the reader placed at byte `at`: of the first byte from `at` on that is not a
    /// line break. `at` never decreases from one call to the next.
    fn line_at(&mut self, at: u64) -> u64 {
        while let Some(&(o, b)) = self.breaks.front() {
            if o >= at {
                break;
            }
            self.newlines += u64::from(b == b'\n');
            self.breaks.pop_front();
        }
        let (mut next, mut line) = (at, 1 + self.newlines);
        for &(o, b) in &self.breaks {
            if o != next {
                break;
            }
            line += u64::from(b == b'\n');
            next += 1;
        }
        line
    }
}

fn reject(file: &str, line: u64, field: &str, reason: String, raw: String) -> Rejected {
    Rejected { file: file.to_string(), line, field: field.to_string(), reason, raw }
}

fn parse_csv<R: BufRead>(
    file: &str,
    input: R,
    sink: &mut impl RowSink,
    rules: &Rules,
    limits: Limits,
) -> Result<u64, StepError> {
    let max = limits.max_line_bytes as u64;
    let tracked = Tracked { inner: input, pos: 0, limit: max + 2, cut: false, breaks: VecDeque::new(), newlines: 0 };
    let mut rdr = csv::ReaderBuilder::new().flexible(true).buffer_capacity(1 << 16).from_reader(tracked);
    let headers = match rdr.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(read_err(file, e)),
        Err(e) => {
            let e = pii::excerpt(&e.to_string(), pii::MAX_INPUT_CHARS);
            return Err(StepError::input(format!("{file}: line 1: unreadable CSV header: {e}")));
        }
    };
    if headers.len() > limits.max_columns {
        return Err(StepError::input(format!(
            "{file}: line 1: the header has more columns than the limit of {} ({}); is line 1 a header?",
            limits.max_columns,
            pii::MAX_COLUMNS_ENV
        )));
    }
    if rdr.get_ref().cut {
        return Err(too_long(file, 1, limits));
    }
    let mut names = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        let h = std::str::from_utf8(h).map_err(|e| {
            StepError::input(format!("{file}: line 1: unreadable CSV header: column {} is not UTF-8: {e}", i + 1))
        })?;
        names.push(h.trim().trim_start_matches('\u{feff}').to_string());
    }
    let col = |name: &str| names.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(ci), Some(ei), Some(ti)) = (col(&rules.customer_id), col(&rules.event), col(&rules.timestamp)) else {
        let wanted = format!("{}, {} and {}", rules.customer_id, rules.event, rules.timestamp);
        return Err(StepError::input(match pii::column_list(&names) {
            Some(found) => format!(
                "{file}: line 1: the header must name the columns {wanted} (found: {found}); map other names under \
                 outcomes.columns or pick an outcomes.preset"
            ),
            // The first customer's row of a file without a header: not quoted.
            None => format!(
                "{file}: line 1 does not look like a header: some of its {} cells look like customer data (not \
                 quoted here); the file needs a header line naming the columns {wanted}",
                names.len()
            ),
        }));
    };
    let column = |i: usize| names.get(i).map(String::as_str).filter(|n| !n.is_empty()).unwrap_or("row");
    let mut record = csv::ByteRecord::new();
    let mut rows = 0u64;
    loop {
        let at = rdr.position().byte();
        // The row and its terminator, after the `\n` of a CRLF the reader may still stand on.
        rdr.get_mut().limit = at + max + 3;
        let read = rdr.read_byte_record(&mut record);
        if rdr.get_ref().cut {
            let start = match &read {
                Ok(true) => record.position().map_or(at, |p| p.byte()),
                Err(e) => e.position().map_or(at, |p| p.byte()),
                Ok(false) => at,
            };
            return Err(too_long(file, rdr.get_mut().line_at(start), limits));
        }
        match read {
            Ok(false) => break,
            Ok(true) => {
                rows += 1;
                let line = rdr.get_mut().line_at(record.position().map_or(at, |p| p.byte()));
                let mut fields: [Option<&str>; 3] = [None; 3];
                let mut not_utf8 = None;
                for (i, f) in record.iter().enumerate() {
                    match std::str::from_utf8(f) {
                        Ok(s) if i == ci => fields[0] = Some(s),
                        Ok(s) if i == ei => fields[1] = Some(s),
                        Ok(s) if i == ti => fields[2] = Some(s),
                        Ok(_) => {}
                        Err(e) => {
                            not_utf8 = Some((i, e));
                            break;
                        }
                    }
                }
                if let Some((i, e)) = not_utf8 {
                    let raw = record.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect::<Vec<_>>();
                    sink.rejected(reject(file, line, column(i), format!("not valid UTF-8: {e}"), raw.join(",")));
                    continue;
                }
                match events::validate_with(rules, fields[0], fields[1], fields[2]) {
                    Ok(v) => deliver(sink, line, v),
                    Err((field, reason)) => {
                        let raw = record.iter().map(|f| String::from_utf8_lossy(f).trim().to_string());
                        sink.rejected(reject(file, line, field, reason, raw.collect::<Vec<_>>().join(",")));
                    }
                }
            }
            // Byte records with flexible lengths fail only when the input cannot be read.
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(read_err(file, e)),
            Err(e) => {
                let line = rdr.get_mut().line_at(e.position().map_or(at, |p| p.byte()));
                rows += 1;
                let e = pii::excerpt(&e.to_string(), pii::MAX_INPUT_CHARS);
                sink.rejected(reject(file, line, "row", format!("unreadable CSV: {e}"), String::new()));
                break;
            }
        }
    }
    Ok(rows)
}

fn parse_jsonl<R: BufRead>(
    file: &str,
    mut input: R,
    sink: &mut impl RowSink,
    rules: &Rules,
    limits: Limits,
) -> Result<u64, StepError> {
    let paths = Paths::of(rules);
    let mut buf = Vec::with_capacity(256);
    let mut n = 0u64;
    let mut rows = 0u64;
    // A line, its `\r\n` and one byte more: a longer line is refused after reading this much of it.
    let most = limits.max_line_bytes as u64 + 3;
    loop {
        buf.clear();
        if (&mut input).take(most).read_until(b'\n', &mut buf).map_err(|e| read_err(file, e))? == 0 {
            break;
        }
        n += 1;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if line.strip_suffix(b"\r").unwrap_or(line).len() > limits.max_line_bytes {
            return Err(too_long(file, n, limits));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        rows += 1;
        let raw = || String::from_utf8_lossy(line).trim_end().chars().take(2000).collect::<String>();
        let mut de = serde_json::Deserializer::from_slice(line);
        let parsed = RowSeed(&paths).deserialize(&mut de).and_then(|r| de.end().map(|()| r));
        match parsed {
            Ok(r) => {
                match events::validate_with(rules, r.customer_id.as_deref(), r.event.as_deref(), r.timestamp.as_deref())
                {
                    Ok(v) => deliver(sink, n, v),
                    Err((field, reason)) => sink.rejected(reject(file, n, field, reason, raw())),
                }
            }
            Err(e) => sink.rejected(reject(file, n, "row", pii::json_reason(&e), raw())),
        }
    }
    Ok(rows)
}

/// The three fields of a JSON-lines row; other members are skipped unparsed. A field that is a string or a
/// number is its text; any other value counts as missing (and is rejected by validation).
#[derive(Default)]
struct JsonRow<'a> {
    customer_id: Option<Cow<'a, str>>,
    event: Option<Cow<'a, str>>,
    timestamp: Option<Cow<'a, str>>,
}

/// The member paths of customer_id, event and timestamp (`a.b` = member `b` of object `a`).
struct Paths([Vec<String>; 3]);

impl Paths {
    fn of(rules: &Rules) -> Self {
        let split = |p: &str| p.split('.').map(str::to_string).collect();
        Paths([split(&rules.customer_id), split(&rules.event), split(&rules.timestamp)])
    }
}

/// A row, reading only the members the paths name.
struct RowSeed<'p>(&'p Paths);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = JsonRow<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<JsonRow<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = JsonRow<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with customer_id, event and timestamp")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: [Option<Cow<'de, str>>; 3] = [None, None, None];
        while let Some(name) = map.next_key::<Text<'de>>()? {
            let name = name.0.unwrap_or_default();
            let hits: Vec<usize> = (0..3).filter(|&i| self.0 .0[i][0] == name).collect();
            if hits.is_empty() {
                map.next_value::<IgnoredAny>()?;
            } else if hits.iter().all(|&i| self.0 .0[i].len() == 1) {
                let v = map.next_value::<Text<'de>>()?.0;
                for i in hits {
                    out[i] = v.clone();
                }
            } else {
                let v = map.next_value::<serde_json::Value>()?;
                for i in hits {
                    out[i] = walk(&v, &self.0 .0[i][1..]).map(Cow::Owned);
                }
            }
        }
        let [customer_id, event, timestamp] = out;
        Ok(JsonRow { customer_id, event, timestamp })
    }
}

/// The text of a string or number at `path` inside `v`.
fn walk(v: &serde_json::Value, path: &[String]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    match cur {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A member's value as text: borrowed strings where the JSON has no escapes, numbers as serde_json prints them.
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(s.to_string()))))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(s))))
            }
            fn visit_u64<E: de::Error>(self, x: u64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(serde_json::Number::from(x).to_string()))))
            }
            fn visit_i64<E: de::Error>(self, x: i64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(serde_json::Number::from(x).to_string()))))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<Self::Value, E> {
                Ok(Text(serde_json::Number::from_f64(x).map(|n| Cow::Owned(n.to_string()))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(TextVisitor)
    }
}

/// One row as [`Collect`] keeps it: valid (customer id, event) or rejected.
pub type Collected = Result<(String, events::Event), Rejected>;

/// A sink collecting everything, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct Collect {
    pub rows: Vec<(u64, Collected)>,
}

impl RowSink for Collect {
    fn valid(&mut self, line: u64, row: EventRow<'_>) {
        self.rows.push((line, Ok((row.customer_id.to_string(), row.event))));
    }
    fn rejected(&mut self, row: Rejected) {
        self.rows.push((row.line, Err(row)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Event;

    /// Rows as (line, valid (customer id, event) or rejected (field, raw)).
    type Row = (u64, Result<(String, Event), (String, String)>);

    fn collect(file: &str, body: &str) -> (Format, Vec<Row>) {
        let mut sink = Collect::default();
        let (format, rows) = parse(file, body.as_bytes(), &mut sink).unwrap();
        assert_eq!(rows as usize, sink.rows.len());
        let rows = sink.rows.into_iter().map(|(l, r)| (l, r.map_err(|r| (r.field, r.raw)))).collect();
        (format, rows)
    }

    #[test]
    fn csv_rows_borrow_trim_and_reject_with_line_field_and_raw() {
        let body = "\u{feff} Customer_ID ,Event,timestamp,extra\n\
                    C1,open,2026-11-25T10:00:00Z,x\n\
                    \"C,2\", CLICK ,2026-11-25 10:00,\n\
                    C3,opened,2026-11-25,y\n\
                    C4,open\n\
                    \"C5\nwith newline\",open,2026-11-25\n\
                    C6,open,2026-11-25T10:00:00Z,\u{e9}\n";
        let (format, rows) = collect("x/esp.csv", body);
        assert_eq!(format, Format::Csv);
        assert_eq!(
            rows,
            vec![
                (2, Ok(("C1".into(), Event::Open))),
                (3, Ok(("C,2".into(), Event::Click))),
                (4, Err(("event".into(), "C3,opened,2026-11-25,y".into()))),
                (5, Err(("timestamp".into(), "C4,open".into()))),
                (6, Err(("customer_id".into(), "C5\nwith newline,open,2026-11-25".into()))),
                (8, Ok(("C6".into(), Event::Open))),
            ]
        );
    }

    #[test]
    fn csv_invalid_utf8_names_the_column() {
        let mut body = b"customer_id,event,timestamp\nC1,open,2026-11-25\n".to_vec();
        body.extend_from_slice(b"C\xff2,open,2026-11-25\nC3,open,2026-11-25\n");
        let mut sink = Collect::default();
        parse("o.csv", body.as_slice(), &mut sink).unwrap();
        let fields: Vec<_> = sink.rows.iter().map(|(l, r)| (*l, r.as_ref().err().map(|r| r.field.clone()))).collect();
        assert_eq!(fields, vec![(2, None), (3, Some("customer_id".into())), (4, None)]);
    }

    #[test]
    fn csv_header_must_name_the_columns() {
        let e = parse("d/bad.csv", "id,what\n1,2\n".as_bytes(), &mut Collect::default()).unwrap_err();
        assert!(e.message.contains("bad.csv") && e.message.contains("line 1") && e.message.contains("customer_id"));
        assert!(parse("d/empty.csv", "".as_bytes(), &mut Collect::default()).is_err());
    }

    #[test]
    fn jsonl_rows_numbers_escapes_and_rejections() {
        let body = "{\"customer_id\":\"C\\u0031\",\"event\":\"open\",\"timestamp\":\"2026-11-25\",\"x\":[1,{}]}\n\
                    \n\
                    {\"customer_id\":42,\"event\":\"click\",\"timestamp\":\"2026-11-25T10:00:00Z\"}\n\
                    {\"customer_id\":true,\"event\":\"click\",\"timestamp\":\"2026-11-25\"}\n\
                    [\"C1\",\"open\",\"2026-11-25\"]\n\
                    not json   \n\
                    {\"customer_id\":\"C9\",\"event\":\"convert\",\"timestamp\":\"2026-11-25\"}";
        let (format, rows) = collect("o/more.jsonl", body);
        assert_eq!(format, Format::Jsonl);
        assert_eq!(rows[0], (1, Ok(("C1".into(), Event::Open))));
        assert_eq!(rows[1], (3, Ok(("42".into(), Event::Click))));
        assert_eq!(rows[2].0, 4);
        assert_eq!(rows[2].1.as_ref().unwrap_err().0, "customer_id");
        assert_eq!(rows[3].1.as_ref().unwrap_err().0, "row");
        assert_eq!(rows[4], (6, Err(("row".into(), "not json".into()))));
        assert_eq!(rows[5], (7, Ok(("C9".into(), Event::Convert))));
        assert_eq!(rows.len(), 6);
    }

    #[test]
    fn format_by_extension_then_content() {
        assert_eq!(Format::of("a.NDJSON", b"x"), Format::Jsonl);
        assert_eq!(Format::of("a.csv", b"{"), Format::Csv);
        assert_eq!(Format::of("a.txt", b"  \n{\"a\":1}"), Format::Jsonl);
        assert_eq!(Format::of("a.txt", b"customer_id"), Format::Csv);
    }

    /// Anything shaped like an address: `x@y.z`.
    fn has_email(s: &str) -> bool {
        s.match_indices('@').any(|(i, _)| {
            let before = s[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || "._%+-".contains(c));
            let domain: String =
                s[i + 1..].chars().take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '-').collect();
            before && domain.contains('.')
        })
    }

    /// A file-level refusal: the file and line named, short, no address, none of `secrets`.
    fn refused(file: &str, body: &[u8], line: &str, secrets: &[&str]) -> String {
        let e = parse(file, body, &mut Collect::default()).expect_err("the file must be refused");
        let m = e.message;
        assert_eq!(e.kind, cpo_common::ErrorKind::InputInvalid, "{}", &m[..m.len().min(300)]);
        assert!(m.chars().count() <= 600, "{} chars: {}", m.len(), &m[..300]);
        assert!(m.contains(file) && m.contains(line), "{m}");
        assert!(!has_email(&m), "{m}");
        for s in secrets {
            assert!(!m.contains(s), "{s:?} in {m}");
        }
        m
    }

    #[test]
    fn hostile_headers_are_refused_without_quoting_them() {
        // No header: the first customer's row is not quoted.
        let body = "C0001,alice.smith@example.com,open,2026-11-25\nC0002,bob@example.com,click,2026-11-25\n";
        let m = refused("o/drop.csv", body.as_bytes(), "line 1", &["alice", "C0001", "bob"]);
        assert!(m.contains("header"), "{m}");
        // JSON lines named .csv: the first object is not a header.
        let mut body = String::new();
        for i in 0..100 {
            let cc: Vec<String> = (0..30).map(|j| format!("\"cc{j}@example.com\"")).collect();
            body.push_str(&format!(
                "{{\"customer_id\":\"C{i}\",\"email\":\"u{i}@example.com\",\"cc\":[{}],\"event\":\"open\",\
                 \"timestamp\":\"2026-11-25\"}}\n",
                cc.join(",")
            ));
        }
        refused("o/export.csv", body.as_bytes(), "line 1", &["cc1", "u0"]);
        // A million columns, and a 50 MB first line.
        let mut wide = String::from("customer_id,event,timestamp");
        for i in 0..1_000_000 {
            wide.push_str(&format!(",c{i}"));
        }
        wide.push_str("\nC1,open,2026-11-25\n");
        let t = std::time::Instant::now();
        let m = refused("o/wide.csv", wide.as_bytes(), "line 1", &["c99999"]);
        assert!(m.contains("columns") && m.contains("4096"), "{m}");
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
        let long = format!("customer_id,event,timestamp,{}\nC1,open,2026-11-25\n", "x".repeat(50 << 20));
        let m = refused("o/long.csv", long.as_bytes(), "line 1", &["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]);
        assert!(m.contains("1048576 bytes"), "{m}");
    }

    #[test]
    fn long_rows_are_refused_before_they_are_read_whole() {
        let big = "y".repeat(50 << 20);
        let cases = [
            ("o/a.csv", format!("customer_id,event,timestamp\nC1,open,2026-11-25\nC2,{big},2026-11-25\n")),
            ("o/b.csv", format!("customer_id,event,timestamp\nC1,open,2026-11-25\nC2,\"open{}\n", "ab\n".repeat(1 << 20))),
            ("o/c.jsonl", format!("{{\"customer_id\":\"C1\",\"event\":\"open\",\"timestamp\":\"2026-11-25\"}}\n{{\"customer_id\":\"C2\",\"event\":\"{big}\"}}\n")),
        ];
        for (file, body) in cases {
            let m = refused(
                file,
                body.as_bytes(),
                if file.ends_with("jsonl") { "line 2" } else { "line 3" },
                &["yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"],
            );
            assert!(m.contains("1048576 bytes"), "{file}: {m}");
        }
    }

    #[test]
    fn rejected_rows_describe_values_without_quoting_them() {
        let csv = "customer_id,event,timestamp\n\
                   C1,alice.smith@example.com,2026-11-25\n\
                   C2,open,Alice Smith\n\
                   C3,Bob Jones,2026-11-25\n\
                   C4,open,bob@example.com\n";
        let jsonl = "\"carol.jones@example.com\"\n\
                     {\"customer_id\":\"C5\",\"event\":\"dave@example.com\",\"timestamp\":\"2026-11-25\"}\n\
                     {\"customer_id\":\"C6\",\"event\":\"open\",\"timestamp\":\"Erin Stone\"}\n\
                     {\"customer_id\":\"C7\",\"event\":[\"frank@example.com\"],\"timestamp\":\"2026-11-25\"}\n\
                     {\"customer_id\":\"C8\",\"event\":\"open\",\"timestamp\":\"2026-11-25\",\"x\":}\n";
        for (file, body, n) in [("o/r.csv", csv, 4), ("o/r.jsonl", jsonl, 5)] {
            let mut sink = Collect::default();
            parse(file, body.as_bytes(), &mut sink).unwrap();
            let rejected: Vec<Rejected> = sink.rows.into_iter().filter_map(|(_, r)| r.err()).collect();
            assert_eq!(rejected.len(), n, "{file}: {rejected:?}");
            for r in &rejected {
                assert!(r.reason.chars().count() <= 200, "{r:?}");
                assert!(!has_email(&r.reason), "{r:?}");
                for s in ["Alice", "Bob", "Erin", "frank", "carol", "dave"] {
                    assert!(!r.reason.contains(s), "{r:?}");
                }
            }
        }
    }

    /// Lines are where the rows are: after CRLF terminators, blank lines and quoted newlines alike.
    #[test]
    fn csv_lines_count_crlf_blank_lines_and_quoted_newlines() {
        let body = "customer_id,event,timestamp\r\nC1,open,2026-11-25\r\nC2,nope,2026-11-25\r\n\r\n\n\
                    \"C\n3\",open,2026-11-25\r\nC4,open,2026-11-25\nC5,click,2026-11-25";
        let (_, rows) = collect("o.csv", body);
        let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![2, 3, 6, 8, 9]);
    }
}

//! Row validation: one function per format turns a record into typed values or names the field at fault.
//! Every pass (and every shard) calls these, so a row is accepted or rejected the same way each time.
//!
//! A reason names the column and the kind of problem, never the value: reasons are quoted in error messages,
//! which carry no customer data (a refused value is described by [`pii::describe`]; the rejected rows object
//! keeps the raw row). Control characters reject a row: any in a customer id, and any but tab and line breaks
//! in the columns carried to the send list as merge fields.

use chrono::NaiveDate;
use cpo_common::pii;

use crate::layout::{Fields, Layout};
use crate::source::{Rec, RowMeta};

/// Why a row was rejected: the column (as named in the file, `*` for the whole row) and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    pub field: String,
    pub reason: String,
}

impl Bad {
    fn new(field: &str, reason: impl Into<String>) -> Self {
        Self { field: field.to_string(), reason: reason.into() }
    }
}

/// An accepted aggregate row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerRow<'r> {
    pub id: &'r str,
    /// [recency days, frequency, monetary = frequency × avg_order_value].
    pub values: [f64; 3],
}

/// An accepted transaction row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TxRow<'r> {
    pub id: &'r str,
    pub date: NaiveDate,
    pub amount: f64,
}

/// Checks every format shares: the row decoded, has the header's number of fields, is UTF-8, has an id.
fn common<'r>(layout: &Layout, rec: &Rec<'r>, meta: &RowMeta) -> Result<&'r str, Bad> {
    if let Some(e) = &meta.decode_error {
        return Err(Bad::new("*", e.clone()));
    }
    if rec.len() != layout.header.len() {
        return Err(Bad::new("*", format!("expected {} fields, found {}", layout.header.len(), rec.len())));
    }
    if let Some(i) = rec.first_invalid_utf8() {
        return Err(Bad::new(&layout.header[i], "not valid UTF-8"));
    }
    let id = trim(field(rec, layout.id));
    if id.is_empty() {
        return Err(Bad::new(&layout.header[layout.id], "missing customer_id"));
    }
    if may_have_controls(rec.bytes()) {
        controls(layout, rec, id)?;
    }
    Ok(id)
}

/// Whether `data` has a byte that may start a control character: C0 (tab and line breaks included), DEL, or
/// the lead byte of U+0080..U+00BF (C1 controls, among others). Most rows have none; they skip [`controls`].
/// Eight bytes at a time (a byte below 0x20, or equal to 0x7F or 0xC2, sets its high bit in `hit`), four words
/// per test: a third of what a byte loop costs on a 100-byte row.
#[inline]
fn may_have_controls(data: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |y: u64| y.wrapping_sub(ONES) & !y & HIGH;
    let hit = |x: u64| (x.wrapping_sub(ONES * 0x20) & !x & HIGH) | zero(x ^ (ONES * 0x7f)) | zero(x ^ (ONES * 0xc2));
    let word = |w: &[u8]| hit(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
    let mut chunks = data.chunks_exact(32);
    for c in &mut chunks {
        if c.chunks_exact(8).fold(0, |a, w| a | word(w)) != 0 {
            return true;
        }
    }
    let mut words = chunks.remainder().chunks_exact(8);
    for w in &mut words {
        if word(w) != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20 || b == 0x7f || b == 0xc2)
}

fn control_reason(c: char, what: &str) -> String {
    format!("{what} has a control character (U+{:04X})", c as u32)
}

/// Control characters in the id (none allowed) and in the carried columns (tab, CR and LF allowed).
fn controls(layout: &Layout, rec: &Rec<'_>, id: &str) -> Result<(), Bad> {
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(Bad::new(&layout.header[layout.id], control_reason(c, "customer_id")));
    }
    let extra = match layout.fields {
        Fields::Transactions { currency, .. } => currency,
        Fields::Customers { .. } => None,
    };
    for &i in layout.carried.iter().chain(&extra) {
        let text = field(rec, i);
        if let Some(c) = text.chars().find(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n')) {
            return Err(Bad::new(&layout.header[i], control_reason(c, "the value")));
        }
    }
    Ok(())
}

/// `s.trim()`, answered without a Unicode table lookup when both ends are visible ASCII (nearly every field).
#[inline]
pub fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [] => s,
        [a, .., b] | [a @ b] if a.is_ascii_graphic() && b.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// Field `i` as text (callers checked UTF-8 in [`common`]).
pub fn field<'r>(rec: &Rec<'r>, i: usize) -> &'r str {
    rec.str(i).unwrap_or("")
}

fn number(layout: &Layout, rec: &Rec<'_>, i: usize, what: &str) -> Result<f64, Bad> {
    let name = &layout.header[i];
    let text = trim(field(rec, i));
    if text.is_empty() {
        return Err(Bad::new(name, format!("missing {what}")));
    }
    let v: f64 = text.parse().map_err(|_| Bad::new(name, format!("not a number ({})", pii::describe(text))))?;
    if !v.is_finite() {
        return Err(Bad::new(name, format!("not a finite number ({what})")));
    }
    if v < 0.0 {
        return Err(Bad::new(name, format!("negative {what}")));
    }
    // -0.0 and 0.0 must rank as equal values.
    Ok(v + 0.0)
}

/// An aggregate row (the old system's schema).
pub fn customer<'r>(layout: &Layout, rec: &Rec<'r>, meta: &RowMeta) -> Result<CustomerRow<'r>, Bad> {
    let id = common(layout, rec, meta)?;
    let Fields::Customers { frequency, aov, recency } = layout.fields else {
        return Err(Bad::new("*", "not an aggregate customers file"));
    };
    let f = number(layout, rec, frequency, "purchase frequency")?;
    let a = number(layout, rec, aov, "spend (average order value)")?;
    let r = number(layout, rec, recency, "days since last engagement")?;
    Ok(CustomerRow { id, values: [r, f, f * a] })
}

/// Dates as `YYYY-MM-DD`, optionally followed by a time (`T…` or ` …`), which is ignored.
fn date(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    let day = t.get(..10)?;
    let rest = &t[10..];
    if !(rest.is_empty() || rest.starts_with('T') || rest.starts_with(' ')) {
        return None;
    }
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// A transaction row. `not_after` is the run date (later orders are in the future); `currency` is the
/// file's currency (the first one seen), checked last so every pass decides the same way.
pub fn transaction<'r>(
    layout: &Layout,
    rec: &Rec<'r>,
    meta: &RowMeta,
    not_after: NaiveDate,
    currency: &mut Option<String>,
) -> Result<TxRow<'r>, Bad> {
    let id = common(layout, rec, meta)?;
    let Fields::Transactions { date: di, amount: ai, currency: ci } = layout.fields else {
        return Err(Bad::new("*", "not a transactions file"));
    };
    let text = field(rec, di);
    let d = date(text)
        .ok_or_else(|| Bad::new(&layout.header[di], format!("not a date (YYYY-MM-DD) ({})", pii::describe(text))))?;
    if d > not_after {
        return Err(Bad::new(&layout.header[di], format!("the order date is after the run date {not_after}")));
    }
    let amount = number(layout, rec, ai, "amount (refunds must be netted before upload)")?;
    if let Some(ci) = ci {
        let c = trim(field(rec, ci));
        if !c.is_empty() {
            match currency {
                None => *currency = Some(c.to_ascii_uppercase()),
                Some(file) if file.eq_ignore_ascii_case(c) => {}
                Some(file) => {
                    // Currency codes are quoted; anything else is described.
                    let code = |s: &str| {
                        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
                            s.to_ascii_uppercase()
                        } else {
                            format!("({})", pii::describe(s))
                        }
                    };
                    return Err(Bad::new(
                        &layout.header[ci],
                        format!(
                            "currency {} differs from the file's currency {}; convert amounts first",
                            code(c),
                            code(file)
                        ),
                    ));
                }
            }
        }
    }
    Ok(TxRow { id, date: d, amount })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Encoding;
    use cpo_common::config::Segmentation;

    fn layout(h: &str) -> Layout {
        Layout::resolve("f", Encoding::Csv, h.split(',').map(String::from).collect(), &Segmentation::default()).unwrap()
    }
    /// An owned row for [`Rec`] to borrow.
    struct Row(Vec<u8>, Vec<(usize, usize)>);
    impl Row {
        fn of(fields: &[&[u8]]) -> Row {
            let (mut data, mut spans) = (Vec::new(), Vec::new());
            for f in fields {
                spans.push((data.len(), data.len() + f.len()));
                data.extend_from_slice(f);
            }
            Row(data, spans)
        }
        fn rec(&self) -> Rec<'_> {
            Rec::new(&self.0, &self.1)
        }
    }
    fn rec(s: &str) -> Row {
        Row::of(&s.split(',').map(str::as_bytes).collect::<Vec<_>>())
    }
    const META: RowMeta = RowMeta { line: 2, start: 0, end: 0, decode_error: None };

    #[test]
    fn trim_is_str_trim() {
        for s in ["", "a", " a", "a ", " ", "\u{a0}x", "x\u{2003}", "ab", "é", "\ta\n", "~!", "a b"] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    #[test]
    fn customer_rows() {
        let l = layout("customer_id,purchase_frequency,avg_order_value,last_engagement_days,tier");
        assert_eq!(customer(&l, &rec("C1,3,2.5,-0,Gold").rec(), &META).unwrap().values, [0.0, 3.0, 7.5]);
        let bad = |s: &str| customer(&l, &rec(s).rec(), &META).unwrap_err();
        assert_eq!(bad(",3,2.5,4,Gold").field, "customer_id");
        assert_eq!(bad("C1,x,2.5,4,Gold"), Bad::new("purchase_frequency", "not a number (1 character: letters)"));
        assert_eq!(bad("C1,3,al@example.com,4,Gold"), Bad::new("avg_order_value", "not a number (an email address)"));
        assert!(bad("C1,3,-2,4,Gold").reason.starts_with("negative spend"));
        assert!(bad("C1,3,NaN,4,Gold").reason.starts_with("not a finite"));
        assert_eq!(bad("C1,3,2").reason, "expected 5 fields, found 3");
        let r = Row::of(&[b"C1", b"3", b"2.5", b"4", b"\xff"]);
        assert_eq!(customer(&l, &r.rec(), &META).unwrap_err(), Bad::new("tier", "not valid UTF-8"));
        // The row is valid UTF-8 as a whole, but the reader's fields split a character: both halves are bad.
        let r = Row::of(&[b"C1", b"3", b"2.5", b"4\xc3", b"\xa9"]);
        assert_eq!(customer(&l, &r.rec(), &META).unwrap_err(), Bad::new("last_engagement_days", "not valid UTF-8"));
    }

    #[test]
    fn transaction_rows() {
        let l = layout("customer_id,order_date,amount,currency");
        let day = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        let mut cur = None;
        let r = rec("C1,2026-01-02T10:00:00Z,10,usd");
        let ok = transaction(&l, &r.rec(), &META, day, &mut cur).unwrap();
        assert_eq!(ok.date, NaiveDate::from_ymd_opt(2026, 1, 2).unwrap());
        assert_eq!(cur.as_deref(), Some("USD"));
        let mut bad = |s: &str| transaction(&l, &rec(s).rec(), &META, day, &mut cur).unwrap_err();
        assert!(bad("C1,2026-02-01,10,USD").reason.contains("after the run date"));
        assert!(bad("C1,01/02/2026,10,USD").reason.starts_with("not a date"));
        assert!(bad("C1,2026-01-02,-5,USD").reason.starts_with("negative amount"));
        assert!(bad("C1,2026-01-02,5,EUR").reason.contains("differs"));
    }

    #[test]
    fn control_bytes_are_found_anywhere() {
        for b in 0..=255u8 {
            for len in [1, 7, 8, 9, 31, 32, 33, 45, 70] {
                for pos in [0, len / 2, len - 1] {
                    let mut v = vec![b'a'; len];
                    v[pos] = b;
                    assert_eq!(may_have_controls(&v), b < 0x20 || b == 0x7f || b == 0xc2, "{b:#x} at {pos} of {len}");
                }
            }
        }
    }
}

//! Engagement events and their validation: what a row of an outcomes file may say.
//!
//! Validation runs once per outcomes row (millions per analysis), so it borrows the row's text and checks the
//! timestamp without building a date-time: the common `YYYY-MM-DDTHH:MM:SSZ` shape is checked by hand, anything
//! else falls back to chrono's parsers: the accepted strings are exactly those chrono's parsers accept.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use cpo_common::outcomes::{EventName, OutcomesConfig, ResolvedColumns, TimestampFormat};

/// The event types, each a bit of a customer's outcome flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Delivered,
    Open,
    Click,
    Convert,
    Unsubscribe,
    Bounce,
}

pub const ALL: [Event; 6] =
    [Event::Delivered, Event::Open, Event::Click, Event::Convert, Event::Unsubscribe, Event::Bounce];

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::Delivered => "delivered",
            Event::Open => "open",
            Event::Click => "click",
            Event::Convert => "convert",
            Event::Unsubscribe => "unsubscribe",
            Event::Bounce => "bounce",
        }
    }
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
    /// Case-insensitive, surrounding whitespace ignored.
    pub fn parse(s: &str) -> Option<Event> {
        // Exact lower-case names are what files hold almost always: one match, no case folding.
        let exact = match s {
            "delivered" => Some(Event::Delivered),
            "open" => Some(Event::Open),
            "click" => Some(Event::Click),
            "convert" => Some(Event::Convert),
            "unsubscribe" => Some(Event::Unsubscribe),
            "bounce" => Some(Event::Bounce),
            _ => None,
        };
        exact.or_else(|| {
            let s = s.trim();
            ALL.into_iter().find(|e| e.name().eq_ignore_ascii_case(s))
        })
    }
}

impl Event {
    /// The event a configured name stands for; `None` for `ignore`.
    pub fn of_name(n: EventName) -> Option<Event> {
        Some(match n {
            EventName::Delivered => Event::Delivered,
            EventName::Open => Event::Open,
            EventName::Click => Event::Click,
            EventName::Convert => Event::Convert,
            EventName::Unsubscribe => Event::Unsubscribe,
            EventName::Bounce => Event::Bounce,
            EventName::Ignore => return None,
        })
    }
}

/// How rows are read and which are accepted: the column mapping in force and the send window.
#[derive(Debug, Clone)]
pub struct Rules {
    pub customer_id: String,
    pub event: String,
    pub timestamp: String,
    pub timestamp_format: TimestampFormat,
    /// Lower-cased export event name → event, `None` for an ignored type. Empty: the canonical names only
    /// (the fast path of [`Event::parse`]).
    events: HashMap<String, Option<Event>>,
    /// First and last accepted UTC day, both included.
    pub window: Option<(NaiveDate, NaiveDate)>,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            customer_id: "customer_id".into(),
            event: "event".into(),
            timestamp: "timestamp".into(),
            timestamp_format: TimestampFormat::Text,
            events: HashMap::new(),
            window: None,
        }
    }
}

impl Rules {
    /// The run's rules: its `outcomes` config and send date.
    pub fn new(cfg: &OutcomesConfig, send_date: NaiveDate) -> Self {
        let last = send_date.checked_add_days(chrono::Days::new(u64::from(cfg.window_days))).unwrap_or(send_date);
        Self { window: Some((send_date, last)), ..Self::from_columns(&cfg.resolve()) }
    }

    pub fn from_columns(c: &ResolvedColumns) -> Self {
        let canonical = c.events.iter().all(|(k, v)| Event::of_name(*v).is_some_and(|e| e.name() == k));
        Self {
            customer_id: c.customer_id.clone(),
            event: c.event.clone(),
            timestamp: c.timestamp.clone(),
            timestamp_format: c.timestamp_format,
            events: if canonical && c.events.len() == ALL.len() {
                HashMap::new()
            } else {
                c.events.iter().map(|(k, v)| (k.clone(), Event::of_name(*v))).collect()
            },
            window: None,
        }
    }

    /// `Some(Some(e))` an event, `Some(None)` an ignored type, `None` unknown.
    fn event(&self, raw: &str) -> Option<Option<Event>> {
        if self.events.is_empty() {
            return Event::parse(raw).map(Some);
        }
        self.events.get(raw).copied().or_else(|| self.events.get(&raw.trim().to_lowercase()).copied())
    }

    fn known_names(&self) -> String {
        if self.events.is_empty() {
            return "delivered, open, click, convert, unsubscribe, bounce".into();
        }
        let mut names: Vec<&str> = self.events.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut s = names.iter().take(12).copied().collect::<Vec<_>>().join(", ");
        if names.len() > 12 {
            s.push_str(", …");
        }
        s
    }
}

/// What a valid row is: an event, or a type the mapping ignores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Valid<'a> {
    Row(EventRow<'a>),
    Ignored,
}

/// Validate the three fields of a row under `rules`: mapping, timestamp format and send window.
pub fn validate_with<'a>(
    rules: &Rules,
    customer_id: Option<&'a str>,
    event: Option<&str>,
    timestamp: Option<&'a str>,
) -> Result<Valid<'a>, Invalid> {
    let customer_id =
        customer_id.map(str::trim).filter(|s| !s.is_empty()).ok_or(("customer_id", "missing or empty".to_string()))?;
    if customer_id.len() > 256 || has_control(customer_id) {
        return Err(("customer_id", "longer than 256 characters or has control characters".into()));
    }
    let raw_event = event.map(str::trim).filter(|s| !s.is_empty()).ok_or(("event", "missing or empty".to_string()))?;
    // Reasons describe a refused value without quoting it (they end up in error messages and reports).
    let Some(event) = rules.event(raw_event).ok_or_else(|| {
        let what = cpo_common::pii::describe(raw_event);
        ("event", format!("not one of {} ({what}); map it under outcomes.columns.events", rules.known_names()))
    })?
    else {
        return Ok(Valid::Ignored);
    };
    let timestamp =
        timestamp.map(str::trim).filter(|s| !s.is_empty()).ok_or(("timestamp", "missing or empty".to_string()))?;
    let day = event_day(timestamp, rules.timestamp_format).ok_or_else(|| {
        let what = cpo_common::pii::describe(timestamp);
        let want = match rules.timestamp_format {
            TimestampFormat::Text => "an RFC 3339 timestamp, `YYYY-MM-DD HH:MM:SS` or a date",
            TimestampFormat::UnixSeconds => "seconds since 1970 (unix_seconds)",
            TimestampFormat::UnixMillis => "milliseconds since 1970 (unix_millis)",
        };
        ("timestamp", format!("not {want} ({what})"))
    })?;
    if let Some((first, last)) = rules.window {
        if day < first || day > last {
            let when = if day < first { "before the send date" } else { "after the end of" };
            return Err((
                "timestamp",
                format!("{day}: {when} the send window {first} to {last} (outcomes.window_days)"),
            ));
        }
    }
    Ok(Valid::Row(EventRow { customer_id, event, timestamp }))
}

/// The UTC day of a timestamp in `format`.
pub fn event_day(s: &str, format: TimestampFormat) -> Option<NaiveDate> {
    match format {
        TimestampFormat::Text => {
            if utc_seconds_shape(s.as_bytes()) {
                return NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").ok();
            }
            parse_timestamp(s).map(|t| t.date_naive())
        }
        TimestampFormat::UnixSeconds => {
            let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            DateTime::from_timestamp(whole.parse::<i64>().ok()?, 0).map(|t| t.date_naive())
        }
        TimestampFormat::UnixMillis => DateTime::from_timestamp_millis(s.parse().ok()?).map(|t| t.date_naive()),
    }
}

/// Flags bit of a customer who was assigned in this run (set while joining outcomes with assignments).
pub const KNOWN: u8 = 1 << 7;

/// A valid event row, borrowing the row's text (customer id and timestamp trimmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRow<'a> {
    pub customer_id: &'a str,
    pub event: Event,
    pub timestamp: &'a str,
}

/// Why a row was rejected: the field at fault and the reason.
pub type Invalid = (&'static str, String);

/// Validate the three fields of an event row with the canonical names, any date.
pub fn validate<'a>(
    customer_id: Option<&'a str>,
    event: Option<&str>,
    timestamp: Option<&'a str>,
) -> Result<EventRow<'a>, Invalid> {
    match validate_with(&Rules::default(), customer_id, event, timestamp)? {
        Valid::Row(r) => Ok(r),
        Valid::Ignored => Err(("event", "ignored".into())),
    }
}

/// `char::is_control` over the id; ASCII ids (the usual case) are checked byte by byte.
fn has_control(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_control())
    } else {
        s.chars().any(char::is_control)
    }
}

/// Whether [`parse_timestamp`] accepts `s`, without building the date-time for the common shape.
pub fn is_timestamp(s: &str) -> bool {
    utc_seconds_shape(s.as_bytes()) || parse_timestamp(s).is_some()
}

/// `YYYY-MM-DDTHH:MM:SSZ` with a real calendar date, hour ≤ 23, minute and second ≤ 59: a strict subset of
/// what chrono's RFC 3339 parser accepts (leap seconds, offsets and fractions take the slow path), so the
/// fast path never accepts anything the slow one would reject.
fn utc_seconds_shape(b: &[u8]) -> bool {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b'T', h0, h1, b':', n0, n1, b':', s0, s1, b'Z'] = *b else {
        return false;
    };
    let digits = [y0, y1, y2, y3, m0, m1, d0, d1, h0, h1, n0, n1, s0, s1];
    if !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num = |hi: u8, lo: u8| u32::from(hi - b'0') * 10 + u32::from(lo - b'0');
    let year = (num(y0, y1) * 100 + num(y2, y3)) as i32;
    num(h0, h1) <= 23
        && num(n0, n1) <= 59
        && num(s0, s1) <= 59
        && NaiveDate::from_ymd_opt(year, num(m0, m1), num(d0, d1)).is_some()
}

/// RFC 3339, a naive date-time (taken as UTC) with `T` or a space, or a date (midnight UTC).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        assert!(validate(Some("C1"), Some("Open"), Some("2026-11-25T10:00:00Z")).is_ok());
        assert_eq!(validate(Some(" "), Some("open"), Some("2026-11-25")).unwrap_err().0, "customer_id");
        assert_eq!(validate(Some("C\u{85}1"), Some("open"), Some("2026-11-25")).unwrap_err().0, "customer_id");
        assert_eq!(validate(Some("C\t1"), Some("open"), Some("2026-11-25")).unwrap_err().0, "customer_id");
        assert_eq!(validate(Some("C1"), Some("opened"), Some("2026-11-25")).unwrap_err().0, "event");
        assert_eq!(validate(Some("C1"), Some("open"), Some("yesterday")).unwrap_err().0, "timestamp");
        assert!(parse_timestamp("2026-11-25 10:00:00").is_some());
        assert!(parse_timestamp("2026-11-25T10:00:00+01:00").is_some());
        let row = validate(Some(" C1 "), Some(" CLICK "), Some(" 2026-11-25 ")).unwrap();
        assert_eq!(row, EventRow { customer_id: "C1", event: Event::Click, timestamp: "2026-11-25" });
    }

    /// The hand-written shape check agrees with chrono on every case it could get wrong.
    #[test]
    fn fast_timestamp_check_agrees_with_chrono() {
        for s in [
            "2026-11-25T10:00:00Z",
            "2026-02-29T10:00:00Z",
            "2024-02-29T10:00:00Z",
            "2026-04-31T10:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-00-01T10:00:00Z",
            "2026-11-00T10:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T23:60:00Z",
            "2026-11-25T23:59:60Z",
            "2026-11-25T23:59:59Z",
            "0000-01-01T00:00:00Z",
            "2026-1a-25T10:00:00Z",
            "2026-11-25t10:00:00z",
            "2026-11-25T10:00:00",
            "2026-11-25T10:00:00.5Z",
            "2026-11-25 10:00:00Z",
            "+2026-11-25T10:00:00Z",
        ] {
            assert_eq!(is_timestamp(s), parse_timestamp(s).is_some(), "{s}");
            if utc_seconds_shape(s.as_bytes()) {
                assert!(DateTime::parse_from_rfc3339(s).is_ok(), "fast path accepted {s}, chrono does not");
            }
        }
        assert!(utc_seconds_shape(b"2024-02-29T23:59:59Z"));
        assert!(!utc_seconds_shape(b"2026-02-29T23:59:59Z"));
    }
}

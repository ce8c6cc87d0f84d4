//! Engagement events and their validation: what a row of an outcomes file may say.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

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
    pub fn parse(s: &str) -> Option<Event> {
        let s = s.trim();
        ALL.into_iter().find(|e| e.name().eq_ignore_ascii_case(s))
    }
}

/// Flags bit of a customer who was assigned in this run (set while joining outcomes with assignments).
pub const KNOWN: u8 = 1 << 7;

/// A valid event row.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub customer_id: String,
    pub event: Event,
    pub timestamp: DateTime<Utc>,
}

/// Why a row was rejected: the field at fault and the reason.
pub type Invalid = (&'static str, String);

/// Validate the three fields of an event row.
pub fn validate(customer_id: Option<&str>, event: Option<&str>, timestamp: Option<&str>) -> Result<EventRow, Invalid> {
    let customer_id =
        customer_id.map(str::trim).filter(|s| !s.is_empty()).ok_or(("customer_id", "missing or empty".to_string()))?;
    if customer_id.len() > 256 || customer_id.chars().any(char::is_control) {
        return Err(("customer_id", "longer than 256 characters or has control characters".into()));
    }
    let raw_event = event.map(str::trim).filter(|s| !s.is_empty()).ok_or(("event", "missing or empty".to_string()))?;
    let event = Event::parse(raw_event).ok_or_else(|| {
        ("event", format!("{raw_event:?} is not one of delivered, open, click, convert, unsubscribe, bounce"))
    })?;
    let raw_ts =
        timestamp.map(str::trim).filter(|s| !s.is_empty()).ok_or(("timestamp", "missing or empty".to_string()))?;
    let timestamp = parse_timestamp(raw_ts).ok_or_else(|| {
        ("timestamp", format!("{raw_ts:?} is not an RFC 3339 timestamp, `YYYY-MM-DD HH:MM:SS` or a date"))
    })?;
    Ok(EventRow { customer_id: customer_id.to_string(), event, timestamp })
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
        assert_eq!(validate(Some("C1"), Some("opened"), Some("2026-11-25")).unwrap_err().0, "event");
        assert_eq!(validate(Some("C1"), Some("open"), Some("yesterday")).unwrap_err().0, "timestamp");
        assert!(parse_timestamp("2026-11-25 10:00:00").is_some());
        assert!(parse_timestamp("2026-11-25T10:00:00+01:00").is_some());
    }
}

//! The `outcomes` section of a campaign: how long after the send events count, how many rejected rows refuse a
//! file, and how an email service's export maps onto `customer_id`, `event` and `timestamp` (a preset for a
//! known service, then per-column and per-event overrides). See docs/experiment.md, "Outcomes files".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `outcomes:` of a campaign config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutcomesConfig {
    /// Events are accepted from the send date to the send date plus this many days (UTC days, both included).
    pub window_days: u32,
    /// A file with more rejected rows than this share of its rows is refused as a whole.
    pub max_reject_ratio: f64,
    /// An email service's export format; `columns` overrides it field by field.
    pub preset: Option<Preset>,
    pub columns: OutcomeColumns,
}

impl Default for OutcomesConfig {
    fn default() -> Self {
        Self { window_days: 14, max_reject_ratio: 0.05, preset: None, columns: OutcomeColumns::default() }
    }
}

/// Where the three fields are, and what the export's event names mean. In JSON lines a name with dots
/// (`user-variables.customer_id`) is a path into nested objects; in CSV it is the header as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutcomeColumns {
    pub customer_id: Option<String>,
    pub event: Option<String>,
    pub timestamp: Option<String>,
    pub timestamp_format: Option<TimestampFormat>,
    /// Export event name (matched case-insensitively) → what it counts as.
    pub events: BTreeMap<String, EventName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or a date.
    Text,
    /// Seconds since 1970-01-01 UTC, fractions allowed (SendGrid, Mailgun).
    UnixSeconds,
    UnixMillis,
}

/// What an export's event counts as. `ignore` skips rows of event types the analysis has no use for
/// (`processed`, `deferred`, …) without counting them as rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    Delivered,
    Open,
    Click,
    Convert,
    Unsubscribe,
    Bounce,
    Ignore,
}

/// Event-export formats of email services, from their published documentation (docs/experiment.md lists the
/// pages; a preset whose shape could not be checked against them is marked unverified there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// SendGrid Event Webhook posts, one JSON event per line, with `customer_id` sent as a custom argument
    /// (custom arguments appear as top-level members of every event).
    /// <https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event>
    Sendgrid,
    /// Mailgun events (Events API `items` or webhook `event-data`), one JSON event per line, with
    /// `customer_id` sent as a custom variable (`user-variables`).
    /// <https://documentation.mailgun.com/docs/mailgun/user-manual/events/event-types>,
    /// <https://documentation.mailgun.com/docs/mailgun/user-manual/events/event-structure>
    Mailgun,
}

/// The mapping in force: preset, then overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedColumns {
    pub customer_id: String,
    pub event: String,
    pub timestamp: String,
    pub timestamp_format: TimestampFormat,
    /// Lower-cased export event name → meaning; the six canonical names always mean themselves unless mapped.
    pub events: BTreeMap<String, EventName>,
}

impl Preset {
    fn columns(self) -> OutcomeColumns {
        use EventName::*;
        let (cid, ev, ts, events): (&str, &str, &str, &[(&str, EventName)]) = match self {
            // Delivery events: processed, dropped, deferred, bounce, delivered; engagement: open, click,
            // spamreport, unsubscribe, group_unsubscribe, group_resubscribe. A spam report is an opt-out.
            Preset::Sendgrid => (
                "customer_id",
                "event",
                "timestamp",
                &[
                    ("processed", Ignore),
                    ("dropped", Ignore),
                    ("deferred", Ignore),
                    ("bounce", Bounce),
                    ("delivered", Delivered),
                    ("open", Open),
                    ("click", Click),
                    ("spamreport", Unsubscribe),
                    ("unsubscribe", Unsubscribe),
                    ("group_unsubscribe", Unsubscribe),
                    ("group_resubscribe", Ignore),
                ],
            ),
            // `failed` covers temporary and permanent failures alike (told apart by `severity`, which is not
            // read): it is ignored rather than counted as a bounce. A complaint is an opt-out.
            Preset::Mailgun => (
                "user-variables.customer_id",
                "event",
                "timestamp",
                &[
                    ("accepted", Ignore),
                    ("rejected", Ignore),
                    ("delivered", Delivered),
                    ("failed", Ignore),
                    ("opened", Open),
                    ("clicked", Click),
                    ("unsubscribed", Unsubscribe),
                    ("complained", Unsubscribe),
                    ("stored", Ignore),
                ],
            ),
        };
        OutcomeColumns {
            customer_id: Some(cid.into()),
            event: Some(ev.into()),
            timestamp: Some(ts.into()),
            timestamp_format: Some(TimestampFormat::UnixSeconds),
            events: events.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }
}

impl OutcomesConfig {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The mapping in force.
    pub fn resolve(&self) -> ResolvedColumns {
        let base = self.preset.map(Preset::columns).unwrap_or_default();
        let c = &self.columns;
        let pick = |over: &Option<String>, preset: &Option<String>, default: &str| {
            over.clone().or_else(|| preset.clone()).unwrap_or_else(|| default.to_string())
        };
        let mut events: BTreeMap<String, EventName> = [
            ("delivered", EventName::Delivered),
            ("open", EventName::Open),
            ("click", EventName::Click),
            ("convert", EventName::Convert),
            ("unsubscribe", EventName::Unsubscribe),
            ("bounce", EventName::Bounce),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in base.events.iter().chain(&c.events) {
            events.insert(k.trim().to_lowercase(), *v);
        }
        ResolvedColumns {
            customer_id: pick(&c.customer_id, &base.customer_id, "customer_id"),
            event: pick(&c.event, &base.event, "event"),
            timestamp: pick(&c.timestamp, &base.timestamp, "timestamp"),
            timestamp_format: c.timestamp_format.or(base.timestamp_format).unwrap_or(TimestampFormat::Text),
            events,
        }
    }

    /// Checked at config load; `err(field, why)` builds the error.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |f: &str, why: &str| Err((format!("outcomes.{f}"), why.to_string()));
        if !(1..=366).contains(&self.window_days) {
            return err("window_days", "must be 1 to 366 days");
        }
        if !(self.max_reject_ratio.is_finite() && (0.0..=1.0).contains(&self.max_reject_ratio)) {
            return err("max_reject_ratio", "must be in [0, 1]");
        }
        for (field, v) in [
            ("customer_id", &self.columns.customer_id),
            ("event", &self.columns.event),
            ("timestamp", &self.columns.timestamp),
        ] {
            if let Some(v) = v {
                let bad_path = v.split('.').any(|s| s.trim().is_empty());
                if v.trim().is_empty() || v.len() > 256 || v.chars().any(char::is_control) || bad_path {
                    return err(&format!("columns.{field}"), "must be a header name (1-256 characters)");
                }
            }
        }
        let r = self.resolve();
        if [&r.customer_id, &r.event, &r.timestamp]
            .iter()
            .any(|a| [&r.customer_id, &r.event, &r.timestamp].iter().filter(|b| a == *b).count() > 1)
        {
            return err("columns", "customer_id, event and timestamp must be three different columns");
        }
        for k in self.columns.events.keys() {
            if k.trim().is_empty() || k.len() > 128 || k.chars().any(char::is_control) {
                return err("columns.events", "an event name must be 1-128 characters");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_resolve_and_overrides_win() {
        let cfg: OutcomesConfig = serde_yaml_ng::from_str(
            "preset: mailgun\ncolumns:\n  customer_id: user-variables.cid\n  events: {Failed: bounce}\n",
        )
        .unwrap();
        cfg.validate().unwrap();
        let r = cfg.resolve();
        assert_eq!(r.customer_id, "user-variables.cid");
        assert_eq!(r.timestamp_format, TimestampFormat::UnixSeconds);
        assert_eq!(r.events["failed"], EventName::Bounce);
        assert_eq!(r.events["opened"], EventName::Open);
        assert_eq!(r.events["open"], EventName::Open);
        let d = OutcomesConfig::default().resolve();
        assert_eq!((d.customer_id.as_str(), d.timestamp_format), ("customer_id", TimestampFormat::Text));
    }

    #[test]
    fn bad_sections_are_refused_at_load() {
        for bad in [
            "window_days: 0",
            "max_reject_ratio: 1.5",
            "preset: hotmail",
            "columns: {event: ''}",
            "columns: {events: {Opened: opened}}",
            "columns: {surprise: 1}",
            "columns: {customer_id: event}",
            "columns: {timestamp: 'a..b'}",
        ] {
            let parsed = serde_yaml_ng::from_str::<OutcomesConfig>(bad);
            assert!(parsed.is_err() || parsed.unwrap().validate().is_err(), "{bad} accepted");
        }
    }
}

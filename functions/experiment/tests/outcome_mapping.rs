//! Outcomes files as email services export them: each preset parses a sample in its service's documented
//! shape, and the row parser (column mapping, timestamps, send window) is checked against random rows.

use chrono::NaiveDate;
use cpo_common::outcomes::OutcomesConfig;
use cpo_experiment::events::{Event, Rules};
use cpo_experiment::outcome_rows::{parse_with, Collect};
use proptest::prelude::*;

fn rules(yaml: &str, send: NaiveDate) -> Rules {
    let cfg: OutcomesConfig = serde_yaml_ng::from_str(yaml).unwrap();
    cfg.validate().unwrap();
    Rules::new(&cfg, send)
}

fn send() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
}

/// (customer, event) of the valid rows, and (line, field) of the rejected ones.
type Parsed = (Vec<(String, Event)>, Vec<(u64, String)>);

fn rows(file: &str, body: &str, rules: &Rules) -> Parsed {
    let mut sink = Collect::default();
    parse_with(file, body.as_bytes(), rules, &mut sink).unwrap();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (line, r) in sink.rows {
        match r {
            Ok(v) => ok.push(v),
            Err(r) => bad.push((line, r.field)),
        }
    }
    (ok, bad)
}

/// SendGrid Event Webhook events (one per line), `customer_id` as a custom argument, unix-second timestamps.
#[test]
fn sendgrid_event_webhook_export() {
    let r = rules("preset: sendgrid", send());
    // 2026-11-25T12:00:00Z = 1795608000.
    let body = r#"{"email":"a@example.com","timestamp":1795608000,"smtp-id":"<x@y>","event":"processed","category":"cat facts","sg_event_id":"e1","sg_message_id":"m1","customer_id":"C1"}
{"email":"a@example.com","timestamp":1795608060,"event":"delivered","response":"250 OK","sg_event_id":"e2","sg_message_id":"m1","customer_id":"C1"}
{"email":"a@example.com","timestamp":1795608120,"event":"open","sg_machine_open":false,"useragent":"Mozilla","ip":"255.255.255.255","sg_event_id":"e3","sg_message_id":"m1","customer_id":"C1"}
{"email":"a@example.com","timestamp":1795608180,"event":"click","url":"https://example.com","sg_event_id":"e4","sg_message_id":"m1","customer_id":"C1"}
{"email":"b@example.com","timestamp":1795608240,"event":"spamreport","sg_event_id":"e5","sg_message_id":"m2","customer_id":"C2"}
{"email":"b@example.com","timestamp":1795608300,"event":"group_unsubscribe","asm_group_id":1,"sg_event_id":"e6","sg_message_id":"m2","customer_id":"C2"}
{"email":"c@example.com","timestamp":1795608360,"event":"bounce","type":"bounce","reason":"500 unknown recipient","sg_event_id":"e7","sg_message_id":"m3","customer_id":"C3"}
{"email":"c@example.com","timestamp":1595608360,"event":"open","sg_event_id":"e8","sg_message_id":"m3","customer_id":"C3"}
"#;
    let (ok, bad) = rows("sendgrid.jsonl", body, &r);
    assert_eq!(
        ok,
        vec![
            ("C1".into(), Event::Delivered),
            ("C1".into(), Event::Open),
            ("C1".into(), Event::Click),
            ("C2".into(), Event::Unsubscribe),
            ("C2".into(), Event::Unsubscribe),
            ("C3".into(), Event::Bounce),
        ]
    );
    assert_eq!(bad, vec![(8, "timestamp".to_string())], "2020: before the send date");
}

/// Mailgun events (Events API `items`, one per line), `customer_id` as a custom variable, fractional seconds.
#[test]
fn mailgun_events_export() {
    let r = rules("preset: mailgun", send());
    let body = r#"{"event":"accepted","timestamp":1795608000.123456,"id":"a1","recipient":"a@example.com","user-variables":{"customer_id":"C1"}}
{"event":"delivered","timestamp":1795608060.5,"id":"a2","recipient":"a@example.com","user-variables":{"customer_id":"C1"}}
{"event":"opened","timestamp":1795608120.25,"id":"a3","recipient":"a@example.com","user-variables":{"customer_id":"C1"}}
{"event":"clicked","timestamp":1795608180,"id":"a4","url":"https://example.com","recipient":"a@example.com","user-variables":{"customer_id":"C1"}}
{"event":"complained","timestamp":1795608240,"id":"a5","recipient":"b@example.com","user-variables":{"customer_id":"C2"}}
{"event":"failed","severity":"temporary","timestamp":1795608300,"id":"a6","recipient":"c@example.com","user-variables":{"customer_id":"C3"}}
{"event":"opened","timestamp":1795608300,"id":"a7","recipient":"d@example.com","user-variables":{}}
"#;
    let (ok, bad) = rows("mailgun.jsonl", body, &r);
    assert_eq!(
        ok,
        vec![
            ("C1".into(), Event::Delivered),
            ("C1".into(), Event::Open),
            ("C1".into(), Event::Click),
            ("C2".into(), Event::Unsubscribe),
        ]
    );
    assert_eq!(bad, vec![(7, "customer_id".to_string())], "no custom variable: rejected, not guessed");
}

/// A CSV export with its own headers and event names, mapped by hand.
#[test]
fn csv_export_mapped_by_columns() {
    let r = rules(
        "columns: {customer_id: Subscriber ID, event: Activity, timestamp: Date, events: {Opened: open, Clicked: click, Sent: ignore}}",
        send(),
    );
    let body = "Subscriber ID,Activity,Date,Email\nC1,Sent,2026-11-25 09:00:00,x@y.z\nC1,Opened,2026-11-25 10:00:00,x@y.z\nC2,Clicked,2026-12-09T23:59:59Z,x@y.z\nC3,Opened,2026-12-10T00:00:00Z,x@y.z\nC4,Bounced,2026-11-26,x@y.z\n";
    let (ok, bad) = rows("export.csv", body, &r);
    assert_eq!(ok, vec![("C1".into(), Event::Open), ("C2".into(), Event::Click)]);
    assert_eq!(bad, vec![(5, "timestamp".to_string()), (6, "event".to_string())], "day 15 is outside 14 days");
}

proptest! {
    /// Any row: accepted exactly when its event maps to an event and its UTC day is in the window; the
    /// header names in any case and column order; unix and text timestamps agree.
    #[test]
    fn rows_are_accepted_exactly_inside_the_mapping_and_window(
        day_offset in -40i64..40,
        secs in 0u32..86_400,
        event_pick in 0usize..5,
        unix in any::<bool>(),
        upper in any::<bool>(),
        swap in any::<bool>(),
        window in 1u32..30,
    ) {
        let names = ["Opened", "Clicked", "Sent", "Teleported", "open"];
        let yaml = format!(
            "window_days: {window}\ncolumns: {{customer_id: cid, event: what, timestamp: when, timestamp_format: {}, events: {{Opened: open, Clicked: click, Sent: ignore}}}}",
            if unix { "unix_seconds" } else { "text" }
        );
        let r = rules(&yaml, send());
        let day = send() + chrono::Duration::days(day_offset);
        let t = day.and_hms_opt(0, 0, 0).unwrap().and_utc() + chrono::Duration::seconds(i64::from(secs));
        let ts = if unix { t.timestamp().to_string() } else { t.to_rfc3339() };
        let header = if upper { ["CID", "WHAT", "WHEN"] } else { ["cid", "what", "when"] };
        let (h, row) = if swap {
            (format!("{},{},{}", header[2], header[0], header[1]), format!("{ts},C9,{}", names[event_pick]))
        } else {
            (header.join(","), format!("C9,{},{ts}", names[event_pick]))
        };
        let body = format!("{h}\n{row}\n");
        let mut sink = Collect::default();
        parse_with("p.csv", body.as_bytes(), &r, &mut sink).unwrap();
        let in_window = day_offset >= 0 && day_offset <= i64::from(window);
        let expected = match event_pick {
            0 | 4 => Some(Event::Open),
            1 => Some(Event::Click),
            _ => None,
        };
        match (event_pick, &sink.rows[..]) {
            (2, []) => {} // ignored: neither accepted nor rejected
            (3, [(2, Err(rej))]) => prop_assert_eq!(&rej.field, "event"),
            (_, [(2, Ok((id, e)))]) => {
                prop_assert!(in_window, "accepted outside the window: {day}");
                prop_assert_eq!(id.as_str(), "C9");
                prop_assert_eq!(Some(*e), expected);
            }
            (_, [(2, Err(rej))]) => {
                prop_assert!(!in_window, "rejected inside the window: {:?}", rej);
                prop_assert_eq!(&rej.field, "timestamp");
                prop_assert!(rej.reason.contains("send window"), "{}", rej.reason);
            }
            (p, other) => prop_assert!(false, "pick {p}: {other:?}"),
        }
    }
}

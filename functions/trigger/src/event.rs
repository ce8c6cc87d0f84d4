//! The three shapes of event the trigger is invoked with, recognised by their fields (they share none, so
//! detection is unambiguous): an S3 notification (`Records`), an EventBridge event (`detail-type`), and the
//! weekly schedule's input (`{"campaign": …}` from EventBridge Scheduler).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use cpo_common::StepError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One object an event reports as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The key exactly as stored (S3 notifications' URL encoding undone).
    pub key: String,
    /// The ETag of the version the event reports, when it carries one.
    pub etag: Option<String>,
}

/// What the schedule (or a person with `cargo lambda invoke`) asks for: a run of a campaign on the newest
/// file under `incoming/<campaign>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    pub campaign: String,
    #[serde(default)]
    pub simulate_outcomes: Option<bool>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// The fire time: EventBridge Scheduler fills it from `<aws.scheduler.scheduled-time>` in the schedule's
    /// input; an EventBridge rule's event carries it as `time`. It dates the run (run_id date, send date).
    #[serde(default)]
    pub scheduled_time: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerEvent {
    Objects(Vec<ObjectRef>),
    Schedule(ScheduleInput),
}

/// `detail` of an EventBridge "Object Created" event from S3 (only the fields used).
#[derive(Debug, Serialize, Deserialize)]
struct ObjectCreatedDetail {
    bucket: NamedBucket,
    object: CreatedObject,
}

#[derive(Debug, Serialize, Deserialize)]
struct NamedBucket {
    name: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CreatedObject {
    key: String,
    #[serde(default)]
    etag: Option<String>,
}

fn invalid(what: &str, e: impl std::fmt::Display) -> StepError {
    StepError::input(format!("trigger event: not a valid {what}: {e}"))
}

/// Recognise and parse an event. Anything else is `Cpo.InputInvalid` with the shapes that are accepted.
pub fn parse(event: Value) -> Result<TriggerEvent, StepError> {
    let Some(obj) = event.as_object() else {
        return Err(StepError::input("trigger event: expected a JSON object"));
    };
    if obj.contains_key("Records") {
        let s3: S3Event = serde_json::from_value(event).map_err(|e| invalid("S3 notification", e))?;
        let mut out = Vec::with_capacity(s3.records.len());
        for (i, r) in s3.records.into_iter().enumerate() {
            let field = |name: &str| StepError::input(format!("trigger event: Records[{i}].s3.{name} is missing"));
            let bucket = r.s3.bucket.name.ok_or_else(|| field("bucket.name"))?;
            let raw = r.s3.object.key.ok_or_else(|| field("object.key"))?;
            let key = decode_s3_key(&raw)
                .map_err(|e| StepError::input(format!("trigger event: Records[{i}].s3.object.key: {e}")))?;
            out.push(ObjectRef { bucket, key, etag: r.s3.object.e_tag.filter(|e| !e.is_empty()) });
        }
        return Ok(TriggerEvent::Objects(out));
    }
    if let Some(detail_type) = obj.get("detail-type").and_then(Value::as_str) {
        return match detail_type {
            "Object Created" => {
                let ev: EventBridgeEvent<ObjectCreatedDetail> =
                    serde_json::from_value(event).map_err(|e| invalid("EventBridge Object Created event", e))?;
                if ev.source != "aws.s3" {
                    return Err(StepError::input(format!(
                        "trigger event: Object Created from source {:?}, expected aws.s3",
                        ev.source
                    )));
                }
                // EventBridge carries the key as stored (no form encoding, unlike S3 notifications).
                let CreatedObject { key, etag } = ev.detail.object;
                Ok(TriggerEvent::Objects(vec![ObjectRef {
                    bucket: ev.detail.bucket.name,
                    key,
                    etag: etag.filter(|e| !e.is_empty()),
                }]))
            }
            // An EventBridge rule on a schedule, with the campaign in its detail.
            "Scheduled Event" => {
                let ev: EventBridgeEvent<ScheduleInput> =
                    serde_json::from_value(event).map_err(|e| invalid("Scheduled Event with detail.campaign", e))?;
                let mut s = ev.detail;
                s.scheduled_time = s.scheduled_time.or(ev.time);
                Ok(TriggerEvent::Schedule(s))
            }
            other => Err(StepError::input(format!(
                "trigger event: EventBridge detail-type {other:?} is not handled (Object Created, Scheduled Event)"
            ))),
        };
    }
    if obj.contains_key("campaign") {
        let s: ScheduleInput = serde_json::from_value(event).map_err(|e| invalid("schedule input", e))?;
        return Ok(TriggerEvent::Schedule(s));
    }
    Err(StepError::input(
        "trigger event: unrecognised; expected an S3 notification (Records), an EventBridge \"Object Created\" \
         event, or a schedule input {\"campaign\": \"<name>\"}",
    ))
}

/// S3 notifications carry keys form-encoded ("red flower.jpg" arrives as "red+flower.jpg"): `+` is a space,
/// `%XX` a byte. The decoded bytes must be UTF-8.
pub fn decode_s3_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| "URL-decoded key is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_form_encoded_keys() {
        assert_eq!(decode_s3_key("incoming/weekly/red+flower.csv").unwrap(), "incoming/weekly/red flower.csv");
        assert_eq!(decode_s3_key("incoming/weekly/a%2Bb%3D1.csv").unwrap(), "incoming/weekly/a+b=1.csv");
        assert_eq!(decode_s3_key("incoming/weekly/%C3%A9t%C3%A9.csv").unwrap(), "incoming/weekly/été.csv");
        // Encoded traversal decodes to a traversal, which `Key` then refuses downstream.
        assert_eq!(decode_s3_key("incoming/%2E%2E/x").unwrap(), "incoming/../x");
        assert!(decode_s3_key("incoming/%FF.csv").is_err());
    }

    #[test]
    fn refuses_unknown_shapes_with_the_accepted_ones() {
        for bad in [json!([1]), json!({"hello": 1}), json!({"detail-type": "Object Deleted", "source": "aws.s3"})] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.kind, cpo_common::ErrorKind::InputInvalid);
        }
        let e = parse(json!({"campaign": "weekly", "surprise": true})).unwrap_err();
        assert!(e.message.contains("surprise"), "{e}");
        let e = parse(json!({"Records": [{"s3": {}}]})).unwrap_err();
        assert!(e.message.contains("S3 notification"), "{e}");
    }

    #[test]
    fn schedule_inputs() {
        assert_eq!(
            parse(json!({"campaign": "weekly", "seed": 3})).unwrap(),
            TriggerEvent::Schedule(ScheduleInput {
                campaign: "weekly".into(),
                simulate_outcomes: None,
                seed: Some(3),
                scheduled_time: None
            })
        );
    }
}

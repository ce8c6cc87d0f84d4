//! Approved brand content (the old system's JSON document schema, plus Markdown with front matter).
//! `cpo_retrieve::corpus` loads and validates these; retrieval decides which are eligible on the run date.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub document_id: String,
    pub title: String,
    #[serde(default)]
    pub category: String,
    /// Plain text the generator quotes from; passage offsets count characters (not bytes) into it. For a
    /// Markdown document it is the body with the markup removed.
    pub content: String,
    /// "All" or an audience such as "High-Value".
    #[serde(default = "all")]
    pub audience: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    /// First day the document may be used. Accepts RFC 3339 or a plain `YYYY-MM-DD` (midnight UTC), because
    /// people writing front matter by hand write dates, not timestamps.
    #[serde(deserialize_with = "date_or_datetime")]
    pub approval_date: DateTime<Utc>,
    /// The document may be used only on run dates before this day.
    #[serde(default, deserialize_with = "opt_date_or_datetime", skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

fn all() -> String {
    "All".into()
}

/// RFC 3339 timestamp or `YYYY-MM-DD` (taken as midnight UTC).
pub fn parse_date_or_datetime(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(format!("{s:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 timestamp"))
}

fn date_or_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    parse_date_or_datetime(&s).map_err(serde::de::Error::custom)
}

fn opt_date_or_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_date_or_datetime(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_timestamps() {
        let doc: Document = serde_json::from_str(
            r#"{"document_id":"D","title":"T","content":"C.","approval_date":"2025-11-01","expires":"2026-01-31T12:00:00+01:00"}"#,
        )
        .unwrap();
        assert_eq!(doc.approval_date.to_rfc3339(), "2025-11-01T00:00:00+00:00");
        assert_eq!(doc.expires.unwrap().to_rfc3339(), "2026-01-31T11:00:00+00:00");
        assert_eq!(doc.audience, "All");
        let back: Document = serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn bad_date_is_explained() {
        let e = serde_json::from_str::<Document>(
            r#"{"document_id":"D","title":"T","content":"C.","approval_date":"1st of May"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("1st of May"), "{e}");
    }
}

//! Which documents a segment may receive on the run date (docs/architecture.md, "Segments and content"). Written once
//! here; the local index applies it directly, and the Azure retriever both sends it as an OData filter and re-checks
//! what comes back.

use chrono::NaiveDate;
use cpo_common::model::content::Document;

/// The audience every segment may receive.
pub const ALL: &str = "All";

/// Approved on or before the run date, and not yet expired on it: `expires` names the first day the document
/// may no longer be used, so a document expiring on the run date is out.
pub fn valid_on(doc: &Document, as_of: NaiveDate) -> bool {
    doc.approval_date.date_naive() <= as_of && doc.expires.is_none_or(|e| e.date_naive() > as_of)
}

/// Audience "All", or one of the segment's audiences (compared without regard to case or surrounding space,
/// since audiences are typed by hand in documents and campaign files).
pub fn audience_matches(doc_audience: &str, audiences: &[String]) -> bool {
    let a = doc_audience.trim();
    a.eq_ignore_ascii_case(ALL) || audiences.iter().any(|s| s.trim().eq_ignore_ascii_case(a))
}

pub fn eligible(doc: &Document, as_of: NaiveDate, audiences: &[String]) -> bool {
    valid_on(doc, as_of) && audience_matches(&doc.audience, audiences)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpo_common::model::content::parse_date_or_datetime;

    fn doc(approved: &str, expires: Option<&str>, audience: &str) -> Document {
        Document {
            document_id: "D".into(),
            title: "T".into(),
            category: String::new(),
            content: "C.".into(),
            audience: audience.into(),
            keywords: vec![],
            approval_date: parse_date_or_datetime(approved).unwrap(),
            expires: expires.map(|e| parse_date_or_datetime(e).unwrap()),
            source_url: None,
            metadata: None,
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn approval_and_expiry_bounds() {
        let d = doc("2025-11-01T18:00:00Z", Some("2025-12-01"), "All");
        assert!(!valid_on(&d, day("2025-10-31")));
        assert!(valid_on(&d, day("2025-11-01")), "approved later that day still counts for the day");
        assert!(valid_on(&d, day("2025-11-30")));
        assert!(!valid_on(&d, day("2025-12-01")), "expires on the run date → out");
    }

    #[test]
    fn audiences() {
        let hv = vec!["High-Value".to_string()];
        assert!(audience_matches("All", &hv));
        assert!(audience_matches(" high-value ", &hv));
        assert!(!audience_matches("At-Risk", &hv));
        assert!(!audience_matches("At-Risk", &[]));
        assert!(eligible(&doc("2025-01-01", None, "High-Value"), day("2025-06-01"), &hv));
    }
}

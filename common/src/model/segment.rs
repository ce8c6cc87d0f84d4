//! Produced by `segment`: per-customer members (customer-level, PII allowed) and segment profiles (no PII).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One line of `customers/members-NNNNN.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub customer_id: String,
    /// Line in the input file (1-based, header = line 1).
    pub line: u64,
    pub recency: f64,
    pub frequency: f64,
    pub monetary: f64,
    pub r: u8,
    pub f: u8,
    pub m: u8,
    pub segment: String,
    /// Carried columns (first_name, email, tier, location, historical_open_rate…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// One line of `customers/rejected.jsonl` (also used for rejected outcome events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub file: String,
    pub line: u64,
    pub field: String,
    pub reason: String,
    pub raw: String,
}

/// A segment as the generator and the report see it: aggregates only, never a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentProfile {
    pub name: String,
    pub slug: String,
    pub size: u64,
    pub share: f64,
    pub r_mean: f64,
    pub f_mean: f64,
    pub m_mean: f64,
    pub r_median: f64,
    pub f_median: f64,
    pub m_median: f64,
    pub recency_median_days: f64,
    pub frequency_median: f64,
    pub monetary_median: f64,
    pub spend_share: f64,
    /// Most common value of carried categorical columns (tier, location).
    #[serde(default)]
    pub typical: BTreeMap<String, String>,
    /// Plain-language description for prompts and the report.
    pub description: String,
    /// Segments merged into this one because they were below `min_segment_size`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
}

/// `segments.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentsDoc {
    pub run_id: String,
    pub as_of: NaiveDate,
    /// `customers` (aggregate rows) or `transactions`.
    pub input_format: String,
    pub input_rows: u64,
    pub customers: u64,
    pub rejected: u64,
    pub segments: Vec<SegmentProfile>,
    /// Member part keys in order.
    pub member_parts: Vec<String>,
    /// Names of the carried columns of the customer file (as in its header): the merge fields members can
    /// fill. `None` in documents written before it was recorded (nothing is then checked against it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
}

impl SegmentsDoc {
    /// What an operator must know about the customer file before sending (shown by the CLI and the report).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.has_column("email") {
            out.push(
                "the customer file has no `email` column: the send list's email column is empty for every \
                 customer, so an email service cannot deliver it as is"
                    .to_string(),
            );
        }
        out
    }

    /// Whether the customer file has a column for merge field `name` (true when unknown).
    pub fn has_column(&self, name: &str) -> bool {
        self.columns.as_ref().is_none_or(|c| c.iter().any(|x| x == name))
    }
}

//! Approved brand content (the old system's JSON document schema, plus Markdown with front matter).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub document_id: String,
    pub title: String,
    #[serde(default)]
    pub category: String,
    pub content: String,
    /// "All" or an audience such as "High-Value".
    #[serde(default = "all")]
    pub audience: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub approval_date: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

fn all() -> String {
    "All".into()
}

//! Produced by `retrieve`: ranked approved content per segment.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A passage of a document; `start`/`end` are character offsets into the document's `content`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub doc_id: String,
    pub title: String,
    pub category: String,
    pub audience: String,
    pub score: f32,
    pub passages: Vec<Passage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRetrieval {
    pub segment: String,
    pub slug: String,
    pub query: String,
    pub audiences: Vec<String>,
    pub hits: Vec<Hit>,
}

/// `retrieval.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalDoc {
    pub run_id: String,
    pub as_of: NaiveDate,
    pub retriever: String,
    pub corpus_documents: u64,
    pub eligible_documents: u64,
    pub segments: Vec<SegmentRetrieval>,
    /// Segments with no eligible, matching content: they get no variants.
    pub no_content: Vec<String>,
}

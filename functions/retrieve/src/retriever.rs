//! The retriever port: the local tantivy index and Azure AI Search answer the same question the same way, so
//! the step (and the generator downstream) cannot tell them apart.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use cpo_common::model::content::Document;
use cpo_common::StepError;

/// What one segment asks for.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    pub query: &'a str,
    /// The segment's audiences (documents for "All" are always eligible).
    pub audiences: &'a [String],
    /// The run date: only documents approved by then and not expired on it.
    pub as_of: NaiveDate,
    pub top_k: usize,
}

/// An eligible document that matched, with its relevance score (BM25 for the local index).
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub document: Document,
    pub score: f32,
}

/// Size of the corpus and how much of it is valid on the run date (before audience filtering).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusStats {
    pub corpus_documents: u64,
    pub eligible_documents: u64,
    /// Where the documents come from (a store prefix, the bundled corpus, or the search index URL).
    pub source: String,
}

#[async_trait]
pub trait Retriever: Send + Sync {
    /// The provider name recorded in `retrieval.json` (`local`, `azure-ai-search`).
    fn name(&self) -> &'static str;

    async fn stats(&self, as_of: NaiveDate) -> Result<CorpusStats, StepError>;

    /// At most `top_k` eligible documents matching the query, best first; empty when nothing matches.
    async fn search(&self, request: &SearchRequest<'_>) -> Result<Vec<Found>, StepError>;

    /// How much each query term counts when choosing passages. Retrievers that know the corpus statistics
    /// give rare terms more weight; the default counts every term once.
    fn term_weights(&self, terms: &[String]) -> HashMap<String, f32> {
        terms.iter().map(|t| (t.clone(), 1.0)).collect()
    }
}

//! The default retriever: an in-memory tantivy index over the approved corpus, BM25-ranked. Built once per
//! step invocation; for a corpus of tens to thousands of documents that takes milliseconds, so there is no
//! index to ship, cache or keep in sync with the store.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use cpo_common::StepError;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, INDEXED, STORED};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::analysis::{self, ANALYZER};
use crate::corpus::Corpus;
use crate::eligibility;
use crate::retriever::{CorpusStats, Found, Retriever, SearchRequest};

/// Indexing memory budget: tantivy's minimum for one thread, far more than a corpus of documents needs.
const WRITER_MEMORY_BYTES: usize = 15_000_000;

/// Relative weight of a query term found in each field: a title says what a document is about more reliably
/// than a word in passing.
const BOOSTS: Boosts = Boosts { title: 2.0, keywords: 1.5, category: 0.5, content: 1.0 };

struct Boosts {
    title: f32,
    keywords: f32,
    category: f32,
    content: f32,
}

#[derive(Clone, Copy)]
struct Fields {
    idx: Field,
    title: Field,
    keywords: Field,
    category: Field,
    content: Field,
}

pub struct LocalIndex {
    corpus: Corpus,
    reader: IndexReader,
    fields: Fields,
}

fn internal(e: tantivy::TantivyError) -> StepError {
    StepError::internal(format!("search index: {e}"))
}

impl LocalIndex {
    /// Index every document of the corpus; eligibility is applied per query, since audiences differ by segment.
    pub fn build(corpus: Corpus) -> Result<Self, StepError> {
        let mut schema = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default().set_tokenizer(ANALYZER).set_index_option(IndexRecordOption::WithFreqs),
        );
        let fields = Fields {
            idx: schema.add_u64_field("idx", INDEXED | STORED),
            title: schema.add_text_field("title", text.clone()),
            keywords: schema.add_text_field("keywords", text.clone()),
            category: schema.add_text_field("category", text.clone()),
            content: schema.add_text_field("content", text),
        };
        let index = Index::create_in_ram(schema.build());
        index.tokenizers().register(ANALYZER, analysis::analyzer());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, WRITER_MEMORY_BYTES).map_err(internal)?;
        for (i, d) in corpus.documents.iter().enumerate() {
            let mut doc = TantivyDocument::default();
            doc.add_u64(fields.idx, i as u64);
            doc.add_text(fields.title, &d.title);
            for k in &d.keywords {
                doc.add_text(fields.keywords, k);
            }
            doc.add_text(fields.category, &d.category);
            doc.add_text(fields.content, &d.content);
            writer.add_document(doc).map_err(internal)?;
        }
        writer.commit().map_err(internal)?;
        writer.wait_merging_threads().map_err(internal)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(internal)?;
        Ok(Self { corpus, reader, fields })
    }

    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }

    /// The query: any analyzed term of the text in any field (boosted per field), restricted to the eligible
    /// documents by a zero-score filter so that the filter never changes the BM25 ranking.
    fn query(&self, terms: &[String], eligible: Vec<Term>) -> BooleanQuery {
        let f = self.fields;
        let per_field = [
            (f.title, BOOSTS.title),
            (f.keywords, BOOSTS.keywords),
            (f.category, BOOSTS.category),
            (f.content, BOOSTS.content),
        ];
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(terms.len() * per_field.len());
        for t in terms {
            for (field, boost) in per_field {
                let term = TermQuery::new(Term::from_field_text(field, t), IndexRecordOption::WithFreqs);
                should.push((Occur::Should, Box::new(BoostQuery::new(Box::new(term), boost))));
            }
        }
        let filter = ConstScoreQuery::new(Box::new(TermSetQuery::new(eligible)), 0.0);
        BooleanQuery::new(vec![
            (Occur::Must, Box::new(filter) as Box<dyn Query>),
            (Occur::Must, Box::new(BooleanQuery::new(should))),
        ])
    }

    fn search_sync(&self, req: &SearchRequest<'_>) -> Result<Vec<Found>, StepError> {
        let eligible: Vec<Term> = (self.corpus.documents.iter().enumerate())
            .filter(|(_, d)| eligibility::eligible(d, req.as_of, req.audiences))
            .map(|(i, _)| Term::from_field_u64(self.fields.idx, i as u64))
            .collect();
        let terms = analysis::distinct_terms(&mut analysis::analyzer(), req.query);
        if eligible.is_empty() || terms.is_empty() || req.top_k == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&self.query(&terms, eligible), &TopDocs::with_limit(req.top_k).order_by_score())
            .map_err(internal)?;
        let mut found = Vec::with_capacity(top.len());
        for (score, address) in top {
            let stored: TantivyDocument = searcher.doc(address).map_err(internal)?;
            let idx = stored.get_first(self.fields.idx).and_then(|v| v.as_u64());
            let document = idx.and_then(|i| self.corpus.documents.get(i as usize)).ok_or_else(|| {
                StepError::internal(format!("search index returned an unknown document ({address:?})"))
            })?;
            found.push((score, idx.unwrap_or_default(), document.clone()));
        }
        // Equal scores in corpus order, so the ranking never depends on index internals.
        found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        Ok(found.into_iter().map(|(score, _, document)| Found { document, score }).collect())
    }
}

#[async_trait]
impl Retriever for LocalIndex {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn stats(&self, as_of: NaiveDate) -> Result<CorpusStats, StepError> {
        let docs = &self.corpus.documents;
        Ok(CorpusStats {
            corpus_documents: docs.len() as u64,
            eligible_documents: docs.iter().filter(|d| eligibility::valid_on(d, as_of)).count() as u64,
            source: self.corpus.source.clone(),
        })
    }

    async fn search(&self, request: &SearchRequest<'_>) -> Result<Vec<Found>, StepError> {
        self.search_sync(request)
    }

    /// BM25's idf over document content: a term in every document ("winter") picks no passage on its own.
    fn term_weights(&self, terms: &[String]) -> HashMap<String, f32> {
        let searcher = self.reader.searcher();
        let n = searcher.num_docs() as f32;
        terms
            .iter()
            .map(|t| {
                let df = searcher.doc_freq(&Term::from_field_text(self.fields.content, t)).unwrap_or(0) as f32;
                (t.clone(), (1.0 + (n - df + 0.5) / (df + 0.5)).ln())
            })
            .collect()
    }
}

//! The step's work: for every segment of the run, search the eligible approved content and record ranked
//! documents with quotable passages in `runs/<run_id>/retrieval.json`.

use cpo_common::model::retrieval::{Hit, RetrievalDoc, SegmentRetrieval};
use cpo_common::model::segment::{SegmentProfile, SegmentsDoc};
use cpo_common::named::RetrievalProvider;
use cpo_common::run::{self, RunInput};
use cpo_common::store::StoreExt;
use cpo_common::{Ctx, StepError, StepInput, StepOutput, Store};

use crate::azure::AzureSearch;
use crate::corpus;
use crate::local::LocalIndex;
use crate::retriever::{Retriever, SearchRequest};
use crate::{analysis, passages, query, STEP};

pub async fn retrieve(ctx: &Ctx, input: &StepInput) -> Result<StepOutput, StepError> {
    let store = ctx.store.as_ref();
    let keys = input.keys()?;
    let run = run::load(store, &input.run_id).await?;
    check_config(&run)?;
    let segments: SegmentsDoc = store.get_json_opt(&keys.segments()).await?.ok_or_else(|| {
        StepError::input(format!("run {}: {} not found; the segment step must run first", run.run_id, keys.segments()))
    })?;
    let retriever = from_run(store, &run).await?;
    let stats = retriever.stats(run.date).await?;
    tracing::info!(
        run_id = %run.run_id, retriever = retriever.name(), source = %stats.source,
        corpus_documents = stats.corpus_documents, eligible_documents = stats.eligible_documents,
        "retrieving approved content"
    );

    let mut doc = RetrievalDoc {
        run_id: run.run_id.clone(),
        as_of: run.date,
        retriever: retriever.name().to_string(),
        corpus_documents: stats.corpus_documents,
        eligible_documents: stats.eligible_documents,
        segments: Vec::with_capacity(segments.segments.len()),
        no_content: Vec::new(),
    };
    for profile in &segments.segments {
        let seg = for_segment(retriever.as_ref(), &run, profile).await?;
        if seg.hits.is_empty() {
            tracing::warn!(run_id = %run.run_id, segment = %seg.segment, audiences = ?seg.audiences,
                "no eligible approved content matches this segment; it gets no variants");
            doc.no_content.push(seg.segment.clone());
        } else {
            tracing::info!(run_id = %run.run_id, segment = %seg.segment, hits = seg.hits.len(),
                top = %seg.hits[0].doc_id, "retrieved");
        }
        doc.segments.push(seg);
    }
    store.put_json(&keys.retrieval(), &doc).await?;

    let hits: usize = doc.segments.iter().map(|s| s.hits.len()).sum();
    let passages: usize = doc.segments.iter().flat_map(|s| &s.hits).map(|h| h.passages.len()).sum();
    Ok(StepOutput::new(&run.run_id, STEP)
        .key("retrieval", keys.retrieval())
        .count("segments", doc.segments.len() as u64)
        .count("segments_with_content", (doc.segments.len() - doc.no_content.len()) as u64)
        .count("no_content", doc.no_content.len() as u64)
        .count("hits", hits as u64)
        .count("passages", passages as u64)
        .count("corpus_documents", doc.corpus_documents)
        .count("eligible_documents", doc.eligible_documents))
}

fn check_config(run: &RunInput) -> Result<(), StepError> {
    let r = &run.config.retrieval;
    for (field, v) in [("top_k", r.top_k), ("passages_per_doc", r.passages_per_doc)] {
        if v == 0 {
            return Err(StepError::input(format!(
                "{}: field `retrieval.{field}`: must be at least 1",
                run.config_source
            )));
        }
    }
    Ok(())
}

/// One segment: query, eligible hits, passages.
pub async fn for_segment(
    retriever: &dyn Retriever,
    run: &RunInput,
    profile: &SegmentProfile,
) -> Result<SegmentRetrieval, StepError> {
    let cfg = &run.config;
    let audiences = cfg.audiences_for(&profile.name);
    let query = query::query_text(profile, &cfg.goal);
    let request = SearchRequest { query: &query, audiences: &audiences, as_of: run.date, top_k: cfg.retrieval.top_k };
    let found = retriever.search(&request).await?;

    let mut analyzer = analysis::analyzer();
    let weights = retriever.term_weights(&analysis::distinct_terms(&mut analyzer, &query));
    let hits = found
        .into_iter()
        .map(|f| Hit {
            passages: passages::select(&f.document.content, &weights, &mut analyzer, cfg.retrieval.passages_per_doc),
            doc_id: f.document.document_id,
            title: f.document.title,
            category: f.document.category,
            audience: f.document.audience,
            score: f.score,
        })
        .filter(|h| !h.passages.is_empty())
        .collect();
    Ok(SegmentRetrieval { segment: profile.name.clone(), slug: profile.slug.clone(), query, audiences, hits })
}

/// The retriever a run's config asks for (`retrieval.provider`).
async fn from_run(store: &dyn Store, run: &RunInput) -> Result<Box<dyn Retriever>, StepError> {
    let cfg = &run.config.retrieval;
    match cfg.provider {
        RetrievalProvider::Local => {
            let corpus = corpus::load(store, run.content_prefix.as_deref()).await?;
            Ok(Box::new(LocalIndex::build(corpus)?))
        }
        RetrievalProvider::AzureAiSearch => {
            if let Some(prefix) = &run.content_prefix {
                tracing::warn!(content_prefix = %prefix, "retrieval.provider is azure-ai-search: the run's content prefix is not used");
            }
            Ok(Box::new(AzureSearch::from_config(cfg).await?))
        }
    }
}

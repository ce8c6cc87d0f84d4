//! Reading a run: every document the report shows, each optional except the run record, because a report is
//! written after partial runs too (e.g. a segment with no content, or no outcomes yet).

use cpo_common::keys::{Key, RunKeys};
use cpo_common::model::experiment::{AnalysisDoc, IngestSummary};
use cpo_common::model::retrieval::RetrievalDoc;
use cpo_common::model::safety::SafetyDoc;
use cpo_common::model::segment::SegmentsDoc;
use cpo_common::model::variant::VariantsDoc;
use cpo_common::run::{self, RunInput};
use cpo_common::step::StepRecord;
use cpo_common::store::{ObjectMeta, Store, StoreError, StoreExt};
use cpo_common::StepError;
use serde::de::DeserializeOwned;

/// Everything of one run the report reads.
#[derive(Debug, Clone)]
pub struct RunDocs {
    pub run: RunInput,
    pub segments: Option<SegmentsDoc>,
    pub retrieval: Option<RetrievalDoc>,
    /// One per `variants/<segment>.json`, sorted by key.
    pub variants: Vec<VariantsDoc>,
    pub safety: Option<SafetyDoc>,
    /// Every `steps/*.json`, sorted by start time.
    pub steps: Vec<StepRecord>,
    /// `send/templates.json` as written by `experiment` (its shape belongs to the email-service export).
    pub templates: Option<serde_json::Value>,
    /// `send/part-*.csv` objects (sizes only: the report never reads customer rows from them).
    pub send_parts: Vec<ObjectMeta>,
    pub analysis: Option<AnalysisDoc>,
    /// `ingest/summary.json`: what the outcomes files held (aggregates only).
    pub ingest: Option<IngestSummary>,
}

/// A JSON document that may be absent; a present but malformed one is an input error naming the key.
async fn opt_json<T: DeserializeOwned>(store: &dyn Store, key: &Key) -> Result<Option<T>, StepError> {
    match store.get_json(key).await {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e @ StoreError::Decode { .. }) => Err(StepError::input(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// The `.json` objects directly under a prefix, decoded, in key order.
async fn all_json<T: DeserializeOwned>(store: &dyn Store, prefix: &Key) -> Result<Vec<T>, StepError> {
    let mut out = Vec::new();
    for meta in store.list(prefix).await? {
        if !meta.key.ends_with(".json") {
            continue;
        }
        let key = Key::new(meta.key)?;
        if let Some(doc) = opt_json(store, &key).await? {
            out.push(doc);
        }
    }
    Ok(out)
}

pub async fn run_docs(store: &dyn Store, keys: &RunKeys) -> Result<RunDocs, StepError> {
    let run = run::load(store, keys.run_id()).await?;
    let mut steps: Vec<StepRecord> = all_json(store, &keys.steps_prefix()).await?;
    steps.sort_by(|a, b| a.started_at.cmp(&b.started_at).then_with(|| a.step.cmp(&b.step)));
    let send_prefix = keys.templates().as_str().trim_end_matches("templates.json").to_string();
    let send_parts = store
        .list(&Key::new(send_prefix)?)
        .await?
        .into_iter()
        .filter(|m| m.key.rsplit('/').next().is_some_and(|f| f.starts_with("part-")))
        .collect();
    Ok(RunDocs {
        segments: opt_json(store, &keys.segments()).await?,
        retrieval: opt_json(store, &keys.retrieval()).await?,
        variants: all_json(store, &keys.variants_prefix()).await?,
        safety: opt_json(store, &keys.safety()).await?,
        templates: opt_json(store, &keys.templates()).await?,
        analysis: opt_json(store, &keys.analysis()).await?,
        ingest: opt_json(store, &keys.ingest("summary.json")).await?,
        run,
        steps,
        send_parts,
    })
}

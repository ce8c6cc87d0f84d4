//! The campaign's ledger: `campaigns/<campaign>/ledger/<run_id>.json`, one entry per run, written by assign
//! with `put_if_absent` (the Store has no compare-and-swap, so entries are never updated in place). When assign
//! runs again with other results (changed inputs), the new figures go to the next revision,
//! `<run_id>.r2.json`, …; an identical re-run writes nothing. Readers take a run's highest revision.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cpo_common::config::AllocationMode;
use cpo_common::keys::{self, RunKeys};
use cpo_common::run::RunInput;
use cpo_common::store::{PutOutcome, StoreExt};
use cpo_common::{Key, StepError, Store};
use serde::{Deserialize, Serialize};

use crate::allocation;
use crate::plan::Plan;

/// What a week did with its customers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Members of the run (every customer segmented).
    pub eligible: u64,
    /// Left out before assignment, by reason.
    pub suppressed: BTreeMap<String, u64>,
    /// Deferred by the contact policy.
    pub deferred: u64,
    pub held_out: u64,
    /// Assigned an arm (the holdout included).
    pub assigned: u64,
    /// In the send list.
    pub sent: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub run_id: String,
    pub campaign: String,
    /// The week's date (run_id date and send date).
    pub date: NaiveDate,
    /// The input object and its version (ETag or content SHA-256).
    pub input_key: String,
    pub input_version: String,
    pub experiment_id: String,
    /// Weights in force: segment → arm → share of the segment's non-holdout customers.
    pub weights: BTreeMap<String, BTreeMap<String, f64>>,
    pub holdout: f64,
    /// How the weights were set (entries written before allocation modes existed read as `fixed`).
    #[serde(default)]
    pub mode: AllocationMode,
    /// Thompson: segment → shipped tone → chance it was the best tone when the weights were set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prob_best: BTreeMap<String, BTreeMap<String, f64>>,
    pub counts: Counts,
    pub status: EntryStatus,
    pub revision: u32,
    pub recorded_at: DateTime<Utc>,
}

/// The stage of a run a ledger entry records. The ledger only records assignment; later stages are in the
/// run's own records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// The send list is written.
    Assigned,
}

impl Entry {
    /// Everything but the revision and the time, to tell a re-run with the same results from a changed one.
    fn same_as(&self, other: &Entry) -> bool {
        let strip = |e: &Entry| Entry { revision: 0, recorded_at: DateTime::<Utc>::MIN_UTC, ..e.clone() };
        strip(self) == strip(other)
    }
}

/// Weights in force per segment, as the plan splits customers.
pub fn weights(plan: &Plan) -> BTreeMap<String, BTreeMap<String, f64>> {
    plan.segments
        .iter()
        .map(|(s, slots)| (s.clone(), slots.iter().map(|x| (x.arm.clone(), x.weight)).collect()))
        .collect()
}

fn entry_key(campaign: &str, run_id: &str, revision: u32) -> Result<Key, StepError> {
    let name = if revision <= 1 { format!("{run_id}.json") } else { format!("{run_id}.r{revision}.json") };
    Ok(keys::ledger_prefix(campaign)?.join(&name)?)
}

/// Thompson: segment → tone → chance it is best (empty with fixed weights).
pub fn prob_best(plan: &Plan) -> BTreeMap<String, BTreeMap<String, f64>> {
    plan.thompson.iter().flatten().map(|(s, a)| (s.clone(), a.prob_best.clone())).collect()
}

/// `runs/<id>/weights.json`: the allocation in force. `segments` holds each segment's arm → share of its
/// non-holdout customers; in thompson mode also each tone's chance of being best and its posterior, and the
/// earlier weeks they came from.
pub fn weights_doc(run: &RunInput, plan: &Plan) -> serde_json::Value {
    let mode = run.config.allocation.mode;
    let mut doc = serde_json::json!({"mode": mode, "holdout": plan.holdout, "segments": weights(plan)});
    if let Some(t) = &plan.thompson {
        let a = &run.config.allocation;
        doc["thompson"] = serde_json::json!({
            "metric": run.config.allocation_metric(),
            "control_share": a.control_share,
            "floor": a.floor,
            "decay": a.decay,
            "prior": a.prior,
            "prob_best": prob_best(plan),
            "posteriors": t.iter().map(|(s, x)| (s.clone(), x.posteriors.clone())).collect::<BTreeMap<_, _>>(),
        });
    }
    doc
}

/// Append the run's entry (and write `runs/<id>/weights.json`).
pub async fn write(store: &dyn Store, run: &RunInput, plan: &Plan, counts: &Counts) -> Result<Key, StepError> {
    let keys = RunKeys::new(&run.run_id)?;
    let weights = weights(plan);
    store.put_json(&keys.prefix().join("weights.json")?, &weights_doc(run, plan)).await?;
    let mut entry = Entry {
        run_id: run.run_id.clone(),
        campaign: run.campaign.clone(),
        date: run.date,
        input_key: run.input.key.clone(),
        input_version: run.input.version.clone(),
        experiment_id: plan.experiment_id.clone(),
        weights,
        holdout: plan.holdout,
        mode: run.config.allocation.mode,
        prob_best: prob_best(plan),
        counts: counts.clone(),
        status: EntryStatus::Assigned,
        revision: 1,
        recorded_at: Utc::now(),
    };
    // Revisions are few (one per changed re-assignment); a bound keeps a broken store from looping.
    for revision in 1..=1000 {
        entry.revision = revision;
        let key = entry_key(&run.campaign, &run.run_id, revision)?;
        if store.put_if_absent(&key, serde_json::to_vec_pretty(&entry)?.into()).await? == PutOutcome::Created {
            return Ok(key);
        }
        let existing: Entry = store.get_json(&key).await?;
        let newer = entry_key(&run.campaign, &run.run_id, revision + 1)?;
        if existing.same_as(&entry) && store.head(&newer).await?.is_none() {
            return Ok(key);
        }
    }
    Err(StepError::internal(format!(
        "{}: too many ledger revisions of run {}",
        keys::ledger_prefix(&run.campaign)?,
        run.run_id
    )))
}

/// The ledger of a campaign: each run's newest revision, by date then run id.
pub async fn read(store: &dyn Store, campaign: &str) -> Result<Vec<Entry>, StepError> {
    let mut newest: BTreeMap<String, Entry> = BTreeMap::new();
    for o in store.list(&keys::ledger_prefix(campaign)?).await? {
        if !o.key.ends_with(".json") {
            continue;
        }
        let e: Entry = store.get_json(&Key::new(o.key)?).await?;
        if newest.get(&e.run_id).is_none_or(|old| old.revision < e.revision) {
            newest.insert(e.run_id.clone(), e);
        }
    }
    let mut out: Vec<Entry> = newest.into_values().collect();
    out.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.run_id.cmp(&b.run_id)));
    Ok(out)
}

/// Read the history of `run` from the campaign ledger: every other run dated strictly before it.
pub async fn collect(store: &dyn Store, run: &RunInput) -> Result<allocation::History, StepError> {
    let alloc = &run.config.allocation;
    let metric = run.config.allocation_metric();
    let mut history = allocation::History {
        metric,
        decay: alloc.decay,
        seed: allocation::run_seed(run),
        weeks: Vec::new(),
        without_outcomes: Vec::new(),
    };
    for e in read(store, &run.campaign).await? {
        if e.date >= run.date || e.run_id == run.run_id {
            continue;
        }
        let Some((source, counts)) = allocation::week_counts(store, &e.run_id, metric).await? else {
            history.without_outcomes.push(e.run_id);
            continue;
        };
        let age_weeks = (run.date - e.date).num_days() as f64 / 7.0;
        history.weeks.push(allocation::Week {
            run_id: e.run_id,
            date: e.date,
            factor: alloc.decay.powf(age_weeks),
            outcomes_source: source,
            counts,
        });
    }
    Ok(history)
}

/// In thompson mode, copy the history under the run the first time (`put_if_absent`: a concurrent first
/// assign keeps the copy that won); returns the copy's key for the step's reads.
pub async fn snapshot(store: &dyn Store, run: &RunInput) -> Result<Option<Key>, StepError> {
    if run.config.allocation.mode != AllocationMode::Thompson {
        return Ok(None);
    }
    let key = RunKeys::new(&run.run_id)?.snapshot("allocation");
    if store.head(&key).await?.is_none() {
        let history = collect(store, run).await?;
        let created = store.put_if_absent(&key, serde_json::to_vec_pretty(&history)?.into()).await?;
        tracing::info!(
            run_id = %run.run_id,
            weeks = history.weeks.len(),
            without_outcomes = history.without_outcomes.len(),
            created = created == PutOutcome::Created,
            "allocation history read from the ledger"
        );
    }
    Ok(Some(key))
}

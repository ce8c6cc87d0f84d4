//! `experiment`: A/B/n assignment, send list, outcomes ingestion and statistical analysis.
//!
//! `input.action` selects the operation (docs/architecture.md, "The step contract"): `assign` (campaign machine),
//! `simulate` (demo outcomes), `ingest` and `analyze` (analysis machine).

pub(crate) mod accept;
pub mod allocation;
pub mod analyze;
pub mod assign;
pub mod assignment_ref;
pub mod counts;
pub mod events;
pub(crate) mod explain;
pub mod flags;
pub mod hashing;
pub(crate) mod holdout;
pub mod ingest;
pub mod ledger;
pub mod member;
pub mod outcome_rows;
pub(crate) mod parts;
pub mod plan;
pub mod render;
pub mod season;
pub mod send;
pub mod simulate;
pub mod suppression;
pub mod table;
pub mod weeks;
pub(crate) mod windows;

use cpo_common::keys::RunKeys;
use cpo_common::model::safety::SafetyDoc;
use cpo_common::model::variant::VariantsDoc;
use cpo_common::run;
use cpo_common::step::{run_once_reading, Reads};
use cpo_common::store::StoreExt;
use cpo_common::{Ctx, StepError, StepInput, StepOutput, Store};

pub use table::table;

/// What the plan is made of, as content hashes: the verdicts (id, decision, text hash), every variant's id,
/// status and exact text, and the segments. A re-screened or re-generated run is assigned and analysed again;
/// usage counters and other volatile fields are not inputs.
async fn plan_reads(store: &dyn Store, keys: &RunKeys) -> Result<Reads, StepError> {
    let mut reads = Reads::new();
    reads.json::<SafetyDoc, _>(store, &keys.safety(), SafetyDoc::verdicts_sha256).await?;
    reads.object(store, &keys.segments()).await?;
    let mut variants = Vec::new();
    for key in parts::list_parts(store, &keys.variants_prefix(), "", ".json").await? {
        let doc: VariantsDoc = store.get_json(&key).await?;
        for v in doc.variants {
            variants.push((v.variant_id.clone(), v.status, v.message.content_sha256()));
        }
    }
    reads.value(keys.variants_prefix().as_str(), &variants);
    Ok(reads)
}

/// The step handler, called by the Lambda `main` and by the local state-machine runner.
pub async fn handle(input: StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
    let action = input.action_or("assign").to_string();
    let store = ctx.store.as_ref();
    let keys = input.keys()?;
    match action.as_str() {
        "assign" => {
            let mut reads = plan_reads(store, &keys).await?;
            reads.listing(store, &keys.members_prefix()).await?;
            // Suppression lists and contact history come from outside the run: copied under it the first time,
            // then read from there, so the recorded result is reused only while those copies are unchanged.
            let run = run::load(store, &input.run_id).await?;
            for key in suppression::snapshot(store, &run).await? {
                reads.object(store, &key).await?;
            }
            // Thompson allocation: earlier weeks' counts from the campaign ledger, copied the same way.
            if let Some(key) = ledger::snapshot(store, &run).await? {
                reads.object(store, &key).await?;
            }
            run_once_reading(ctx, &input, "assign", "", reads, || async { assign::run(ctx, &run).await }).await
        }
        "simulate" => {
            let mut reads = Reads::new();
            reads.listing(store, &keys.assignments_prefix()).await?;
            run_once_reading(ctx, &input, "simulate", "", reads, || async {
                let run = run::load(store, &input.run_id).await?;
                simulate::run(ctx, &run, input.seed.unwrap_or(run.seed)).await
            })
            .await
        }
        "ingest" | "analyze" => {
            // The object that started this analysis only says *that* something changed: ingest first accepts
            // or refuses every new drop (by content, docs/architecture.md 7), and every analysis then covers
            // the chosen accepted files, so it is idempotent on that set.
            let run = run::load(store, &input.run_id).await?;
            let rules = events::Rules::new(&run.config.outcomes, run.date);
            let selection = if action == "ingest" {
                ingest::Selection::load(store, &keys, &rules, run.config.outcomes.max_reject_ratio).await?
            } else {
                ingest::Selection::current(store, &keys).await?
            };
            let identity = selection.identity();
            let normalised = StepInput { outcomes_key: None, ..input.clone() };
            let mut reads = plan_reads(store, &keys).await?;
            reads.listing(store, &keys.assignments_prefix()).await?;
            let out = run_once_reading(ctx, &normalised, &action, &identity, reads, || async {
                if action == "ingest" {
                    let out = ingest::run(store, &keys, &selection, &rules).await?;
                    let derived = suppression::record_from_ingest(store, &keys, selection.source).await?;
                    Ok(out.count("suppression_recorded", serde_json::json!(derived)))
                } else {
                    let run = run::load(store, &input.run_id).await?;
                    let plan = plan::Plan::load(store, &run).await?;
                    analyze::run(store, &run, &plan).await
                }
            })
            .await?;
            // Outside the recorded result: every analysis (a re-delivered one too) refreshes the campaign's
            // view across weeks, which also reads the other weeks' analyses.
            if action == "analyze" {
                weeks::publish(store, &run.campaign).await?;
            }
            Ok(out)
        }
        other => Err(StepError::input(format!(
            "experiment: field `action`: {other:?} is not one of assign, simulate, ingest, analyze"
        ))),
    }
}

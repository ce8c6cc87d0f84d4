//! `experiment`: A/B/n assignment, send list, outcomes ingestion and statistical analysis.
//!
//! `input.action` selects the operation (DESIGN.md §4): `assign` (campaign machine), `simulate` (demo outcomes),
//! `ingest` and `analyze` (analysis machine).

pub mod analyze;
pub mod assign;
pub mod assignment_ref;
pub mod events;
pub mod flags;
pub mod hashing;
pub mod ingest;
pub mod member;
pub mod outcome_rows;
pub mod parts;
pub mod plan;
pub mod render;
pub mod send;
pub mod simulate;
pub mod table;
pub mod windows;

use cpo_common::run;
use cpo_common::step::run_once;
use cpo_common::{Ctx, StepError, StepInput, StepOutput};

pub use table::table;

/// The step handler, called by the Lambda `main` and by the local state-machine runner.
pub async fn handle(input: StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
    let action = input.action_or("assign").to_string();
    match action.as_str() {
        "assign" => {
            run_once(ctx, &input, "assign", "", || async {
                let run = run::load(ctx.store.as_ref(), &input.run_id).await?;
                assign::run(ctx, &run).await
            })
            .await
        }
        "simulate" => {
            run_once(ctx, &input, "simulate", "", || async {
                let run = run::load(ctx.store.as_ref(), &input.run_id).await?;
                simulate::run(ctx, &run, input.seed.unwrap_or(run.seed)).await
            })
            .await
        }
        "ingest" | "analyze" => {
            // Idempotent on the set of outcomes objects: the object that started this analysis only says
            // *that* something changed; every analysis covers all of them.
            let keys = input.keys()?;
            let objects = ingest::outcome_objects(ctx.store.as_ref(), &keys).await?;
            let identity = ingest::identity(&objects);
            let normalised = StepInput { outcomes_key: None, ..input.clone() };
            run_once(ctx, &normalised, &action, &identity, || async {
                let store = ctx.store.as_ref();
                if action == "ingest" {
                    ingest::run(store, &keys, &objects).await
                } else {
                    let run = run::load(store, &input.run_id).await?;
                    let plan = plan::Plan::load(store, &run).await?;
                    analyze::run(store, &run, &plan).await
                }
            })
            .await
        }
        other => Err(StepError::input(format!(
            "experiment: field `action`: {other:?} is not one of assign, simulate, ingest, analyze"
        ))),
    }
}

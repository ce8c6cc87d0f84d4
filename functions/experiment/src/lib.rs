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

/// The operations of the step (`input.action`): one per state of the machines that invoke it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Assign,
    Simulate,
    Ingest,
    Analyze,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Assign, Action::Simulate, Action::Ingest, Action::Analyze];

    /// The name in `input.action` and in the step record (`steps/<name>.json`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Assign => "assign",
            Action::Simulate => "simulate",
            Action::Ingest => "ingest",
            Action::Analyze => "analyze",
        }
    }

    pub fn parse(s: &str) -> Result<Self, StepError> {
        Self::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| {
            StepError::input(format!(
                "experiment: field `action`: {s:?} is not one of assign, simulate, ingest, analyze"
            ))
        })
    }
}

/// The step handler, called by the Lambda `main` and by the local state-machine runner.
pub async fn handle(input: StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
    let action = Action::parse(input.action_or("assign"))?;
    let store = ctx.store.as_ref();
    let keys = input.keys()?;
    match action {
        Action::Assign => {
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
            run_once_reading(ctx, &input, action.as_str(), "", reads, || async { assign::run(ctx, &run).await }).await
        }
        Action::Simulate => {
            let mut reads = Reads::new();
            reads.listing(store, &keys.assignments_prefix()).await?;
            run_once_reading(ctx, &input, action.as_str(), "", reads, || async {
                let run = run::load(store, &input.run_id).await?;
                simulate::run(ctx, &run, input.seed.unwrap_or(run.seed)).await
            })
            .await
        }
        Action::Ingest | Action::Analyze => {
            // The object that started this analysis only says *that* something changed: ingest first accepts
            // or refuses every new drop (by content, docs/architecture.md 7), and every analysis then covers
            // the chosen accepted files, so it is idempotent on that set.
            let run = run::load(store, &input.run_id).await?;
            let rules = events::Rules::new(&run.config.outcomes, run.date);
            let selection = if action == Action::Ingest {
                ingest::Selection::load(store, &keys, &rules, run.config.outcomes.max_reject_ratio).await?
            } else {
                ingest::Selection::current(store, &keys).await?
            };
            let identity = selection.identity();
            let normalised = StepInput { outcomes_key: None, ..input.clone() };
            let mut reads = plan_reads(store, &keys).await?;
            reads.listing(store, &keys.assignments_prefix()).await?;
            let out = run_once_reading(ctx, &normalised, action.as_str(), &identity, reads, || async {
                if action == Action::Ingest {
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
            if action == Action::Analyze {
                weeks::publish(store, &run.campaign).await?;
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn every_action_reads_back_and_an_unknown_one_is_named() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()).unwrap(), a);
        }
        let e = Action::parse("asign").unwrap_err();
        assert_eq!(e.kind, cpo_common::ErrorKind::InputInvalid);
        assert!(e.message.contains("\"asign\"") && e.message.contains("assign, simulate"), "{}", e.message);
    }

    /// Every experiment state of the shipped state machines names an action this step knows.
    #[test]
    fn the_state_machines_use_known_actions() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/statemachine");
        let mut seen = 0;
        for name in ["campaign.asl.json", "analysis.asl.json"] {
            let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
            let asl: serde_json::Value = serde_json::from_str(&text).unwrap();
            let mut stack = vec![&asl];
            while let Some(v) = stack.pop() {
                match v {
                    serde_json::Value::Object(m) => {
                        let is_experiment = m
                            .get("Resource")
                            .and_then(|r| r.as_str())
                            .is_some_and(|r| r.contains("ExperimentFunction"));
                        if is_experiment {
                            let action = m["Parameters"]["action"].as_str().unwrap_or("assign");
                            Action::parse(action).unwrap_or_else(|e| panic!("{name}: {e}"));
                            seen += 1;
                        }
                        stack.extend(m.values());
                    }
                    serde_json::Value::Array(a) => stack.extend(a.iter()),
                    _ => {}
                }
            }
        }
        assert!(seen >= 3, "found {seen} experiment states");
    }
}

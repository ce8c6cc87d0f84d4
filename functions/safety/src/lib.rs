//! `safety`: fail-closed screening of the control and every shipped variant, with a hash-chained audit trail.
//!
//! - [`screener`]: the `Screener` port; providers [`offline`], [`azure`] (Azure AI Content Safety) and
//!   [`openai`] (moderation), built into a chain by [`providers`] over shared [`http`] retry behaviour,
//!   with network answers kept in the [`cache`] and parsed through [`strict_json`] (no repeated keys);
//! - [`guard`]: the PII and prompt-leftover guard, independent of providers;
//! - [`policy`]: thresholds, blocklist and disclaimers from `policy/safety.yaml`;
//! - [`decide`]: screener answers + guard + policy → one decision per message;
//! - [`audit`]: writing and verifying the trail; [`eval`]: precision/recall on a labelled set;
//! - [`step`]: the run's screening, called by [`handle`].

pub mod audit;
pub mod azure;
pub(crate) mod cache;
pub mod decide;
pub mod eval;
pub(crate) mod guard;
pub mod http;
pub mod offline;
pub mod openai;
pub mod policy;
pub mod providers;
pub mod screener;
pub(crate) mod step;
pub(crate) mod strict_json;

use cpo_common::{step::run_once_reading, Ctx, StepError, StepInput, StepOutput};

/// The step handler, called by the Lambda `main` and by the local state-machine runner. The stored result is
/// reused only while the messages, policy and screening chain are the ones it was made from.
pub async fn handle(input: StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
    let prepared = step::Prepared::load(ctx, &input).await?;
    let identity = step::chain_identity(&prepared.chain);
    let reads = step::reads(&prepared.items, &prepared.policy, &prepared.allowed, &identity);
    run_once_reading(ctx, &input, "safety", &identity, reads, || step::run(&input, ctx, &prepared)).await
}

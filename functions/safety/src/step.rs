//! The safety step of a run: screen the control and every shipped variant, append the records and an
//! attestation to the audit chain, then write `safety.json`. Only `approved` verdicts let a message ship, and
//! only for the exact text they name; the step fails with `Cpo.SafetyUnavailable` only when nothing at all could
//! be screened.

use chrono::Utc;
use cpo_common::keys::RunKeys;
use cpo_common::model::safety::{AuditRecord, Decision, SafetyDoc, StepAttestation, Verdict};
use cpo_common::model::variant::{VariantStatus, VariantsDoc};
use cpo_common::run::{self, RunInput};
use cpo_common::step::Reads;
use cpo_common::store::{Store, StoreExt};
use cpo_common::{Ctx, StepError, StepInput, StepOutput};
use futures::StreamExt;

use crate::audit::{self, AuditError, COUNT_LAST_HASH, COUNT_RECORDS};
use crate::decide::{screen_message, Item, Outcome};
use crate::policy::Policy;
use crate::providers;
use crate::screener::Screener;

/// Items screened at once (network providers are called concurrently, bounded).
const CONCURRENCY: usize = 4;

fn audit_err(e: AuditError) -> StepError {
    StepError::internal(format!("audit trail: {e}"))
}

/// The control message and every shipped variant of the run, control first, variants by id.
pub async fn items(store: &dyn Store, keys: &RunKeys, run: &RunInput) -> Result<Vec<Item>, StepError> {
    let mut out =
        vec![Item { variant_id: "control".into(), segment: None, tone: None, message: run.config.control.message() }];
    let mut variants = Vec::new();
    for meta in store.list(&keys.variants_prefix()).await? {
        if !meta.key.ends_with(".json") {
            continue;
        }
        let key = cpo_common::Key::new(meta.key)?;
        let doc: VariantsDoc = store.get_json(&key).await.map_err(|e| StepError::input(e.to_string()))?;
        for v in doc.variants.into_iter().filter(|v| v.status == VariantStatus::Shipped) {
            variants.push(Item {
                variant_id: v.variant_id,
                segment: Some(v.segment),
                tone: Some(v.tone),
                message: v.message,
            });
        }
    }
    variants.sort_by(|a, b| a.variant_id.cmp(&b.variant_id));
    out.extend(variants);
    Ok(out)
}

fn record(run_id: &str, item: &Item, o: &Outcome, policy: &Policy) -> AuditRecord {
    AuditRecord {
        seq: 0,
        time: Utc::now(),
        run_id: run_id.to_string(),
        variant_id: item.variant_id.clone(),
        segment: item.segment.clone(),
        tone: item.tone.clone(),
        text_sha256: o.text_sha256.clone(),
        providers: o.providers.clone(),
        severities: o.severities.clone(),
        policy_version: policy.version.clone(),
        policy_sha256: policy.sha256.clone(),
        decision: o.decision,
        reasons: o.reasons.clone(),
        prev_key: None,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

fn verdict(item: &Item, o: &Outcome) -> Verdict {
    Verdict {
        variant_id: item.variant_id.clone(),
        segment: item.segment.clone(),
        tone: item.tone.clone(),
        decision: o.decision,
        reasons: o.reasons.clone(),
        severities: o.severities.clone(),
        providers: o.providers.iter().map(|p| format!("{}:{}", p.provider, p.model)).collect(),
        text_sha256: o.text_sha256.clone(),
    }
}

/// Who screens: every provider of the chain with its model and endpoint (never a key), after environment
/// overrides. Part of the step's identity, so a re-run with another provider screens again.
pub fn chain_identity(chain: &[Box<dyn Screener>]) -> String {
    chain
        .iter()
        .map(|s| format!("{}:{}:{}", s.name(), s.model(), s.cache_identity().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("|")
}

/// What the step consumes, as content hashes: each message's id and exact fields, the policy, the allowed
/// tokens and the screening chain.
pub fn reads(items: &[Item], policy: &Policy, allowed: &[String], chain: &str) -> Reads {
    let messages: Vec<(&str, Option<&str>, Option<&str>, String)> = items
        .iter()
        .map(|i| (i.variant_id.as_str(), i.segment.as_deref(), i.tone.as_deref(), i.message.content_sha256()))
        .collect();
    let mut reads = Reads::new();
    reads
        .value("messages", &messages)
        .value("policy", &policy.sha256)
        .value("allowed_tokens", allowed)
        .value("providers", chain);
    reads
}

/// Everything the screening needs, resolved before the step decides whether it must run.
pub struct Prepared {
    pub policy: Policy,
    pub chain: Vec<Box<dyn Screener>>,
    pub allowed: Vec<String>,
    pub items: Vec<Item>,
}

impl Prepared {
    pub async fn load(ctx: &Ctx, input: &StepInput) -> Result<Self, StepError> {
        let store = ctx.store.as_ref();
        let keys = input.keys()?;
        let run = run::load(store, &input.run_id).await?;
        let policy = Policy::load(store, &run.config.safety.policy).await?;
        let chain: Vec<_> = providers::build(&run.config.safety, &policy)
            .await?
            .into_iter()
            .map(|s| crate::cache::wrap(s, ctx.store.clone()))
            .collect();
        let mut allowed = run.config.generation.allowed_tokens.clone();
        allowed.extend(policy.allowed_tokens.iter().cloned());
        let items = items(store, &keys, &run).await?;
        Ok(Self { policy, chain, allowed, items })
    }
}

/// Screen every item, append the records and an attestation of `safety.json` to the audit chain, then write
/// `safety.json`. Verdicts always come from this screening of these exact texts.
pub async fn run(input: &StepInput, ctx: &Ctx, p: &Prepared) -> Result<StepOutput, StepError> {
    let store = ctx.store.as_ref();
    let keys = input.keys()?;
    let outcomes: Vec<Outcome> = futures::stream::iter(p.items.iter())
        .map(|item| screen_message(&p.chain, &p.policy, &p.allowed, &item.message, true))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    if !outcomes.iter().any(|o| o.screened) {
        let why = outcomes.iter().flat_map(|o| o.reasons.first()).next().cloned().unwrap_or_default();
        return Err(StepError::safety_unavailable(format!(
            "run {}: none of {} message(s) could be screened ({why})",
            input.run_id,
            outcomes.len()
        )));
    }
    let verdicts: Vec<Verdict> = p.items.iter().zip(&outcomes).map(|(i, o)| verdict(i, o)).collect();
    let approved = verdicts.iter().filter(|v| v.decision == Decision::Approved).count() as u64;
    let blocked = verdicts.len() as u64 - approved;
    for v in verdicts.iter().filter(|v| v.decision == Decision::Blocked) {
        tracing::info!(run_id = %input.run_id, variant_id = %v.variant_id, reasons = ?v.reasons, "message blocked");
    }
    let mut doc = SafetyDoc {
        run_id: input.run_id.clone(),
        policy_version: p.policy.version.clone(),
        verdicts,
        approved,
        blocked,
        audit_key: String::new(),
    };
    let records: Vec<AuditRecord> =
        p.items.iter().zip(&outcomes).map(|(item, o)| record(&input.run_id, item, o, &p.policy)).collect();
    let attestation = StepAttestation {
        seq: 0,
        time: Utc::now(),
        run_id: input.run_id.clone(),
        step: "safety".into(),
        safety_sha256: doc.attested_sha256(),
        verdicts_sha256: doc.verdicts_sha256(),
        text_sha256: doc.verdicts.iter().map(|v| (v.variant_id.clone(), v.text_sha256.clone())).collect(),
        approved,
        blocked,
        records: 0,
        prev_hash: String::new(),
        hash: String::new(),
    };
    let appended = audit::append(store, records, attestation).await.map_err(audit_err)?;
    doc.audit_key = appended.key.to_string();
    store.put_json(&keys.safety(), &doc).await?;
    Ok(StepOutput::new(&input.run_id, "safety")
        .key("safety", keys.safety())
        .key("audit", &appended.key)
        .count("approved", approved)
        .count("blocked", blocked)
        .count(COUNT_RECORDS, appended.lines.len() as u64)
        .count(COUNT_LAST_HASH, appended.last_hash()))
}

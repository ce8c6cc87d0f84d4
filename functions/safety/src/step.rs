//! The safety step of a run: screen the control and every shipped variant, write the audit trail (once),
//! then `safety.json`. Only `approved` verdicts let a message ship; the step fails with
//! `Cpo.SafetyUnavailable` only when nothing at all could be screened.

use chrono::Utc;
use cpo_common::keys::RunKeys;
use cpo_common::model::safety::{AuditRecord, Decision, SafetyDoc, Verdict};
use cpo_common::model::variant::{Message, VariantStatus, VariantsDoc};
use cpo_common::run::{self, RunInput};
use cpo_common::store::{PutOutcome, Store, StoreExt};
use cpo_common::{Ctx, StepError, StepInput, StepOutput};
use futures::StreamExt;

use crate::audit::{self, AuditError, COUNT_LAST_HASH, COUNT_RECORDS};
use crate::decide::{screen_message, Item, Outcome};
use crate::policy::Policy;
use crate::providers;

/// Items screened at once (network providers are called concurrently, bounded).
const CONCURRENCY: usize = 4;

fn audit_err(e: AuditError) -> StepError {
    StepError::internal(format!("audit trail: {e}"))
}

/// The control message and every shipped variant of the run, control first, variants by id.
pub async fn items(store: &dyn Store, keys: &RunKeys, run: &RunInput) -> Result<Vec<Item>, StepError> {
    let c = &run.config.control;
    let mut out = vec![Item {
        variant_id: "control".into(),
        segment: None,
        tone: None,
        message: Message {
            subject: c.subject.clone(),
            preheader: c.preheader.clone(),
            body: c.body.clone(),
            cta: c.cta.clone(),
        },
    }];
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

/// A verdict as the audit trail records it. When a trail already exists (an earlier attempt of this run
/// wrote it), that trail is authoritative: an item it does not cover with the same text is blocked.
fn verdict(item: &Item, text_sha256: &str, trail: &[AuditRecord]) -> Verdict {
    match trail.iter().find(|r| r.variant_id == item.variant_id && r.text_sha256 == text_sha256) {
        Some(r) => Verdict {
            variant_id: item.variant_id.clone(),
            segment: item.segment.clone(),
            tone: item.tone.clone(),
            decision: r.decision,
            reasons: r.reasons.clone(),
            severities: r.severities.clone(),
            providers: r.providers.iter().map(|p| format!("{}:{}", p.provider, p.model)).collect(),
            text_sha256: r.text_sha256.clone(),
        },
        None => Verdict {
            variant_id: item.variant_id.clone(),
            segment: item.segment.clone(),
            tone: item.tone.clone(),
            decision: Decision::Blocked,
            reasons: vec!["not_in_audit_trail: the run's audit trail has no decision for this text".into()],
            severities: Default::default(),
            providers: Vec::new(),
            text_sha256: text_sha256.to_string(),
        },
    }
}

pub async fn run(input: &StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
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

    let outcomes: Vec<Outcome> = futures::stream::iter(items.iter())
        .map(|item| screen_message(&chain, &policy, &allowed, &item.message, true))
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

    let audit_key = keys.audit(run.date);
    let fresh: Vec<AuditRecord> =
        items.iter().zip(&outcomes).map(|(item, o)| record(&input.run_id, item, o, &policy)).collect();
    let trail = match audit::read(store, &audit_key).await.map_err(audit_err)? {
        Some(existing) => {
            tracing::warn!(run_id = %input.run_id, key = %audit_key, "audit trail already written; it stays authoritative");
            existing
        }
        None => {
            let prev = audit::previous_tail(store, &audit_key).await.map_err(audit_err)?;
            let chained = audit::chain(fresh, prev)?;
            match audit::write(store, &audit_key, &chained).await.map_err(audit_err)? {
                PutOutcome::Created => chained,
                PutOutcome::AlreadyExists => {
                    audit::read(store, &audit_key).await.map_err(audit_err)?.unwrap_or_default()
                }
            }
        }
    };

    let verdicts: Vec<Verdict> = items.iter().zip(&outcomes).map(|(i, o)| verdict(i, &o.text_sha256, &trail)).collect();
    let approved = verdicts.iter().filter(|v| v.decision == Decision::Approved).count() as u64;
    let blocked = verdicts.len() as u64 - approved;
    for v in verdicts.iter().filter(|v| v.decision == Decision::Blocked) {
        tracing::info!(run_id = %input.run_id, variant_id = %v.variant_id, reasons = ?v.reasons, "message blocked");
    }
    let doc = SafetyDoc {
        run_id: input.run_id.clone(),
        policy_version: policy.version.clone(),
        verdicts,
        approved,
        blocked,
        audit_key: audit_key.to_string(),
    };
    store.put_json(&keys.safety(), &doc).await?;
    let last_hash = trail.last().map(|r| r.hash.clone()).unwrap_or_default();
    Ok(StepOutput::new(&input.run_id, "safety")
        .key("safety", keys.safety())
        .key("audit", &audit_key)
        .count("approved", approved)
        .count("blocked", blocked)
        .count(COUNT_RECORDS, trail.len() as u64)
        .count(COUNT_LAST_HASH, last_hash))
}

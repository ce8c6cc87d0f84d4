//! `assign`: every member is either left out with a reason (`suppressed/part-*.jsonl`: suppressed, or deferred
//! by the contact policy) or gets an arm (`assignments/part-*.jsonl`, the holdout included), plus the send list
//! and templates. Afterwards the run's sends go to `contacts/` and its entry to the campaign's ledger
//! (docs/architecture.md, "A campaign over time").
//!
//! Parts are aligned: `assignments/part-i.jsonl`, `send/part-i.csv` (and `send/rendered-i.jsonl`) hold the
//! customers of the i-th members part, in the same order. Segment writes members parts of
//! `experiment.part_size` customers (in sharded mode a shard's last part can be shorter), so the outputs keep
//! that size; in exchange each part is independent of the others, which lets the parts run on every core
//! and lets `simulate` pair a members part with its assignments part without a cursor across parts.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use cpo_common::keys::RunKeys;
use cpo_common::model::experiment::TemplatesDoc;
use cpo_common::run::RunInput;
use cpo_common::store::StoreExt;
use cpo_common::{Ctx, Key, StepError, StepOutput};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::json;

use crate::hashing::{holdout_position, unit_interval};
use crate::member::{JsonLines, MemberRef};
use crate::parts::{blocking, list_parts, workers};
use crate::plan::{Plan, HOLDOUT};
use crate::send::{self, SendWriter};
use crate::suppression::{self, CustomerHash, Exclusions, Reason};

/// Customers per (segment, arm).
pub type ArmCounts = BTreeMap<String, BTreeMap<String, u64>>;

pub async fn run(ctx: &Ctx, run: &RunInput) -> Result<StepOutput, StepError> {
    let store = ctx.store.as_ref();
    let keys = RunKeys::new(&run.run_id)?;
    let plan = Plan::load(store, run).await?;
    let templates = send::templates_with_defaults(&run.run_id, &plan, &run.config.generation.merge_defaults);
    store.put_json(&keys.templates(), &templates).await?;

    let member_keys = list_parts(store, &keys.members_prefix(), "members-", ".jsonl").await?;
    if member_keys.is_empty() {
        return Err(StepError::input(format!(
            "{}: no members-*.jsonl parts; the segment step must run before assignment",
            keys.members_prefix()
        )));
    }
    let exclusions = suppression::load(store, run).await?;
    let job = Arc::new(AssignJob { plan, templates, render: run.config.experiment.render, exclusions });
    // At most `workers` parts in flight; `buffered` yields their tallies in part order.
    let mut tallies = futures::stream::iter(member_keys.into_iter().enumerate())
        .map(|(part, key)| {
            let (store, job, keys) = (ctx.store.clone(), job.clone(), keys.clone());
            async move {
                let body = store.get(&key).await?;
                let out = blocking("assign", move || job.part(&key, &body)).await?;
                store.put(&keys.assignments(part), out.assignments).await?;
                store.put(&keys.suppressed(part), out.suppressed).await?;
                store.put(&keys.send(part), out.send).await?;
                if let Some(rendered) = out.rendered {
                    store.put(&rendered_key(&keys, part)?, rendered).await?;
                }
                Ok::<_, StepError>(out.tally)
            }
        })
        .buffered(workers());
    let mut total = Tally::default();
    let mut parts = 0usize;
    while let Some(t) = tallies.try_next().await? {
        total.merge(t);
        parts += 1;
    }
    let Tally { customers, counts, left_out, sent_hashes, consent_seen } = total;
    let plan = &job.plan;
    if let (Some(c), false) = (&job.exclusions.consent, consent_seen || customers == 0) {
        // An opt-out column that is missing would send to everyone: fail before the sends are recorded.
        return Err(StepError::input(format!(
            "campaign {}: field `suppression.consent.column`: no customer has a value in column {:?}; it must \
             be a column of the customers file",
            run.campaign, c.column
        )));
    }
    let contacts_key = suppression::record_contacts(store, run, sent_hashes).await?;
    let deferred = left_out.get(&Reason::ContactPolicy).copied().unwrap_or(0);
    let suppressed: BTreeMap<String, u64> =
        left_out.iter().filter(|(r, _)| **r != Reason::ContactPolicy).map(|(r, n)| (r.to_string(), *n)).collect();
    let suppressed_total: u64 = suppressed.values().sum();

    let mut arms: BTreeMap<String, u64> = BTreeMap::new();
    for per in counts.values() {
        for (arm, n) in per {
            *arms.entry(arm.clone()).or_default() += n;
        }
    }
    let unplanned: u64 =
        counts.iter().filter(|(s, _)| !plan.segments.contains_key(*s)).flat_map(|(_, a)| a.values()).sum();
    tracing::info!(
        run_id = %run.run_id,
        experiment_id = %plan.experiment_id,
        customers,
        parts,
        blocked = plan.blocked.len(),
        unplanned,
        "assignment written"
    );
    let held_out = arms.get(HOLDOUT).copied().unwrap_or(0);
    let assigned: u64 = arms.values().sum();
    let sent = assigned - held_out;
    crate::ledger::write(
        store,
        run,
        plan,
        &crate::ledger::Counts {
            eligible: customers,
            suppressed: suppressed.clone(),
            deferred,
            held_out,
            assigned,
            sent,
        },
    )
    .await?;
    tracing::info!(run_id = %run.run_id, suppressed = suppressed_total, deferred, held_out, "left out of the week");
    Ok(StepOutput::new(&run.run_id, "assign")
        .key("assignments", keys.assignments_prefix())
        .key("send", keys.prefix().join("send/")?)
        .key("templates", keys.templates())
        .key("suppressed", keys.suppressed_prefix())
        .key("contacts", contacts_key)
        .count("customers", customers)
        .count("assigned", assigned)
        .count("suppressed", json!(suppressed))
        .count("suppressed_total", suppressed_total)
        .count("deferred", deferred)
        .count("held_out", held_out)
        .count("sent", sent)
        .count("parts", parts as u64)
        .count("arms", json!(arms))
        .count("segments", json!(counts))
        .count("blocked", json!(plan.blocked))
        .count("unplanned_segment_customers", unplanned)
        .count("experiment_id", plan.experiment_id.clone()))
}

fn rendered_key(keys: &RunKeys, part: usize) -> Result<Key, StepError> {
    Ok(keys.prefix().join(&format!("send/rendered-{part:05}.jsonl"))?)
}

/// What every part needs, shared read-only by the workers.
pub struct AssignJob {
    pub plan: Plan,
    pub templates: TemplatesDoc,
    /// Also render every message (`experiment.render`).
    pub render: bool,
    /// Who is left out before assignment (from the run's snapshots).
    pub exclusions: Exclusions,
}

/// The objects of one part, ready to write.
pub struct AssignedPart {
    pub assignments: Bytes,
    /// `suppressed/part-*.jsonl`: who was left out and why.
    pub suppressed: Bytes,
    pub send: Bytes,
    pub rendered: Option<Bytes>,
    pub tally: Tally,
}

/// Customers seen, per (segment, arm); left out, per reason; the keyed hashes of those sent to.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    pub customers: u64,
    pub counts: ArmCounts,
    pub left_out: BTreeMap<Reason, u64>,
    pub sent_hashes: Vec<CustomerHash>,
    /// Some customer had a value in the consent column.
    pub consent_seen: bool,
}

impl Tally {
    fn add(&mut self, segment: &str, arm: &str) {
        // Look up before inserting: the keys exist after a part's first few customers, and a lookup allocates
        // nothing while `entry` needs owned keys.
        if let Some(n) = self.counts.get_mut(segment).and_then(|per| per.get_mut(arm)) {
            *n += 1;
        } else {
            *self.counts.entry(segment.to_string()).or_default().entry(arm.to_string()).or_default() += 1;
        }
    }

    fn merge(&mut self, other: Tally) {
        self.customers += other.customers;
        for (r, n) in other.left_out {
            *self.left_out.entry(r).or_default() += n;
        }
        self.sent_hashes.extend(other.sent_hashes);
        self.consent_seen |= other.consent_seen;
        for (segment, per) in other.counts {
            let mine = self.counts.entry(segment).or_default();
            for (arm, n) in per {
                *mine.entry(arm).or_default() += n;
            }
        }
    }
}

/// One line of `assignments/part-*.jsonl`, serialised from borrowed strings (same field order, hence the
/// same bytes, as `cpo_common::model::experiment::Assignment`).
#[derive(Serialize)]
struct AssignmentOut<'a> {
    customer_id: &'a str,
    segment: &'a str,
    arm: &'a str,
    variant_id: &'a str,
}

/// One line of `suppressed/part-*.jsonl`.
#[derive(Serialize)]
struct LeftOut<'a> {
    customer_id: &'a str,
    segment: &'a str,
    reason: String,
}

impl AssignJob {
    /// Assign the members of one part (`key` names it in errors): pure and independent of other parts.
    pub fn part(&self, key: &Key, body: &[u8]) -> Result<AssignedPart, StepError> {
        let plan = &self.plan;
        // Output sizes from the members part's: an assignment line is about a quarter of a member line, a
        // send row about a third (measured on the synthetic customers).
        let mut assignments = Vec::with_capacity(body.len() / 3);
        let mut send = SendWriter::with_capacity(&self.templates.merge_fields, body.len() / 2)?
            .with_defaults(&self.templates.merge_defaults);
        let mut rendered = Vec::new();
        let mut left_out = Vec::new();
        let mut tally = Tally::default();
        let mut lines = JsonLines::new(key, body)?;
        let mut progress = cpo_common::progress::Rows::new("assign");
        let ex = &self.exclusions;
        let consent_column = ex.consent.as_ref().map(|c| c.column.as_str());
        while let Some(m) = lines.next_row::<MemberRef<'_>>() {
            progress.tick();
            let m = m?;
            let (id, segment) = (m.customer_id.as_str(), m.segment.as_str());
            tally.customers += 1;
            let hash = ex.hasher.as_ref().map(|h| h.id(id));
            if let Some(c) = consent_column {
                tally.consent_seen |= m.field(c).is_some();
            }
            let reason = hash
                .as_ref()
                .and_then(|h| ex.suppressed(h, m.field("email"), |name| m.field(name).map(str::to_string)));
            let holdout_pos = holdout_position(&plan.campaign, id);
            let held_out = holdout_pos < plan.holdout;
            // The holdout is a per-customer property, so it is never deferred: the same customers stay held
            // out every week. The contact policy defers only customers who would be sent to.
            let reason = reason.or_else(|| {
                (!held_out && hash.as_ref().is_some_and(|h| ex.at_limit.contains(h))).then_some(Reason::ContactPolicy)
            });
            if let Some(reason) = reason {
                serde_json::to_writer(
                    &mut left_out,
                    &LeftOut { customer_id: id, segment, reason: reason.to_string() },
                )?;
                left_out.push(b'\n');
                *tally.left_out.entry(reason).or_default() += 1;
                continue;
            }
            let (arm, variant_id) = plan.pick(segment, holdout_pos, unit_interval(&plan.experiment_id, id));
            tally.add(segment, arm);
            serde_json::to_writer(&mut assignments, &AssignmentOut { customer_id: id, segment, arm, variant_id })?;
            assignments.push(b'\n');
            if arm == HOLDOUT {
                continue;
            }
            if let Some(h) = hash {
                tally.sent_hashes.push(h);
            }
            let email = m.field("email").unwrap_or("");
            send.push([id, email, arm, variant_id, segment], |name| m.field(name))?;
            if self.render {
                if let Some(t) = self.templates.templates.get(variant_id) {
                    let field = |name: &str| m.field(name).map(str::to_string);
                    let msg = send::render(t, &self.templates.merge_defaults, id, Some(email), &field);
                    serde_json::to_writer(&mut rendered, &msg)?;
                    rendered.push(b'\n');
                }
            }
        }
        Ok(AssignedPart {
            assignments: Bytes::from(assignments),
            suppressed: Bytes::from(left_out),
            send: Bytes::from(send.finish()?),
            rendered: self.render.then(|| Bytes::from(rendered)),
            tally,
        })
    }
}

//! `assign`: every member gets an arm (nobody dropped), written as `assignments/part-*.jsonl`, plus the send
//! list and templates.
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

use crate::hashing::unit_interval;
use crate::member::{JsonLines, MemberRef};
use crate::parts::{blocking, list_parts, workers};
use crate::plan::{Plan, HOLDOUT};
use crate::send::{self, SendWriter};

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
    let job = Arc::new(AssignJob { plan, templates, render: run.config.experiment.render });
    // At most `workers` parts in flight; `buffered` yields their tallies in part order.
    let mut tallies = futures::stream::iter(member_keys.into_iter().enumerate())
        .map(|(part, key)| {
            let (store, job, keys) = (ctx.store.clone(), job.clone(), keys.clone());
            async move {
                let body = store.get(&key).await?;
                let out = blocking("assign", move || job.part(&key, &body)).await?;
                store.put(&keys.assignments(part), out.assignments).await?;
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
    let Tally { customers, counts } = total;
    let plan = &job.plan;

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
    let sent = customers - arms.get(HOLDOUT).copied().unwrap_or(0);
    Ok(StepOutput::new(&run.run_id, "assign")
        .key("assignments", keys.assignments_prefix())
        .key("send", keys.prefix().join("send/")?)
        .key("templates", keys.templates())
        .count("customers", customers)
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
}

/// The objects of one part, ready to write.
pub struct AssignedPart {
    pub assignments: Bytes,
    pub send: Bytes,
    pub rendered: Option<Bytes>,
    pub tally: Tally,
}

/// Customers seen, per (segment, arm).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    pub customers: u64,
    pub counts: ArmCounts,
}

impl Tally {
    fn add(&mut self, segment: &str, arm: &str) {
        self.customers += 1;
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
        let mut tally = Tally::default();
        let mut lines = JsonLines::new(key, body)?;
        while let Some(m) = lines.next_row::<MemberRef<'_>>() {
            let m = m?;
            let (id, segment) = (m.customer_id.as_str(), m.segment.as_str());
            let (arm, variant_id) = plan.pick(segment, unit_interval(&plan.experiment_id, id));
            tally.add(segment, arm);
            serde_json::to_writer(&mut assignments, &AssignmentOut { customer_id: id, segment, arm, variant_id })?;
            assignments.push(b'\n');
            if arm == HOLDOUT {
                continue;
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
            send: Bytes::from(send.finish()?),
            rendered: self.render.then(|| Bytes::from(rendered)),
            tally,
        })
    }
}

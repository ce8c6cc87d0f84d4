//! `assign`: every member gets an arm (nobody dropped), written as `assignments/part-*.jsonl`, plus the send
//! list and templates. Streams one members part at a time and flushes output every `part_size` customers.

use std::collections::BTreeMap;

use bytes::Bytes;
use cpo_common::keys::RunKeys;
use cpo_common::model::experiment::{Assignment, TemplatesDoc};
use cpo_common::model::segment::Member;
use cpo_common::run::RunInput;
use cpo_common::store::StoreExt;
use cpo_common::{Ctx, Key, StepError, StepOutput, Store};
use serde_json::json;

use crate::hashing::unit_interval;
use crate::parts::{list_parts, to_jsonl, JsonlParts};
use crate::plan::{Plan, HOLDOUT};
use crate::send::{self, SendWriter};

/// Customers per (segment, arm).
pub type ArmCounts = BTreeMap<String, BTreeMap<String, u64>>;

pub async fn run(ctx: &Ctx, run: &RunInput) -> Result<StepOutput, StepError> {
    let store = ctx.store.as_ref();
    let keys = RunKeys::new(&run.run_id)?;
    let plan = Plan::load(store, run).await?;
    let templates = send::templates(&run.run_id, &plan);
    store.put_json(&keys.templates(), &templates).await?;

    let member_keys = list_parts(store, &keys.members_prefix(), "members-", ".jsonl").await?;
    if member_keys.is_empty() {
        return Err(StepError::input(format!(
            "{}: no members-*.jsonl parts; the segment step must run before assignment",
            keys.members_prefix()
        )));
    }
    let part_size = run.config.experiment.part_size.max(1);
    let mut out = PartWriter::new(store, &keys, &templates, part_size, run.config.experiment.render)?;
    let mut members = JsonlParts::<Member>::new(member_keys);
    let mut counts: ArmCounts = BTreeMap::new();
    let mut customers = 0u64;
    while let Some(part) = members.next_part(store).await? {
        for m in part {
            let u = unit_interval(&plan.experiment_id, &m.customer_id);
            let (arm, variant_id) = plan.pick(&m.segment, u);
            *counts.entry(m.segment.clone()).or_default().entry(arm.to_string()).or_default() += 1;
            customers += 1;
            let a = Assignment {
                customer_id: m.customer_id.clone(),
                segment: m.segment.clone(),
                arm: arm.to_string(),
                variant_id: variant_id.to_string(),
            };
            out.push(a, &m)?;
            if out.full() {
                out.flush().await?;
            }
        }
    }
    out.flush().await?;
    let parts = out.parts;

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

/// Buffers one part of assignments, send rows and (optionally) rendered messages.
struct PartWriter<'a> {
    store: &'a dyn Store,
    keys: &'a RunKeys,
    templates: &'a TemplatesDoc,
    part_size: usize,
    render: bool,
    assignments: Vec<Assignment>,
    send: SendWriter,
    rendered: Vec<u8>,
    parts: usize,
}

impl<'a> PartWriter<'a> {
    fn new(
        store: &'a dyn Store,
        keys: &'a RunKeys,
        templates: &'a TemplatesDoc,
        part_size: usize,
        render: bool,
    ) -> Result<Self, StepError> {
        Ok(Self {
            store,
            keys,
            templates,
            part_size,
            render,
            assignments: Vec::with_capacity(part_size.min(1 << 20)),
            send: SendWriter::new(&templates.merge_fields)?,
            rendered: Vec::new(),
            parts: 0,
        })
    }

    fn push(&mut self, a: Assignment, m: &Member) -> Result<(), StepError> {
        if a.arm != HOLDOUT {
            let email = m.fields.get("email").map(String::as_str).unwrap_or("");
            self.send.push([&a.customer_id, email, &a.arm, &a.variant_id, &a.segment], &m.fields)?;
            if self.render {
                if let Some(t) = self.templates.templates.get(&a.variant_id) {
                    let field = |name: &str| m.fields.get(name).cloned();
                    let msg = send::render(t, &a.customer_id, Some(email), &field);
                    serde_json::to_writer(&mut self.rendered, &msg)?;
                    self.rendered.push(b'\n');
                }
            }
        }
        self.assignments.push(a);
        Ok(())
    }

    fn full(&self) -> bool {
        self.assignments.len() >= self.part_size
    }

    async fn flush(&mut self) -> Result<(), StepError> {
        if self.assignments.is_empty() && self.parts > 0 {
            return Ok(());
        }
        let part = self.parts;
        self.store.put(&self.keys.assignments(part), to_jsonl(&self.assignments)?).await?;
        let send = std::mem::replace(&mut self.send, SendWriter::new(&self.templates.merge_fields)?);
        self.store.put(&self.keys.send(part), Bytes::from(send.finish()?)).await?;
        if self.render {
            let key: Key = self.keys.prefix().join(&format!("send/rendered-{part:05}.jsonl"))?;
            self.store.put(&key, Bytes::from(std::mem::take(&mut self.rendered))).await?;
        }
        self.assignments.clear();
        self.parts += 1;
        Ok(())
    }
}

//! The arms in force: control plus each tone whose variant for the segment shipped and passed safety, with the
//! configured weights renormalised per segment. Assignment splits customers by it; analysis computes the SRM
//! expectations from the same plan, so the two can never disagree.

use std::collections::BTreeMap;

use cpo_common::keys::{slug, RunKeys};
use cpo_common::model::safety::SafetyDoc;
use cpo_common::model::segment::SegmentsDoc;
use cpo_common::model::variant::{Message, VariantStatus, VariantsDoc};
use cpo_common::run::RunInput;
use cpo_common::store::StoreExt;
use cpo_common::{StepError, Store};

use crate::allocation::{self, History, SegmentAllocation};
use crate::parts::list_parts;
use cpo_common::config::AllocationMode;

pub const CONTROL: &str = "control";
pub const HOLDOUT: &str = "holdout";

/// One arm of one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub arm: String,
    pub variant_id: String,
    /// Share among the segment's non-holdout customers (the slots of a segment sum to 1).
    pub weight: f64,
}

/// A message of the plan: what the customers of one (segment, arm) receive.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedMessage {
    pub arm: String,
    pub segment: Option<String>,
    pub message: Message,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub experiment_id: String,
    /// The campaign: the holdout is a per-(customer, campaign) property.
    pub campaign: String,
    pub holdout: f64,
    /// Arm names in display order: control, then the configured tones.
    pub arm_order: Vec<String>,
    /// Segment name → its slots.
    pub segments: BTreeMap<String, Vec<Slot>>,
    /// Control only, for customers of a segment the plan does not know.
    pub fallback: Vec<Slot>,
    /// variant_id → message (`control` included).
    pub messages: BTreeMap<String, PlannedMessage>,
    /// Variants that exist but may not be sent (rejected by generation or blocked by safety).
    pub blocked: Vec<String>,
    /// `allocation.mode: thompson`: per segment, the chance each tone is best and its posterior, from which the
    /// slots' weights were set (`None` with fixed weights).
    pub thompson: Option<BTreeMap<String, SegmentAllocation>>,
}

impl Plan {
    /// The slots of a segment (control only for an unknown segment, so nobody is ever dropped).
    pub fn slots(&self, segment: &str) -> &[Slot] {
        self.segments.get(segment).map(Vec::as_slice).unwrap_or(&self.fallback)
    }

    /// Arm of a customer: held out when its holdout position `h` (from [`crate::hashing::holdout_position`],
    /// the same every week) is below the holdout share; otherwise its arm position `u` ∈ [0, 1) (from
    /// [`crate::hashing::unit_interval`], an independent hash) is cut by cumulative weight.
    pub fn pick(&self, segment: &str, h: f64, u: f64) -> (&str, &str) {
        if h < self.holdout {
            return (HOLDOUT, "");
        }
        let v = u;
        let slots = self.slots(segment);
        let mut acc = 0.0;
        for s in slots {
            acc += s.weight;
            if v < acc {
                return (&s.arm, &s.variant_id);
            }
        }
        // Rounding can leave the cumulative sum a hair below 1: the last arm takes the remainder.
        slots.last().map(|s| (s.arm.as_str(), s.variant_id.as_str())).unwrap_or((CONTROL, CONTROL))
    }

    /// Build from the run's config, `segments.json`, `variants/*.json` and `safety.json`. A message ships only
    /// when `safety.json` approved its exact bytes; a shipped message whose text differs from the one screened
    /// fails with `Cpo.SafetyUnavailable` naming it.
    pub async fn load(store: &dyn Store, run: &RunInput) -> Result<Plan, StepError> {
        let keys = RunKeys::new(&run.run_id)?;
        let safety: SafetyDoc = store.get_json_opt(&keys.safety()).await?.ok_or_else(|| {
            StepError::input(format!("{}: not found; the safety step must run before assignment", keys.safety()))
        })?;
        let segments: Option<SegmentsDoc> = store.get_json_opt(&keys.segments()).await?;
        let mut docs = Vec::new();
        for key in list_parts(store, &keys.variants_prefix(), "", ".json").await? {
            docs.push(store.get_json::<VariantsDoc>(&key).await?);
        }
        let names: Vec<String> = segments.map(|s| s.segments.into_iter().map(|p| p.name).collect()).unwrap_or_default();
        let mut plan = Plan::build(run, &safety, &names, &docs)?;
        if run.config.allocation.mode == AllocationMode::Thompson {
            // The history copy made by the run's first assign, so every reader sees the weights in force.
            plan.apply_thompson(&allocation::load(store, run).await?, &run.config.allocation);
        }
        Ok(plan)
    }

    /// Set each segment's weights by Thompson allocation over `history` (the shipped tones of the segment
    /// compete; the control keeps `control_share`).
    pub fn apply_thompson(&mut self, history: &History, alloc: &cpo_common::config::Allocation) {
        let mut out = BTreeMap::new();
        for (segment, slots) in &mut self.segments {
            let tones: Vec<String> = slots.iter().filter(|s| s.arm != CONTROL).map(|s| s.arm.clone()).collect();
            let a = allocation::allocate(history, alloc, segment, &tones);
            for s in slots.iter_mut() {
                s.weight = a.weights.get(&s.arm).copied().unwrap_or(0.0);
            }
            out.insert(segment.clone(), a);
        }
        self.thompson = Some(out);
    }

    /// The pure part of [`Plan::load`].
    pub fn build(
        run: &RunInput,
        safety: &SafetyDoc,
        segment_names: &[String],
        docs: &[VariantsDoc],
    ) -> Result<Plan, StepError> {
        let cfg = &run.config;
        let control = cfg.control.message();
        if !safety.approves(CONTROL, &control)? {
            return Err(StepError::input(format!(
                "runs/{}/safety.json: the control message is not approved (variant_id `control`); \
                 nothing can be sent until the campaign's `control` text passes safety",
                run.run_id
            )));
        }
        let control_slot = |w: f64| Slot { arm: CONTROL.into(), variant_id: CONTROL.into(), weight: w };
        let mut messages = BTreeMap::new();
        messages.insert(CONTROL.to_string(), PlannedMessage { arm: CONTROL.into(), segment: None, message: control });
        let mut segments: BTreeMap<String, Vec<Slot>> = BTreeMap::new();
        let mut blocked = Vec::new();
        let mut all_names: Vec<String> = segment_names.to_vec();
        all_names.extend(docs.iter().map(|d| d.segment.clone()));
        all_names.sort();
        all_names.dedup();
        for name in all_names {
            let doc = docs.iter().find(|d| d.segment == name || d.slug == slug(&name));
            // Thompson mode ignores `weights`: every arm in force is kept here and weighted by `apply_thompson`.
            let thompson = cfg.allocation.mode == AllocationMode::Thompson;
            let weight = |arm: &str| if thompson { 1.0 } else { cfg.weight(arm) };
            let mut slots = vec![control_slot(weight(CONTROL))];
            for tone in &cfg.tones {
                let Some(v) = doc.and_then(|d| d.variants.iter().find(|v| &v.tone == tone)) else { continue };
                // A shipped variant must have a verdict on its exact text; a mismatch fails the step.
                if v.status != VariantStatus::Shipped || !safety.approves(&v.variant_id, &v.message)? {
                    blocked.push(v.variant_id.clone());
                    continue;
                }
                slots.push(Slot { arm: tone.clone(), variant_id: v.variant_id.clone(), weight: weight(tone) });
                messages.insert(
                    v.variant_id.clone(),
                    PlannedMessage { arm: tone.clone(), segment: Some(name.clone()), message: v.message.clone() },
                );
            }
            slots.retain(|s| s.weight > 0.0);
            let total: f64 = slots.iter().map(|s| s.weight).sum();
            if total <= 0.0 {
                return Err(StepError::input(format!(
                    "campaign {}: field `weights`: every arm in force for segment {name:?} has weight 0",
                    cfg.name
                )));
            }
            for s in &mut slots {
                s.weight /= total;
            }
            segments.insert(name, slots);
        }
        let mut arm_order = vec![CONTROL.to_string()];
        arm_order.extend(cfg.tones.iter().cloned());
        Ok(Plan {
            experiment_id: cfg.experiment_id(run.date),
            campaign: run.campaign.clone(),
            holdout: cfg.holdout,
            arm_order,
            segments,
            fallback: vec![control_slot(1.0)],
            messages,
            blocked,
            thompson: None,
        })
    }
}

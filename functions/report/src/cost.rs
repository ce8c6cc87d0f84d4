//! What a run cost and how long it took, from the step records (each step counts its own provider calls,
//! tokens and cost) with the variants' usage as the source for generation when its steps do not count it.

use cpo_common::model::variant::VariantsDoc;
use cpo_common::step::StepRecord;
use serde_json::Value;

use crate::view::{CostFacts, StepTiming};

fn is_generate(step: &StepRecord) -> bool {
    step.step == "generate" || step.step.starts_with("generate-")
}

fn num(step: &StepRecord, names: &[&str]) -> Option<f64> {
    names.iter().find_map(|n| step.output.counts.get(*n).and_then(Value::as_f64))
}

pub fn cost(steps: &[StepRecord], variants: &[VariantsDoc]) -> CostFacts {
    let mut c = CostFacts::default();
    let all_variants = variants.iter().flat_map(|d| &d.variants);
    c.cached_variants = all_variants.clone().filter(|v| v.usage.cached).count() as u64;
    let generate_steps_count_cost = steps.iter().any(|s| is_generate(s) && num(s, &["cost_usd"]).is_some());
    for s in steps {
        if is_generate(s) && !generate_steps_count_cost {
            continue;
        }
        c.cost_usd += num(s, &["cost_usd"]).unwrap_or(0.0);
        c.provider_calls += num(s, &["provider_calls", "calls"]).unwrap_or(0.0) as u64;
        c.prompt_tokens += num(s, &["prompt_tokens"]).unwrap_or(0.0) as u64;
        c.completion_tokens += num(s, &["completion_tokens"]).unwrap_or(0.0) as u64;
    }
    if !generate_steps_count_cost {
        for v in all_variants {
            c.cost_usd += v.usage.cost_usd;
            c.provider_calls += v.usage.calls;
            c.prompt_tokens += v.usage.prompt_tokens;
            c.completion_tokens += v.usage.completion_tokens;
        }
    }
    c
}

pub fn timings(steps: &[StepRecord]) -> (Vec<StepTiming>, u64) {
    let rows: Vec<StepTiming> = steps
        .iter()
        .map(|s| StepTiming {
            step: s.step.clone(),
            status: s.status.clone(),
            started_at: s.started_at,
            finished_at: s.finished_at,
            duration_ms: s.duration_ms,
        })
        .collect();
    // A sum of step durations, not a wall-clock span: outcomes arrive days after the campaign steps, and the
    // span would count that wait as run time.
    let total = steps.iter().map(|s| s.duration_ms).sum();
    (rows, total)
}

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
            status: s.status,
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use cpo_common::model::variant::{Message, Usage, Variant, VariantStatus};
    use cpo_common::StepOutput;

    fn rec(step: &str, out: StepOutput, ms: u64) -> StepRecord {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        StepRecord {
            run_id: "r".into(),
            step: step.into(),
            status: cpo_common::step::StepStatus::Succeeded,
            input_hash: String::new(),
            started_at: t,
            finished_at: t,
            duration_ms: ms,
            output: out,
            reads: Default::default(),
        }
    }

    fn doc(cost: f64, calls: u64, cached: bool) -> VariantsDoc {
        let usage = Usage { prompt_tokens: 10, completion_tokens: 5, cost_usd: cost, calls, cached, cache_hits: 0 };
        let v = Variant {
            variant_id: "s-urgent".into(),
            segment: "S".into(),
            tone: "urgent".into(),
            status: VariantStatus::Shipped,
            message: Message::default(),
            citations: vec![],
            reasons: vec![],
            provider: "openai".into(),
            model: None,
            attempts: 1,
            usage: usage.clone(),
        };
        VariantsDoc {
            run_id: "r".into(),
            segment: "S".into(),
            slug: "s".into(),
            variants: vec![v],
            no_content: false,
            provider: "openai".into(),
            model: None,
            usage,
        }
    }

    #[test]
    fn generate_steps_counts_win_over_variant_usage() {
        let gen = StepOutput::new("r", "generate").count("cost_usd", 0.5).count("provider_calls", 2);
        let safety = StepOutput::new("r", "safety").count("cost_usd", 0.25).count("provider_calls", 3);
        let steps = [rec("generate-s", gen, 10), rec("safety", safety, 20)];
        let c = cost(&steps, &[doc(9.0, 9, false)]);
        assert_eq!((c.cost_usd, c.provider_calls), (0.75, 5));
        assert_eq!(timings(&steps).1, 30);
    }

    #[test]
    fn variant_usage_counts_when_generate_steps_do_not() {
        let steps = [rec("generate-s", StepOutput::new("r", "generate").count("provider_calls", 7), 1)];
        let c = cost(&steps, &[doc(0.125, 2, false), doc(0.0, 0, true)]);
        assert_eq!((c.cost_usd, c.provider_calls, c.prompt_tokens, c.cached_variants), (0.125, 2, 20, 1));
    }
}

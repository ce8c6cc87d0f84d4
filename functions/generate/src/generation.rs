//! One variant: render the prompt, get an answer (cache, else provider), parse and validate it; on failure
//! retry once with the reasons in the prompt; still failing → rejected with its reasons, never shipped.

use cpo_common::config::Price;
use cpo_common::model::variant::{Message, Usage, Variant, VariantStatus};
use cpo_common::store::Store;
use cpo_common::StepError;

use crate::brief::Brief;
use crate::cache;
use crate::parse::{parse, Draft};
use crate::prompts::Prompts;
use crate::provider::{Completion, Provider, Request};
use crate::validate::validate;

/// Attempts per variant: the first draft and one retry.
pub const MAX_ATTEMPTS: u32 = 2;

pub struct Generator<'a> {
    pub store: &'a dyn Store,
    pub provider: &'a dyn Provider,
    pub prompts: &'a Prompts,
    pub price: Option<&'a Price>,
}

impl Generator<'_> {
    pub async fn variant(&self, brief: &Brief) -> Result<Variant, StepError> {
        let mut usage = Usage { cached: true, ..Usage::default() };
        let mut previous: Option<(String, Vec<String>)> = None;
        let mut attempts = 0;
        let (draft, reasons) = loop {
            attempts += 1;
            let messages = self.prompts.messages(brief, previous.as_ref().map(|(a, r)| (a.as_str(), r.as_slice())))?;
            let (completion, spent) = match self.answer(&messages, brief).await {
                Ok(answer) => answer,
                // The first draft was judged; a retry the provider could not answer leaves it rejected.
                Err(e) if previous.is_some() && e.kind.is_provider() => {
                    let (text, mut reasons) = previous.take().unwrap_or_default();
                    reasons.push(format!("the retry got no answer: {}", e.message));
                    let draft = parse(&text).ok();
                    break (draft, reasons);
                }
                Err(e) => return Err(e),
            };
            usage.add(&spent);
            let (draft, reasons) = judge(&completion, brief);
            if reasons.is_empty() || attempts >= MAX_ATTEMPTS {
                break (draft, reasons);
            }
            tracing::info!(
                variant_id = %brief.variant_id(),
                reasons = reasons.len(),
                "draft failed validation; retrying with the reasons"
            );
            previous = Some((completion.text, reasons));
        };
        Ok(self.finish(brief, draft, reasons, attempts, usage))
    }

    /// A variant for a tone whose every provider call failed while other tones of the segment were answered:
    /// rejected with the provider's error as its reason, so the segment's customers fall back to the control.
    pub fn unanswered(&self, brief: &Brief, error: &StepError) -> Variant {
        let reason = format!("no draft: the provider failed ({}: {})", error.kind.name(), error.message);
        self.finish(brief, None, vec![reason], 1, Usage::default())
    }

    fn finish(
        &self,
        brief: &Brief,
        draft: Option<Draft>,
        reasons: Vec<String>,
        attempts: u32,
        usage: Usage,
    ) -> Variant {
        let status = if reasons.is_empty() { VariantStatus::Shipped } else { VariantStatus::Rejected };
        if status == VariantStatus::Rejected {
            tracing::warn!(variant_id = %brief.variant_id(), ?reasons, "variant rejected");
        }
        let draft = draft.unwrap_or(Draft { message: Message::default(), citations: Vec::new() });
        Variant {
            variant_id: brief.variant_id(),
            segment: brief.segment.name.clone(),
            tone: brief.tone.clone(),
            status,
            message: draft.message,
            citations: draft.citations,
            reasons,
            provider: self.provider.name().to_string(),
            model: self.provider.model().map(str::to_string),
            attempts,
            usage,
        }
    }

    /// The provider's answer to `messages` and what it cost this run (nothing when it came from the cache).
    async fn answer(
        &self,
        messages: &[crate::provider::ChatMessage],
        brief: &Brief,
    ) -> Result<(Completion, Usage), StepError> {
        let key = self.provider.cacheable().then(|| cache::key(self.provider, messages));
        if let Some(key) = &key {
            if let Some(hit) = cache::get(self.store, key).await? {
                tracing::debug!(variant_id = %brief.variant_id(), %key, "provider answer from cache");
                return Ok((hit, Usage { cached: true, cache_hits: 1, ..Usage::default() }));
            }
        }
        let completion = self.provider.complete(&Request { messages, brief }).await?;
        if let Some(key) = &key {
            // The answer is paid for either way; failing the step over a cache write would pay for it twice.
            if let Err(e) = cache::put(self.store, key, self.provider, &completion).await {
                tracing::warn!(%key, error = %e, "could not cache the provider answer");
            }
        }
        let cost_usd = self.price.map_or(0.0, |p| {
            completion.prompt_tokens as f64 / 1000.0 * p.input_per_1k
                + completion.completion_tokens as f64 / 1000.0 * p.output_per_1k
        });
        let usage = Usage {
            prompt_tokens: completion.prompt_tokens,
            completion_tokens: completion.completion_tokens,
            cost_usd,
            calls: 1,
            cached: false,
            cache_hits: 0,
        };
        Ok((completion, usage))
    }
}

/// The draft in an answer (if any) and why it cannot ship (empty = it ships).
fn judge(completion: &Completion, brief: &Brief) -> (Option<Draft>, Vec<String>) {
    if let Some(refusal) = &completion.refusal {
        let r: String = refusal.chars().take(200).collect();
        return (None, vec![format!("the model refused: {r}")]);
    }
    match parse(&completion.text) {
        Ok(draft) => {
            let reasons = validate(&draft, brief);
            (Some(draft), reasons)
        }
        Err(why) => (None, vec![why]),
    }
}

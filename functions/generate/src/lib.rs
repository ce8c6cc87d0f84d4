//! `generate`: grounded message variants per segment and tone, every claim citing approved content.
//!
//! One invocation handles one segment (the Map item): it loads the segment's profile and retrieved passages
//! ([`inputs`]), resolves the provider ([`settings`], [`secrets`], [`provider`]), writes one variant per
//! tone ([`generation`]: [`prompts`] → [`cache`] or provider → [`parse`] → [`validate`], one retry) and
//! stores them in `runs/<run_id>/variants/<slug>.json`.

pub mod brief;
pub(crate) mod cache;
pub(crate) mod generation;
pub(crate) mod inputs;
pub mod parse;
pub(crate) mod prompts;
pub mod provider;
/// Key references resolve in `cpo_common::secrets` (shared with safety and retrieval).
pub use cpo_common::secrets;
pub(crate) mod settings;
pub mod validate;

use cpo_common::model::variant::{Usage, VariantStatus, VariantsDoc};
use cpo_common::store::StoreExt;
use cpo_common::{keys, step, Ctx, StepError, StepInput, StepOutput};

use crate::brief::Brief;
use crate::generation::Generator;
use crate::prompts::Prompts;
use crate::settings::Settings;

/// The step handler, called by the Lambda `main` and by the local state-machine runner.
pub async fn handle(input: StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
    let env = |name: &str| std::env::var(name).ok();
    handle_with_env(input, ctx, &env).await
}

/// [`handle`] with an injected environment (`CPO_LLM_*` overrides, secret-store endpoints), for tests.
pub async fn handle_with_env(
    input: StepInput,
    ctx: &Ctx,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<StepOutput, StepError> {
    let slug = keys::slug(inputs::segment_name(&input)?);
    let step_name = format!("generate-{slug}");
    let run = cpo_common::run::load(ctx.store.as_ref(), &input.run_id).await?;
    let settings = Settings::resolve(&run.config.generation, env)?;
    // Operators may repoint the provider through the environment; a different provider is different work.
    let identity = settings.identity();
    // Reused only while the segment's profile and passages are the ones it wrote from.
    let keys = input.keys()?;
    let mut reads = step::Reads::new();
    reads.object(ctx.store.as_ref(), &keys.segments()).await?.object(ctx.store.as_ref(), &keys.retrieval()).await?;
    step::run_once_reading(ctx, &input, &step_name, &identity, reads, || {
        generate_segment(&input, ctx, &settings, env, &step_name)
    })
    .await
}

async fn generate_segment(
    input: &StepInput,
    ctx: &Ctx,
    settings: &Settings,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    step_name: &str,
) -> Result<StepOutput, StepError> {
    let seg = inputs::load(ctx, input).await?;
    let keys = input.keys()?;
    let variants_key = keys.variants(&seg.profile.name);
    let cfg = &seg.run.config;
    let mut doc = VariantsDoc {
        run_id: input.run_id.clone(),
        segment: seg.profile.name.clone(),
        slug: seg.profile.slug.clone(),
        variants: Vec::new(),
        no_content: seg.no_content(),
        provider: settings.kind.name().to_string(),
        model: settings.model.clone(),
        usage: Usage::default(),
    };
    if seg.no_content() {
        tracing::warn!(run_id = %input.run_id, segment = %seg.profile.slug, "no approved content; no variants");
    } else {
        let provider = provider::build(settings, env).await?;
        let prompts = Prompts::load(ctx.store.as_ref(), &cfg.tones).await?;
        let price = settings.model.as_deref().and_then(|m| cfg.prices.get(m));
        if price.is_none() && settings.model.is_some() {
            tracing::warn!(model = ?settings.model, "no price for this model in `prices`; cost counts as 0");
        }
        let generator = Generator { store: ctx.store.as_ref(), provider: provider.as_ref(), prompts: &prompts, price };
        let briefs: Vec<Brief> = cfg
            .tones
            .iter()
            .map(|t| Brief::new(cfg, &seg.profile, &seg.hits, t).with_columns(seg.columns.clone()))
            .collect();
        // Tones run concurrently; the provider's transport bounds how many requests are in flight.
        let results = futures::future::join_all(briefs.iter().map(|b| generator.variant(b))).await;
        // A provider that answered some tones is reachable: the tones it failed are rejected (their customers
        // get the control). One that answered none fails the step, for the state machine to retry.
        let answered = results.iter().any(Result::is_ok);
        for (brief, r) in briefs.iter().zip(results) {
            let v = match r {
                Ok(v) => v,
                Err(e) if answered && e.kind.is_provider() => {
                    tracing::warn!(variant_id = %brief.variant_id(), error = %e, "no answer for this tone; rejected");
                    generator.unanswered(brief, &e)
                }
                Err(e) => return Err(e),
            };
            doc.usage.add(&v.usage);
            doc.variants.push(v);
        }
    }
    ctx.store.put_json(&variants_key, &doc).await?;
    let shipped = doc.variants.iter().filter(|v| v.status == VariantStatus::Shipped).count();
    let rejected = doc.variants.len() - shipped;
    tracing::info!(
        run_id = %input.run_id,
        segment = %doc.slug,
        shipped,
        rejected,
        calls = doc.usage.calls,
        cache_hits = doc.usage.cache_hits,
        cost_usd = doc.usage.cost_usd,
        "segment generated"
    );
    Ok(StepOutput::new(&input.run_id, step_name)
        .key("variants", &variants_key)
        .count("variants", doc.variants.len() as u64)
        .count("shipped", shipped as u64)
        .count("rejected", rejected as u64)
        .count("no_content", u64::from(doc.no_content))
        .count("provider_calls", doc.usage.calls)
        .count("cached", doc.usage.cache_hits)
        .count("prompt_tokens", doc.usage.prompt_tokens)
        .count("completion_tokens", doc.usage.completion_tokens)
        .count("tokens", doc.usage.tokens())
        .count("cost_usd", doc.usage.cost_usd))
}

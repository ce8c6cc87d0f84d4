//! `report`: the campaign report (after the campaign machine: segments, variants with citations, safety,
//! arms, send list, "awaiting outcomes") and the experiment report (after each analysis: adds results and
//! the decision), as `report/index.html`, `report/report.md` and `report/report.json` with the same
//! figures, then `manifest.json` last. After an analysis it also renders the campaign across weeks.

mod arms;
mod build;
mod charts;
mod cost;
pub mod fmt;
pub mod glossary;
pub mod lines;
mod load;
mod manifest;
pub mod render;
mod summary;
pub mod view;
pub mod weeks;

use bytes::Bytes;
use chrono::Utc;
use cpo_common::keys::{sha256_hex, Key, RunKeys};
use cpo_common::model::weeks::CampaignWeeksDoc;
use cpo_common::store::{Store, StoreExt};
use cpo_common::{step, Ctx, StepError, StepInput, StepOutput};

pub use view::Report;

/// The two operations of the step (`input.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Campaign,
    Experiment,
}

impl Action {
    pub fn parse(s: &str) -> Result<Self, StepError> {
        match s {
            "campaign" => Ok(Action::Campaign),
            "experiment" => Ok(Action::Experiment),
            other => {
                Err(StepError::input(format!("report: field `action` is {other:?}; expected campaign or experiment")))
            }
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Campaign => "campaign",
            Action::Experiment => "experiment",
        }
    }
    /// The step record name (`steps/report-campaign.json`, `steps/report-experiment.json`).
    pub fn step(self) -> &'static str {
        match self {
            Action::Campaign => "report-campaign",
            Action::Experiment => "report-experiment",
        }
    }
}

/// The step handler, called by the Lambda `main` and by the local state-machine runner.
pub async fn handle(input: StepInput, ctx: &Ctx) -> Result<StepOutput, StepError> {
    let action = Action::parse(input.action_or("campaign"))?;
    let keys = input.keys()?;
    let identity = inputs_identity(ctx, &keys).await?;
    let out = step::run_once(ctx, &input, action.step(), &identity, || write_report(ctx, &keys, action)).await?;
    // After the step record, so the manifest lists it: the manifest is the last object the run gets.
    let docs = load::run_docs(ctx.store.as_ref(), &keys).await?;
    let manifest = manifest::build(ctx.store.as_ref(), &keys, &docs, action).await?;
    manifest::write(ctx.store.as_ref(), &keys, &manifest).await?;
    if action == Action::Experiment {
        if let Some(key) = campaign_page(ctx.store.as_ref(), &docs.run.campaign).await? {
            return Ok(out.key("manifest", keys.manifest()).key("campaign_report", key));
        }
    }
    Ok(out.key("manifest", keys.manifest()))
}

/// Renders the campaign across weeks (`campaigns/<campaign>/report/index.html`) from the JSON the analysis
/// step published beside it; None when there is none (a campaign analysed before it existed).
async fn campaign_page(store: &dyn Store, campaign: &str) -> Result<Option<Key>, StepError> {
    let json = cpo_common::keys::campaign_report(campaign, "report.json")?;
    let Some(doc) = store.get_json_opt::<CampaignWeeksDoc>(&json).await? else { return Ok(None) };
    let html = cpo_common::keys::campaign_report(campaign, "index.html")?;
    store.put(&html, Bytes::from(weeks::render_html(&doc))).await?;
    Ok(Some(html))
}

/// What the report depends on: every object of the run except the report's own outputs. A new analysis,
/// a re-assigned experiment or a re-screened variant changes it, so the report is rendered again; an
/// identical re-delivery does not.
async fn inputs_identity(ctx: &Ctx, keys: &RunKeys) -> Result<String, StepError> {
    let report_prefix = keys.report("x");
    let report_prefix = report_prefix.as_str().trim_end_matches('x');
    let own_steps = [Action::Campaign, Action::Experiment].map(|a| keys.step(a.step()).to_string());
    let mut text = String::new();
    for m in ctx.store.list(&keys.prefix()).await? {
        if m.key.starts_with(report_prefix) || m.key == keys.manifest().as_str() || own_steps.contains(&m.key) {
            continue;
        }
        text.push_str(&format!("{}\t{}\t{}\n", m.key, m.etag.unwrap_or_default(), m.size));
    }
    Ok(sha256_hex(text.as_bytes()))
}

async fn write_report(ctx: &Ctx, keys: &RunKeys, action: Action) -> Result<StepOutput, StepError> {
    let store = ctx.store.as_ref();
    let docs = load::run_docs(store, keys).await?;
    if action == Action::Experiment && docs.analysis.is_none() {
        return Err(StepError::input(format!(
            "report: {} not found; the experiment report needs the analysis (run experiment/analyze first)",
            keys.analysis()
        )));
    }
    build::check_screened(&docs)?;
    let (arm_counts, source) = arms::counts(store, keys, &docs.steps).await?;
    let report = build::report(&docs, &arm_counts, source, action.as_str(), Utc::now());
    let (html, md) = render::render(&report).map_err(|e| StepError::internal(e.to_string()))?;
    let json = serde_json::to_vec_pretty(&report)?;
    store.put(&keys.report("report.json"), Bytes::from(json)).await?;
    store.put(&keys.report("report.md"), Bytes::from(md)).await?;
    store.put(&keys.report("index.html"), Bytes::from(html)).await?;
    tracing::info!(
        run_id = %report.run_id,
        action = action.as_str(),
        verdict = %report.summary.verdict,
        simulated = report.simulated,
        "report written"
    );
    let mut out = StepOutput::new(keys.run_id(), action.step())
        .count("segments", report.segments.len())
        .count("variants", report.variants.len())
        .count("variants_in_experiment", report.variants.iter().filter(|v| v.in_experiment).count())
        .count("customers", report.arms.iter().map(|a| a.n).sum::<u64>())
        .count("verdict", report.summary.verdict.clone())
        .count("simulated", report.simulated);
    for (name, key) in manifest::report_files(keys) {
        out = out.key(&name, key);
    }
    Ok(out)
}

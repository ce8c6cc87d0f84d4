//! `manifest.json`: written after everything else of the step, so its presence means the report and every
//! object it lists are complete. It lists every object of the run (size and etag) except itself, the run's
//! audit object, and every step record.

use std::collections::BTreeMap;

use chrono::Utc;
use cpo_common::keys::{Key, RunKeys};
use cpo_common::model::manifest::{Manifest, RunStatus};
use cpo_common::step::StepStatus;
use cpo_common::store::{Store, StoreExt};
use cpo_common::StepError;

use crate::load::RunDocs;
use crate::{cost, Action};

/// Report files by name in the manifest and the step output.
pub fn report_files(keys: &RunKeys) -> BTreeMap<String, String> {
    [("html", "index.html"), ("markdown", "report.md"), ("json", "report.json")]
        .into_iter()
        .map(|(name, file)| (name.to_string(), keys.report(file).to_string()))
        .collect()
}

pub async fn build(store: &dyn Store, keys: &RunKeys, docs: &RunDocs, action: Action) -> Result<Manifest, StepError> {
    let manifest_key = keys.manifest();
    let mut objects: Vec<_> =
        store.list(&keys.prefix()).await?.into_iter().filter(|m| m.key != manifest_key.as_str()).collect();
    if let Some(audit) = docs.safety.as_ref().map(|s| s.audit_key.as_str()).filter(|k| !k.is_empty()) {
        if let Some(meta) = store.head(&Key::new(audit)?).await? {
            objects.push(meta);
        }
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let cost = cost::cost(&docs.steps, &docs.variants);
    let status = if docs.steps.iter().any(|s| s.status != StepStatus::Succeeded) {
        RunStatus::Failed
    } else if docs.analysis.is_some() {
        RunStatus::Analyzed
    } else {
        RunStatus::AwaitingOutcomes
    };
    Ok(Manifest {
        run_id: docs.run.run_id.clone(),
        campaign: docs.run.campaign.clone(),
        status,
        generated_at: Utc::now(),
        steps: docs.steps.clone(),
        total_bytes: objects.iter().map(|o| o.size).sum(),
        objects,
        cost_usd: cost.cost_usd,
        provider_calls: cost.provider_calls,
        simulated: docs.analysis.as_ref().is_some_and(|a| a.simulated),
        prompt_tokens: cost.prompt_tokens,
        completion_tokens: cost.completion_tokens,
        report_action: action.as_str().into(),
        report: report_files(keys),
    })
}

/// Write the manifest unless the stored one already says the same (apart from when it was generated), so a
/// re-delivered invocation leaves the run untouched.
pub async fn write(store: &dyn Store, keys: &RunKeys, manifest: &Manifest) -> Result<bool, StepError> {
    if let Some(old) = store.get_json_opt::<Manifest>(&keys.manifest()).await.ok().flatten() {
        // serde_json's default float parsing may be one ulp off, so the cost compares with a tolerance.
        let same_cost = (old.cost_usd - manifest.cost_usd).abs() <= 1e-9 * manifest.cost_usd.abs().max(1.0);
        let old = Manifest { generated_at: manifest.generated_at, cost_usd: manifest.cost_usd, ..old };
        if same_cost && old == *manifest {
            return Ok(false);
        }
    }
    store.put_json(&keys.manifest(), manifest).await?;
    Ok(true)
}

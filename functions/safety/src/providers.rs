//! Building the configured screener chain (`safety.providers`) from the campaign config and policy.
//!
//! `safety.endpoint` and `safety.api_key` configure the network provider of the chain; when both network
//! providers are chained they configure `azure-content-safety`, and `openai-moderation` reads
//! `OPENAI_BASE_URL` / `OPENAI_API_KEY`. Keys are references (`env:VAR`, `aws-secrets:…`,
//! `azure-keyvault:…`), never the key itself.

use std::time::Duration;

use cpo_common::config::Safety;
use cpo_common::named::SafetyProvider;
use cpo_common::secrets;
use cpo_common::StepError;

use crate::azure::AzureContentSafety;
use crate::http::HttpOpts;
use crate::offline::Offline;
use crate::openai::OpenAiModeration;
use crate::policy::Policy;
use crate::screener::Screener;

pub const AZURE_ENDPOINT_ENV: &str = "AZURE_CONTENT_SAFETY_ENDPOINT";
pub const AZURE_KEY_ENV: &str = "AZURE_CONTENT_SAFETY_KEY";
pub const OPENAI_BASE_ENV: &str = "OPENAI_BASE_URL";
pub const OPENAI_KEY_ENV: &str = "OPENAI_API_KEY";

/// The key named by a reference (`env:VAR`, `aws-secrets:NAME[#field]`, `azure-keyvault:URL` — the resolver
/// every provider shares), or the provider's default variable when none is configured.
async fn resolve_key(reference: Option<&str>, default_env: &str, provider: &str) -> Result<String, StepError> {
    let reference = match reference {
        Some(r) => r.to_string(),
        None => format!("env:{default_env}"),
    };
    let key = secrets::resolve(&format!("safety.api_key ({provider})"), &reference, &secrets::process_env).await?;
    Ok(key.expose().to_string())
}

/// Environment override of `safety.providers` for ops (comma-separated; the SAM template's `SafetyProvider`).
pub const PROVIDERS_ENV: &str = "CPO_SAFETY_PROVIDERS";

/// The chain `cfg.providers` names (or `CPO_SAFETY_PROVIDERS`), in order. Unknown names in the override and
/// missing endpoints are config errors (the campaign's own names were checked when it loaded).
pub async fn build(cfg: &Safety, policy: &Policy) -> Result<Vec<Box<dyn Screener>>, StepError> {
    let from_env = match std::env::var(PROVIDERS_ENV) {
        Ok(v) => v
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<SafetyProvider>, _>>()
            .map_err(|e| StepError::input(format!("{PROVIDERS_ENV}: {e}")))?,
        Err(_) => Vec::new(),
    };
    let from_env = Some(from_env).filter(|v| !v.is_empty());
    let overridden;
    let cfg = match from_env {
        Some(providers) => {
            overridden = Safety { providers, ..cfg.clone() };
            &overridden
        }
        None => cfg,
    };
    if cfg.providers.is_empty() {
        return Err(StepError::input("campaign field `safety.providers`: at least one provider is required"));
    }
    let opts = HttpOpts { timeout: Duration::from_secs(cfg.timeout_secs.max(1)), ..HttpOpts::default() };
    let both = cfg.providers.contains(&SafetyProvider::AzureContentSafety)
        && cfg.providers.contains(&SafetyProvider::OpenAiModeration);
    let mut chain: Vec<Box<dyn Screener>> = Vec::new();
    for &provider in &cfg.providers {
        let name = provider.name();
        let screener: Box<dyn Screener> = match provider {
            SafetyProvider::Offline => Box::new(Offline),
            SafetyProvider::AzureContentSafety => {
                let endpoint = cfg
                    .endpoint
                    .clone()
                    .or_else(|| std::env::var(AZURE_ENDPOINT_ENV).ok().filter(|v| !v.is_empty()))
                    .ok_or_else(|| {
                        StepError::input(format!(
                            "campaign field `safety.endpoint`: {name} needs an endpoint (or {AZURE_ENDPOINT_ENV})"
                        ))
                    })?;
                let key = resolve_key(cfg.api_key.as_deref(), AZURE_KEY_ENV, name).await?;
                Box::new(
                    AzureContentSafety::new(&endpoint, key, opts.clone(), policy.azure.clone())
                        .map_err(|e| StepError::internal(e.to_string()))?,
                )
            }
            SafetyProvider::OpenAiModeration => {
                let (base, key) = if both {
                    (
                        std::env::var(OPENAI_BASE_ENV).ok().filter(|v| !v.is_empty()),
                        resolve_key(None, OPENAI_KEY_ENV, name).await?,
                    )
                } else {
                    (
                        cfg.endpoint.clone().or_else(|| std::env::var(OPENAI_BASE_ENV).ok().filter(|v| !v.is_empty())),
                        resolve_key(cfg.api_key.as_deref(), OPENAI_KEY_ENV, name).await?,
                    )
                };
                let base = base.unwrap_or_else(|| "https://api.openai.com".to_string());
                Box::new(
                    OpenAiModeration::new(&base, key, policy.openai.model.clone(), opts.clone())
                        .map_err(|e| StepError::internal(e.to_string()))?,
                )
            }
        };
        chain.push(screener);
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn config_errors_name_the_field() {
        let policy = Policy::bundled().unwrap();
        let cfg = Safety { providers: vec![], ..Safety::default() };
        assert!(build(&cfg, &policy).await.is_err());
        let cfg = Safety {
            providers: vec![SafetyProvider::AzureContentSafety],
            endpoint: Some("http://127.0.0.1:9".into()),
            api_key: Some("sk-literal-key".into()),
            ..Safety::default()
        };
        let e = build(&cfg, &policy).await.err().unwrap();
        assert!(e.message.contains("env:VAR"), "{e}");
        assert_eq!(build(&Safety::default(), &policy).await.unwrap().len(), 1);
    }
}

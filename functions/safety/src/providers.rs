//! Building the configured screener chain (`safety.providers`) from the campaign config and policy.
//!
//! `safety.endpoint` and `safety.api_key` configure the network provider of the chain; when both network
//! providers are chained they configure `azure-content-safety`, and `openai-moderation` reads
//! `OPENAI_BASE_URL` / `OPENAI_API_KEY`. Keys are references (`env:VAR`, `aws-secrets:…`,
//! `azure-keyvault:…`), never the key itself.

use std::time::Duration;

use cpo_common::config::Safety;
use cpo_common::secrets;
use cpo_common::StepError;

use crate::azure::AzureContentSafety;
use crate::http::HttpOpts;
use crate::offline::Offline;
use crate::openai::OpenAiModeration;
use crate::policy::Policy;
use crate::screener::Screener;

pub const OFFLINE: &str = "offline";
pub const AZURE: &str = "azure-content-safety";
pub const OPENAI: &str = "openai-moderation";
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

/// The chain `cfg.providers` names (or `CPO_SAFETY_PROVIDERS`), in order. Unknown names and missing endpoints
/// are config errors.
pub async fn build(cfg: &Safety, policy: &Policy) -> Result<Vec<Box<dyn Screener>>, StepError> {
    let from_env: Option<Vec<String>> = std::env::var(PROVIDERS_ENV)
        .ok()
        .map(|v| v.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect::<Vec<_>>())
        .filter(|v| !v.is_empty());
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
    let both = cfg.providers.iter().any(|p| p == AZURE) && cfg.providers.iter().any(|p| p == OPENAI);
    let mut chain: Vec<Box<dyn Screener>> = Vec::new();
    for name in &cfg.providers {
        let screener: Box<dyn Screener> = match name.as_str() {
            OFFLINE => Box::new(Offline),
            AZURE => {
                let endpoint = cfg
                    .endpoint
                    .clone()
                    .or_else(|| std::env::var(AZURE_ENDPOINT_ENV).ok().filter(|v| !v.is_empty()))
                    .ok_or_else(|| {
                        StepError::input(format!(
                            "campaign field `safety.endpoint`: {AZURE} needs an endpoint (or {AZURE_ENDPOINT_ENV})"
                        ))
                    })?;
                let key = resolve_key(cfg.api_key.as_deref(), AZURE_KEY_ENV, AZURE).await?;
                Box::new(
                    AzureContentSafety::new(&endpoint, key, opts.clone(), policy.azure.clone())
                        .map_err(|e| StepError::internal(e.to_string()))?,
                )
            }
            OPENAI => {
                let (base, key) = if both {
                    (
                        std::env::var(OPENAI_BASE_ENV).ok().filter(|v| !v.is_empty()),
                        resolve_key(None, OPENAI_KEY_ENV, OPENAI).await?,
                    )
                } else {
                    (
                        cfg.endpoint.clone().or_else(|| std::env::var(OPENAI_BASE_ENV).ok().filter(|v| !v.is_empty())),
                        resolve_key(cfg.api_key.as_deref(), OPENAI_KEY_ENV, OPENAI).await?,
                    )
                };
                let base = base.unwrap_or_else(|| "https://api.openai.com".to_string());
                Box::new(
                    OpenAiModeration::new(&base, key, policy.openai.model.clone(), opts.clone())
                        .map_err(|e| StepError::internal(e.to_string()))?,
                )
            }
            other => {
                return Err(StepError::input(format!(
                    "campaign field `safety.providers`: unknown provider {other:?} (expected {OFFLINE}, {AZURE} or \
                     {OPENAI})"
                )))
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
        let cfg = Safety { providers: vec!["offline".into(), "magic".into()], ..Safety::default() };
        let e = build(&cfg, &policy).await.err().unwrap();
        assert!(e.message.contains("safety.providers") && e.message.contains("magic"), "{e}");
        let cfg = Safety { providers: vec![], ..Safety::default() };
        assert!(build(&cfg, &policy).await.is_err());
        let cfg = Safety {
            providers: vec![AZURE.into()],
            endpoint: Some("http://127.0.0.1:9".into()),
            api_key: Some("sk-literal-key".into()),
            ..Safety::default()
        };
        let e = build(&cfg, &policy).await.err().unwrap();
        assert!(e.message.contains("env:VAR"), "{e}");
        assert_eq!(build(&Safety::default(), &policy).await.unwrap().len(), 1);
    }
}

//! The provider settings in force: the campaign's `generation` block, overridden by `CPO_LLM_*` environment
//! variables so operators can point a deployed function at another endpoint without editing campaigns.

use std::time::Duration;

use cpo_common::config::Generation;
use cpo_common::named::GenerationProvider;
use cpo_common::StepError;

use crate::secrets::ApiKey;

/// Where the API key comes from: a literal from `CPO_LLM_API_KEY`, or a reference resolved at start.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    None,
    Literal(ApiKey),
    /// `env:VAR`, `aws-secrets:NAME`, `azure-keyvault:https://VAULT/secrets/NAME`.
    Reference(String),
}

pub const DEFAULT_OPENAI_BASE: &str = "https://api.openai.com";
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

#[derive(Debug, Clone)]
pub struct Settings {
    pub kind: GenerationProvider,
    /// Model name (Azure: the deployment name); `None` only for `offline`.
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_version: String,
    pub key: KeySource,
    pub timeout: Duration,
    pub max_retries: u32,
    pub max_concurrency: usize,
    pub temperature: f64,
    /// `max_tokens` sent with every request, when set.
    pub max_tokens: Option<u32>,
    /// First backoff step; doubles per attempt, with jitter.
    pub backoff_base: Duration,
    /// Longest single wait; a `Retry-After` beyond it ends the step with `Cpo.ProviderThrottled` so the state
    /// machine (not a billed Lambda) does the long wait.
    pub max_backoff: Duration,
}

impl Settings {
    /// Settings from the campaign block and an environment lookup (`std::env::var` in production).
    pub fn resolve(gen: &Generation, env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<Self, StepError> {
        let get = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let kind = match get("CPO_LLM_PROVIDER") {
            Some(name) => {
                name.parse::<GenerationProvider>().map_err(|e| StepError::input(format!("CPO_LLM_PROVIDER: {e}")))?
            }
            None => gen.provider,
        };
        let model = get("CPO_LLM_MODEL").or_else(|| gen.model.clone().filter(|m| !m.trim().is_empty()));
        let base_url = get("CPO_LLM_BASE_URL").or_else(|| gen.base_url.clone()).map(|u| u.trim_end_matches('/').into());
        let api_version = get("CPO_LLM_API_VERSION")
            .or_else(|| gen.api_version.clone())
            .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_string());
        // `CPO_LLM_API_KEY_REF` is how the SAM template passes a Secrets Manager reference (never the key).
        let reference = get("CPO_LLM_API_KEY_REF").or_else(|| gen.api_key.clone().filter(|r| !r.trim().is_empty()));
        let key = match (get("CPO_LLM_API_KEY"), reference) {
            (Some(k), _) => KeySource::Literal(ApiKey::new(k)),
            (None, Some(r)) => KeySource::Reference(r.trim().to_string()),
            _ => KeySource::None,
        };
        let (model, base_url) = match kind {
            GenerationProvider::Offline => (None, None),
            GenerationProvider::OpenAi => (
                Some(model.unwrap_or_else(|| DEFAULT_OPENAI_MODEL.to_string())),
                Some(base_url.unwrap_or_else(|| DEFAULT_OPENAI_BASE.to_string())),
            ),
            GenerationProvider::AzureOpenAi => {
                let model = model.ok_or_else(|| {
                    StepError::input(
                        "campaign field `generation.model` (or CPO_LLM_MODEL): azure-openai needs the deployment name",
                    )
                })?;
                let base = base_url.ok_or_else(|| {
                    StepError::input(
                        "campaign field `generation.base_url` (or CPO_LLM_BASE_URL): azure-openai needs the resource \
                         endpoint, e.g. https://NAME.openai.azure.com",
                    )
                })?;
                if key == KeySource::None {
                    return Err(StepError::input(
                        "campaign field `generation.api_key` (or CPO_LLM_API_KEY): azure-openai needs an API key",
                    ));
                }
                (Some(model), Some(base))
            }
        };
        if let Some(url) = &base_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(StepError::input(format!(
                    "campaign field `generation.base_url` (or CPO_LLM_BASE_URL): {url:?} is not an http(s) URL"
                )));
            }
        }
        if !(0.0..=2.0).contains(&gen.temperature) {
            return Err(StepError::input(format!(
                "campaign field `generation.temperature`: {} must be in [0, 2]",
                gen.temperature
            )));
        }
        if gen.body_words[0] > gen.body_words[1] {
            return Err(StepError::input(format!(
                "campaign field `generation.body_words`: minimum {} is above maximum {}",
                gen.body_words[0], gen.body_words[1]
            )));
        }
        Ok(Self {
            kind,
            model,
            base_url,
            api_version,
            key,
            timeout: Duration::from_secs(gen.timeout_secs.max(1)),
            max_retries: gen.max_retries,
            max_concurrency: gen.max_concurrency.max(1),
            temperature: gen.temperature,
            max_tokens: gen.max_tokens,
            backoff_base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        })
    }

    /// What identifies the provider for caching and step identity: never the key.
    pub fn identity(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.kind.name(),
            self.model.as_deref().unwrap_or("-"),
            self.base_url.as_deref().unwrap_or("-"),
            if self.kind == GenerationProvider::AzureOpenAi { self.api_version.as_str() } else { "-" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn offline_by_default() {
        let s = Settings::resolve(&Generation::default(), &env(&[])).unwrap();
        assert_eq!(s.kind, GenerationProvider::Offline);
        assert_eq!(s.model, None);
    }

    #[test]
    fn environment_overrides_the_campaign() {
        let e = env(&[
            ("CPO_LLM_PROVIDER", "openai"),
            ("CPO_LLM_BASE_URL", "http://localhost:11434/"),
            ("CPO_LLM_MODEL", "llama3.1"),
            ("CPO_LLM_API_KEY", "sk-secret"),
        ]);
        let s = Settings::resolve(&Generation::default(), &e).unwrap();
        assert_eq!(s.kind, GenerationProvider::OpenAi);
        assert_eq!(s.base_url.as_deref(), Some("http://localhost:11434"));
        assert_eq!(s.model.as_deref(), Some("llama3.1"));
        assert_eq!(s.key, KeySource::Literal(ApiKey::new("sk-secret")));
        assert!(!format!("{s:?}").contains("sk-secret"), "the key must never reach Debug output");
        assert!(!s.identity().contains("sk-secret"));
    }

    #[test]
    fn template_passes_a_secret_reference_not_a_key() {
        let e = env(&[
            ("CPO_LLM_PROVIDER", "openai"),
            ("CPO_LLM_API_KEY_REF", "aws-secrets:cpo/llm"),
            ("CPO_LLM_BASE_URL", ""),
        ]);
        let s = Settings::resolve(&Generation::default(), &e).unwrap();
        assert_eq!(s.key, KeySource::Reference("aws-secrets:cpo/llm".into()));
        assert_eq!(s.base_url.as_deref(), Some(DEFAULT_OPENAI_BASE), "an empty template parameter is no override");
    }

    #[test]
    fn azure_needs_deployment_endpoint_and_key() {
        let gen = Generation { provider: GenerationProvider::AzureOpenAi, ..Generation::default() };
        let e = Settings::resolve(&gen, &env(&[])).unwrap_err();
        assert!(e.message.contains("generation.model"), "{e}");
        let gen =
            Generation { model: Some("gpt4o".into()), base_url: Some("https://x.openai.azure.com".into()), ..gen };
        let e = Settings::resolve(&gen, &env(&[])).unwrap_err();
        assert!(e.message.contains("generation.api_key"), "{e}");
        let gen = Generation { api_key: Some("env:AZ_KEY".into()), ..gen };
        let s = Settings::resolve(&gen, &env(&[("CPO_LLM_API_VERSION", "2024-08-01-preview")])).unwrap();
        assert_eq!(s.api_version, "2024-08-01-preview");
        assert_eq!(s.key, KeySource::Reference("env:AZ_KEY".into()));
    }

    #[test]
    fn unknown_provider_is_named() {
        let e = Settings::resolve(&Generation::default(), &env(&[("CPO_LLM_PROVIDER", "gpt")])).unwrap_err();
        assert!(e.message.contains("CPO_LLM_PROVIDER") && e.message.contains("gpt"), "{e}");
    }
}

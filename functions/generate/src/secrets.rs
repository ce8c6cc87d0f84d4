//! API keys from references in the campaign config (`env:VAR`, `aws-secrets:NAME[#field]`,
//! `azure-keyvault:https://VAULT.vault.azure.net/secrets/NAME`). A key lives only in an [`ApiKey`], whose
//! `Debug` is redacted, so no log line or error message can print it.

use std::fmt;
use std::time::Duration;

use cpo_common::StepError;
use serde::Deserialize;

/// A secret string; `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
    /// The key itself, for an HTTP header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Environment lookup, injectable so tests never mutate the process environment.
pub type Env<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

const AWS_EXTENSION_PORT_ENV: &str = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT";
const KEYVAULT_RESOURCE: &str = "https://vault.azure.net";
const TIMEOUT: Duration = Duration::from_secs(10);

/// Resolve a key reference. Errors name the reference kind and the secret, never the value.
pub async fn resolve(reference: &str, env: Env<'_>) -> Result<ApiKey, StepError> {
    let client = crate::provider::http::client();
    if let Some(var) = reference.strip_prefix("env:") {
        return env(var)
            .filter(|v| !v.trim().is_empty())
            .map(|v| ApiKey::new(v.trim()))
            .ok_or_else(|| StepError::input(format!("generation.api_key: environment variable {var} is not set")));
    }
    if let Some(name) = reference.strip_prefix("aws-secrets:") {
        return aws_secret(client, name, env).await;
    }
    if let Some(url) = reference.strip_prefix("azure-keyvault:") {
        return azure_keyvault(client, url, env).await;
    }
    Err(StepError::input(
        "generation.api_key: expected env:VAR, aws-secrets:NAME or azure-keyvault:https://VAULT/secrets/NAME \
         (the key itself belongs in a secret store or CPO_LLM_API_KEY, never in the campaign file)",
    ))
}

#[derive(Deserialize)]
struct AwsSecretValue {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
}

/// Through the AWS Parameters and Secrets Lambda Extension (a local HTTP cache of Secrets Manager), which
/// needs no SDK and authenticates with the function's session token.
async fn aws_secret(client: &reqwest::Client, name: &str, env: Env<'_>) -> Result<ApiKey, StepError> {
    let (id, field) = match name.split_once('#') {
        Some((id, field)) => (id, Some(field)),
        None => (name, None),
    };
    let port = env(AWS_EXTENSION_PORT_ENV).unwrap_or_else(|| "2773".into());
    let token = env("AWS_SESSION_TOKEN").ok_or_else(|| {
        StepError::internal(format!("aws-secrets:{id}: AWS_SESSION_TOKEN is not set (not running in AWS Lambda?)"))
    })?;
    let mut url = reqwest::Url::parse(&format!("http://localhost:{port}/secretsmanager/get"))
        .map_err(|e| StepError::input(format!("aws-secrets:{id}: bad extension port {port:?}: {e}")))?;
    url.query_pairs_mut().append_pair("secretId", id);
    let resp = client
        .get(url)
        .header("X-Aws-Parameters-Secrets-Token", token)
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|e| StepError::unavailable(format!("aws-secrets:{id}: secrets extension unreachable: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(StepError::unavailable(format!("aws-secrets:{id}: secrets extension answered HTTP {status}")));
    }
    let body: AwsSecretValue = resp
        .json()
        .await
        .map_err(|e| StepError::unavailable(format!("aws-secrets:{id}: unreadable extension response: {e}")))?;
    let secret = body
        .secret_string
        .ok_or_else(|| StepError::input(format!("aws-secrets:{id}: the secret has no SecretString")))?;
    match field {
        None => Ok(ApiKey::new(secret.trim())),
        Some(field) => {
            let obj: serde_json::Value = serde_json::from_str(&secret)
                .map_err(|_| StepError::input(format!("aws-secrets:{id}#{field}: the secret is not a JSON object")))?;
            obj.get(field)
                .and_then(|v| v.as_str())
                .map(|v| ApiKey::new(v.trim()))
                .ok_or_else(|| StepError::input(format!("aws-secrets:{id}#{field}: no string field {field:?}")))
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

#[derive(Deserialize)]
struct KeyVaultSecret {
    value: String,
}

/// Key Vault REST with a managed-identity token: App Service / Functions / Container Apps expose
/// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`; VMs and AKS use the instance metadata service.
async fn azure_keyvault(client: &reqwest::Client, url: &str, env: Env<'_>) -> Result<ApiKey, StepError> {
    let secret_url =
        reqwest::Url::parse(url).map_err(|e| StepError::input(format!("azure-keyvault:{url}: not a URL: {e}")))?;
    let local = matches!(secret_url.host_str(), Some("localhost" | "127.0.0.1"));
    if secret_url.scheme() != "https" && !local {
        return Err(StepError::input(format!("azure-keyvault:{url}: the vault URL must be https")));
    }
    if !secret_url.path().starts_with("/secrets/") {
        return Err(StepError::input(format!("azure-keyvault:{url}: expected https://VAULT/secrets/NAME")));
    }
    let token_req = match (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER")) {
        (Some(endpoint), Some(header)) => {
            let mut u = reqwest::Url::parse(&endpoint)
                .map_err(|e| StepError::internal(format!("IDENTITY_ENDPOINT is not a URL: {e}")))?;
            u.query_pairs_mut().append_pair("api-version", "2019-08-01").append_pair("resource", KEYVAULT_RESOURCE);
            client.get(u).header("X-IDENTITY-HEADER", header)
        }
        _ => {
            let mut u = reqwest::Url::parse("http://169.254.169.254/metadata/identity/oauth2/token")
                .map_err(|e| StepError::internal(e.to_string()))?;
            u.query_pairs_mut().append_pair("api-version", "2018-02-01").append_pair("resource", KEYVAULT_RESOURCE);
            client.get(u).header("Metadata", "true")
        }
    };
    let resp =
        token_req.timeout(TIMEOUT).send().await.map_err(|e| {
            StepError::unavailable(format!("azure-keyvault: managed identity endpoint unreachable: {e}"))
        })?;
    if !resp.status().is_success() {
        return Err(StepError::unavailable(format!(
            "azure-keyvault: managed identity token request failed: HTTP {}",
            resp.status()
        )));
    }
    let token: TokenResponse = resp
        .json()
        .await
        .map_err(|e| StepError::unavailable(format!("azure-keyvault: unreadable token response: {e}")))?;
    let mut u = secret_url.clone();
    u.query_pairs_mut().append_pair("api-version", "7.4");
    let resp = client
        .get(u)
        .bearer_auth(token.access_token)
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|e| StepError::unavailable(format!("azure-keyvault:{url}: vault unreachable: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(StepError::unavailable(format!("azure-keyvault:{url}: vault answered HTTP {status}")));
    }
    let secret: KeyVaultSecret = resp
        .json()
        .await
        .map_err(|e| StepError::unavailable(format!("azure-keyvault:{url}: unreadable vault response: {e}")))?;
    Ok(ApiKey::new(secret.value.trim()))
}

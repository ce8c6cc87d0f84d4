//! API keys from references in the campaign config (`env:VAR`, `aws-secrets:NAME[#field]`,
//! `azure-keyvault:https://VAULT.vault.azure.net/secrets/NAME`) — one resolver for every provider (generation,
//! safety screening, retrieval), so a key reference means the same thing in every field. A key lives only in an
//! [`ApiKey`], whose `Debug` is redacted, so no log line or error message can print it.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use crate::StepError;
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

/// The process environment, for callers outside tests.
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// The client secret lookups use (connection pools are per client, so one serves every lookup).
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(TIMEOUT)
            .user_agent(concat!("cpo/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    })
}

/// Resolve the key reference of campaign field `field` (e.g. `generation.api_key`). Errors name the field, the
/// reference kind and the secret, never the value.
pub async fn resolve(field: &str, reference: &str, env: Env<'_>) -> Result<ApiKey, StepError> {
    let client = client();
    if let Some(var) = reference.strip_prefix("env:") {
        if let Some(v) = env(var).filter(|v| !v.trim().is_empty()) {
            return Ok(ApiKey::new(v.trim()));
        }
        // A deployment passes a reference in `<VAR>_REF`, never the key: resolved here, at run time (the SAM
        // template sets e.g. OPENAI_API_KEY_REF=aws-secrets:<ARN>, read through the secrets extension's cache, so
        // a rotated key is picked up without a redeploy and no console shows it).
        let ref_var = format!("{var}_REF");
        return match env(&ref_var).map(|r| r.trim().to_string()).filter(|r| !r.is_empty()) {
            Some(r) if r.starts_with("aws-secrets:") || r.starts_with("azure-keyvault:") => {
                secret_store(client, &format!("{field} ({ref_var})"), &r, env).await
            }
            Some(_) => Err(StepError::input(format!(
                "{field}: {ref_var} must be aws-secrets:NAME or azure-keyvault:https://VAULT/secrets/NAME"
            ))),
            None => Err(StepError::input(format!("{field}: environment variable {var} (or {ref_var}) is not set"))),
        };
    }
    secret_store(client, field, reference, env).await
}

/// A reference to a secret store (`aws-secrets:` or `azure-keyvault:`).
async fn secret_store(
    client: &reqwest::Client,
    field: &str,
    reference: &str,
    env: Env<'_>,
) -> Result<ApiKey, StepError> {
    if let Some(name) = reference.strip_prefix("aws-secrets:") {
        return aws_secret(client, name, env).await;
    }
    if let Some(url) = reference.strip_prefix("azure-keyvault:") {
        return azure_keyvault(client, url, env).await;
    }
    Err(StepError::input(format!(
        "{field}: expected env:VAR, aws-secrets:NAME or azure-keyvault:https://VAULT/secrets/NAME (the key itself \
         belongs in a secret store or an environment variable, never in the campaign file)"
    )))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn env_references_resolve_and_errors_name_the_field() {
        let env = |v: &str| (v == "CPO_TEST_KEY").then(|| " sk-test \n".to_string());
        let key = resolve("safety.api_key", "env:CPO_TEST_KEY", &env).await.unwrap();
        assert_eq!(key.expose(), "sk-test");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");

        let e = resolve("retrieval.api_key", "env:CPO_TEST_UNSET", &env).await.unwrap_err();
        assert!(e.message.starts_with("retrieval.api_key:") && e.message.contains("CPO_TEST_UNSET"), "{e}");
        let e = resolve("safety.api_key", "sk-literal-key", &env).await.unwrap_err();
        assert!(e.message.starts_with("safety.api_key:") && !e.message.contains("sk-literal-key"), "{e}");
    }

    #[tokio::test]
    async fn an_unset_variable_falls_back_to_its_ref_a_secret_store_reference() {
        // OPENAI_API_KEY unset, OPENAI_API_KEY_REF names a secret: the extension is asked (here: no session token,
        // so the error names the secret, proving the reference was followed).
        let env = |v: &str| (v == "OPENAI_API_KEY_REF").then(|| "aws-secrets:arn:aws:secretsmanager:x".to_string());
        let e = resolve("safety.api_key", "env:OPENAI_API_KEY", &env).await.unwrap_err();
        assert!(
            e.message.contains("aws-secrets:arn:aws:secretsmanager:x") && e.message.contains("AWS_SESSION_TOKEN"),
            "{e}"
        );
        // A reference to another variable (or a pasted key) is refused, naming the variable only.
        let env = |v: &str| (v == "OPENAI_API_KEY_REF").then(|| "sk-pasted-key".to_string());
        let e = resolve("safety.api_key", "env:OPENAI_API_KEY", &env).await.unwrap_err();
        assert!(e.message.contains("OPENAI_API_KEY_REF") && !e.message.contains("sk-pasted"), "{e}");
        let e = resolve("safety.api_key", "env:OPENAI_API_KEY", &|_: &str| None).await.unwrap_err();
        assert!(e.message.contains("OPENAI_API_KEY_REF"), "{e}");
    }
}

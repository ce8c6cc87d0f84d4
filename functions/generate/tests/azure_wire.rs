//! The `azure-openai` provider against a local server speaking the Azure OpenAI wire format, and API keys
//! from the AWS Secrets Manager extension and Azure Key Vault endpoints.

mod support;

use cpo_common::ErrorKind;
use serde_json::json;
use support::*;

fn azure_config(endpoint: &str) -> cpo_common::CampaignConfig {
    let mut cfg = config();
    cfg.tones = vec!["informational".into()];
    cfg.weights = [("control".to_string(), 0.5), ("informational".to_string(), 0.5)].into();
    cfg.generation.provider = cpo_common::named::GenerationProvider::AzureOpenAi;
    cfg.generation.model = Some("gpt-4o-mini".into()); // the deployment name
    cfg.generation.base_url = Some(endpoint.into());
    cfg.generation.api_key = Some("env:AZURE_OPENAI_API_KEY".into());
    cfg.generation.max_retries = 2;
    cfg
}

#[tokio::test]
async fn azure_request_shape_and_headers() {
    let server = serve(|_, r| Reply::ok(&good_answer(&r.tone()))).await;
    let ctx = fixture(azure_config(&server.url())).await;
    let out = run(&ctx, SEGMENT, &[("AZURE_OPENAI_API_KEY", "az-key-42")]).await.unwrap();
    assert_eq!(out.counts["shipped"], 1);
    let r = &server.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/openai/deployments/gpt-4o-mini/chat/completions");
    assert_eq!(r.query, "api-version=2024-10-21");
    assert_eq!(r.headers["api-key"], "az-key-42");
    assert!(!r.headers.contains_key("authorization"), "Azure keys go in api-key, not Authorization");
    assert!(r.body.get("model").is_none(), "Azure selects the model by deployment");
    assert_eq!(r.body["response_format"]["type"], "json_schema");
    let doc = variants(&ctx, RUN_ID, SEGMENT).await;
    assert_eq!(doc.provider, "azure-openai");
    assert!(doc.usage.cost_usd > 0.0, "priced by deployment name");
}

#[tokio::test]
async fn azure_throttling_then_success_and_api_version_override() {
    let server = serve(|n, r| {
        if n == 0 {
            Reply::status(429, r#"{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation have exceeded the rate limit."}}"#)
                .header("retry-after", "0")
        } else {
            Reply::ok(&good_answer(&r.tone()))
        }
    })
    .await;
    let ctx = fixture(azure_config(&server.url())).await;
    let out =
        run(&ctx, SEGMENT, &[("AZURE_OPENAI_API_KEY", "az-key-42"), ("CPO_LLM_API_VERSION", "2024-08-01-preview")])
            .await
            .unwrap();
    assert_eq!(out.counts["shipped"], 1);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.query == "api-version=2024-08-01-preview"));
}

#[tokio::test]
async fn azure_content_filter_refusal_is_a_validation_failure() {
    let server = serve(|_, _| {
        Reply::status(
            200,
            &json!({
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": null, "refusal": "I can't help with that."}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5}
            })
            .to_string(),
        )
    })
    .await;
    let ctx = fixture(azure_config(&server.url())).await;
    let out = run(&ctx, SEGMENT, &[("AZURE_OPENAI_API_KEY", "k")]).await.unwrap();
    assert_eq!(out.counts["rejected"], 1);
    let doc = variants(&ctx, RUN_ID, SEGMENT).await;
    assert!(doc.variants[0].reasons[0].contains("refused"), "{:?}", doc.variants[0].reasons);
}

/// A stand-in for the AWS Parameters and Secrets Lambda Extension.
async fn aws_extension() -> Server {
    serve(|_, r| {
        if r.path != "/secretsmanager/get" {
            return Reply::status(404, "{}");
        }
        if r.headers.get("x-aws-parameters-secrets-token").map(String::as_str) != Some("session-token") {
            return Reply::status(401, "{}");
        }
        let secret = match r.query.as_str() {
            "secretId=cpo%2Fopenai" => "sk-from-secrets-manager",
            "secretId=cpo%2Fjson" => r#"{"api_key": "sk-from-json-field"}"#,
            _ => return Reply::status(400, r#"{"__type":"ResourceNotFoundException"}"#),
        };
        Reply::status(
            200,
            &json!({"Name": "cpo/openai", "SecretString": secret, "VersionStages": ["AWSCURRENT"]}).to_string(),
        )
    })
    .await
}

#[tokio::test]
async fn key_from_aws_secrets_manager_reaches_the_authorization_header() {
    let ext = aws_extension().await;
    let llm = serve(|_, r| Reply::ok(&good_answer(&r.tone()))).await;
    let mut cfg = openai_config(&llm.url());
    cfg.tones = vec!["urgent".into()];
    cfg.weights = [("control".to_string(), 0.5), ("urgent".to_string(), 0.5)].into();
    cfg.generation.api_key = Some("aws-secrets:cpo/openai".into());
    let ctx = fixture(cfg).await;
    let port = ext.addr.port().to_string();
    let env_pairs = [("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.as_str()), ("AWS_SESSION_TOKEN", "session-token")];
    let out = run(&ctx, SEGMENT, &env_pairs).await.unwrap();
    assert_eq!(out.counts["shipped"], 1);
    assert_eq!(llm.requests()[0].headers["authorization"], "Bearer sk-from-secrets-manager");
    assert_eq!(ext.count(), 1);
}

#[tokio::test]
async fn aws_secret_json_field_and_errors() {
    let ext = aws_extension().await;
    let port = ext.addr.port().to_string();
    let e = env(&[("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.as_str()), ("AWS_SESSION_TOKEN", "session-token")]);
    let key = cpo_generate::secrets::resolve("generation.api_key", "aws-secrets:cpo/json#api_key", &e).await.unwrap();
    assert_eq!(key.expose(), "sk-from-json-field");
    assert_eq!(format!("{key:?}"), "ApiKey(***)");
    let err = cpo_generate::secrets::resolve("generation.api_key", "aws-secrets:cpo/missing", &e).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ProviderUnavailable);
    assert!(err.message.contains("cpo/missing") && err.message.contains("400"), "{err}");
    let no_token = env(&[("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.as_str())]);
    let err =
        cpo_generate::secrets::resolve("generation.api_key", "aws-secrets:cpo/openai", &no_token).await.unwrap_err();
    assert!(err.message.contains("AWS_SESSION_TOKEN"), "{err}");
    let err = cpo_generate::secrets::resolve("generation.api_key", "sk-literal-key-in-config", &e).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InputInvalid);
    assert!(!err.message.contains("sk-literal"), "a misplaced key is never echoed: {err}");
}

#[tokio::test]
async fn key_from_azure_key_vault_with_managed_identity() {
    // One server plays both the App Service identity endpoint and the vault.
    let server = serve(|_, r| match r.path.as_str() {
        "/msi/token" => {
            assert_eq!(r.headers["x-identity-header"], "identity-secret");
            assert!(r.query.contains("resource=https%3A%2F%2Fvault.azure.net"), "{}", r.query);
            assert!(r.query.contains("api-version=2019-08-01"));
            Reply::status(200, r#"{"access_token":"mi-token","expires_on":"1764000000","token_type":"Bearer"}"#)
        }
        "/secrets/openai-key" => {
            assert_eq!(r.headers["authorization"], "Bearer mi-token");
            assert_eq!(r.query, "api-version=7.4");
            Reply::status(200, r#"{"value":"sk-from-key-vault","id":"https://v.vault.azure.net/secrets/openai-key/1"}"#)
        }
        _ => Reply::status(404, "{}"),
    })
    .await;
    let endpoint = format!("{}/msi/token", server.url());
    let e = env(&[("IDENTITY_ENDPOINT", endpoint.as_str()), ("IDENTITY_HEADER", "identity-secret")]);
    let reference = format!("azure-keyvault:{}/secrets/openai-key", server.url());
    let key = cpo_generate::secrets::resolve("generation.api_key", &reference, &e).await.unwrap();
    assert_eq!(key.expose(), "sk-from-key-vault");
    let err =
        cpo_generate::secrets::resolve("generation.api_key", "azure-keyvault:http://vault.example.com/secrets/x", &e)
            .await
            .unwrap_err();
    assert!(err.message.contains("https"), "{err}");
}

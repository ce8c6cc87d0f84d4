//! Builders of the S3 and Azure Blob clients from the standard environment of each cloud.
//!
//! S3: object_store's `from_env` (AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN, AWS_REGION, web identity, ECS/EKS
//! container credentials, instance metadata) plus `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` for
//! S3-compatible endpoints (plain http allowed only when the endpoint itself is http).
//!
//! Azure: `AZURE_STORAGE_CONNECTION_STRING` when set (object_store does not read it, so it is parsed here),
//! else object_store's `from_env` (AZURE_STORAGE_ACCOUNT_NAME + AZURE_STORAGE_ACCOUNT_KEY, service principal,
//! workload or managed identity).

use std::sync::Arc;

use object_store::ObjectStore;

use super::StoreError;

/// Read an environment variable, treating an empty value as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(feature = "s3")]
pub fn s3(url: &str, bucket: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(endpoint) = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")) {
        b = b
            .with_config(AmazonS3ConfigKey::Endpoint, endpoint.trim_end_matches('/'))
            .with_allow_http(endpoint.starts_with("http://"))
            // S3-compatible servers (moto, MinIO) address buckets by path, not by host name.
            .with_virtual_hosted_style_request(false);
    }
    let store = b.build().map_err(|e| StoreError::InvalidUrl { url: url.to_string(), reason: e.to_string() })?;
    Ok(Arc::new(store))
}

/// The fields of an Azure Storage connection string that matter for Blob access. Its `Debug` hides the key.
#[cfg(feature = "azure")]
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AzureConnectionString {
    pub account: Option<String>,
    pub key: Option<String>,
    pub sas: Option<String>,
    /// `BlobEndpoint`, or `<protocol>://<account>.blob.<EndpointSuffix>` when only the suffix is given.
    pub blob_endpoint: Option<String>,
    /// `UseDevelopmentStorage=true`: Azurite on its default address.
    pub development: bool,
}

#[cfg(feature = "azure")]
impl std::fmt::Debug for AzureConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureConnectionString")
            .field("account", &self.account)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("sas", &self.sas.as_ref().map(|_| "***"))
            .field("blob_endpoint", &self.blob_endpoint)
            .field("development", &self.development)
            .finish()
    }
}

#[cfg(feature = "azure")]
impl AzureConnectionString {
    /// Parse `Name=Value;Name=Value;…` (values may contain `=`, as base64 keys do). Errors never echo the
    /// string, which holds a secret; they name the offending field.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = Self::default();
        let (mut protocol, mut suffix) = (None, None);
        for (i, part) in s.split(';').map(str::trim).enumerate() {
            if part.is_empty() {
                continue;
            }
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("AZURE_STORAGE_CONNECTION_STRING: part {} has no '='", i + 1))?;
            let value = value.trim().to_string();
            match name.trim().to_ascii_lowercase().as_str() {
                "accountname" => out.account = Some(value),
                "accountkey" => out.key = Some(value),
                "sharedaccesssignature" => out.sas = Some(value),
                "blobendpoint" => out.blob_endpoint = Some(value.trim_end_matches('/').to_string()),
                "defaultendpointsprotocol" => protocol = Some(value),
                "endpointsuffix" => suffix = Some(value),
                "usedevelopmentstorage" => out.development = value.eq_ignore_ascii_case("true"),
                // Queue/Table/File endpoints and the like do not concern Blob access.
                _ => {}
            }
        }
        if out.blob_endpoint.is_none() && !out.development {
            if let (Some(account), Some(suffix)) = (&out.account, &suffix) {
                let protocol = protocol.as_deref().unwrap_or("https");
                out.blob_endpoint = Some(format!("{protocol}://{account}.blob.{suffix}"));
            }
        }
        if out.account.is_none() && !out.development {
            return Err("AZURE_STORAGE_CONNECTION_STRING: no AccountName".into());
        }
        if out.key.is_none() && out.sas.is_none() && !out.development {
            return Err("AZURE_STORAGE_CONNECTION_STRING: neither AccountKey nor SharedAccessSignature".into());
        }
        Ok(out)
    }
}

#[cfg(feature = "azure")]
pub fn azure(url: &str, container: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    let bad = |reason: String| StoreError::InvalidUrl { url: url.to_string(), reason };
    let mut b = MicrosoftAzureBuilder::from_env().with_container_name(container);
    if let Some(cs) = env("AZURE_STORAGE_CONNECTION_STRING") {
        let cs = AzureConnectionString::parse(&cs).map_err(bad)?;
        if cs.development {
            b = b.with_use_emulator(true);
        }
        if let Some(account) = cs.account {
            b = b.with_account(account);
        }
        if let Some(key) = cs.key {
            b = b.with_access_key(key);
        }
        if let Some(sas) = cs.sas {
            b = b.with_config(AzureConfigKey::SasKey, sas);
        }
        if let Some(endpoint) = cs.blob_endpoint {
            b = b.with_allow_http(endpoint.starts_with("http://")).with_endpoint(endpoint);
        }
    }
    let store = b.build().map_err(|e| bad(e.to_string()))?;
    Ok(Arc::new(store))
}

#[cfg(all(test, feature = "azure"))]
mod tests {
    use super::AzureConnectionString;

    #[test]
    fn parses_azurite_and_cloud_connection_strings() {
        let cs = AzureConnectionString::parse(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5==;\
             BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;QueueEndpoint=http://127.0.0.1:10001/x;",
        )
        .unwrap();
        assert_eq!(cs.account.as_deref(), Some("devstoreaccount1"));
        assert_eq!(cs.key.as_deref(), Some("a2V5=="), "base64 padding survives");
        assert_eq!(cs.blob_endpoint.as_deref(), Some("http://127.0.0.1:10000/devstoreaccount1"));

        let cs = AzureConnectionString::parse(
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=k;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(cs.blob_endpoint.as_deref(), Some("https://acme.blob.core.windows.net"));

        assert!(AzureConnectionString::parse("UseDevelopmentStorage=true").unwrap().development);
    }

    #[test]
    fn refuses_incomplete_strings_without_echoing_secrets() {
        let err = AzureConnectionString::parse("AccountName=acme").unwrap_err();
        assert!(err.contains("AccountKey"), "{err}");
        let err = AzureConnectionString::parse("AccountKey=s3cr3t;garbage").unwrap_err();
        assert!(!err.contains("s3cr3t"), "{err}");
        let dbg = format!("{:?}", AzureConnectionString::parse("AccountName=a;AccountKey=s3cr3t").unwrap());
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
    }
}

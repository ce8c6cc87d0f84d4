//! Where the local cloud emulators of `scripts/emulators.sh` listen, for tests that need S3, Azure Blob or
//! Step Functions. Read from `CPO_TEST_*` variables, else from the env file the script writes. A test that
//! needs an emulator calls [`EmulatorEnv::require`], which fails the test with the command to run when the
//! emulators are not started: such tests never skip silently.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Once;

/// Endpoints and dummy credentials of the running emulators (nothing secret: emulator defaults).
#[derive(Debug, Clone)]
pub struct EmulatorEnv {
    /// moto: S3 and Step Functions.
    pub s3_endpoint: String,
    pub sfn_endpoint: String,
    pub aws_access_key_id: String,
    pub aws_secret_access_key: String,
    pub aws_region: String,
    /// Azurite's blob service.
    pub azure_connection_string: String,
    /// A bucket / container the script created; tests write under their own prefix in it.
    pub s3_bucket: String,
    pub az_container: String,
}

const VARS: [&str; 8] = [
    "CPO_TEST_S3_ENDPOINT",
    "CPO_TEST_SFN_ENDPOINT",
    "CPO_TEST_AWS_ACCESS_KEY_ID",
    "CPO_TEST_AWS_SECRET_ACCESS_KEY",
    "CPO_TEST_AWS_REGION",
    "CPO_TEST_AZURE_CONNECTION_STRING",
    "CPO_TEST_S3_BUCKET",
    "CPO_TEST_AZ_CONTAINER",
];

/// The env file `scripts/emulators.sh start` writes.
pub fn env_file() -> PathBuf {
    let cache = std::env::var_os("CPO_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".cache").join("cpo")
    });
    cache.join("emulators").join("env")
}

/// `export NAME=VALUE` / `export NAME='VALUE'` lines, as the script writes them.
fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('\'').to_string()))
        .collect()
}

impl EmulatorEnv {
    /// The emulators' settings, or why they are unavailable.
    pub fn load() -> Result<Self, String> {
        let mut vals: HashMap<String, String> =
            VARS.iter().filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?))).collect();
        if vals.len() < VARS.len() {
            let file = env_file();
            if let Ok(text) = std::fs::read_to_string(&file) {
                for (k, v) in parse_env_file(&text) {
                    vals.entry(k).or_insert(v);
                }
            }
        }
        let missing: Vec<&str> = VARS.iter().copied().filter(|k| !vals.contains_key(*k)).collect();
        if !missing.is_empty() {
            return Err(format!(
                "cloud emulators are not configured (missing {}; no complete {}). Start them with \
                 `scripts/emulators.sh start` (installs Azurite and moto into $CPO_CACHE, default ~/.cache/cpo), \
                 then run the tests again",
                missing.join(", "),
                env_file().display()
            ));
        }
        let mut take = |k: &str| vals.remove(k).unwrap_or_default();
        Ok(Self {
            s3_endpoint: take("CPO_TEST_S3_ENDPOINT"),
            sfn_endpoint: take("CPO_TEST_SFN_ENDPOINT"),
            aws_access_key_id: take("CPO_TEST_AWS_ACCESS_KEY_ID"),
            aws_secret_access_key: take("CPO_TEST_AWS_SECRET_ACCESS_KEY"),
            aws_region: take("CPO_TEST_AWS_REGION"),
            azure_connection_string: take("CPO_TEST_AZURE_CONNECTION_STRING"),
            s3_bucket: take("CPO_TEST_S3_BUCKET"),
            az_container: take("CPO_TEST_AZ_CONTAINER"),
        })
    }

    /// [`EmulatorEnv::load`], failing the calling test with the reason and the fix. Also exports the
    /// standard variables (`AWS_*`, `AZURE_STORAGE_CONNECTION_STRING`) that the S3, Azure and Step Functions
    /// clients read, exactly as a deployment would set them.
    pub fn require() -> Self {
        let env = Self::load().unwrap_or_else(|why| panic!("{why}"));
        static EXPORT: Once = Once::new();
        EXPORT.call_once(|| {
            // Every emulator test goes through this Once before opening a client, and all set identical
            // values, so no thread reads the environment while it changes.
            for (k, v) in [
                ("AWS_ENDPOINT_URL", env.s3_endpoint.as_str()),
                ("AWS_ENDPOINT_URL_S3", env.s3_endpoint.as_str()),
                ("AWS_ENDPOINT_URL_SFN", env.sfn_endpoint.as_str()),
                ("AWS_ACCESS_KEY_ID", env.aws_access_key_id.as_str()),
                ("AWS_SECRET_ACCESS_KEY", env.aws_secret_access_key.as_str()),
                ("AWS_REGION", env.aws_region.as_str()),
                ("AWS_DEFAULT_REGION", env.aws_region.as_str()),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("AZURE_STORAGE_CONNECTION_STRING", env.azure_connection_string.as_str()),
            ] {
                std::env::set_var(k, v);
            }
        });
        env
    }

    /// `s3://<bucket>/<prefix>` on the emulator.
    pub fn s3_url(&self, prefix: &str) -> String {
        format!("s3://{}/{}", self.s3_bucket, prefix)
    }

    /// `az://<container>/<prefix>` on the emulator.
    pub fn az_url(&self, prefix: &str) -> String {
        format!("az://{}/{}", self.az_container, prefix)
    }
}

/// A prefix no other test run uses (emulator state outlives a test process).
pub fn unique_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("t-{}-{nanos}-{name}", std::process::id())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_the_scripts_env_file() {
        let m = super::parse_env_file("export A=http://x:1\nexport B='k=v;w=z=='\n\n");
        assert_eq!(m["A"], "http://x:1");
        assert_eq!(m["B"], "k=v;w=z==");
    }
}

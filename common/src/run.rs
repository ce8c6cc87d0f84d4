//! Starting a run: from an input object to a `run_id` and `runs/<run_id>/input.json` (docs/architecture.md,
//! "Run identity").
//! The trigger Lambda and the local `cpo run` both call [`prepare`], so local runs and cloud runs derive
//! the same `run_id` from the same inputs.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::bundled;
use crate::config::CampaignConfig;
use crate::error::StepError;
use crate::keys::{self, sha256_hex, Key, RunIdParts, RunKeys};
use crate::store::{PutOutcome, Store, StoreExt, StoreUrl};

/// The object that started a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputRef {
    pub key: String,
    /// ETag (cloud) or content SHA-256 (`file://`, `mem://`).
    pub version: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// Digests of everything besides the input that shapes a run's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digests {
    pub config: String,
    pub corpus: String,
    pub policy: String,
    pub prompts: String,
}

/// `runs/<run_id>/input.json`: what started the run, and the exact config every step of it uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInput {
    pub run_id: String,
    pub campaign: String,
    pub input: InputRef,
    /// The week's date: the run_id date and the send date ([`run_date`]).
    pub date: NaiveDate,
    pub config: CampaignConfig,
    /// Where the config came from (`campaigns/<name>.yaml` or `bundled:examples/campaigns/weekly.yaml`).
    pub config_source: String,
    pub digests: Digests,
    /// Provider names and models (never keys).
    pub providers: String,
    pub seed: u64,
    /// Approved-content prefix of this run (`cpo run --content DIR` uploads to `content/sets/<digest>/`);
    /// `None` → `content/approved/`, or the bundled corpus when that is empty.
    #[serde(default)]
    pub content_prefix: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Options of a start that are not in the config.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub seed: Option<u64>,
    /// Use the approved documents under this prefix instead of `content/approved/`.
    pub content_prefix: Option<Key>,
    /// `cpo run --as-of`: the run's date, over everything else.
    pub as_of: Option<NaiveDate>,
    /// The schedule's fire time, when a schedule started the run (else the input's last-modified date is used).
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// The date of a run — its run_id date and send date: `--as-of`, else the campaign's `as_of`, else the
/// schedule's fire time, else the input object's last-modified time; times are taken as UTC days.
pub fn run_date(opts: &StartOptions, config: &CampaignConfig, input_last_modified: DateTime<Utc>) -> NaiveDate {
    opts.as_of
        .or(config.as_of)
        .or(opts.scheduled_at.map(|t| t.date_naive()))
        .unwrap_or_else(|| input_last_modified.date_naive())
}

/// The campaign an `incoming/<campaign>/<file>` key belongs to.
pub fn campaign_of_incoming(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("incoming/")?;
    let (campaign, file) = rest.split_once('/')?;
    (keys::check_id("campaign", campaign).is_ok() && !file.is_empty() && !file.ends_with('/')).then_some(campaign)
}

/// The campaign config: `campaigns/<name>.yaml` from the store, else — only for the bundled example's own name
/// ([`BUNDLED_CAMPAIGN`]) — the bundled example. Any other name without a config is an input error listing
/// the campaigns the store has, so a mistyped name never runs the example in its place.
pub async fn load_campaign(store: &dyn Store, name: &str) -> Result<(CampaignConfig, String), StepError> {
    let key = keys::campaign(name).map_err(|e| StepError::input(e.to_string()))?;
    match store.get_opt(&key).await? {
        Some(bytes) => {
            let text = std::str::from_utf8(&bytes).map_err(|_| StepError::input(format!("{key}: not UTF-8")))?;
            let cfg = CampaignConfig::from_yaml(text, key.as_str())?;
            if cfg.name != name {
                return Err(StepError::input(format!("{key}: field `name` is {:?}, expected {name:?}", cfg.name)));
            }
            Ok((cfg, key.to_string()))
        }
        None if name == BUNDLED_CAMPAIGN => {
            let cfg = CampaignConfig::from_yaml(bundled::campaign_yaml(), "bundled examples/campaigns/weekly.yaml")?;
            tracing::info!(
                campaign = name,
                "no campaigns/{name}.yaml in the store; using the bundled example campaign"
            );
            Ok((cfg, "bundled:examples/campaigns/weekly.yaml".into()))
        }
        None => {
            let found = campaigns(store).await?;
            let found = if found.is_empty() { "none".to_string() } else { found.join(", ") };
            Err(StepError::input(format!(
                "no campaign {name:?}: {key} is not in the store (campaigns found: {found}; the bundled example is \
                 {BUNDLED_CAMPAIGN:?})"
            )))
        }
    }
}

/// The name of the bundled example campaign (`examples/campaigns/weekly.yaml`), used when the store has none.
pub const BUNDLED_CAMPAIGN: &str = "weekly";

/// The campaigns the store has configs for (`campaigns/<name>.yaml`), sorted.
pub async fn campaigns(store: &dyn Store) -> Result<Vec<String>, StepError> {
    let prefix = Key::new("campaigns/").map_err(|e| StepError::internal(e.to_string()))?;
    let mut names: Vec<String> = store
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|o| o.key.strip_prefix("campaigns/")?.strip_suffix(".yaml").map(str::to_string))
        .filter(|n| !n.contains('/'))
        .collect();
    names.sort();
    Ok(names)
}

/// Digest of the objects under a prefix (keys and versions), or of the bundled fallback texts.
async fn prefix_digest(store: &dyn Store, prefix: &Key, bundled: &[&str]) -> Result<String, StepError> {
    let objects = store.list(prefix).await?;
    let mut text = String::new();
    if objects.is_empty() {
        text.push_str("bundled\n");
        for b in bundled {
            text.push_str(&sha256_hex(b.as_bytes()));
            text.push('\n');
        }
    } else {
        for o in objects {
            text.push_str(&format!("{}\t{}\t{}\n", o.key, o.etag.unwrap_or_default(), o.size));
        }
    }
    Ok(sha256_hex(text.as_bytes()))
}

async fn digests(store: &dyn Store, cfg: &CampaignConfig, content_prefix: Option<&Key>) -> Result<Digests, StepError> {
    let corpus_texts: Vec<&str> = bundled::content().into_iter().map(|(_, t)| t).collect();
    let content = content_prefix.cloned().unwrap_or_else(keys::content_prefix);
    let corpus = prefix_digest(store, &content, &corpus_texts).await?;
    let policy = match store.head(&keys::policy()).await? {
        Some(m) => sha256_hex(format!("{}{}", m.etag.unwrap_or_default(), m.size).as_bytes()),
        None => sha256_hex(bundled::policy_yaml().unwrap_or_default().as_bytes()),
    };
    let prompt_prefix = Key::new("prompts/").map_err(|e| StepError::internal(e.to_string()))?;
    let bundled_prompts: Vec<&str> = ["system", "control"]
        .iter()
        .chain(cfg.tones.iter().map(|_| &"tone"))
        .filter_map(|n| bundled::prompt(n))
        .collect();
    let prompts = prefix_digest(store, &prompt_prefix, &bundled_prompts).await?;
    Ok(Digests { config: cfg.digest(), corpus, policy, prompts })
}

/// Derive the run of an input object and record it in `runs/<run_id>/input.json` (written once; a
/// re-delivered event finds it and gets the same `RunInput`).
pub async fn prepare(store: &dyn Store, input_key: &Key, opts: &StartOptions) -> Result<RunInput, StepError> {
    prepare_reported(store, input_key, None, opts).await
}

/// [`prepare`] for the version of the object an event reported (`reported_etag`, from an S3 notification or
/// an EventBridge "Object Created" event). The run must be of that version, not of whatever the key holds
/// now: when the store's object has another ETag (overwritten since the event), that version can no longer
/// be read and the start is refused with the reason — the newer version's own event starts its run.
pub async fn prepare_reported(
    store: &dyn Store,
    input_key: &Key,
    reported_etag: Option<&str>,
    opts: &StartOptions,
) -> Result<RunInput, StepError> {
    let campaign = campaign_of_incoming(input_key.as_str()).ok_or_else(|| {
        StepError::input(format!("{input_key}: input keys must look like incoming/<campaign>/<file>"))
    })?;
    let meta = store
        .head(input_key)
        .await?
        .ok_or_else(|| StepError::input(format!("{input_key}: no such object in {}", store.url())))?;
    if let Some(reported) = reported_etag.filter(|_| etags_are_s3(store)) {
        let now = meta.etag.as_deref().map(bare_etag).unwrap_or("none");
        if now != bare_etag(reported) {
            return Err(StepError::input(format!(
                "{input_key}: the object changed after the event that reported it (event ETag {}, now {now}); \
                 that version can no longer be read, so no run starts for it (the newer version's own event \
                 starts one)",
                bare_etag(reported)
            )));
        }
    }
    let version = if is_local(store) {
        // Hashed once per object version, then recalled (a multi-GiB input is hashed in bounded memory).
        crate::digest::of_object(store, input_key, &meta).await?
    } else {
        meta.etag.clone().unwrap_or_else(|| format!("{}-{}", meta.size, meta.last_modified.timestamp()))
    };
    let (config, config_source) = load_campaign(store, campaign).await?;
    let digests = digests(store, &config, opts.content_prefix.as_ref()).await?;
    let seed = opts.seed.unwrap_or(config.simulation.seed);
    let providers = format!(
        "generate={}:{};safety={};retrieve={}",
        config.generation.provider,
        config.generation.model.as_deref().unwrap_or("-"),
        config.safety.providers.iter().map(|p| p.name()).collect::<Vec<_>>().join("+"),
        config.retrieval.provider,
    );
    let date = run_date(opts, &config, meta.last_modified);
    let run_id = keys::run_id(&RunIdParts {
        campaign,
        date,
        input_version: &version,
        config_digest: &digests.config,
        corpus_digest: &digests.corpus,
        policy_digest: &digests.policy,
        prompt_digest: &digests.prompts,
        providers: &providers,
        seed,
    });
    let run = RunInput {
        run_id: run_id.clone(),
        campaign: campaign.to_string(),
        input: InputRef { key: input_key.to_string(), version, size: meta.size, last_modified: meta.last_modified },
        date,
        config,
        config_source,
        digests,
        providers,
        seed,
        content_prefix: opts.content_prefix.as_ref().map(|k| k.to_string()),
        created_at: Utc::now(),
    };
    let keys = RunKeys::new(&run_id)?;
    let body = serde_json::to_vec_pretty(&run)?;
    match store.put_if_absent(&keys.input(), body.into()).await? {
        PutOutcome::Created => Ok(run),
        PutOutcome::AlreadyExists => load(store, &run_id).await,
    }
}

/// `file://` and `mem://` stores: runs are keyed by content SHA-256 (their ETags are not content digests).
fn is_local(store: &dyn Store) -> bool {
    StoreUrl::parse(store.url()).is_ok_and(|u| u.is_local())
}

/// Stores whose ETags are the ones S3 reports in its events.
fn etags_are_s3(store: &dyn Store) -> bool {
    matches!(StoreUrl::parse(store.url()), Ok(StoreUrl::S3 { .. }))
}

/// An ETag without quotes or weak marker: S3 events report `abc…`, HTTP headers `"abc…"`.
fn bare_etag(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

/// The run record written by [`prepare`].
pub async fn load(store: &dyn Store, run_id: &str) -> Result<RunInput, StepError> {
    let keys = RunKeys::new(run_id)?;
    store
        .get_json_opt(&keys.input())
        .await?
        .ok_or_else(|| StepError::input(format!("run {run_id}: {} not found in {}", keys.input(), store.url())))
}

/// The newest object under `incoming/<campaign>/` (what a scheduled run uses).
pub async fn newest_input(store: &dyn Store, campaign: &str) -> Result<Option<Key>, StepError> {
    let prefix = keys::incoming_prefix(campaign)?;
    let newest = store
        .list(&prefix)
        .await?
        .into_iter()
        .max_by(|a, b| a.last_modified.cmp(&b.last_modified).then_with(|| a.key.cmp(&b.key)));
    match newest {
        Some(m) => Ok(Some(Key::new(m.key)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open;

    #[tokio::test]
    async fn same_input_same_run() {
        let store = open("mem://").unwrap();
        let key = Key::new("incoming/weekly/customers.csv").unwrap();
        store.put(&key, bytes::Bytes::from_static(b"customer_id\nC1\n")).await.unwrap();
        let a = prepare(store.as_ref(), &key, &StartOptions::default()).await.unwrap();
        let b = prepare(store.as_ref(), &key, &StartOptions::default()).await.unwrap();
        assert_eq!(a.run_id, b.run_id);
        assert_eq!(a.created_at, b.created_at, "second prepare must reuse input.json");
        let c = prepare(store.as_ref(), &key, &StartOptions { seed: Some(99), ..Default::default() }).await.unwrap();
        assert_ne!(a.run_id, c.run_id);
        assert_eq!(load(store.as_ref(), &a.run_id).await.unwrap(), a);
    }

    #[tokio::test]
    async fn an_unknown_campaign_name_is_refused_with_the_names_found() {
        let store = open("mem://").unwrap();
        let spring = bundled::campaign_yaml().replacen("name: weekly", "name: spring", 1);
        store.put(&keys::campaign("spring").unwrap(), bytes::Bytes::from(spring)).await.unwrap();
        let e = load_campaign(store.as_ref(), "nosuch").await.unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::InputInvalid);
        assert!(e.message.contains("\"nosuch\"") && e.message.contains("campaigns found: spring"), "{}", e.message);
        // The bundled example's own name falls back to it; a stored config is used as it is.
        assert_eq!(
            load_campaign(store.as_ref(), BUNDLED_CAMPAIGN).await.unwrap().1,
            "bundled:examples/campaigns/weekly.yaml"
        );
        assert_eq!(load_campaign(store.as_ref(), "spring").await.unwrap().0.name, "spring");
        let key = Key::new("incoming/nosuch/customers.csv").unwrap();
        store.put(&key, bytes::Bytes::from_static(b"customer_id\nC1\n")).await.unwrap();
        assert!(prepare(store.as_ref(), &key, &StartOptions::default()).await.is_err());
    }

    #[test]
    fn run_date_precedence() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let modified: DateTime<Utc> = "2026-11-01T23:59:59Z".parse().unwrap();
        let mut cfg = CampaignConfig::default();
        let mut opts = StartOptions::default();
        assert_eq!(run_date(&opts, &cfg, modified), d("2026-11-01"), "a file drop: its last-modified day");
        opts.scheduled_at = Some("2026-11-23T08:00:00+01:00".parse().unwrap());
        assert_eq!(run_date(&opts, &cfg, modified), d("2026-11-23"), "a schedule: its fire day (UTC)");
        cfg.as_of = Some(d("2026-11-10"));
        assert_eq!(run_date(&opts, &cfg, modified), d("2026-11-10"), "the campaign's as_of");
        opts.as_of = Some(d("2026-12-07"));
        assert_eq!(run_date(&opts, &cfg, modified), d("2026-12-07"), "--as-of over everything");
    }

    #[tokio::test]
    async fn an_unchanged_file_on_other_dates_is_other_runs() {
        let store = open("mem://").unwrap();
        let key = Key::new("incoming/weekly/customers.csv").unwrap();
        store.put(&key, bytes::Bytes::from_static(b"customer_id\nC1\n")).await.unwrap();
        let week =
            |s: &str| StartOptions { as_of: NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(), ..Default::default() };
        let a = prepare(store.as_ref(), &key, &week("2026-11-23")).await.unwrap();
        let b = prepare(store.as_ref(), &key, &week("2026-11-30")).await.unwrap();
        assert!(a.run_id.starts_with("weekly-20261123-") && b.run_id.starts_with("weekly-20261130-"));
        assert_eq!(b.date.to_string(), "2026-11-30");
    }

    #[test]
    fn incoming_keys() {
        assert_eq!(campaign_of_incoming("incoming/weekly/a.csv"), Some("weekly"));
        assert_eq!(campaign_of_incoming("incoming/../a.csv"), None);
        assert_eq!(campaign_of_incoming("incoming/weekly/"), None);
        assert_eq!(campaign_of_incoming("runs/x/outcomes/a.csv"), None);
    }
}

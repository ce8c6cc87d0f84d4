//! `cpo run`: put a customers file where the trigger watches and run the campaign machine locally — then the
//! analysis machine for any outcomes the run produced (`--simulate-outcomes`), as the cloud would.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use cpo_common::digest;
use cpo_common::keys::{self, sha256_hex, Key};
use cpo_common::store::{ByteStream, DynStore, StoreError};
use cpo_common::{CampaignConfig, Ctx};
use cpo_trigger::TriggerOptions;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncReadExt;

use crate::local::{start_and_follow_sharded, LocalStarter};
use crate::metrics::{CountingStore, Recorder};
use crate::summary;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Customers file (the old system's CSV, transactions CSV or JSON lines).
    #[arg(long)]
    pub input: PathBuf,
    /// Store URL: file://DIR, mem://, s3://bucket/prefix, az://container/prefix.
    #[arg(long, default_value = super::DEFAULT_STORE, env = super::STORE_ENV)]
    pub store: String,
    /// Campaign name (config from the store's campaigns/NAME.yaml; the bundled example is `weekly`) or a YAML
    /// file.
    #[arg(long, default_value = cpo_common::run::BUNDLED_CAMPAIGN)]
    pub campaign: String,
    /// Directory of approved documents (JSON or Markdown) to use instead of the store's content/approved/.
    #[arg(long)]
    pub content: Option<PathBuf>,
    /// Write simulated outcomes (seeded, labelled SIMULATED) so the analysis machine runs too.
    #[arg(long)]
    pub simulate_outcomes: bool,
    /// The week this run is for (YYYY-MM-DD): its run_id date and send date, over the campaign's `as_of`
    /// and the file's last-modified date. Weekly runs on an unchanged file need it to be separate weeks.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<chrono::NaiveDate>,
    /// Simulator seed (default: the campaign's simulation.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Segment in shards (plan → sketch → merge → score → finish, Distributed Maps in the cloud) even when the input
    /// is below the trigger's threshold (1 GiB), as a large file would be.
    #[arg(long)]
    pub sharded: bool,
    /// Directory with campaign.asl.json / analysis.asl.json to run instead of the compiled-in definitions.
    #[arg(long)]
    pub definitions: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write run metrics (per-Task wall time, store bytes read/written, peak RSS, provider calls) as JSON.
    #[arg(long)]
    pub metrics_out: Option<PathBuf>,
}

/// `CPO_TIME_SCALE`: scale the state machines' Wait states and Retry backoffs (0: no waiting), for tests and
/// demos; `cpo sfn run --time-scale` does the same for a single machine.
pub(crate) fn time_scale() -> anyhow::Result<f64> {
    match std::env::var("CPO_TIME_SCALE") {
        Err(_) => Ok(1.0),
        Ok(s) => match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => anyhow::bail!("CPO_TIME_SCALE={s:?} is not a scale (a number ≥ 0)"),
        },
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let t0 = std::time::Instant::now();
    let started_at = chrono::Utc::now();
    let (store, counters) = CountingStore::wrap(super::open_store(&args.store)?);
    let recorder = Arc::new(Recorder::new(counters));
    let (campaign, config_digest) = put_campaign(&store, &args.campaign).await?;
    let content_prefix = match &args.content {
        Some(dir) => Some(put_content(&store, dir).await?),
        None => None,
    };
    let key = put_input(&store, &campaign, &args.input).await?;
    let starter = LocalStarter::new(Ctx::new(store.clone()), args.definitions.clone())
        .with_recorder(args.metrics_out.is_some().then(|| recorder.clone()))
        .with_time_scale(time_scale()?);
    let opts = TriggerOptions {
        simulate_outcomes: args.simulate_outcomes,
        seed: args.seed,
        content_prefix,
        as_of: args.as_of,
        ..Default::default()
    };
    if let Some(digest) = config_digest {
        check_config(&store, &key, &opts, &campaign, &digest).await?;
    }
    let run_id = start_and_follow_sharded(&store, &starter, &key, &opts, args.sharded).await?;
    summary::print(&store, &run_id, args.json, Some(started_at)).await?;
    if let Some(path) = &args.metrics_out {
        write_metrics(path, &store, &run_id, &recorder, t0.elapsed(), started_at).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--metrics-out`: what `make bench` reads.
async fn write_metrics(
    path: &Path,
    store: &DynStore,
    run_id: &str,
    recorder: &Recorder,
    wall: std::time::Duration,
    started_at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let summary = summary::collect(store, run_id).await?;
    let samples = recorder.samples.lock().map(|s| s.clone()).unwrap_or_default();
    let (read, written) = recorder.counters.snapshot();
    let provider_calls = summary::provider_calls(store, run_id, None).await?;
    let provider_calls_this_process = summary::provider_calls(store, run_id, Some(started_at)).await?;
    let out = serde_json::json!({
        "run_id": run_id,
        "customers": summary["customers"],
        "wall_ms": wall.as_secs_f64() * 1000.0,
        "peak_rss_bytes": crate::metrics::peak_rss_bytes(),
        "cpu_ms": crate::metrics::process_cpu_ms(),
        "bytes_read": read,
        "bytes_written": written,
        "provider_calls": provider_calls,
        "provider_calls_this_process": provider_calls_this_process,
        "tasks": samples,
    });
    std::fs::write(path, serde_json::to_vec_pretty(&out)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// A campaign given as a file is stored as `campaigns/<name>.yaml` (what the run reads); a name is used as is.
/// Returns the campaign name and, for a file, the digest of its config.
async fn put_campaign(store: &DynStore, campaign: &str) -> anyhow::Result<(String, Option<String>)> {
    let path = Path::new(campaign);
    let is_file = campaign.ends_with(".yaml") || campaign.ends_with(".yml") || path.is_file();
    if !is_file {
        keys::check_id("campaign", campaign).map_err(|e| anyhow::anyhow!("--campaign: {e}"))?;
        // Before anything is stored: an unknown name is an error listing the campaigns there are.
        cpo_common::run::load_campaign(store.as_ref(), campaign).await?;
        return Ok((campaign.to_string(), None));
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read campaign file {campaign}"))?;
    let cfg = CampaignConfig::from_yaml(&text, campaign)?;
    store.put(&keys::campaign(&cfg.name)?, Bytes::from(text)).await?;
    Ok((cfg.name.clone(), Some(cfg.digest())))
}

/// The run starts from the config in `campaigns/<name>.yaml`; another `cpo run` with another file of the same
/// campaign name may have replaced it since [`put_campaign`]. Refuse rather than run (and report) a run of
/// that other config. (`prepare` is idempotent: the start that follows finds the same run.)
async fn check_config(
    store: &DynStore,
    key: &Key,
    opts: &TriggerOptions,
    campaign: &str,
    digest: &str,
) -> anyhow::Result<()> {
    let start = opts.start_options();
    let run = cpo_common::run::prepare(store.as_ref(), key, &start).await?;
    anyhow::ensure!(
        run.digests.config == digest,
        "campaigns/{campaign}.yaml was replaced by another campaign file while this run started (another `cpo \
         run` of campaign {campaign:?}?); run again, or give the campaigns different names"
    );
    Ok(())
}

/// Upload a directory of approved documents to `content/sets/<digest>/` (content-addressed, so the same
/// directory always gives the same corpus digest and run id).
async fn put_content(store: &DynStore, dir: &Path) -> anyhow::Result<Key> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("--content: cannot read directory {}", dir.display()))?
    {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if path.is_file() && matches!(ext, "json" | "md") {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let body = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            files.push((name, body));
        }
    }
    anyhow::ensure!(!files.is_empty(), "--content {}: no .json or .md documents", dir.display());
    files.sort();
    let mut digest = Vec::new();
    for (name, body) in &files {
        digest.extend_from_slice(name.as_bytes());
        digest.extend_from_slice(sha256_hex(body).as_bytes());
    }
    let prefix = Key::new(format!("content/sets/{}/", &sha256_hex(&digest)[..16]))?;
    for (name, body) in files {
        store.put(&prefix.join(&name)?, Bytes::from(body)).await?;
    }
    Ok(prefix)
}

/// Put the customers file under `incoming/<campaign>/<sha256 prefix>-<name>`: keyed by its content, so two
/// different files of the same name (two `cpo run`s at once, or this week's file and last week's) never share
/// a key and nothing is overwritten, while an identical file maps to the object already there — its date,
/// and so the run id, stay the same.
async fn put_input(store: &DynStore, campaign: &str, input: &Path) -> anyhow::Result<Key> {
    let meta = std::fs::metadata(input).with_context(|| format!("cannot read input file {}", input.display()))?;
    let size = meta.len();
    anyhow::ensure!(size > 0, "input file {} is empty", input.display());
    let digest = input_digest(store, input, &meta).await?;
    let name = super::safe_file_name(input, "customers.csv");
    let key = keys::incoming_prefix(campaign)?.join(&format!("{}-{name}", &digest[..INPUT_DIGEST_HEX]))?;
    match store.head(&key).await? {
        // Written whole (uploads are atomic) from bytes with this digest: the same file.
        Some(existing) if existing.size == size => return Ok(key),
        Some(existing) => anyhow::bail!(
            "{key} already holds {} bytes, not the {size} bytes of {}; it is left as it is",
            existing.size,
            input.display()
        ),
        None => {}
    }
    if size <= SMALL_INPUT {
        let body =
            tokio::fs::read(input).await.with_context(|| format!("cannot read input file {}", input.display()))?;
        // Another `cpo run` of the same file may have stored it meanwhile: the same bytes, kept as they are.
        store.put_if_absent(&key, Bytes::from(body)).await?;
    } else {
        // Multipart upload, atomic on every backend; a concurrent upload of this key carries the same bytes.
        store.put_large(&key, file_stream(input).await?).await?;
    }
    Ok(key)
}

/// Content SHA-256 (hex) of the local input: recalled from the store when the file's size, modification time
/// and inode are the ones recorded with it, else hashed and recorded (`cpo_common::digest` says what that
/// trusts), so re-running an unchanged multi-GB file costs a lookup.
async fn input_digest(store: &DynStore, input: &Path, meta: &std::fs::Metadata) -> anyhow::Result<String> {
    let canonical =
        std::fs::canonicalize(input).with_context(|| format!("cannot read input file {}", input.display()))?;
    let subject = sha256_hex(canonical.to_string_lossy().as_bytes());
    let at = digest::file_key(&subject)?;
    let version = local_version(meta);
    if let Some(version) = &version {
        if let Some(sha) = digest::recall(store.as_ref(), &at, &subject, version, meta.len()).await {
            return Ok(sha);
        }
    }
    let sha256 = digest::sha256_of(file_stream(input).await?).await?;
    if let Some(version) = version {
        let record = digest::Record { subject, version, size: meta.len(), sha256: sha256.clone() };
        digest::remember(store.as_ref(), &at, &record).await;
    }
    Ok(sha256)
}

/// A local file's version for [`input_digest`]: modification time in nanoseconds and, on Unix, the inode (a
/// file replaced by another one of the same size and time is still a new file). None where the file system
/// keeps no modification time: such a file is hashed every time.
fn local_version(meta: &std::fs::Metadata) -> Option<String> {
    let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0u64;
    Some(format!("{mtime}-{inode}"))
}

/// Hex digits of the content SHA-256 in an input's key: 64 bits, no collision between a campaign's files.
const INPUT_DIGEST_HEX: usize = 16;

/// Inputs up to this size are stored with one conditional put; larger ones stream as a multipart upload.
const SMALL_INPUT: u64 = 64 << 20;

/// Chunks the uploads and hashes read: 1 MiB keeps memory flat whatever the file size.
const CHUNK: usize = 1 << 20;

/// A local file as a store stream (for `put_large`: a multipart upload on S3/Azure, a renamed temp file on disk).
async fn file_stream(path: &Path) -> anyhow::Result<ByteStream> {
    let file =
        tokio::fs::File::open(path).await.with_context(|| format!("cannot read input file {}", path.display()))?;
    let shown = path.display().to_string();
    let chunks = futures::stream::try_unfold(file, |mut file| async move {
        // Uninitialised capacity filled by `read_buf`: no zeroing of a fresh megabyte per chunk.
        let mut buf = BytesMut::with_capacity(CHUNK);
        while buf.len() < CHUNK {
            if file.read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        Ok((!buf.is_empty()).then(|| (buf.freeze(), file)))
    });
    Ok(chunks.map_err(move |e: std::io::Error| StoreError::Backend { key: shown.clone(), source: Box::new(e) }).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unchanged_local_input_is_hashed_once_and_a_rewritten_one_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = cpo_common::store::open(&format!("file://{}", dir.path().join("store").display())).unwrap();
        let input = dir.path().join("customers.csv");
        std::fs::write(&input, "customer_id\nC1\n").unwrap();
        let meta = std::fs::metadata(&input).unwrap();
        assert_eq!(input_digest(&store, &input, &meta).await.unwrap(), sha256_hex(b"customer_id\nC1\n"));
        // A planted record for this path and version is what the next run trusts: no re-hash.
        let subject = sha256_hex(std::fs::canonicalize(&input).unwrap().to_string_lossy().as_bytes());
        let at = digest::file_key(&subject).unwrap();
        let mut record: digest::Record = serde_json::from_slice(&store.get(&at).await.unwrap()).unwrap();
        record.sha256 = "ab".repeat(32);
        store.put(&at, Bytes::from(serde_json::to_vec(&record).unwrap())).await.unwrap();
        assert_eq!(input_digest(&store, &input, &meta).await.unwrap(), "ab".repeat(32));
        // Rewritten with the same size: a new modification time, so hashed again.
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&input, "customer_id\nC2\n").unwrap();
        let meta = std::fs::metadata(&input).unwrap();
        assert_eq!(input_digest(&store, &input, &meta).await.unwrap(), sha256_hex(b"customer_id\nC2\n"));
    }
}

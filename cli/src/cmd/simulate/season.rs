//! Simulated seasons: N weekly runs of one campaign on one store, end to end through the state machines
//! (`cpo run --as-of` week after week, as a user's weekly campaign runs), with each week's outcomes drawn from
//! a known truth for the customers the weights in force put on each arm, dropped under the run's `outcomes/`
//! like an email service's export, so the analysis machine ingests them and the next week's allocation learns
//! from them. Each (truth, allocation mode, seed) is a season of its own on its own store, so the two
//! allocation modes never share a contact history or a ledger (docs/architecture.md, "A campaign over time";
//! docs/experiment.md, "Simulated seasons").

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use chrono::NaiveDate;
use cpo_common::config::AllocationMode;
use cpo_common::keys::{self, sha256_hex, Key, RunKeys};
use cpo_common::model::experiment::AnalysisDoc;
use cpo_common::store::{DynStore, StoreExt};
use cpo_common::{CampaignConfig, Ctx};
use cpo_experiment::season::{self, Limits, Preset, SegmentWeek, Tally, Truth, WeekDraw, WeekRegret};
use cpo_experiment::simulate::Clock;
use cpo_trigger::TriggerOptions;
use serde::{Deserialize, Serialize};

use crate::local::{start_and_follow, LocalStarter};

/// How a season allocates customers to arms (the campaign's `allocation.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Weights from Beta posteriors over earlier weeks (control keeps its share, tones their floor).
    Thompson,
    /// The same weights every week: control its share, the tones an equal split of the rest.
    Fixed,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Thompson => "thompson",
            Mode::Fixed => "fixed",
        }
    }
}

/// Where a truth comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TruthSource {
    Preset(Preset),
    /// A file's name (for errors and the page) and its text.
    File {
        path: String,
        text: String,
    },
}

impl TruthSource {
    /// `stationary`, `decaying`, `changing-winner`, else a file path (`./stationary` reads a file of that name).
    pub fn from_arg(arg: &str) -> anyhow::Result<Self> {
        if let Some(p) = Preset::parse(arg) {
            return Ok(TruthSource::Preset(p));
        }
        let text = std::fs::read_to_string(arg).with_context(|| {
            format!("--truth {arg}: not a preset (stationary, decaying, changing-winner) and not a readable file")
        })?;
        Ok(TruthSource::File { path: arg.to_string(), text })
    }

    /// A short name: the preset's, or the file's stem.
    pub fn name(&self) -> String {
        match self {
            TruthSource::Preset(p) => p.name().to_string(),
            TruthSource::File { path, .. } => crate::cmd::safe_file_name(std::path::Path::new(path), "truth")
                .trim_end_matches(".yaml")
                .trim_end_matches(".yml")
                .trim_end_matches(".json")
                .to_string(),
        }
    }

    fn identity(&self) -> String {
        match self {
            TruthSource::Preset(p) => p.name().to_string(),
            TruthSource::File { text, .. } => sha256_hex(text.as_bytes()),
        }
    }

    /// The truth for a run's segments and the campaign's tones, checked to cover every arm.
    fn resolve(&self, segments: &[String], tones: &[String], weeks: u32) -> anyhow::Result<Truth> {
        let arms: Vec<String> = std::iter::once("control".to_string()).chain(tones.iter().cloned()).collect();
        let (truth, source) = match self {
            TruthSource::Preset(p) => (p.truth(segments, tones, weeks), p.name().to_string()),
            TruthSource::File { path, text } => (Truth::parse(text, path, &arms)?, path.clone()),
        };
        truth.covers(&source, segments, &arms)?;
        let unknown = truth.unknown_segments(segments);
        if !unknown.is_empty() {
            tracing::warn!(truth = %source, segments = ?unknown, "the truth names segments the runs do not have");
        }
        Ok(truth)
    }
}

/// What every season of one `cpo simulate season` shares.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The store URL given; each season runs on its own store derived from it ([`season_store_url`]).
    pub store: String,
    pub base: CampaignConfig,
    pub weeks: u32,
    pub customers: u64,
    pub seeds: Vec<u64>,
    pub modes: Vec<Mode>,
    pub truths: Vec<TruthSource>,
    pub limits: Limits,
    pub start: NaiveDate,
    /// Seasons run at once (each runs its weeks in order).
    pub jobs: usize,
    /// `CPO_TIME_SCALE` for the state machines' waits.
    pub time_scale: f64,
}

impl Plan {
    /// A digest of everything that decides the seasons' results: the same plan, the same id (and stores).
    pub fn id(&self) -> String {
        let truths: Vec<String> = self.truths.iter().map(TruthSource::identity).collect();
        let modes: Vec<&str> = self.modes.iter().map(|m| m.name()).collect();
        let basis = serde_json::json!({
            "config": self.base.digest(), "weeks": self.weeks, "customers": self.customers, "seeds": self.seeds,
            "modes": modes, "truths": truths, "limits": self.limits, "start": self.start,
        });
        sha256_hex(basis.to_string().as_bytes())[..12].to_string()
    }
}

/// One week of one season.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Week {
    pub week: u32,
    pub date: NaiveDate,
    pub run_id: String,
    /// Customers on an arm (not held out), and held out.
    pub sent: u64,
    pub held_out: u64,
    /// Control's share of the customers sent.
    pub control_share: f64,
    /// The largest |control share − control's weight in force| over the segments.
    pub max_segment_control_deviation: f64,
    pub clicks: u64,
    pub srm_p_value: f64,
    pub srm_flag: bool,
    pub outcomes_source: String,
    pub regret: WeekRegret,
    pub cumulative_regret: f64,
    /// segment → arm → weight in force (`runs/<run_id>/weights.json`).
    pub weights: BTreeMap<String, BTreeMap<String, f64>>,
    /// segment → arm → customers and clicks drawn.
    pub tally: Tally,
}

/// One season: a truth, a mode, a seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Season {
    pub truth: String,
    pub mode: Mode,
    pub seed: u64,
    pub store: String,
    pub weeks: Vec<Week>,
    pub cumulative_regret: f64,
    pub srm_alarms: u64,
    pub max_control_deviation: f64,
    pub wall_seconds: f64,
    /// The truth as drawn from (segment → arm → weekly rates).
    pub truth_rates: Truth,
}

/// The URL of one season's own store: a sub-directory (prefix) of the given store, or a fresh `mem://`.
pub fn season_store_url(base: &str, plan_id: &str, truth: &str, mode: Mode, seed: u64) -> String {
    if base.starts_with("mem://") {
        return "mem://".into();
    }
    let name = format!("{}-{}-seed{seed}", keys::slug(truth), mode.name());
    format!("{}/seasons/{plan_id}/stores/{name}", base.trim_end_matches('/'))
}

/// The campaign a season runs: the base config with the mode's allocation, the simulator seed and no fixed
/// date (each week's date is its `--as-of`).
pub fn season_config(base: &CampaignConfig, mode: Mode, limits: &Limits, seed: u64) -> anyhow::Result<CampaignConfig> {
    let mut cfg = base.clone();
    cfg.as_of = None;
    cfg.simulation.seed = seed;
    // Fixed: control its share, the rest split equally, so both modes give control the same share and
    // differ only in how they treat the tones.
    let tone_share = (1.0 - limits.control_share) / cfg.tones.len().max(1) as f64;
    cfg.weights = std::iter::once(("control".to_string(), limits.control_share))
        .chain(cfg.tones.iter().map(|t| (t.clone(), tone_share)))
        .collect();
    // Thompson keeps control at `control_share` and each tone at `floor` or more (its other settings — metric,
    // prior, decay — are the base campaign's); fixed uses the weights above.
    cfg.allocation.mode = match mode {
        Mode::Fixed => AllocationMode::Fixed,
        Mode::Thompson => AllocationMode::Thompson,
    };
    cfg.allocation.control_share = limits.control_share;
    cfg.allocation.floor = limits.floor;
    cfg.validate("season campaign")?;
    Ok(cfg)
}

/// The outcomes drop of a season week: `simulated-*`, so ingest, the analysis and the report label every figure
/// from it SIMULATED. The analysis of a run without real outcomes uses its simulated ones, and the allocation
/// of the next week reads that analysis' counts (whatever source it used), so the drawn outcomes are what
/// thompson learns from.
pub fn outcomes_name(week: u32) -> String {
    format!("simulated-season-week{week:02}.csv")
}

/// Customers of a season: the synthetic generator's file for the seed (`cpo gen customers`).
pub fn customers_csv(n: u64, seed: u64) -> anyhow::Result<Bytes> {
    let mut buf = Vec::new();
    cpo_segment::synth::write_customers(n, seed, &mut buf).context("generating customers")?;
    Ok(Bytes::from(buf))
}

/// Run one season: `plan.weeks` weekly runs on the season's own store.
pub async fn run_season(
    plan: &Plan,
    plan_id: &str,
    truth_source: &TruthSource,
    mode: Mode,
    seed: u64,
    customers: Bytes,
) -> anyhow::Result<Season> {
    let t0 = Instant::now();
    let truth_name = truth_source.name();
    let url = season_store_url(&plan.store, plan_id, &truth_name, mode, seed);
    let store: DynStore = crate::cmd::open_store(&url)?;
    let cfg = season_config(&plan.base, mode, &plan.limits, seed)?;
    let yaml = serde_yaml_ng::to_string(&cfg).context("writing the season's campaign config")?;
    store.put(&keys::campaign(&cfg.name)?, Bytes::from(yaml)).await?;
    let digest = sha256_hex(&customers);
    let input = keys::incoming_prefix(&cfg.name)?.join(&format!("{}-customers.csv", &digest[..16]))?;
    store.put_if_absent(&input, customers).await?;
    let starter = LocalStarter::new(Ctx::new(store.clone()), None).with_progress(None).with_time_scale(plan.time_scale);

    let mut truth: Option<Truth> = None;
    let mut weeks = Vec::with_capacity(plan.weeks as usize);
    let mut cumulative = 0.0;
    for week in 1..=plan.weeks {
        let date = plan.start + chrono::Duration::weeks(i64::from(week) - 1);
        let opts = TriggerOptions { as_of: Some(date), seed: Some(seed), ..Default::default() };
        let run_id = start_and_follow(&store, &starter, &input, &opts)
            .await
            .with_context(|| format!("{truth_name} {} seed {seed}: week {week} ({date}): campaign run", mode.name()))?;
        let keys = RunKeys::new(&run_id)?;
        let weights = read_weights(&store, &keys).await?;
        let segments: Vec<String> = weights.keys().cloned().collect();
        let t = match &truth {
            Some(t) => t.clone(),
            None => {
                let t = truth_source.resolve(&segments, &cfg.tones, plan.weeks)?;
                truth = Some(t.clone());
                t
            }
        };
        let draw = Arc::new(WeekDraw { truth: t.clone(), week, seed, clock: Clock::new(date) });
        let (csv, tally) = season::draw_run(store.as_ref(), &run_id, draw)
            .await
            .with_context(|| format!("{run_id}: drawing week {week}'s outcomes"))?;
        let drop = keys.outcomes(&outcomes_name(week))?;
        store.put(&drop, csv).await?;
        start_and_follow(&store, &starter, &drop, &TriggerOptions::default())
            .await
            .with_context(|| format!("{run_id}: analysis of week {week}'s outcomes"))?;
        let analysis: AnalysisDoc = store.get_json(&keys.analysis()).await?;
        let regret = season::week_regret(&plan.limits, &segment_weeks(&tally, &weights, &t, week));
        cumulative += regret.regret;
        let sent = tally.sent();
        let control = tally.arm("control");
        let w = Week {
            week,
            date,
            run_id: run_id.clone(),
            sent,
            held_out: tally.held_out,
            control_share: if sent > 0 { control.n as f64 / sent as f64 } else { 0.0 },
            max_segment_control_deviation: segment_control_deviation(&tally, &weights),
            clicks: tally.segments.values().flat_map(|a| a.values()).map(|x| x.clicks).sum(),
            srm_p_value: analysis.srm_p_value,
            srm_flag: analysis.srm_flag,
            outcomes_source: serde_json::to_value(analysis.outcomes_source)?.as_str().unwrap_or_default().to_string(),
            regret,
            cumulative_regret: cumulative,
            weights,
            tally,
        };
        tracing::info!(
            truth = %truth_name, mode = mode.name(), seed, week, run_id = %run_id,
            control_share = w.control_share, regret = w.regret.regret, srm_p = w.srm_p_value,
            "season week done"
        );
        weeks.push(w);
    }
    let max_control_deviation =
        weeks.iter().map(|w| (w.control_share - plan.limits.control_share).abs()).fold(0.0, f64::max);
    Ok(Season {
        truth: truth_name,
        mode,
        seed,
        store: url,
        srm_alarms: weeks.iter().filter(|w| w.srm_flag).count() as u64,
        cumulative_regret: cumulative,
        max_control_deviation,
        weeks,
        wall_seconds: t0.elapsed().as_secs_f64(),
        truth_rates: truth.unwrap_or_default(),
    })
}

/// `runs/<id>/weights.json`'s `segments`: segment → arm → weight in force.
async fn read_weights(store: &DynStore, keys: &RunKeys) -> anyhow::Result<BTreeMap<String, BTreeMap<String, f64>>> {
    #[derive(Deserialize)]
    struct Doc {
        segments: BTreeMap<String, BTreeMap<String, f64>>,
    }
    let key: Key = keys.prefix().join("weights.json")?;
    let doc: Doc = store.get_json(&key).await.with_context(|| format!("{key}: the weights in force"))?;
    Ok(doc.segments)
}

/// Each segment's arms in force (weight > 0) with the customers drawn and their true rates.
fn segment_weeks(
    tally: &Tally,
    weights: &BTreeMap<String, BTreeMap<String, f64>>,
    truth: &Truth,
    week: u32,
) -> BTreeMap<String, SegmentWeek> {
    weights
        .iter()
        .map(|(segment, arms)| {
            let drawn = tally.segments.get(segment);
            let arms = arms
                .iter()
                .filter(|(_, w)| **w > 0.0)
                .map(|(arm, _)| {
                    let n = drawn.and_then(|d| d.get(arm)).map_or(0, |t| t.n);
                    (arm.clone(), (n, truth.rate(segment, arm, week).unwrap_or(0.0)))
                })
                .collect();
            (segment.clone(), SegmentWeek { arms })
        })
        .collect()
}

/// The largest gap between a segment's observed control share and control's weight in force there.
fn segment_control_deviation(tally: &Tally, weights: &BTreeMap<String, BTreeMap<String, f64>>) -> f64 {
    tally
        .segments
        .iter()
        .filter_map(|(segment, arms)| {
            let n: u64 = arms.values().map(|t| t.n).sum();
            let w = weights.get(segment)?.get("control").copied().unwrap_or(0.0);
            (n > 0).then(|| (arms.get("control").map_or(0, |t| t.n) as f64 / n as f64 - w).abs())
        })
        .fold(0.0, f64::max)
}

/// Run every season of the plan, `plan.jobs` at a time; results in plan order (truth, mode, seed).
pub async fn run_plan(plan: &Plan) -> anyhow::Result<Vec<Season>> {
    use futures::StreamExt;
    let plan_id = plan.id();
    let mut customers = BTreeMap::new();
    for &seed in &plan.seeds {
        let (n, s) = (plan.customers, seed);
        let csv = tokio::task::spawn_blocking(move || customers_csv(n, s)).await??;
        customers.insert(seed, csv);
    }
    let mut specs = Vec::new();
    for (ti, truth) in plan.truths.iter().enumerate() {
        for &mode in &plan.modes {
            for &seed in &plan.seeds {
                specs.push((ti, truth, mode, seed));
            }
        }
    }
    let total = specs.len();
    let results: Vec<anyhow::Result<Season>> = futures::stream::iter(specs)
        .enumerate()
        .map(|(i, (_, truth, mode, seed))| {
            let (plan_id, csv) = (plan_id.clone(), customers.get(&seed).cloned().unwrap_or_default());
            async move {
                let s = run_season(plan, &plan_id, truth, mode, seed, csv).await?;
                crate::errln!(
                    "season {}/{total}: {} {} seed {seed}: cumulative regret {:.0} clicks ({:.1} s)",
                    i + 1,
                    s.truth,
                    mode.name(),
                    s.cumulative_regret,
                    s.wall_seconds
                );
                Ok(s)
            }
        })
        .buffered(plan.jobs.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

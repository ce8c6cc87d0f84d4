//! `cpo simulate season --weeks N --truth FILE|preset`: weekly runs of a campaign end to end, outcomes drawn
//! from a known truth, and the cumulative regret of thompson against fixed allocation on the same seeds
//! (docs/experiment.md, "Simulated seasons"). Prints a table and the benchmark targets, and writes
//! `seasons/<id>/season.json` and `seasons/<id>/index.html` to the store (and to `--out DIR`).

pub mod season;

use minijinja::HtmlEscape;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use chrono::NaiveDate;
use cpo_common::keys::Key;
use cpo_experiment::season::{median, Limits, Preset};
use cpo_report::fmt;
use cpo_report::lines::{line_chart, Series};
use serde::Serialize;

use season::{run_plan, Mode, Plan, Season, TruthSource};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Weekly runs end to end with outcomes drawn from a known truth; regret of thompson vs fixed.
    #[command(after_help = "Examples:
  cpo simulate season --weeks 4 --truth stationary --customers 2000
  cpo simulate season --weeks 12 --truth stationary decaying changing-winner --customers 100000 --seeds 1-20 --store mem://
  cpo simulate season --weeks 6 --truth my-truth.yaml --campaign my-campaign.yaml --out season/

Presets (click rates; each segment has its own best tone): stationary (control 2%, best tone 8%, others 3%),
decaying (the best tone falls linearly to 3% by week 12), changing-winner (another tone is the 8% one from
week 7). A truth file is YAML or JSON: `segments: {NAME: {control: 0.02, urgent: [0.08, 0.07], …}}` and an
optional `default` for unlisted segments (docs/experiment.md).")]
    Season(SeasonArgs),
}

#[derive(Debug, clap::Args)]
pub struct SeasonArgs {
    /// Weeks per season (one run a week, dated --start, --start + 7 days, …).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=520))]
    pub weeks: u32,
    /// The true click rates: stationary, decaying, changing-winner, or a YAML/JSON file. Several run in turn.
    #[arg(long, num_args = 1.., default_value = "stationary")]
    pub truth: Vec<String>,
    /// Synthetic customers per season (`cpo gen customers --n K --seed SEED`).
    #[arg(long, default_value_t = 2000)]
    pub customers: u64,
    /// Seeds (customers, draws, allocation): a list and ranges, e.g. `7` or `1-20` or `1,2,5-8`.
    #[arg(long, default_value = "7", value_parser = parse_seeds)]
    pub seeds: Seeds,
    /// Allocation modes to run on the same seeds.
    #[arg(long, value_delimiter = ',', default_values = ["thompson", "fixed"])]
    pub modes: Vec<Mode>,
    /// Store URL; each season runs on its own store under `seasons/<id>/stores/` (mem:// gives each a fresh one).
    #[arg(long, default_value = super::DEFAULT_STORE, env = super::STORE_ENV)]
    pub store: String,
    /// Campaign name (the store's or the bundled `weekly`) or YAML file the seasons start from.
    #[arg(long, default_value = cpo_common::run::BUNDLED_CAMPAIGN)]
    pub campaign: String,
    /// Control's share of non-holdout customers (thompson keeps it; fixed gives it too).
    #[arg(long, default_value_t = 0.25)]
    pub control_share: f64,
    /// Every tone's least share under thompson.
    #[arg(long, default_value_t = 0.05)]
    pub floor: f64,
    /// Date of week 1.
    #[arg(long, value_name = "YYYY-MM-DD", default_value = "2026-01-05")]
    pub start: NaiveDate,
    /// Seasons run at once (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Also write season.json and index.html into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the result as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Seeds given on the command line, expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeds(pub Vec<u64>);

fn parse_seeds(s: &str) -> Result<Seeds, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("{part:?} is not a seed or a range like 1-20");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
                if b < a || b - a >= 10_000 {
                    return Err(format!("{part:?}: a range runs from low to high, at most 10,000 seeds"));
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    out.dedup();
    if out.is_empty() {
        return Err("no seed given".into());
    }
    Ok(Seeds(out))
}

/// One mode's seasons under one truth.
#[derive(Debug, Clone, Serialize)]
pub struct ModeSummary {
    pub mode: Mode,
    pub seasons: usize,
    pub median_cumulative_regret: f64,
    pub min_cumulative_regret: f64,
    pub max_cumulative_regret: f64,
    /// Median over seeds of the cumulative regret after each week.
    pub median_by_week: Vec<f64>,
    pub srm_alarms: u64,
    pub srm_tests: u64,
    pub max_control_deviation: f64,
    pub median_clicks: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TruthSummary {
    pub truth: String,
    pub preset: Option<Preset>,
    pub modes: Vec<ModeSummary>,
    /// Median cumulative regret of thompson ÷ that of fixed.
    pub thompson_over_fixed: Option<f64>,
}

/// A benchmark target and whether the seasons met it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: String,
    pub target: String,
    pub value: String,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeasonReport {
    /// Every figure here comes from outcomes drawn from a made-up truth.
    pub simulated: bool,
    pub id: String,
    pub weeks: u32,
    pub customers: u64,
    pub seeds: Vec<u64>,
    pub limits: Limits,
    pub start: NaiveDate,
    pub campaign: String,
    pub summaries: Vec<TruthSummary>,
    pub targets: Vec<Target>,
    pub wall_seconds: f64,
    pub seasons: Vec<Season>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let What::Season(a) = args.what;
    let report = season(&a).await?;
    let written = write(&a, &report).await?;
    if a.json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_table(&report)?;
        for w in written {
            crate::outln!("wrote      {w}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Run the seasons `a` describes and summarise them (what `cpo simulate season` prints and writes).
pub async fn season(a: &SeasonArgs) -> anyhow::Result<SeasonReport> {
    let t0 = Instant::now();
    let limits = Limits { control_share: a.control_share, floor: a.floor };
    let truths = a.truth.iter().map(|t| TruthSource::from_arg(t)).collect::<anyhow::Result<Vec<_>>>()?;
    let base = base_campaign(&a.store, &a.campaign).await?;
    limits.check(base.tones.len()).context("--control-share and --floor")?;
    let mut modes = a.modes.clone();
    modes.sort();
    modes.dedup();
    anyhow::ensure!(!modes.is_empty(), "--modes: give thompson, fixed or both");
    let plan = Plan {
        store: a.store.clone(),
        base: base.clone(),
        weeks: a.weeks,
        customers: a.customers,
        seeds: a.seeds.0.clone(),
        modes,
        truths,
        limits,
        start: a.start,
        jobs: a.jobs.unwrap_or_else(crate::season_jobs),
        time_scale: super::run::time_scale()?,
    };
    anyhow::ensure!(plan.customers > 0, "--customers must be at least 1");
    let seasons = run_plan(&plan).await?;
    let summaries = summarise(&plan, &seasons);
    let targets = targets(&plan, &summaries, &seasons);
    Ok(SeasonReport {
        simulated: true,
        id: plan.id(),
        weeks: plan.weeks,
        customers: plan.customers,
        seeds: plan.seeds.clone(),
        limits,
        start: plan.start,
        campaign: base.name.clone(),
        summaries,
        targets,
        wall_seconds: t0.elapsed().as_secs_f64(),
        seasons,
    })
}

/// The campaign the seasons start from: a YAML file, or a campaign of the store (the bundled `weekly` when
/// the store has none).
async fn base_campaign(store: &str, campaign: &str) -> anyhow::Result<cpo_common::CampaignConfig> {
    let path = std::path::Path::new(campaign);
    if campaign.ends_with(".yaml") || campaign.ends_with(".yml") || path.is_file() {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read campaign file {campaign}"))?;
        return Ok(cpo_common::CampaignConfig::from_yaml(&text, campaign)?);
    }
    let store = super::open_store(store)?;
    Ok(cpo_common::run::load_campaign(store.as_ref(), campaign).await?.0)
}

fn summarise(plan: &Plan, seasons: &[Season]) -> Vec<TruthSummary> {
    plan.truths
        .iter()
        .map(|t| {
            let name = t.name();
            let modes: Vec<ModeSummary> = plan
                .modes
                .iter()
                .map(|&mode| {
                    let mine: Vec<&Season> = seasons.iter().filter(|s| s.truth == name && s.mode == mode).collect();
                    let finals: Vec<f64> = mine.iter().map(|s| s.cumulative_regret).collect();
                    let median_by_week = (0..plan.weeks as usize)
                        .map(|w| {
                            let at: Vec<f64> =
                                mine.iter().filter_map(|s| s.weeks.get(w)).map(|x| x.cumulative_regret).collect();
                            median(&at).unwrap_or(f64::NAN)
                        })
                        .collect();
                    let clicks: Vec<f64> =
                        mine.iter().map(|s| s.weeks.iter().map(|w| w.clicks).sum::<u64>() as f64).collect();
                    ModeSummary {
                        mode,
                        seasons: mine.len(),
                        median_cumulative_regret: median(&finals).unwrap_or(f64::NAN),
                        min_cumulative_regret: finals.iter().copied().fold(f64::INFINITY, f64::min),
                        max_cumulative_regret: finals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        median_by_week,
                        srm_alarms: mine.iter().map(|s| s.srm_alarms).sum(),
                        srm_tests: mine.iter().map(|s| s.weeks.len() as u64).sum(),
                        max_control_deviation: mine.iter().map(|s| s.max_control_deviation).fold(0.0, f64::max),
                        median_clicks: median(&clicks).unwrap_or(f64::NAN),
                    }
                })
                .collect();
            let of = |m: Mode| modes.iter().find(|x| x.mode == m).map(|x| x.median_cumulative_regret);
            let thompson_over_fixed = match (of(Mode::Thompson), of(Mode::Fixed)) {
                (Some(t), Some(f)) if f > 0.0 => Some(t / f),
                _ => None,
            };
            let preset = match t {
                TruthSource::Preset(p) => Some(*p),
                TruthSource::File { .. } => None,
            };
            TruthSummary { truth: name, preset, modes, thompson_over_fixed }
        })
        .collect()
}

/// The season benchmark's targets (docs/performance.md, "Simulated seasons"): thompson's median cumulative
/// regret ≤ 50% of fixed on stationary and decaying, ≤ fixed + 10% on changing winner; control within ±1
/// percentage point of its share every week; at most 3 SRM alarms per 720 weekly tests (of thompson, the
/// mode whose weights change).
fn targets(plan: &Plan, summaries: &[TruthSummary], seasons: &[Season]) -> Vec<Target> {
    let mut out = Vec::new();
    for s in summaries {
        let (Some(preset), Some(ratio)) = (s.preset, s.thompson_over_fixed) else { continue };
        let limit = match preset {
            Preset::Stationary | Preset::Decaying => 0.5,
            Preset::ChangingWinner => 1.1,
        };
        out.push(Target {
            what: format!("{}: median cumulative regret, thompson ÷ fixed", s.truth),
            target: format!("≤ {}", fmt::pct(limit)),
            value: fmt::pct(ratio),
            met: ratio <= limit,
        });
    }
    let checked: Vec<&Season> = if plan.modes.contains(&Mode::Thompson) {
        seasons.iter().filter(|s| s.mode == Mode::Thompson).collect()
    } else {
        seasons.iter().collect()
    };
    let dev = checked.iter().map(|s| s.max_control_deviation).fold(0.0, f64::max);
    out.push(Target {
        what: format!("control share every week (largest gap from {})", fmt::pct(plan.limits.control_share)),
        target: "≤ 1 pp".into(),
        value: format!("{:.2} pp", dev * 100.0),
        met: dev <= 0.01,
    });
    let tests: u64 = checked.iter().map(|s| s.weeks.len() as u64).sum();
    let alarms: u64 = checked.iter().map(|s| s.srm_alarms).sum();
    let allowed = (3 * tests).div_ceil(720);
    out.push(Target {
        what: "SRM alarms in the weekly tests".into(),
        target: format!("≤ {allowed} of {tests} (3 per 720)"),
        value: alarms.to_string(),
        met: alarms <= allowed,
    });
    out
}

fn print_table(r: &SeasonReport) -> anyhow::Result<()> {
    crate::outln!(
        "SIMULATED SEASON  {} weeks from {} · {} customers · seeds {} · control share {} · floor {}",
        r.weeks,
        r.start,
        fmt::int(r.customers),
        seeds_text(&r.seeds),
        fmt::pct(r.limits.control_share),
        fmt::pct(r.limits.floor)
    )?;
    crate::outln!(
        "{:<18} {:<9} {:>22} {:>22} {:>12} {:>11} {:>13}",
        "truth",
        "mode",
        "median cum. regret",
        "min – max",
        "clicks",
        "SRM alarms",
        "max |ctrl gap|"
    )?;
    for s in &r.summaries {
        for m in &s.modes {
            crate::outln!(
                "{:<18} {:<9} {:>22} {:>22} {:>12} {:>11} {:>13}",
                s.truth,
                m.mode.name(),
                format!("{:.0}", m.median_cumulative_regret),
                format!("{:.0} – {:.0}", m.min_cumulative_regret, m.max_cumulative_regret),
                format!("{:.0}", m.median_clicks),
                format!("{}/{}", m.srm_alarms, m.srm_tests),
                format!("{:.2} pp", m.max_control_deviation * 100.0)
            )?;
        }
    }
    for t in &r.targets {
        crate::outln!(
            "target     {}: {} (target {}) — {}",
            t.what,
            t.value,
            t.target,
            if t.met { "met" } else { "MISSED" }
        )?;
    }
    crate::outln!("wall       {:.1} s", r.wall_seconds)?;
    Ok(())
}

fn seeds_text(seeds: &[u64]) -> String {
    match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) if seeds.len() > 2 && (b - a) as usize + 1 == seeds.len() => format!("{a}-{b}"),
        _ => seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
    }
}

/// `seasons/<id>/season.json` and `index.html` in the store (and `--out`); returns where they went.
async fn write(a: &SeasonArgs, r: &SeasonReport) -> anyhow::Result<Vec<String>> {
    let json = serde_json::to_vec_pretty(r)?;
    let html = page(r);
    let store = super::open_store(&a.store)?;
    let mut written = Vec::new();
    for (name, body) in [("season.json", json.clone()), ("index.html", html.clone().into_bytes())] {
        let key = Key::new(format!("seasons/{}/{name}", r.id))?;
        store.put(&key, Bytes::from(body)).await?;
        // A `mem://` store ends with the process: only `--out` keeps what it held.
        if !store.url().starts_with("mem://") {
            written.push(crate::summary::location(&store, &key));
        }
    }
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, body) in [("season.json", json), ("index.html", html.into_bytes())] {
            let path = dir.join(name);
            std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
            written.push(path.display().to_string());
        }
    }
    Ok(written)
}

/// The season page: a chart of the median cumulative regret by week per truth (the report's chart code),
/// the figures per mode and the targets. Self-contained like the report (inline SVG, no scripts).
pub fn page(r: &SeasonReport) -> String {
    let mut body = String::new();
    body.push_str(&format!(
        "<div class=\"banner\">SIMULATED — outcomes drawn from a made-up truth</div><h1>Season: thompson vs fixed</h1>\
         <p class=\"meta\">{} weeks from {} · {} customers per season · seeds {} · campaign {} · control share {} · \
         floor {} · {:.1} s</p>",
        r.weeks,
        r.start,
        fmt::int(r.customers),
        HtmlEscape(&seeds_text(&r.seeds)),
        HtmlEscape(&r.campaign),
        fmt::pct(r.limits.control_share),
        fmt::pct(r.limits.floor),
        r.wall_seconds
    ));
    body.push_str(
        "<p>Regret is the clicks an allocation is expected to lose, from the true rates, against the best allocation \
         the limits allow: control keeps its share, the truly best tone of each segment gets the rest but the \
         other tones' floors.</p><h2>Targets</h2><ul>",
    );
    for t in &r.targets {
        body.push_str(&format!(
            "<li><b class=\"{}\">{}</b> {}: {} (target {})</li>",
            if t.met { "ok" } else { "bad" },
            if t.met { "met" } else { "missed" },
            HtmlEscape(&t.what),
            HtmlEscape(&t.value),
            HtmlEscape(&t.target)
        ));
    }
    body.push_str("</ul><div class=\"charts\">");
    let weeks: Vec<String> = (1..=r.weeks).map(|w| w.to_string()).collect();
    for s in &r.summaries {
        let series: Vec<Series> = s
            .modes
            .iter()
            .map(|m| Series {
                label: m.mode.name().to_string(),
                class: match m.mode {
                    Mode::Thompson => "s-thompson",
                    Mode::Fixed => "s-fixed",
                },
                points: m.median_by_week.iter().map(|v| Some(*v)).collect(),
            })
            .collect();
        let title = format!("{}: cumulative regret (clicks), median over seeds", s.truth);
        body.push_str(&format!(
            "<div class=\"card\"><h3>{}</h3>{}</div>",
            HtmlEscape(&s.truth),
            line_chart(&title, "week", &weeks, &series, |v, _| fmt::int(v.max(0.0).round() as u64))
        ));
    }
    body.push_str("</div><h2>Figures</h2><div class=\"scroll\"><table><tr><th>truth</th><th>mode</th><th>median cumulative regret</th><th>min – max</th><th>thompson ÷ fixed</th><th>median clicks</th><th>SRM alarms</th><th>largest control gap</th></tr>");
    for s in &r.summaries {
        for m in &s.modes {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.0} – {:.0}</td><td>{}</td><td>{:.0}</td><td>{} of {}</td><td>{:.2} pp</td></tr>",
                HtmlEscape(&s.truth),
                m.mode.name(),
                m.median_cumulative_regret,
                m.min_cumulative_regret,
                m.max_cumulative_regret,
                match (m.mode, s.thompson_over_fixed) {
                    (Mode::Thompson, Some(x)) => fmt::pct(x),
                    _ => "–".into(),
                },
                m.median_clicks,
                m.srm_alarms,
                m.srm_tests,
                m.max_control_deviation * 100.0
            ));
        }
    }
    body.push_str("</table></div><p class=\"meta\">Every week's runs, weights and draws are in season.json.</p>");
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" \
         content=\"default-src 'none'; style-src 'unsafe-inline'\"><title>Simulated season</title><style>{CSS}</style>\
         </head><body><main>{body}</main></body></html>"
    )
}

/// The report's look (functions/report/templates/report.html), reduced to what the season page uses.
const CSS: &str = ":root { --ink: #1d2430; --muted: #515a67; --line: #d9dee5; --bg: #f6f7f9; --ok: #2e7d4f; \
--bad: #b03427; --warn: #8a5a12; --arm: #3b6fb6; --ctrl: #5f6b7a; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
main { max-width: 1200px; margin: 0 auto; padding: 24px 20px 64px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 36px 0 10px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 4px 0 8px; }
.meta { color: var(--muted); font-size: 13px; }
.banner { background: var(--warn); color: #fff; font-weight: 700; padding: 10px 16px; border-radius: 6px; margin-bottom: 16px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(480px, 100%), 1fr)); gap: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; background: #fff; } th, td { padding: 6px 10px; border: 1px solid var(--line); text-align: left; }
b.ok { color: var(--ok); } b.bad { color: var(--bad); }
svg.chart { width: 100%; height: auto; font-size: 13px; }
svg .label { fill: var(--ink); } svg .tick { fill: var(--muted); font-size: 11px; }
svg .grid { stroke: #eef0f3; } svg .zero { stroke: #9aa3ae; }
path.s-thompson { stroke: var(--ok); } circle.s-thompson { fill: var(--ok); }
path.s-fixed { stroke: var(--ctrl); stroke-dasharray: 6 4; } circle.s-fixed { fill: var(--ctrl); }";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_lists_and_ranges() {
        assert_eq!(parse_seeds("7").unwrap().0, vec![7]);
        assert_eq!(parse_seeds("1-3,7").unwrap().0, vec![1, 2, 3, 7]);
        assert!(parse_seeds("3-1").is_err());
        assert!(parse_seeds("x").unwrap_err().contains("\"x\""));
        assert!(parse_seeds("").is_err());
        assert_eq!(seeds_text(&[1, 2, 3, 4]), "1-4");
        assert_eq!(seeds_text(&[1, 5]), "1,5");
    }
}

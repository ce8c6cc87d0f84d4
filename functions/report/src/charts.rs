//! Inline SVG charts. Hand-written rather than a plotting crate: the charts are four horizontal bar charts,
//! the report must stay a single self-contained file, and every label is untrusted text that must be escaped
//! exactly once — which is easiest to guarantee when the markup is built here, with [`HtmlEscape`] on every
//! label. The result is passed to the template as a safe string.

use std::fmt::Write;

use minijinja::HtmlEscape;

use crate::fmt;
use cpo_common::model::experiment::ResultRow;

use crate::view::{ExperimentView, Report};

const WIDTH: f64 = 700.0;
const LABEL_W: f64 = 185.0;
const VALUE_W: f64 = 170.0;
const ROW_H: f64 = 28.0;
const TOP: f64 = 8.0;
const AXIS_H: f64 = 26.0;
/// Longest label drawn in full (the full text is in the bar's tooltip and in the tables).
const LABEL_CHARS: usize = 24;

/// One bar: stacked parts from zero (value, CSS class), an optional interval whisker, and the value text.
pub struct Bar {
    pub label: String,
    pub parts: Vec<(f64, &'static str)>,
    pub whisker: Option<(f64, f64)>,
    pub value: String,
}

fn short(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// A horizontal bar chart over the domain `[lo, hi]` (which must contain 0), widened to round ticks
/// ([`fmt::nice_ticks`]); `tick(value, step)` writes a tick label.
pub fn hbar(title: &str, bars: &[Bar], lo: f64, hi: f64, tick: fn(f64, f64) -> String) -> String {
    let (ticks, step) = fmt::nice_ticks(lo, hi, 4);
    let (lo, hi) = (ticks.first().copied().unwrap_or(lo), ticks.last().copied().unwrap_or(hi));
    let plot_w = WIDTH - LABEL_W - VALUE_W;
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x = |v: f64| LABEL_W + ((v.clamp(lo, hi) - lo) / span) * plot_w;
    let height = TOP + ROW_H * bars.len() as f64 + AXIS_H;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = HtmlEscape(title)
    );
    // Grid and axis ticks.
    let axis_y = TOP + ROW_H * bars.len() as f64;
    for &v in &ticks {
        let gx = x(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{gx:.1}" y1="{TOP}" x2="{gx:.1}" y2="{axis_y:.1}"/><text class="tick" x="{gx:.1}" y="{ty:.1}" text-anchor="middle">{label}</text>"#,
            ty = axis_y + 16.0,
            label = HtmlEscape(&tick(v, step))
        );
    }
    let zx = x(0.0);
    let _ = write!(s, r#"<line class="zero" x1="{zx:.1}" y1="{TOP}" x2="{zx:.1}" y2="{axis_y:.1}"/>"#);
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let cy = y + ROW_H / 2.0;
        let _ = write!(
            s,
            r#"<g><title>{full}: {value}</title><text class="label" x="{lx:.1}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            full = HtmlEscape(&b.label),
            value = HtmlEscape(&b.value),
            lx = LABEL_W - 8.0,
            ty = cy + 4.0,
            label = HtmlEscape(&short(&b.label)),
        );
        let mut at = 0.0;
        for (v, class) in &b.parts {
            let (a, e) = (x(at), x(at + v));
            let (left, w) = if e >= a { (a, e - a) } else { (e, a - e) };
            let _ = write!(
                s,
                r#"<rect class="{class}" x="{left:.1}" y="{ry:.1}" width="{w:.1}" height="{h:.1}"/>"#,
                ry = y + 6.0,
                h = ROW_H - 12.0
            );
            at += v;
        }
        if let Some((wl, wh)) = b.whisker {
            let (a, e) = (x(wl), x(wh));
            let _ = write!(
                s,
                r#"<path class="whisker" d="M{a:.1} {cy:.1}H{e:.1}M{a:.1} {t:.1}V{bt:.1}M{e:.1} {t:.1}V{bt:.1}"/>"#,
                t = cy - 6.0,
                bt = cy + 6.0
            );
        }
        let _ = write!(
            s,
            r#"<text class="value" x="{vx:.1}" y="{ty:.1}">{v}</text></g>"#,
            vx = WIDTH - VALUE_W + 8.0,
            ty = cy + 4.0,
            v = HtmlEscape(&b.value)
        );
    }
    s.push_str("</svg>");
    s
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn primary_rows(e: &ExperimentView) -> impl Iterator<Item = &ResultRow> {
    e.overall.iter().filter(move |r| r.metric == e.primary_metric)
}

/// Rate per arm with 95% CI bars (primary metric, all segments).
pub fn rates(e: &ExperimentView) -> String {
    let bars: Vec<Bar> = primary_rows(e)
        .map(|r| {
            let class = if r.arm == "control" {
                "c-ctrl"
            } else if e.winner.as_deref() == Some(r.arm.as_str()) {
                "c-win"
            } else {
                "c-arm"
            };
            Bar {
                label: r.arm.clone(),
                parts: vec![(r.rate, class)],
                whisker: Some((r.ci_low, r.ci_high)),
                value: format!("{} [{}, {}]", fmt::pct(r.rate), fmt::pct(r.ci_low), fmt::pct(r.ci_high)),
            }
        })
        .collect();
    let hi = bars.iter().filter_map(|b| b.whisker.map(|w| w.1)).fold(0.0_f64, f64::max).max(0.0001);
    let title = format!("{} per arm with 95% intervals", e.primary_metric.label());
    hbar(&capitalized(&title), &bars, 0.0, hi, fmt::tick_pct)
}

/// Difference vs control in percentage points with its 95% CI, relative lift in the value text.
pub fn lifts(e: &ExperimentView) -> String {
    let bars: Vec<Bar> = primary_rows(e)
        .filter(|r| r.arm != "control")
        .map(|r| {
            let d = r.diff.unwrap_or(0.0);
            Bar {
                label: r.arm.clone(),
                parts: vec![(d, if d >= 0.0 { "c-pos" } else { "c-neg" })],
                whisker: r.diff_ci_low.zip(r.diff_ci_high),
                value: match r.diff {
                    Some(d) => {
                        format!("{} ({})", fmt::pp(d), r.lift.map(fmt::signed_pct).unwrap_or_else(|| fmt::NA.into()))
                    }
                    None => "not enough data".into(),
                },
            }
        })
        .collect();
    let m = bars
        .iter()
        .flat_map(|b| [b.parts[0].0, b.whisker.map_or(0.0, |w| w.0), b.whisker.map_or(0.0, |w| w.1)])
        .filter(|v| v.is_finite())
        .fold(0.0_f64, |a, v| a.max(v.abs()))
        .max(0.0001);
    hbar(&format!("Difference in {} vs control", e.primary_metric.label()), &bars, -m, m, fmt::tick_pp)
}

pub fn segment_sizes(r: &Report) -> String {
    let bars: Vec<Bar> = r
        .segments
        .iter()
        .map(|s| Bar {
            label: s.name.clone(),
            parts: vec![(s.size as f64, "c-arm")],
            whisker: None,
            value: format!("{} ({})", fmt::int(s.size), fmt::pct(s.share)),
        })
        .collect();
    let hi = r.segments.iter().map(|s| s.size).max().unwrap_or(1).max(4) as f64;
    hbar("Customers per segment", &bars, 0.0, hi, |v, _| fmt::int(v.round() as u64))
}

pub fn safety(r: &Report) -> String {
    let bars: Vec<Bar> = r
        .safety
        .by_segment
        .iter()
        .map(|s| Bar {
            label: s.segment.clone(),
            parts: vec![(s.approved as f64, "c-ok"), (s.blocked as f64, "c-block"), (s.rejected as f64, "c-rej")],
            whisker: None,
            value: format!("{} / {} / {}", s.approved, s.blocked, s.rejected),
        })
        .collect();
    let hi = r.safety.by_segment.iter().map(|s| s.approved + s.blocked + s.rejected).max().unwrap_or(1).max(4) as f64;
    hbar("Safety outcomes per segment", &bars, 0.0, hi, |v, _| format!("{v:.0}"))
}

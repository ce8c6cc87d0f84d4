//! Inline SVG line charts (a value by week), built like the bar charts of `charts.rs`: hand-written markup,
//! every label escaped once with [`HtmlEscape`], round ticks from [`fmt::nice_ticks`]. Used by the season page
//! of `cpo simulate season` (cumulative regret by week); the CSS classes are the report's (`.chart`, `.grid`,
//! `.tick`, `.zero`) plus one stroke class per series.

use std::fmt::Write;

use minijinja::HtmlEscape;

use crate::fmt;

const WIDTH: f64 = 700.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 40.0;

/// One line: a label (drawn at its end), a CSS class for its stroke, and a value per x position (`None` leaves a gap).
pub struct Series {
    pub label: String,
    pub class: &'static str,
    pub points: Vec<Option<f64>>,
}

/// A line chart of `series` over the x positions `x_labels`; the y domain covers every value and 0.
/// `tick(value, step)` writes a y tick label.
pub fn line_chart(
    title: &str,
    x_title: &str,
    x_labels: &[String],
    series: &[Series],
    tick: fn(f64, f64) -> String,
) -> String {
    let values = series.iter().flat_map(|s| s.points.iter().flatten().copied()).filter(|v| v.is_finite());
    let (lo, hi) = values.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (ticks, step) = fmt::nice_ticks(lo, if hi > lo { hi } else { lo + 1.0 }, 5);
    let (lo, hi) = (ticks.first().copied().unwrap_or(lo), ticks.last().copied().unwrap_or(hi));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = x_labels.len().max(1);
    let x = |i: usize| if n == 1 { LEFT + plot_w / 2.0 } else { LEFT + plot_w * i as f64 / (n - 1) as f64 };
    let y = |v: f64| TOP + plot_h * (1.0 - (v.clamp(lo, hi) - lo) / span);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = HtmlEscape(title)
    );
    for &v in &ticks {
        let gy = y(v);
        let _ = write!(
            s,
            r#"<line class="{class}" x1="{LEFT}" y1="{gy:.1}" x2="{x2:.1}" y2="{gy:.1}"/><text class="tick" x="{tx:.1}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            class = if v == 0.0 { "zero" } else { "grid" },
            x2 = LEFT + plot_w,
            tx = LEFT - 6.0,
            ty = gy + 4.0,
            label = HtmlEscape(&tick(v, step))
        );
    }
    // At most ~12 x labels, so a long season stays legible.
    let every = n.div_ceil(12).max(1);
    for (i, label) in x_labels.iter().enumerate() {
        if i % every == 0 || i + 1 == n {
            let _ = write!(
                s,
                r#"<text class="tick" x="{lx:.1}" y="{ly:.1}" text-anchor="middle">{l}</text>"#,
                lx = x(i),
                ly = TOP + plot_h + 16.0,
                l = HtmlEscape(label)
            );
        }
    }
    let _ = write!(
        s,
        r#"<text class="tick" x="{cx:.1}" y="{cy:.1}" text-anchor="middle">{t}</text>"#,
        cx = LEFT + plot_w / 2.0,
        cy = HEIGHT - 6.0,
        t = HtmlEscape(x_title)
    );
    for line in series {
        let mut d = String::new();
        let mut pen_down = false;
        let mut last = None;
        for (i, p) in line.points.iter().enumerate() {
            match p.filter(|v| v.is_finite()) {
                Some(v) => {
                    let _ = write!(d, "{}{:.1} {:.1}", if pen_down { "L" } else { "M" }, x(i), y(v));
                    pen_down = true;
                    last = Some((i, v));
                }
                None => pen_down = false,
            }
        }
        let _ = write!(
            s,
            r#"<g><title>{label}</title><path class="line {class}" d="{d}" fill="none" stroke-width="2.5"/>"#,
            label = HtmlEscape(&line.label),
            class = line.class,
        );
        if let Some((i, v)) = last {
            let _ = write!(
                s,
                r#"<circle class="{class}" cx="{cx:.1}" cy="{cy:.1}" r="3"/><text class="label" x="{lx:.1}" y="{ly:.1}">{label}</text>"#,
                class = line.class,
                cx = x(i),
                cy = y(v),
                lx = x(i) + 8.0,
                ly = y(v) + 4.0,
                label = HtmlEscape(&line.label)
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_labels_and_draws_each_series() {
        let x: Vec<String> = (1..=4).map(|w| w.to_string()).collect();
        let series = [
            Series { label: "thompson <b>".into(), class: "s-a", points: vec![Some(1.0), Some(2.0), None, Some(3.0)] },
            Series { label: "fixed".into(), class: "s-b", points: vec![Some(2.0), Some(4.0), Some(6.0), Some(8.0)] },
        ];
        let svg = line_chart("Regret & more", "week", &x, &series, |v, _| format!("{v:.0}"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("thompson &lt;b&gt;") && !svg.contains("<b>"));
        assert!(svg.contains("Regret &amp; more"));
        assert_eq!(svg.matches("<path class=\"line").count(), 2);
        // The gap restarts the line: two moves in the first series.
        let first = svg.split("s-a\" d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(first.matches('M').count(), 2, "{first}");
        assert!(svg.contains(">8<"), "the domain reaches the largest value with a round tick");
    }
}

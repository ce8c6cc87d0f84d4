//! The HTML report opened in headless Chromium: it renders (the DOM holds the summary, the banner and the four
//! charts), the `<script>` planted in a generated body and a segment name stays text, and the page logs no
//! console message at all (no JS error, no blocked external asset: the page's CSP allows none).
//!
//! Needs Chromium: `scripts/ensure-chromium.sh` installs it. Without it this test FAILS (never skips).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use cpo_common::StepInput;

fn chromium() -> PathBuf {
    let candidates: Vec<PathBuf> = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .collect();
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "Chromium not found (looked at $CHROMIUM, /usr/bin/chromium, /usr/bin/chromium-browser): the report's \
             rendering test needs it. Install it with scripts/ensure-chromium.sh (or set CHROMIUM=/path/to/chromium)."
        )
    })
}

/// `chromium --headless --dump-dom FILE` → (DOM, stderr log). Killed after 90 s.
fn dump_dom(html: &Path, profile: &Path) -> (String, String) {
    dump_dom_at(html, profile, None)
}

/// As [`dump_dom`], in a window `width` CSS pixels wide.
fn dump_dom_at(html: &Path, profile: &Path, width: Option<u32>) -> (String, String) {
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(width.map(|w| format!("--window-size={w},900")))
        .args(width.map(|_| "--allow-file-access-from-files"))
        .arg("--hide-scrollbars")
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    // Read both pipes on threads so a chatty Chromium cannot block on a full pipe.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).map(|_| s)
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).map(|_| s)
    });
    loop {
        if let Some(status) = child.try_wait().expect("wait chromium") {
            let (dom, log) = (out_t.join().unwrap().unwrap(), err_t.join().unwrap().unwrap());
            assert!(status.success(), "chromium exited with {status}; log:\n{log}");
            return (dom, log);
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Render `html` in Chromium and check what every report must satisfy; returns the DOM for further checks.
fn render_checked(html: &str, headline: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("index.html");
    std::fs::write(&file, html).unwrap();
    let (dom, log) = dump_dom(&file, &dir.path().join("profile"));
    // It rendered: the summary with its headline is in the DOM.
    assert!(dom.contains("id=\"summary\""), "no summary in the DOM:\n{dom}");
    let headline = format!("<div class=\"headline\">{}</div>", minijinja::HtmlEscape(headline));
    assert!(dom.contains(&headline), "headline {headline} not in the DOM");
    // The hostile text is text: no script or img element was created from it.
    assert!(!dom.contains("<script"), "a <script> element exists in the rendered DOM");
    assert!(!dom.contains("<img"), "an <img> element exists in the rendered DOM");
    assert!(dom.contains("Loyal &lt;script&gt;alert('segment')&lt;/script&gt;"));
    // No console output at all: a JS error, an executed planted script or a CSP-blocked asset would log.
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught") || l.contains("Content Security Policy"))
        .collect();
    assert!(console.is_empty(), "console messages:\n{}", console.join("\n"));
    dom
}

async fn report(store: &std::sync::Arc<Recording>, action: &str) -> (String, cpo_report::Report) {
    let input = StepInput {
        run_id: RUN_ID.into(),
        campaign: Some("weekly".into()),
        action: Some(action.into()),
        ..Default::default()
    };
    cpo_report::handle(input, &ctx(store.clone())).await.unwrap();
    let html = text(store.as_ref(), &keys().report("index.html")).await;
    let json = serde_json::from_str(&text(store.as_ref(), &keys().report("report.json")).await).unwrap();
    (html, json)
}

#[tokio::test]
async fn experiment_report_renders_in_headless_chromium_without_console_messages() {
    let store = Recording::new();
    campaign_run(store.as_ref()).await;
    analysis_run(store.as_ref(), true).await;
    let (html, json) = report(&store, "experiment").await;
    if let Some(keep) = std::env::var_os("CPO_REPORT_SAVE_DIR") {
        std::fs::write(Path::new(&keep).join("index.html"), &html).unwrap();
    }
    let dom = render_checked(&html, &json.summary.headline);
    assert!(dom.contains("id=\"simulated\""), "SIMULATED banner missing");
    assert_eq!(dom.matches("<svg").count(), 4, "four charts");
    assert!(dom.contains("&lt;script&gt;console.error('xss-body')&lt;/script&gt;"));
}

#[tokio::test]
async fn campaign_report_renders_in_headless_chromium_without_console_messages() {
    let store = Recording::new();
    campaign_run(store.as_ref()).await;
    let (html, json) = report(&store, "campaign").await;
    let dom = render_checked(&html, &json.summary.headline);
    assert!(json.summary.headline.starts_with("Awaiting outcomes"));
    assert!(!dom.contains("id=\"simulated\""));
    assert_eq!(dom.matches("<svg").count(), 2, "segment sizes and safety outcomes");
}

/// Measures the laid-out page from inside Chromium and writes the findings as JSON into `#probe-result`:
/// the viewport and document widths, every element sticking out of the viewport, every scroll container
/// whose content is wider than itself (a clipped table), and every text whose contrast with its effective
/// background is below WCAG AA (4.5:1, 3:1 for large text).
const PROBE: &str = r#"
(function () {
  function rgba(s) {
    const m = s.match(/rgba?\(([^)]+)\)/);
    if (!m) return [0, 0, 0, 1];
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  }
  function over(fg, bg) {
    const a = fg[3];
    return [fg[0] * a + bg[0] * (1 - a), fg[1] * a + bg[1] * (1 - a), fg[2] * a + bg[2] * (1 - a), 1];
  }
  function background(el) {
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  }
  function lum(c) {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  }
  function opacity(el) {
    let o = 1;
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
    return o;
  }
  function name(el) {
    return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.getAttribute('class') ? '.' + el.getAttribute('class').split(' ').join('.') : '');
  }
  const vw = document.documentElement.clientWidth;
  const out = { vw: vw, doc: document.documentElement.scrollWidth, overflow: [], clipped: [], contrast: [], texts: 0 };
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > vw + 1 || r.left < -1) out.overflow.push(name(el) + ' right=' + Math.round(r.right));
    if (el instanceof SVGTextElement) {
      const box = el.ownerSVGElement.getBoundingClientRect();
      if (r.right > box.right + 1 || r.left < box.left - 1)
        out.overflow.push('text cut by its chart: "' + el.textContent.slice(0, 30) + '"');
    }
    const cs = getComputedStyle(el);
    if (['auto', 'scroll', 'hidden'].includes(cs.overflowX) && el.scrollWidth > el.clientWidth + 1)
      out.clipped.push(name(el) + ' ' + el.scrollWidth + '>' + el.clientWidth);
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || cs.visibility === 'hidden') continue;
    out.texts++;
    const svgText = el instanceof SVGElement;
    let fg = rgba(svgText ? cs.fill : cs.color);
    const bg = background(el);
    fg = over([fg[0], fg[1], fg[2], fg[3] * opacity(el)], bg);
    const l1 = lum(fg), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const large = size >= 24 || (size >= 18.66 && bold);
    if (ratio < (large ? 3 : 4.5))
      out.contrast.push(name(el) + ' "' + el.textContent.trim().slice(0, 30) + '" ' + ratio.toFixed(2) + ':1 ' + cs.color + ' on ' + bg.slice(0, 3).join(','));
  }
  const pre = document.createElement('pre');
  pre.id = 'probe-result';
  pre.textContent = JSON.stringify(out);
  // In the host page's iframe (same origin for file:// with --allow-file-access-from-files).
  (window.parent !== window ? window.parent.document : document).body.appendChild(pre);
})();
"#;

#[derive(serde::Deserialize, Debug)]
struct Probe {
    vw: f64,
    doc: f64,
    overflow: Vec<String>,
    clipped: Vec<String>,
    contrast: Vec<String>,
    texts: u64,
}

/// Lay `html` out in Chromium at `width` px and measure it. The probe is a script, which the report's CSP
/// forbids (rightly): it runs on a copy without the CSP meta tag; the checks above run on the report as is.
/// Headless Chromium will not make a window narrower than 500 px, so the page is laid out in an iframe
/// exactly `width` px wide inside a wider host page.
fn probe(html: &str, width: u32) -> Probe {
    let csp_start = html.find("<meta http-equiv=\"Content-Security-Policy\"").expect("CSP meta");
    let csp_end = csp_start + html[csp_start..].find('>').unwrap() + 1;
    let probed = format!("{}{}", &html[..csp_start], &html[csp_end..])
        .replace("</body>", &format!("<script>{PROBE}</script></body>"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("probe.html");
    std::fs::write(&file, probed).unwrap();
    let host = dir.path().join("host.html");
    std::fs::write(
        &host,
        format!(r#"<!DOCTYPE html><html><body style="margin:0"><iframe src="probe.html" style="width:{width}px;height:900px;border:0"></iframe></body></html>"#),
    )
    .unwrap();
    let (dom, log) = dump_dom_at(&host, &dir.path().join("profile"), Some(1400));
    let start = dom.find("<pre id=\"probe-result\">").unwrap_or_else(|| panic!("probe did not run; log:\n{log}"));
    let json = &dom[start + "<pre id=\"probe-result\">".len()..];
    let json = &json[..json.find("</pre>").unwrap()];
    let json = json.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("probe output {json}: {e}"))
}

/// Every chart axis: tick labels at round numbers (a constant step of 1, 2, 2.5 or 5 × 10ⁿ, each tick a
/// whole multiple of it).
fn check_ticks(html: &str) -> usize {
    let mut axes = 0;
    for svg in html.split("<svg").skip(1) {
        let svg = &svg[..svg.find("</svg>").unwrap()];
        let ticks: Vec<f64> = svg
            .split("<text class=\"tick\"")
            .skip(1)
            .map(|t| {
                let label = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
                let num: String = label.chars().filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-').collect();
                num.parse::<f64>().unwrap_or_else(|_| panic!("tick {label:?}"))
            })
            .collect();
        assert!(ticks.len() >= 3, "an axis with {} ticks", ticks.len());
        let step = ticks[1] - ticks[0];
        let mag = 10f64.powf(step.log10().floor());
        let mantissa = step / mag;
        assert!(
            [1.0, 2.0, 2.5, 5.0, 10.0].iter().any(|m| (m - mantissa).abs() < 1e-6),
            "tick step {step} is not round: {ticks:?}"
        );
        for w in ticks.windows(2) {
            assert!(((w[1] - w[0]) - step).abs() < step * 1e-6, "uneven ticks {ticks:?}");
        }
        for t in &ticks {
            assert!(((t / step) - (t / step).round()).abs() < 1e-6, "tick {t} not a multiple of {step}: {ticks:?}");
        }
        axes += 1;
    }
    axes
}

#[tokio::test]
async fn report_fits_desktop_and_phone_with_round_ticks_and_aa_contrast() {
    let store = Recording::new();
    campaign_run(store.as_ref()).await;
    analysis_run(store.as_ref(), true).await;
    let (html, _) = report(&store, "experiment").await;
    assert_eq!(check_ticks(&html), 4, "four charts, every axis round");
    for width in [1280, 390] {
        let p = probe(&html, width);
        assert!((p.vw - f64::from(width)).abs() <= 20.0, "viewport {} for a {width} px window", p.vw);
        assert!(p.texts > 100, "probe saw {} texts", p.texts);
        assert!(p.doc <= p.vw, "{width} px: the page scrolls horizontally ({} > {})", p.doc, p.vw);
        assert!(p.overflow.is_empty(), "{width} px: elements past the right edge:\n{}", p.overflow.join("\n"));
        assert!(p.clipped.is_empty(), "{width} px: clipped scroll containers:\n{}", p.clipped.join("\n"));
        assert!(p.contrast.is_empty(), "{width} px: text below WCAG AA contrast:\n{}", p.contrast.join("\n"));
    }
}

/// Twelve weeks of a thompson campaign, two segments (one named to attack the page), four arms.
fn weeks_doc() -> cpo_common::model::weeks::CampaignWeeksDoc {
    use cpo_common::model::weeks::*;
    use std::collections::BTreeMap;
    let arms = ["control", "urgent", "informational", "friendly"];
    let start = chrono::NaiveDate::from_ymd_opt(2026, 9, 7).unwrap();
    let dates: Vec<_> = (0..12).map(|w| start + chrono::Duration::weeks(w)).collect();
    let run_id = |d: &chrono::NaiveDate| format!("weekly-{}-0123456789ab", d.format("%Y%m%d"));
    let segment = |name: &str| {
        let mut actual = 0;
        let mut fixed = 0.0;
        let mut weeks = Vec::new();
        let mut cumulative = Vec::new();
        for (i, d) in dates.iter().enumerate() {
            let best = 0.25 + 0.4 * (i as f64 / 11.0);
            let weights: BTreeMap<String, f64> = arms
                .iter()
                .map(|a| {
                    (
                        a.to_string(),
                        if *a == "control" {
                            0.25
                        } else if *a == "friendly" {
                            best
                        } else {
                            (0.75 - best) / 2.0
                        },
                    )
                })
                .collect();
            let mut cells = BTreeMap::new();
            for a in arms {
                let n = (40_000.0 * weights[a]) as u64;
                let rate = if a == "friendly" {
                    0.08
                } else if a == "control" {
                    0.02
                } else {
                    0.03
                };
                let s = (n as f64 * rate) as u64;
                actual += s;
                fixed += 10_000.0 * rate;
                cells.insert(a.to_string(), ArmWeek { n, successes: s, rate, ci_low: rate * 0.9, ci_high: rate * 1.1 });
            }
            weeks.push(SegmentWeek { run_id: run_id(d), date: *d, weights, arms: cells });
            cumulative.push(Cumulative { date: *d, actual, fixed_split: fixed });
        }
        SegmentWeeks {
            segment: name.into(),
            arms: arms.iter().map(|a| a.to_string()).collect(),
            weeks,
            cumulative,
            versus_control: arms[1..]
                .iter()
                .map(|a| Stratified {
                    arm: a.to_string(),
                    diff: Some(0.01),
                    diff_ci_low: Some(0.0),
                    diff_ci_high: Some(0.02),
                    weeks: 12,
                })
                .collect(),
            best: Some(Best {
                arm: "friendly".into(),
                prob_best: arms.iter().map(|a| (a.to_string(), if *a == "friendly" { 0.97 } else { 0.01 })).collect(),
            }),
        }
    };
    CampaignWeeksDoc {
        campaign: "weekly".into(),
        metric: cpo_common::model::experiment::Metric::Click,
        generated_at: chrono::Utc::now(),
        weeks: dates
            .iter()
            .map(|d| WeekInfo {
                run_id: run_id(d),
                date: *d,
                mode: cpo_common::config::AllocationMode::Thompson,
                outcomes_source: cpo_common::model::experiment::OutcomesSource::Simulated,
            })
            .collect(),
        segments: vec![segment("Champions"), segment("Loyal <script>alert('segment')</script>")],
    }
}

#[test]
fn campaign_weeks_page_renders_quietly_and_fits_desktop_and_phone() {
    let html = cpo_report::weeks::render_html(&weeks_doc());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("index.html");
    std::fs::write(&file, &html).unwrap();
    let (dom, log) = dump_dom(&file, &dir.path().join("profile"));
    assert!(!dom.contains("<script"), "a <script> element exists in the rendered DOM");
    assert!(dom.contains("Loyal &lt;script&gt;"), "the segment name stays text");
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught") || l.contains("Content Security Policy"))
        .collect();
    assert!(console.is_empty(), "console messages:\n{}", console.join("\n"));
    for width in [1280, 390] {
        let p = probe(&html, width);
        assert!(p.doc <= p.vw, "{width} px: the page scrolls horizontally ({} > {})", p.doc, p.vw);
        assert!(p.overflow.is_empty(), "{width} px: elements past the right edge:\n{}", p.overflow.join("\n"));
        assert!(p.clipped.is_empty(), "{width} px: clipped scroll containers:\n{}", p.clipped.join("\n"));
        assert!(p.contrast.is_empty(), "{width} px: text below WCAG AA contrast:\n{}", p.contrast.join("\n"));
    }
}

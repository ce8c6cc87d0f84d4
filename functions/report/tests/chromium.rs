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

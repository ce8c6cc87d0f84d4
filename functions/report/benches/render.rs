//! How long the report step takes: rendering a large report (30 segments × 3 tones, ~110 result rows) and the
//! whole step on the test fixture in a `mem://` store. Plain `Instant` timing with a median over runs: the
//! workspace has no benchmark framework, and these figures only need to show the step is far below a
//! Lambda's budget. Run: `cargo bench -p cpo-report`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use cpo_common::StepInput;
use cpo_report::{render, Report};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<F: FnMut()>(runs: usize, mut f: F) -> Duration {
    f();
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// The fixture's report scaled to `k` times as many segments, variants and per-segment result rows.
fn scaled(base: &Report, k: usize) -> Report {
    let mut r = base.clone();
    let e = r.experiment.as_mut().expect("experiment report");
    let seg_results = e.by_segment.clone();
    for i in 1..k {
        for v in &base.variants {
            let mut v = v.clone();
            v.segment = v.segment.map(|s| format!("{s} {i}"));
            v.variant_id = format!("{}-{i}", v.variant_id);
            r.variants.push(v);
        }
        for s in &base.segments {
            let mut s = s.clone();
            s.name = format!("{} {i}", s.name);
            r.segments.push(s);
        }
        for s in &seg_results {
            let mut s = s.clone();
            s.segment = format!("{} {i}", s.segment);
            e.by_segment.push(s);
        }
    }
    r
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let input = StepInput {
        run_id: RUN_ID.into(),
        campaign: Some("weekly".into()),
        action: Some("experiment".into()),
        ..Default::default()
    };
    let base: Report = rt.block_on(async {
        let store = Recording::new();
        campaign_run(store.as_ref()).await;
        analysis_run(store.as_ref(), true).await;
        cpo_report::handle(input.clone(), &ctx(store.clone())).await.expect("report");
        serde_json::from_str(&text(store.as_ref(), &keys().report("report.json")).await).expect("report.json")
    });

    let step = time(20, || {
        rt.block_on(async {
            let store = Recording::new();
            campaign_run(store.as_ref()).await;
            analysis_run(store.as_ref(), true).await;
            let t = Instant::now();
            cpo_report::handle(input.clone(), &ctx(store.clone())).await.expect("report");
            std::hint::black_box(t.elapsed());
        })
    });
    println!("fixture run set-up + report step (3 segments, 1,000 assignments): {step:?} median");

    for k in [1, 10] {
        let r = scaled(&base, k);
        let rows: usize = r
            .experiment
            .as_ref()
            .map_or(0, |e| e.overall.len() + e.by_segment.iter().map(|s| s.rows.len()).sum::<usize>());
        let mut size = (0, 0);
        let d = time(20, || {
            let (html, md) = render::render(&r).expect("render");
            size = (html.len(), md.len());
        });
        println!(
            "render {} segments, {} variants, {rows} result rows: {d:?} median; index.html {} KiB, report.md {} KiB",
            r.segments.len(),
            r.variants.len(),
            size.0 / 1024,
            size.1 / 1024
        );
    }
}

//! Measure the segment step end to end on a file: `segment_file INPUT.csv STORE_DIR`.
//! The input is hard-linked into `STORE_DIR/incoming/weekly/` (no copy), a run is prepared, and the step
//! runs on a `file://` store exactly as the local runner would call it. Used for the figures in
//! docs/segment.md (with `/usr/bin/time -v` for peak RSS).

use std::time::Instant;

use cpo_common::run::{prepare, StartOptions};
use cpo_common::{Ctx, Key, StepInput};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (input, dir) = match args.as_slice() {
        [_, i, d] => (i.clone(), d.clone()),
        _ => anyhow::bail!("usage: segment_file INPUT.csv STORE_DIR"),
    };
    let store = cpo_common::store::open(&format!("file://{dir}"))?;
    let name = std::path::Path::new(&input).file_name().and_then(|n| n.to_str()).unwrap_or("input.csv");
    let incoming = std::path::Path::new(&dir).join("incoming/weekly");
    std::fs::create_dir_all(&incoming)?;
    let target = incoming.join(name);
    let _ = std::fs::remove_file(&target);
    std::fs::hard_link(&input, &target).or_else(|_| std::fs::copy(&input, &target).map(|_| ()))?;
    let key = Key::new(format!("incoming/weekly/{name}"))?;
    let run = prepare(store.as_ref(), &key, &StartOptions::default()).await?;
    let _ = std::fs::remove_file(std::path::Path::new(&dir).join(format!("runs/{}/steps/segment.json", run.run_id)));
    let ctx = Ctx::new(store);
    let t0 = Instant::now();
    let out = cpo_segment::handle(StepInput { run_id: run.run_id.clone(), ..Default::default() }, &ctx).await?;
    let secs = t0.elapsed().as_secs_f64();
    let rows = out.counts["input_rows"].as_u64().unwrap_or(0);
    println!(
        "rows {rows} in {secs:.2} s = {:.2} M rows/s; segments {:?}",
        rows as f64 / secs / 1e6,
        out.segments.unwrap_or_default()
    );
    Ok(())
}

//! The default action: the whole file in one invocation — scan, analyse, write.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cpo_common::config::Segmentation;
use cpo_common::keys::RunKeys;
use cpo_common::model::segment::SegmentsDoc;
use cpo_common::run::{self, RunInput};
use cpo_common::store::StoreExt;
use cpo_common::{Ctx, Key, StepError, StepOutput};

use crate::analyze::{analyze, Analysis};
use crate::emit::{self, Decisions, Input, Writer, Written};
use crate::layout::{Format, Layout};
use crate::par;
use crate::scan::{scan_par, FIRST_REASONS};
use crate::source::{sniff, Origin};
use crate::table::{dedup, Duplicate, Table};

/// What the step reports, shared by the single pass and the sharded `finish`.
pub struct Summary {
    pub input_rows: u64,
    pub customers: u64,
    pub rejected: u64,
    pub segment_names: Vec<String>,
    pub parts: Vec<String>,
}

pub fn output(keys: &RunKeys, s: &Summary) -> StepOutput {
    StepOutput::new(keys.run_id(), "segment")
        .key("segments", keys.segments())
        .key("rejected", keys.rejected())
        .key("members", keys.members_prefix())
        .count("input_rows", s.input_rows)
        .count("customers", s.customers)
        .count("rejected", s.rejected)
        .count("segments", s.segment_names.len() as u64)
        .count("member_parts", s.parts.len() as u64)
        .with_segments(s.segment_names.clone())
}

trait WithSegments {
    fn with_segments(self, names: Vec<String>) -> Self;
}
impl WithSegments for StepOutput {
    fn with_segments(mut self, names: Vec<String>) -> Self {
        self.segments = Some(names);
        self
    }
}

/// The input object and the layout of its rows.
pub async fn open(ctx: &Ctx, run: &RunInput) -> Result<(Key, bytes::Bytes, Layout), StepError> {
    let key = Key::new(run.input.key.clone()).map_err(|e| StepError::input(e.to_string()))?;
    // An invalid limit setting fails here, before anything is read.
    cpo_common::pii::limits()?;
    let buf = ctx.store.get(&key).await.map_err(|e| match e {
        cpo_common::StoreError::NotFound { .. } => StepError::input(format!("{key}: input object not found")),
        e => e.into(),
    })?;
    let (encoding, header) = sniff(key.as_str(), &buf)?;
    let layout = Layout::resolve(key.as_str(), encoding, header, &run.config.segmentation)?;
    Ok((key, buf, layout))
}

/// Fail with `Cpo.InputInvalid` when the file has no rows or too many were rejected.
pub fn check_rejects(file: &str, rows: u64, rejected: u64, first: &[String], max_ratio: f64) -> Result<(), StepError> {
    if rows == 0 {
        return Err(StepError::input(format!("{file}: the file has a header but no rows")));
    }
    let ratio = rejected as f64 / rows as f64;
    if ratio > max_ratio || rejected == rows {
        return Err(StepError::input(format!(
            "{file}: {rejected} of {rows} rows rejected ({:.1}%, more than segmentation.max_reject_ratio {:.1}%); \
             first: {}",
            100.0 * ratio,
            100.0 * max_ratio,
            first.join("; ")
        )));
    }
    Ok(())
}

/// Carried-column names of a layout (as written in the header): the merge fields members can fill.
pub fn carried_names(layout: &Layout) -> Vec<String> {
    layout.carried.iter().map(|&i| layout.header[i].clone()).collect()
}

/// Typical-column names of a layout (as written in the header).
pub fn typical_names(layout: &Layout) -> Vec<String> {
    layout.typical.iter().map(|&i| layout.header[i].clone()).collect()
}

/// Duplicates, the reject check and the analysis (on a blocking thread: it touches every customer).
pub async fn decide(
    file: &str,
    table: Table,
    format: Format,
    scan: (u64, u64, Vec<String>),
    typical: Vec<String>,
    cfg: Segmentation,
) -> Result<(Table, Vec<Duplicate>, Analysis), StepError> {
    let file = file.to_string();
    par::blocking(move || {
        let (rows, bad, mut first_bad) = scan;
        let (keep, duplicates) = match format {
            Format::Customers => dedup(&table),
            Format::Transactions => (vec![true; table.len()], Vec::new()),
        };
        for d in duplicates.iter().take(FIRST_REASONS.saturating_sub(first_bad.len())) {
            first_bad.push(format!("line {}: {}", table.lines[d.row as usize], d.reason));
        }
        check_rejects(&file, rows, bad + duplicates.len() as u64, &first_bad, cfg.max_reject_ratio)?;
        let analysis = analyze(&table, &keep, &typical, &cfg)?;
        Ok((table, duplicates, analysis))
    })
    .await?
}

pub async fn run(ctx: &Ctx, run: &RunInput) -> Result<StepOutput, StepError> {
    let keys = RunKeys::new(&run.run_id)?;
    let t0 = Instant::now();
    let (key, buf, layout) = open(ctx, run).await?;
    let file = key.as_str();
    let layout = Arc::new(layout);
    let t_read = t0.elapsed();
    let sc = scan_par(buf.clone(), layout.clone(), Origin::WHOLE, run.date, run.config.as_of).await?;
    sc.check(file)?;
    let t_scan = t0.elapsed();
    let first_bad = sc.first_bad.iter().map(ToString::to_string).collect();
    let (rows, format) = (sc.rows, layout.format());
    let (table, duplicates, analysis) = decide(
        file,
        sc.table,
        format,
        (rows, sc.bad, first_bad),
        typical_names(&layout),
        run.config.segmentation.clone(),
    )
    .await?;
    let t_analysis = t0.elapsed();
    let Analysis { scores, segment, names, profiles } = analysis;
    let segment_names: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();
    let dec = Decisions { scores, segment, names, duplicates };
    let part_size = run.config.experiment.part_size;
    let (written, as_of) = match (format, sc.tx) {
        (Format::Transactions, Some(tx)) => {
            let mut w = Writer::new(ctx.store.as_ref(), &keys, file, part_size, 0);
            emit::transactions(&mut w, &buf, &layout, &table, &tx, run.date, &dec).await?;
            w.flush().await?;
            let w =
                Written { parts: w.parts, members: w.members, rejected: w.rejected, rejected_rows: w.rejected_rows };
            (w, tx.as_of.unwrap_or(run.date))
        }
        _ => {
            // The members are written from the decisions alone; the table's memory goes back first.
            drop(table);
            let input = Arc::new(Input {
                buf,
                layout: (*layout).clone(),
                origin: Origin::WHOLE,
                fast: sc.fast,
                checkpoints: sc.checkpoints,
                file: file.to_string(),
            });
            (emit::customers(ctx.store.clone(), &keys, input, Arc::new(dec), part_size, 0).await?, run.date)
        }
    };
    let t_members = t0.elapsed();
    ctx.store.put(&keys.rejected(), Bytes::from(written.rejected)).await?;
    let summary = Summary {
        input_rows: rows,
        customers: written.members,
        rejected: written.rejected_rows,
        segment_names,
        parts: written.parts,
    };
    let doc = SegmentsDoc {
        run_id: run.run_id.clone(),
        as_of,
        input_format: format.name().to_string(),
        input_rows: rows,
        customers: summary.customers,
        rejected: summary.rejected,
        segments: profiles,
        member_parts: summary.parts.clone(),
        columns: Some(carried_names(&layout)),
    };
    ctx.store.put_json(&keys.segments(), &doc).await?;
    tracing::info!(
        run_id = %run.run_id,
        format = format.name(),
        input_rows = rows,
        customers = summary.customers,
        rejected = summary.rejected,
        segments = summary.segment_names.len(),
        parts = summary.parts.len(),
        workers = par::workers(),
        read_ms = t_read.as_millis() as u64,
        scan_ms = (t_scan - t_read).as_millis() as u64,
        analysis_ms = (t_analysis - t_scan).as_millis() as u64,
        members_ms = (t_members - t_analysis).as_millis() as u64,
        total_ms = t0.elapsed().as_millis() as u64,
        "segmentation written"
    );
    Ok(output(&keys, &summary))
}

/// Load the run record for a step input.
pub async fn load(ctx: &Ctx, run_id: &str) -> Result<RunInput, StepError> {
    run::load(ctx.store.as_ref(), run_id).await
}

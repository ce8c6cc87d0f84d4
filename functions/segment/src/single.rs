//! The default action: the whole file in one invocation — scan, analyse, write.

use cpo_common::keys::RunKeys;
use cpo_common::model::segment::SegmentsDoc;
use cpo_common::run::{self, RunInput};
use cpo_common::store::StoreExt;
use cpo_common::{Ctx, Key, StepError, StepOutput};

use crate::analyze::{analyze, Analysis};
use crate::emit::{self, Decisions, Writer};
use crate::layout::{Format, Layout};
use crate::scan::{scan, Scan};
use crate::source::{sniff, Origin};
use crate::table::dedup;

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

/// Typical-column names of a layout (as written in the header).
pub fn typical_names(layout: &Layout) -> Vec<String> {
    layout.typical.iter().map(|&i| layout.header[i].clone()).collect()
}

pub async fn run(ctx: &Ctx, run: &RunInput) -> Result<StepOutput, StepError> {
    let keys = RunKeys::new(&run.run_id)?;
    let seg = &run.config.segmentation;
    let (key, buf, layout) = open(ctx, run).await?;
    let file = key.as_str();
    let Scan { table, rows, bad, mut first_bad, tx } = scan(&buf, &layout, Origin::WHOLE, run.date, run.config.as_of);
    let (keep, duplicates) = match layout.format() {
        Format::Customers => dedup(&table),
        Format::Transactions => (vec![true; table.len()], Vec::new()),
    };
    let dup_rows = duplicates.len() as u64;
    for d in duplicates.iter().take(crate::scan::FIRST_REASONS.saturating_sub(first_bad.len())) {
        first_bad.push(format!("line {}: {}", table.lines[d.row as usize], d.reason));
    }
    check_rejects(file, rows, bad + dup_rows, &first_bad, seg.max_reject_ratio)?;
    let analysis = analyze(&table, &keep, &typical_names(&layout), seg)?;
    let Analysis { scores, segment, names, profiles } = &analysis;
    let d = Decisions { scores, segment, names, duplicates: &duplicates };
    let mut w = Writer::new(ctx.store.as_ref(), &keys, file, run.config.experiment.part_size, 0);
    let as_of = match (&layout.format(), &tx) {
        (Format::Transactions, Some(tx)) => {
            emit::transactions(&mut w, &buf, &layout, &table, tx, run.date, &d).await?;
            tx.as_of.unwrap_or(run.date)
        }
        _ => {
            emit::customers(&mut w, &buf, &layout, Origin::WHOLE, &d).await?;
            run.date
        }
    };
    w.flush().await?;
    w.put_rejected(&keys.rejected()).await?;
    let summary = Summary {
        input_rows: rows,
        customers: w.members,
        rejected: w.rejected_rows,
        segment_names: analysis.segment_names(),
        parts: w.parts.clone(),
    };
    let doc = SegmentsDoc {
        run_id: run.run_id.clone(),
        as_of,
        input_format: layout.format().name().to_string(),
        input_rows: rows,
        customers: summary.customers,
        rejected: summary.rejected,
        segments: profiles.clone(),
        member_parts: summary.parts.clone(),
    };
    ctx.store.put_json(&keys.segments(), &doc).await?;
    tracing::info!(
        run_id = %run.run_id,
        format = layout.format().name(),
        input_rows = rows,
        customers = summary.customers,
        rejected = summary.rejected,
        segments = summary.segment_names.len(),
        "segmentation written"
    );
    Ok(output(&keys, &summary))
}

/// Load the run record for a step input.
pub async fn load(ctx: &Ctx, run_id: &str) -> Result<RunInput, StepError> {
    run::load(ctx.store.as_ref(), run_id).await
}

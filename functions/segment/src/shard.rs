//! The sharded mode (docs/segment.md, "Sharded mode") for aggregate files beyond one Lambda, as actions of this
//! function:
//!
//! 1. `plan` — record-aligned byte ranges of the input (`segment/shards.json`, what a Distributed Map's
//!    `ItemReader` iterates);
//! 2. `sketch` (per shard) — the shard's compact table (ids, values, digests, categorical codes);
//! 3. `merge` — all sketches in shard order: the duplicate rule, the quintile boundaries, names, merging
//!    and profiles, exactly as the single pass computes them, then per shard its decisions and its first
//!    member part number; writes `segments.json`;
//! 4. `score` (per shard) — re-reads the shard and writes its member parts and rejected rows;
//! 5. `finish` — joins the shards' rejected rows into `customers/rejected.jsonl` and returns the same
//!    output as the single pass.
//!
//! Ties are broken by global input position (shard index, then row), because the merge sees the sketches'
//! rows in that order: the result is the single pass's, member for member (tested). Member lines are the
//! same sequence; only the cut between parts differs (each shard starts a new part).

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use cpo_common::keys::{Key, RunKeys};
use cpo_common::model::segment::SegmentsDoc;
use cpo_common::run::RunInput;
use cpo_common::store::StoreExt;
use cpo_common::{step, Ctx, StepError, StepInput, StepOutput};

use crate::analyze::{analyze, REJECTED};
use crate::emit::{self, Decisions, Input};
use crate::layout::{Format, Layout};
use crate::scan::{scan_par, Checkpoint, FIRST_REASONS};
use crate::single::{check_rejects, open, output, typical_names, Summary};
use crate::source::{shard_bounds, Origin};
use crate::table::{dedup, Duplicate, Table};

/// Default shard size when the state machine does not pass `shard_bytes`.
pub const DEFAULT_SHARD_BYTES: u64 = 256 << 20;

/// One shard: a record-aligned byte range of the input. Also the Distributed Map's item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardDesc {
    pub shard: usize,
    pub start: u64,
    pub end: u64,
    pub first_line: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub file: String,
    pub layout: Layout,
    pub shards: Vec<ShardDesc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sketch {
    rows: u64,
    bad: u64,
    first_bad: Vec<String>,
    table: Table,
    /// Where the output pass may start reading (rows relative to the shard).
    #[serde(default)]
    checkpoints: Vec<Checkpoint>,
    /// The shard is quote-free CSV (read by the fast path).
    #[serde(default)]
    fast: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShardDecisions {
    first_part: usize,
    names: Vec<String>,
    scores: Vec<[u8; 3]>,
    segment: Vec<u8>,
    duplicates: Vec<Duplicate>,
    /// The shard's sketch checkpoints and fast-path flag, handed on to its output pass.
    #[serde(default)]
    checkpoints: Vec<Checkpoint>,
    #[serde(default)]
    fast: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShardResult {
    parts: Vec<String>,
    members: u64,
    rejected: u64,
}

fn at(keys: &RunKeys, rest: &str) -> Result<Key, StepError> {
    keys.prefix().join(&format!("segment/{rest}")).map_err(|e| StepError::internal(e.to_string()))
}

/// `runs/<run_id>/segment/shards.json`: the shard descriptors (the Distributed Map's `ItemReader` source).
pub fn shards_key(keys: &RunKeys) -> Result<Key, StepError> {
    at(keys, "shards.json")
}

fn shard_of(input: &StepInput) -> Result<usize, StepError> {
    input
        .extra
        .get("shard")
        .and_then(|v| v.as_u64().or_else(|| v.get("shard").and_then(|s| s.as_u64())))
        .map(|s| s as usize)
        .ok_or_else(|| StepError::input("segment: this action needs `shard` (a shard index from the plan)"))
}

pub async fn handle(
    action: &str,
    input: &StepInput,
    ctx: &Ctx,
    run: &RunInput,
    identity: &str,
) -> Result<StepOutput, StepError> {
    match action {
        "plan" => step::run_once(ctx, input, "segment-plan", identity, || plan(ctx, input, run)).await,
        "sketch" => {
            let s = shard_of(input)?;
            step::run_once(ctx, input, &format!("segment-sketch-{s:05}"), identity, || sketch(ctx, run, s)).await
        }
        "merge" => step::run_once(ctx, input, "segment-merge", identity, || merge(ctx, run)).await,
        "score" => {
            let s = shard_of(input)?;
            step::run_once(ctx, input, &format!("segment-score-{s:05}"), identity, || score(ctx, run, s)).await
        }
        _ => {
            // The final record is `steps/segment.json`, as in the single pass.
            step::run_once(ctx, input, "segment", identity, || finish(ctx, run)).await
        }
    }
}

async fn load_plan(ctx: &Ctx, keys: &RunKeys) -> Result<Plan, StepError> {
    Ok(ctx.store.get_json(&at(keys, "plan.json")?).await?)
}

fn slice(buf: &Bytes, d: &ShardDesc) -> Result<(Bytes, Origin), StepError> {
    let (s, e) = (d.start as usize, d.end as usize);
    if e > buf.len() || s > e {
        return Err(StepError::input(format!("shard {}: range {s}..{e} is outside the input", d.shard)));
    }
    Ok(if d.shard == 0 {
        (buf.slice(..e), Origin::WHOLE)
    } else {
        (buf.slice(s..e), Origin { has_header: false, first_line: d.first_line, first_byte: d.start })
    })
}

async fn plan(ctx: &Ctx, input: &StepInput, run: &RunInput) -> Result<StepOutput, StepError> {
    let keys = RunKeys::new(&run.run_id)?;
    let (key, buf, layout) = open(ctx, run).await?;
    if layout.format() != Format::Customers {
        return Err(StepError::input(format!(
            "{key}: the sharded mode reads aggregate customer rows; a transactions file must use the single pass \
             (or be aggregated per customer first)"
        )));
    }
    let target = input.extra.get("shard_bytes").and_then(|v| v.as_u64()).unwrap_or(DEFAULT_SHARD_BYTES).max(1);
    let shards: Vec<ShardDesc> = shard_bounds(key.as_str(), &buf, layout.encoding, &layout.header, target)?
        .into_iter()
        .enumerate()
        .map(|(shard, (start, end, first_line))| ShardDesc { shard, start, end, first_line })
        .collect();
    if shards.is_empty() {
        return Err(StepError::input(format!("{key}: the file has a header but no rows")));
    }
    let n = shards.len();
    ctx.store.put_json(&shards_key(&keys)?, &shards).await?;
    ctx.store.put_json(&at(&keys, "plan.json")?, &Plan { file: key.to_string(), layout, shards }).await?;
    Ok(StepOutput::new(&run.run_id, "segment-plan").key("shards", shards_key(&keys)?).count("shards", n as u64))
}

async fn sketch(ctx: &Ctx, run: &RunInput, s: usize) -> Result<StepOutput, StepError> {
    let keys = RunKeys::new(&run.run_id)?;
    let plan = load_plan(ctx, &keys).await?;
    let d = plan.shards.get(s).ok_or_else(|| StepError::input(format!("shard {s} is not in the plan")))?;
    // The Store port reads whole objects; with ranged reads only the shard's bytes would be fetched.
    let buf = ctx.store.get(&Key::new(plan.file.clone())?).await?;
    let (part, origin) = slice(&buf, d)?;
    drop(buf);
    let sc = scan_par(part, Arc::new(plan.layout), origin, run.date, run.config.as_of).await?;
    sc.check(&plan.file)?;
    let rows = sc.rows;
    let sk = Sketch {
        rows: sc.rows,
        bad: sc.bad,
        first_bad: sc.first_bad.iter().map(ToString::to_string).collect(),
        table: sc.table,
        checkpoints: sc.checkpoints,
        fast: sc.fast,
    };
    let key = at(&keys, &format!("sketch-{s:05}.json"))?;
    ctx.store.put(&key, Bytes::from(serde_json::to_vec(&sk)?)).await?;
    Ok(StepOutput::new(&run.run_id, "segment-sketch").key("sketch", key).count("rows", rows))
}

async fn merge(ctx: &Ctx, run: &RunInput) -> Result<StepOutput, StepError> {
    let keys = RunKeys::new(&run.run_id)?;
    let cfg = &run.config.segmentation;
    let plan = load_plan(ctx, &keys).await?;
    let mut table = Table::new(plan.layout.typical.len());
    let (mut rows, mut bad, mut first_bad) = (0u64, 0u64, Vec::new());
    let mut shard_rows = Vec::new();
    let mut reading = Vec::new();
    for d in &plan.shards {
        let sk: Sketch = ctx.store.get_json(&at(&keys, &format!("sketch-{:05}.json", d.shard))?).await?;
        rows += sk.rows;
        bad += sk.bad;
        first_bad.extend(sk.first_bad);
        shard_rows.push(sk.table.len());
        reading.push((sk.checkpoints, sk.fast));
        table.append(sk.table);
    }
    first_bad.truncate(FIRST_REASONS);
    let (keep, duplicates) = dedup(&table);
    for d in duplicates.iter().take(FIRST_REASONS.saturating_sub(first_bad.len())) {
        first_bad.push(format!("line {}: {}", table.lines[d.row as usize], d.reason));
    }
    check_rejects(&plan.file, rows, bad + duplicates.len() as u64, &first_bad, cfg.max_reject_ratio)?;
    let a = analyze(&table, &keep, &typical_names(&plan.layout), cfg)?;
    let part_size = run.config.experiment.part_size.max(1);
    let (mut lo, mut part, mut parts) = (0usize, 0usize, Vec::new());
    let mut dups = duplicates.iter().peekable();
    for ((d, &len), (checkpoints, fast)) in plan.shards.iter().zip(&shard_rows).zip(reading) {
        let hi = lo + len;
        let mut mine = Vec::new();
        while let Some(x) = dups.next_if(|x| (x.row as usize) < hi) {
            mine.push(Duplicate { row: x.row - lo as u32, reason: x.reason.clone() });
        }
        let members = a.segment[lo..hi].iter().filter(|s| **s != REJECTED).count();
        let dec = ShardDecisions {
            first_part: part,
            names: a.names.clone(),
            scores: a.scores[lo..hi].to_vec(),
            segment: a.segment[lo..hi].to_vec(),
            duplicates: mine,
            checkpoints,
            fast,
        };
        let key = at(&keys, &format!("decisions-{:05}.json", d.shard))?;
        ctx.store.put(&key, Bytes::from(serde_json::to_vec(&dec)?)).await?;
        let n_parts = members.div_ceil(part_size);
        parts.extend((part..part + n_parts).map(|p| keys.members(p).to_string()));
        part += n_parts;
        lo = hi;
    }
    let customers = keep.iter().filter(|k| **k).count() as u64;
    let doc = SegmentsDoc {
        run_id: run.run_id.clone(),
        as_of: run.date,
        input_format: Format::Customers.name().to_string(),
        input_rows: rows,
        customers,
        rejected: rows - customers,
        segments: a.profiles.clone(),
        member_parts: parts,
        columns: Some(crate::single::carried_names(&plan.layout)),
    };
    ctx.store.put_json(&keys.segments(), &doc).await?;
    Ok(StepOutput::new(&run.run_id, "segment-merge")
        .key("segments", keys.segments())
        .count("customers", customers)
        .count("rejected", rows - customers))
}

async fn score(ctx: &Ctx, run: &RunInput, s: usize) -> Result<StepOutput, StepError> {
    let keys = RunKeys::new(&run.run_id)?;
    let plan = load_plan(ctx, &keys).await?;
    let d = plan.shards.get(s).ok_or_else(|| StepError::input(format!("shard {s} is not in the plan")))?;
    let dec: ShardDecisions = ctx.store.get_json(&at(&keys, &format!("decisions-{s:05}.json"))?).await?;
    let buf = ctx.store.get(&Key::new(plan.file.clone())?).await?;
    let (part, origin) = slice(&buf, d)?;
    drop(buf);
    let part_size = run.config.experiment.part_size;
    let input =
        Input { buf: part, layout: plan.layout, origin, fast: dec.fast, checkpoints: dec.checkpoints, file: plan.file };
    let first_part = dec.first_part;
    let decisions =
        Decisions { scores: dec.scores, segment: dec.segment, names: dec.names, duplicates: dec.duplicates };
    let w =
        emit::customers(ctx.store.clone(), &keys, Arc::new(input), Arc::new(decisions), part_size, first_part).await?;
    ctx.store.put(&at(&keys, &format!("rejected-{s:05}.jsonl"))?, Bytes::from(w.rejected)).await?;
    let res = ShardResult { parts: w.parts, members: w.members, rejected: w.rejected_rows };
    ctx.store.put_json(&at(&keys, &format!("result-{s:05}.json"))?, &res).await?;
    Ok(StepOutput::new(&run.run_id, "segment-score").count("members", res.members).count("rejected", res.rejected))
}

async fn finish(ctx: &Ctx, run: &RunInput) -> Result<StepOutput, StepError> {
    let keys = RunKeys::new(&run.run_id)?;
    let plan = load_plan(ctx, &keys).await?;
    let doc: SegmentsDoc = ctx.store.get_json(&keys.segments()).await?;
    let mut rejected = Vec::new();
    let mut parts = Vec::new();
    let mut members = 0;
    for d in &plan.shards {
        let res: ShardResult = ctx
            .store
            .get_json_opt(&at(&keys, &format!("result-{:05}.json", d.shard))?)
            .await?
            .ok_or_else(|| StepError::internal(format!("shard {} has not been scored", d.shard)))?;
        members += res.members;
        parts.extend(res.parts);
        rejected.extend_from_slice(&ctx.store.get(&at(&keys, &format!("rejected-{:05}.jsonl", d.shard))?).await?);
    }
    if parts != doc.member_parts || members != doc.customers {
        return Err(StepError::internal("segment finish: shard results disagree with the merge"));
    }
    ctx.store.put(&keys.rejected(), Bytes::from(rejected)).await?;
    let summary = Summary {
        input_rows: doc.input_rows,
        customers: doc.customers,
        rejected: doc.rejected,
        segment_names: doc.segments.iter().map(|p| p.name.clone()).collect(),
        parts,
    };
    Ok(output(&keys, &summary))
}

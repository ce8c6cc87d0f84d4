//! `ingest`: the accepted outcomes files of a run (`ingest/files/`, see [`crate::accept`]; CSV or JSON lines),
//! real ones whenever there is one, else the simulated ones (never both), validated and deduplicated per
//! customer and event, joined with the assignments. Writes:
//! `ingest/rejected.jsonl` (file, line, field, reason, raw), `ingest/unknown.jsonl` (events of customers this
//! run never assigned), `ingest/outcomes-NNNNN.csv` (per assigned customer with events: one flag per event,
//! aligned with `assignments/part-NNNNN.jsonl`), `ingest/counts.json` (per segment and arm: customers and
//! customers with each event, what `analyze` needs) and `ingest/summary.json`.
//!
//! Cost: the outcomes are read once, streamed in windows and folded row by row into one byte of flags per
//! customer (no row is kept); the assignment parts are then read once, on every core, each worker joining its
//! part against the shared flags and counting its (segment, arm) cells. A second pass over the outcomes runs
//! only when some customer was never assigned, to list those rows.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use cpo_common::keys::RunKeys;
use cpo_common::model::experiment::{IngestCounts, IngestSummary, OutcomesFile, OutcomesSource, RefusedFile};
use cpo_common::model::segment::Rejected;
use cpo_common::store::StoreExt;
use cpo_common::{Key, ObjectMeta, StepError, StepOutput, Store};
use tokio::task::JoinHandle;

use crate::accept::AcceptedFile;
use crate::assignment_ref;
use crate::counts::{self, Cell, Counts, METRICS};
use crate::events::{self, Event, EventRow, Rules, KNOWN};
use crate::flags::{self, FlagKey, FlagMap};
use crate::outcome_rows::{self, RowSink};
use crate::parts::{csv_error, list_parts};
use crate::windows;

/// The drops of a run (every object under `outcomes/`).
pub async fn outcome_objects(store: &dyn Store, keys: &RunKeys) -> Result<Vec<ObjectMeta>, StepError> {
    crate::accept::drops(store, keys).await
}

/// The files an analysis uses, in the order they arrived: the real ones whenever the run has any, else the newest simulated one (two
/// simulations are two guesses, not more data). Returns them, which kind they are, and the files set aside.
pub fn select(accepted: &[AcceptedFile]) -> (OutcomesSource, Vec<AcceptedFile>, Vec<String>) {
    let (real, simulated): (Vec<&AcceptedFile>, Vec<&AcceptedFile>) = accepted.iter().partition(|f| !f.simulated);
    let (source, used): (OutcomesSource, Vec<AcceptedFile>) = if !real.is_empty() {
        (OutcomesSource::Real, real.into_iter().cloned().collect())
    } else if let Some(last) = simulated.last() {
        (OutcomesSource::Simulated, vec![(*last).clone()])
    } else {
        (OutcomesSource::None, Vec::new())
    };
    let set_aside = accepted.iter().filter(|f| !used.iter().any(|u| u.key == f.key)).map(|f| f.key.clone()).collect();
    (source, used, set_aside)
}

/// The accepted files as objects, in key order (what [`run`] reads; their listing is the analysis identity).
pub async fn file_objects(store: &dyn Store, files: &[AcceptedFile]) -> Result<Vec<ObjectMeta>, StepError> {
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let key = Key::new(f.key.clone())?;
        let meta = store.head(&key).await?.ok_or_else(|| {
            StepError::internal(format!("{key}: accepted outcomes file missing; its record is {}", f.sha256))
        })?;
        out.push(meta);
    }
    Ok(out)
}

pub fn etag(o: &ObjectMeta) -> String {
    o.etag.clone().unwrap_or_else(|| format!("{}-{}", o.size, o.last_modified.timestamp()))
}

/// `key\tetag` lines: equal for an equal set of outcomes objects.
pub fn identity(objects: &[ObjectMeta]) -> String {
    objects.iter().map(|o| format!("{}\t{}\n", o.key, etag(o))).collect()
}

/// [`identity`] of the outcomes files an ingest summary lists (the same objects, in the same order).
pub fn summary_identity(files: &[OutcomesFile]) -> String {
    files.iter().map(|f| format!("{}\t{}\n", f.key, f.etag)).collect()
}

pub use crate::accept::is_simulated;

pub fn outcomes_part(keys: &RunKeys, part: usize) -> Key {
    keys.ingest(&format!("outcomes-{part:05}.csv"))
}

pub fn counts_key(keys: &RunKeys) -> Key {
    keys.ingest("counts.json")
}

/// Events of one type, for callers outside this module.
pub fn has(flags: u8, e: Event) -> bool {
    flags & e.bit() != 0
}

/// First pass: every valid row folded into the flags as it is parsed. Moved onto the parsing thread of each
/// object and back.
///
/// Consecutive rows of one customer (how exports grouped by customer, and the simulator, write them) are
/// gathered first and folded into the map once: a map access is a cache miss, the id comparison is not.
struct Fold {
    flags: FlagMap,
    accepted: u64,
    ignored: u64,
    duplicates: u64,
    rejected: Vec<Rejected>,
    /// The customer of the latest rows and their event bits, not yet in `flags` (when `run_bits` ≠ 0).
    run_id: String,
    run_bits: u8,
}

impl Fold {
    fn new(capacity: usize) -> Self {
        Self {
            flags: flags::with_capacity(capacity),
            accepted: 0,
            ignored: 0,
            duplicates: 0,
            rejected: Vec::new(),
            run_id: String::new(),
            run_bits: 0,
        }
    }

    /// Fold the pending rows into the map; called when the customer changes and at the end of each file.
    fn flush(&mut self) {
        if self.run_bits == 0 {
            return;
        }
        let f = self.flags.entry(FlagKey::of(&self.run_id)).or_insert_with(|| AtomicU8::new(0)).get_mut();
        self.duplicates += u64::from((*f & self.run_bits).count_ones());
        *f |= self.run_bits;
        self.run_bits = 0;
    }
}

impl RowSink for Fold {
    fn valid(&mut self, _line: u64, row: EventRow<'_>) {
        self.accepted += 1;
        if self.run_bits == 0 || self.run_id != row.customer_id {
            self.flush();
            self.run_id.clear();
            self.run_id.push_str(row.customer_id);
        }
        let bit = row.event.bit();
        if self.run_bits & bit != 0 {
            self.duplicates += 1;
        }
        self.run_bits |= bit;
    }
    fn rejected(&mut self, row: Rejected) {
        self.rejected.push(row);
    }
    fn ignored(&mut self, _line: u64) {
        self.ignored += 1;
    }
}

/// Second pass (only when some customers are unknown): their rows, with file and line, for the analyst.
struct UnknownRows {
    file: String,
    flags: Arc<FlagMap>,
    out: Vec<Rejected>,
    customers: std::collections::HashSet<FlagKey>,
}

impl RowSink for UnknownRows {
    fn valid(&mut self, line: u64, row: EventRow<'_>) {
        let known = |f: &AtomicU8| f.load(Ordering::Relaxed) & KNOWN != 0;
        if self.flags.get(&FlagKey::of(row.customer_id)).is_some_and(|f| !known(f)) {
            self.customers.insert(FlagKey::of(row.customer_id));
            // The row as `ingest/unknown.jsonl` keeps it: the timestamp normalised to RFC 3339.
            let ts = events::parse_timestamp(row.timestamp).map(|t| t.to_rfc3339());
            self.out.push(Rejected {
                file: self.file.clone(),
                line,
                field: "customer_id".into(),
                reason: "customer not assigned in this run".into(),
                raw: format!("{},{},{}", row.customer_id, row.event.name(), ts.as_deref().unwrap_or(row.timestamp)),
            });
        }
    }
    fn rejected(&mut self, _row: Rejected) {}
}

/// What one assignment part contributes.
#[derive(Default)]
struct PartOut {
    /// `ingest/outcomes-NNNNN.csv` of the part.
    csv: Vec<u8>,
    counts: Counts,
    with_events: u64,
    /// Customers with each event, in [`events::ALL`] order.
    events: [u64; 6],
}

/// What an ingest reads: the files chosen by [`select`] (as accepted records and as objects, same order) and
/// what it reports besides them.
#[derive(Debug, Default)]
pub struct Selection {
    pub source: OutcomesSource,
    pub files: Vec<AcceptedFile>,
    pub objects: Vec<ObjectMeta>,
    pub refused: Vec<RefusedFile>,
    pub set_aside: Vec<String>,
}

impl Selection {
    /// Accept the new drops, then choose the files to analyse.
    pub async fn load(
        store: &dyn Store,
        keys: &RunKeys,
        rules: &Rules,
        max_reject_ratio: f64,
    ) -> Result<Self, StepError> {
        let accepted = crate::accept::run(store, keys, rules, max_reject_ratio).await?;
        Self::of(store, accepted).await
    }

    /// The choice among the files accepted so far (new drops are left to the next ingest).
    pub async fn current(store: &dyn Store, keys: &RunKeys) -> Result<Self, StepError> {
        Self::of(store, crate::accept::list(store, keys).await?).await
    }

    /// What an ingest or analysis of this selection is idempotent on: the files read (by version) and the
    /// refusals it reports.
    pub fn identity(&self) -> String {
        let mut id = identity(&self.objects);
        for r in &self.refused {
            id.push_str(&format!("refused\t{}\n", r.sha256));
        }
        id
    }

    async fn of(store: &dyn Store, accepted: crate::accept::Accepted) -> Result<Self, StepError> {
        let (source, files, set_aside) = select(&accepted.files);
        let objects = file_objects(store, &files).await?;
        Ok(Self { source, files, objects, refused: accepted.refused, set_aside })
    }
}

pub async fn run(store: &dyn Store, keys: &RunKeys, sel: &Selection, rules: &Rules) -> Result<StepOutput, StepError> {
    let run_id = keys.run_id();
    let objects = sel.objects.as_slice();
    if objects.is_empty() {
        let why: Vec<&str> = sel.refused.iter().map(|r| r.reason.as_str()).collect();
        return Err(StepError::input(if why.is_empty() {
            format!("{}: no outcomes file to analyse", keys.outcomes_prefix())
        } else {
            format!("every outcomes file of run {run_id} was refused: {}", why.join(" | "))
        }));
    }
    let assignment_keys = list_parts(store, &keys.assignments_prefix(), "part-", ".jsonl").await?;
    if assignment_keys.is_empty() {
        return Err(StepError::input(format!(
            "{}: no assignments; the campaign's assign step must run before outcomes can be analysed",
            keys.assignments_prefix()
        )));
    }

    // Pass 1: outcomes → flags.
    let capacity = expected_customers(store, keys, objects).await;
    let mut fold = Fold::new(capacity);
    let mut files = Vec::new();
    for (o, rec) in objects.iter().zip(&sel.files) {
        let key = Key::new(o.key.clone())?;
        let (accepted, rejected, ignored, dups) = (fold.accepted, fold.rejected.len(), fold.ignored, fold.duplicates);
        // Rows are reported under the drop's name, the file the user knows.
        let file = rec.source.clone();
        let rules = rules.clone();
        let ((format, rows), back) = windows::with_object(store, &key, o.size, move |input| {
            let mut fold = fold;
            let parsed = outcome_rows::parse_with(&file, input, &rules, &mut fold)?;
            fold.flush();
            Ok((parsed, fold))
        })
        .await?;
        fold = back;
        let f = OutcomesFile {
            key: o.key.clone(),
            etag: etag(o),
            format: format.name().into(),
            rows,
            accepted: fold.accepted - accepted,
            rejected: (fold.rejected.len() - rejected) as u64,
            simulated: rec.simulated,
            sha256: rec.sha256.clone(),
            source: rec.source.clone(),
            ignored: fold.ignored - ignored,
            duplicates: fold.duplicates - dups,
            unknown_customers: 0,
        };
        tracing::info!(run_id, file = %o.key, rows = f.rows, rejected = f.rejected, "outcomes file read");
        files.push(f);
    }
    let Fold { flags, duplicates, rejected: rejected_rows, .. } = fold;
    store.put(&keys.ingest_rejected(), crate::parts::to_jsonl(&rejected_rows)?).await?;

    // Pass 2: the assignments, part by part on every core, joined with the shared flags.
    let flags = Arc::new(flags);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut pending: VecDeque<(usize, JoinHandle<Result<PartOut, StepError>>)> = VecDeque::new();
    let mut total = PartOut::default();
    for (part, key) in assignment_keys.into_iter().enumerate() {
        let body = store.get(&key).await?;
        let flags = flags.clone();
        pending.push_back((part, tokio::task::spawn_blocking(move || join_part(&key, &body, &flags))));
        if pending.len() >= workers {
            if let Some((part, task)) = pending.pop_front() {
                finish_part(store, keys, part, task, &mut total).await?;
            }
        }
    }
    while let Some((part, task)) = pending.pop_front() {
        finish_part(store, keys, part, task, &mut total).await?;
    }
    let mut flags = Arc::into_inner(flags)
        .ok_or_else(|| StepError::internal("ingest: the outcome flags are still shared after the join"))?;
    let (unknown_customers, unknown_events) = flags::unknown(&mut flags);

    let unknown_rows = if unknown_customers > 0 {
        unknown_rows(store, objects, rules, Arc::new(flags), &mut files).await?
    } else {
        Vec::new()
    };
    store.put(&keys.ingest("unknown.jsonl"), crate::parts::to_jsonl(&unknown_rows)?).await?;

    let identity = identity(objects);
    let counts = IngestCounts {
        run_id: run_id.to_string(),
        outcomes_identity: identity,
        cells: counts::counts_to_cells(&total.counts),
    };
    store.put_json(&counts_key(keys), &counts).await?;

    let events: BTreeMap<String, u64> =
        events::ALL.iter().zip(total.events).map(|(e, n)| (e.name().to_string(), n)).collect();
    let with_events = total.with_events;
    let simulated = files.iter().any(|f| f.simulated);
    let summary = IngestSummary {
        run_id: run_id.to_string(),
        rejected: rejected_rows.len() as u64,
        files,
        events,
        duplicates,
        unknown_customers,
        unknown_events,
        customers_with_events: with_events,
        simulated,
        refused: sel.refused.clone(),
        source: sel.source,
        set_aside: sel.set_aside.clone(),
        outcomes_key: keys.ingest("outcomes-").to_string(),
    };
    store.put_json(&keys.ingest("summary.json"), &summary).await?;
    tracing::info!(
        run_id,
        files = summary.files.len(),
        rejected = summary.rejected,
        duplicates,
        unknown_customers,
        with_events,
        simulated,
        "outcomes ingested"
    );
    Ok(StepOutput::new(run_id, "ingest")
        .key("summary", keys.ingest("summary.json"))
        .key("rejected", keys.ingest_rejected())
        .key("unknown", keys.ingest("unknown.jsonl"))
        .key("counts", counts_key(keys))
        .count("files", summary.files.len() as u64)
        .count("rejected", summary.rejected)
        .count("duplicates", duplicates)
        .count("unknown_customers", unknown_customers)
        .count("unknown_events", unknown_events)
        .count("customers_with_events", with_events)
        .count("events", serde_json::json!(summary.events))
        .count("refused", summary.refused.len() as u64)
        .count("source", serde_json::json!(summary.source))
        .count("simulated", simulated))
}

/// Entries the flags map will hold, to size it once: at most one per outcomes row (≥ 19 bytes a row, 32 is
/// typical), and never more than the run's customers when the segment step recorded them. Only a hint: an
/// unreadable `segments.json` leaves the bound by size.
async fn expected_customers(store: &dyn Store, keys: &RunKeys, objects: &[ObjectMeta]) -> usize {
    #[derive(serde::Deserialize)]
    struct Customers {
        customers: u64,
    }
    let by_size = objects.iter().map(|o| o.size / 32).sum::<u64>();
    let customers = store.get_json_opt::<Customers>(&keys.segments()).await.ok().flatten().map(|c| c.customers);
    let n = customers.map_or(by_size, |c| c.min(by_size)).min(1 << 28);
    usize::try_from(n).unwrap_or(usize::MAX)
}

async fn finish_part(
    store: &dyn Store,
    keys: &RunKeys,
    part: usize,
    task: JoinHandle<Result<PartOut, StepError>>,
    total: &mut PartOut,
) -> Result<(), StepError> {
    let out = task.await.map_err(|e| StepError::internal(format!("ingest: assignment part {part} failed: {e}")))??;
    store.put(&outcomes_part(keys, part), Bytes::from(out.csv)).await?;
    total.with_events += out.with_events;
    for (t, n) in total.events.iter_mut().zip(out.events) {
        *t += n;
    }
    counts::merge_counts(&mut total.counts, out.counts);
    Ok(())
}

/// One assignment part joined with the flags: its outcomes CSV part, its cells and its event totals. Marks
/// each customer it finds [`KNOWN`]; finding one already marked means the assignments hold a customer twice.
fn join_part(key: &Key, body: &[u8], flags: &FlagMap) -> Result<PartOut, StepError> {
    let mut out = PartOut::default();
    let mut csv = csv::Writer::from_writer(Vec::with_capacity(body.len() / 3));
    let mut header = vec!["customer_id"];
    header.extend(events::ALL.iter().map(|e| e.name()));
    csv.write_record(&header).map_err(csv_error("ingest outcomes"))?;
    let mut cells = Cells::default();
    let (events, with_events) = (&mut out.events, &mut out.with_events);
    assignment_ref::for_each(key, body, |a| {
        let cell = cells.get(&a.segment, &a.arm);
        cell.n += 1;
        let Some(f) = flags.get(&FlagKey::of(&a.customer_id)) else { return Ok(()) };
        let f = f.fetch_or(KNOWN, Ordering::Relaxed);
        if f & KNOWN != 0 {
            return Err(StepError::internal(format!(
                "{key}: a customer with outcomes is assigned twice (in this part or another); re-run the assign step"
            )));
        }
        *with_events += 1;
        cell.delivered += u64::from(has(f, Event::Delivered));
        for (i, (_, e)) in METRICS.iter().enumerate() {
            cell.successes[i] += u64::from(has(f, *e));
        }
        let mut rec: [&[u8]; 7] = [a.customer_id.as_bytes(), b"0", b"0", b"0", b"0", b"0", b"0"];
        for (i, e) in events::ALL.iter().enumerate() {
            if has(f, *e) {
                events[i] += 1;
                rec[i + 1] = b"1";
            }
        }
        csv.write_record(rec).map_err(csv_error("ingest outcomes"))
    })?;
    out.counts = cells.into_counts();
    out.csv = csv.into_inner().map_err(|e| StepError::internal(format!("ingest outcomes CSV: {e}")))?;
    Ok(out)
}

/// The (segment, arm) cells of one part. A few dozen cells per run, looked up a million times: a linear
/// search over short strings beats a map here, and a row allocates nothing once its cell exists.
#[derive(Default)]
struct Cells(Vec<(String, Vec<(String, Cell)>)>);

impl Cells {
    fn get(&mut self, segment: &str, arm: &str) -> &mut Cell {
        let s = match self.0.iter().position(|(s, _)| s == segment) {
            Some(i) => i,
            None => {
                self.0.push((segment.to_string(), Vec::new()));
                self.0.len() - 1
            }
        };
        let arms = &mut self.0[s].1;
        let a = match arms.iter().position(|(a, _)| a == arm) {
            Some(i) => i,
            None => {
                arms.push((arm.to_string(), Cell::default()));
                arms.len() - 1
            }
        };
        &mut arms[a].1
    }

    fn into_counts(self) -> Counts {
        self.0.into_iter().map(|(s, arms)| (s, arms.into_iter().collect())).collect()
    }
}

/// The rows of customers never assigned, and per file how many such customers it has.
async fn unknown_rows(
    store: &dyn Store,
    objects: &[ObjectMeta],
    rules: &Rules,
    flags: Arc<FlagMap>,
    files: &mut [OutcomesFile],
) -> Result<Vec<Rejected>, StepError> {
    let mut out = Vec::new();
    for (o, f) in objects.iter().zip(files.iter_mut()) {
        let key = Key::new(o.key.clone())?;
        let sink = UnknownRows {
            file: f.source.clone(),
            flags: flags.clone(),
            out: Vec::new(),
            customers: Default::default(),
        };
        let rules = rules.clone();
        let (rows, customers) = windows::with_object(store, &key, o.size, move |input| {
            let mut sink = sink;
            let file = sink.file.clone();
            outcome_rows::parse_with(&file, input, &rules, &mut sink)?;
            Ok((sink.out, sink.customers.len() as u64))
        })
        .await?;
        f.unknown_customers = customers;
        out.extend(rows);
    }
    Ok(out)
}

/// The flags of one part's customers with events (`ingest/outcomes-NNNNN.csv`).
pub async fn read_outcomes_part(
    store: &dyn Store,
    key: &Key,
) -> Result<std::collections::HashMap<String, u8>, StepError> {
    let Some(body) = store.get_opt(key).await? else { return Ok(Default::default()) };
    let mut rdr = csv::Reader::from_reader(body.as_ref());
    let mut out = std::collections::HashMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| StepError::internal(format!("{key}: {e}")))?;
        let mut f = 0u8;
        for (i, e) in events::ALL.iter().enumerate() {
            if rec.get(i + 1) == Some("1") {
                f |= e.bit();
            }
        }
        if let Some(id) = rec.get(0) {
            out.insert(id.to_string(), f);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "ingest_tests.rs"]
mod tests;

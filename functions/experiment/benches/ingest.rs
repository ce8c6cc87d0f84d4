//! Micro-benchmarks of outcomes ingestion (once per outcomes row and once per assigned customer): parsing and
//! validating an outcomes file, folding it into the flags map, joining an assignment part against the flags,
//! and the whole `ingest` step on a `mem://` store. 100 000 customers each: × 10 = the per-customer cost of
//! a one-million-customer analysis.
//!
//! `cargo bench -p cpo-experiment --bench ingest`

use std::sync::atomic::{AtomicU8, Ordering};

use bytes::Bytes;
use cpo_common::keys::RunKeys;
use cpo_common::model::segment::Rejected;
use cpo_common::Key;
use cpo_experiment::assignment_ref;
use cpo_experiment::events::EventRow;
use cpo_experiment::flags::{self, FlagKey, FlagMap};
use cpo_experiment::outcome_rows::{self, RowSink};
use divan::black_box;

const CUSTOMERS: usize = 100_000;
const RUN: &str = "weekly-20261125-0123456789ab";

fn main() {
    divan::main();
}

/// Outcomes as the simulator writes them: delivered for everyone, then opens, clicks, conversions.
fn outcomes_csv() -> Vec<u8> {
    let mut out = String::from("customer_id,event,timestamp\n");
    for i in 0..CUSTOMERS {
        out.push_str(&format!("C{i:08},delivered,2026-11-26T09:0{}:00Z\n", i % 10));
        if i % 4 == 0 {
            out.push_str(&format!("C{i:08},open,2026-11-26T1{}:15:00Z\n", i % 10));
        }
        if i % 20 == 0 {
            out.push_str(&format!("C{i:08},click,2026-11-26T1{}:17:00Z\n", i % 10));
        }
    }
    out.into_bytes()
}

fn assignments_jsonl() -> Vec<u8> {
    let segments = ["Champions", "At Risk", "Can't Lose", "Hibernating", "Potential Loyalist"];
    let arms = ["control", "urgent", "informational", "friendly"];
    let mut out = String::new();
    for i in 0..CUSTOMERS {
        let (segment, arm) = (segments[i % 5], arms[(i / 5) % 4]);
        out.push_str(&format!(
            "{{\"customer_id\":\"C{i:08}\",\"segment\":\"{segment}\",\"arm\":\"{arm}\",\"variant_id\":\"{arm}\"}}\n"
        ));
    }
    out.into_bytes()
}

struct Count(u64);

impl RowSink for Count {
    fn valid(&mut self, _line: u64, row: EventRow<'_>) {
        self.0 += row.customer_id.len() as u64;
    }
    fn rejected(&mut self, _row: Rejected) {}
}

struct Insert(FlagMap);

impl RowSink for Insert {
    fn valid(&mut self, _line: u64, row: EventRow<'_>) {
        *self.0.entry(FlagKey::of(row.customer_id)).or_insert_with(|| AtomicU8::new(0)).get_mut() |= row.event.bit();
    }
    fn rejected(&mut self, _row: Rejected) {}
}

/// CSV parsing and row validation alone.
#[divan::bench]
fn parse_outcomes_100k_customers(bencher: divan::Bencher) {
    let body = outcomes_csv();
    bencher.counter(divan::counter::BytesCount::new(body.len())).bench_local(|| {
        let mut sink = Count(0);
        outcome_rows::parse("o.csv", black_box(body.as_slice()), &mut sink).map(|_| sink.0)
    });
}

/// Parsing plus one keyed hash and one map access per row (no run grouping).
#[divan::bench]
fn fold_outcomes_100k_customers(bencher: divan::Bencher) {
    let body = outcomes_csv();
    bencher.counter(divan::counter::BytesCount::new(body.len())).bench_local(|| {
        let mut sink = Insert(flags::with_capacity(CUSTOMERS));
        outcome_rows::parse("o.csv", black_box(body.as_slice()), &mut sink).map(|_| sink.0.len())
    });
}

/// One assignment part read borrowed and looked up in the flags.
#[divan::bench]
fn join_assignments_100k_customers(bencher: divan::Bencher) {
    let body = assignments_jsonl();
    let key = Key::new("runs/r/assignments/part-00000.jsonl").unwrap();
    let mut map = flags::with_capacity(CUSTOMERS);
    for i in (0..CUSTOMERS).step_by(2) {
        map.insert(FlagKey::of(&format!("C{i:08}")), AtomicU8::new(1));
    }
    bencher.counter(divan::counter::BytesCount::new(body.len())).bench_local(|| {
        let mut found = 0u64;
        assignment_ref::for_each(&key, black_box(&body), |a| {
            if let Some(f) = map.get(&FlagKey::of(&a.customer_id)) {
                found += u64::from(f.load(Ordering::Relaxed));
            }
            Ok(())
        })
        .map(|_| found)
    });
}

/// The whole step: outcomes in, flags, join, outcome parts, counts and summary out.
#[divan::bench(sample_count = 20)]
fn ingest_step_100k_customers(bencher: divan::Bencher) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = cpo_common::store::open("mem://").unwrap();
    let keys = RunKeys::new(RUN).unwrap();
    let rules = cpo_experiment::events::Rules::default();
    let selection = rt.block_on(async {
        store.put(&keys.assignments(0), Bytes::from(assignments_jsonl())).await.unwrap();
        store.put(&keys.outcomes("simulated-7.csv").unwrap(), Bytes::from(outcomes_csv())).await.unwrap();
        cpo_experiment::ingest::Selection::load(store.as_ref(), &keys, &rules, 1.0).await.unwrap()
    });
    bencher.bench_local(|| {
        rt.block_on(cpo_experiment::ingest::run(store.as_ref(), &keys, &selection, &rules)).map(|o| o.counts.len())
    });
}

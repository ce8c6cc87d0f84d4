//! Micro-benchmarks of the segmentation core on generated customers (`cargo bench -p cpo-segment`):
//! splitting rows (quote-free fast path and the `csv` reader), the scan (one thread and every core), quintile
//! scoring, scan + dedup + analysis, member-line encoding, and the output pass on every core.

use std::sync::Arc;

use bytes::Bytes;
use cpo_common::config::Segmentation;
use cpo_common::keys::RunKeys;
use cpo_segment::analyze::analyze;
use cpo_segment::emit::{self, Decisions, Encoder, Input, MemberLine};
use cpo_segment::layout::Layout;
use cpo_segment::rows;
use cpo_segment::scan::{scan, scan_par};
use cpo_segment::score::score_all;
use cpo_segment::source::{sniff, Origin, Rows};
use cpo_segment::table::dedup;
use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;

const ROWS: u64 = 200_000;

fn main() {
    divan::main();
}

fn setup() -> (Vec<u8>, Layout) {
    let buf = cpo_segment::synth::customers_csv(ROWS, 7);
    let (enc, header) = sniff("bench.csv", &buf).unwrap();
    let layout = Layout::resolve("bench.csv", enc, header, &Segmentation::default()).unwrap();
    (buf, layout)
}

fn day() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

/// Split every row into fields: `fast` forces the quote-free path on or off (the `csv` reader).
fn split_rows(b: Bencher, fast: bool) {
    let (buf, layout) = setup();
    b.counter(BytesCount::new(buf.len())).bench(|| {
        let mut rows = Rows::with_mode(&buf, layout.encoding, &layout.header, Origin::WHOLE, Some(fast));
        let mut n = 0;
        while rows.next().is_some() {
            n += rows.rec().len();
        }
        n
    });
}

#[divan::bench(sample_count = 10)]
fn split_fast(b: Bencher) {
    split_rows(b, true);
}

#[divan::bench(sample_count = 10)]
fn split_csv_reader(b: Bencher) {
    split_rows(b, false);
}

#[divan::bench(sample_count = 10)]
fn parse(b: Bencher) {
    let (buf, layout) = setup();
    b.counter(ItemsCount::new(ROWS)).bench(|| scan(&buf, &layout, Origin::WHOLE, day(), None).table.len());
}

#[divan::bench(sample_count = 10)]
fn parse_every_core(b: Bencher) {
    let (buf, layout) = setup();
    let (buf, layout) = (Bytes::from(buf), Arc::new(layout));
    let rt = runtime();
    b.counter(ItemsCount::new(ROWS)).bench(|| {
        rt.block_on(scan_par(buf.clone(), layout.clone(), Origin::WHOLE, day(), None)).map(|s| s.table.len())
    });
}

#[divan::bench(sample_count = 10)]
fn scoring(b: Bencher) {
    let (buf, layout) = setup();
    let t = scan(&buf, &layout, Origin::WHOLE, day(), None).table;
    let keep = vec![true; t.len()];
    b.counter(ItemsCount::new(ROWS)).bench(|| score_all(&t.values, &keep, 5).len());
}

#[divan::bench(sample_count = 10)]
fn parse_and_analyze(b: Bencher) {
    let (buf, layout) = setup();
    let cfg = Segmentation::default();
    b.counter(ItemsCount::new(ROWS)).bench(|| {
        let t = scan(&buf, &layout, Origin::WHOLE, day(), None).table;
        let (keep, _) = dedup(&t);
        analyze(&t, &keep, &[], &cfg).map(|a| a.profiles.len())
    });
}

#[divan::bench(sample_count = 10)]
fn encode_members(b: Bencher) {
    let (buf, layout) = setup();
    let names = vec!["Champions".to_string()];
    let enc = Encoder::new(&layout, &names);
    let mut out = Vec::new();
    b.counter(ItemsCount::new(ROWS)).bench_local(|| {
        out.clear();
        let mut rows = Rows::new(&buf, layout.encoding, &layout.header, Origin::WHOLE);
        while let Some(meta) = rows.next() {
            let rec = rows.rec();
            if let Ok(c) = rows::customer(&layout, &rec, &meta) {
                let m =
                    MemberLine { customer_id: c.id, line: meta.line, values: c.values, scores: [1, 2, 3], segment: 0 };
                enc.member(&mut out, &m, &rec);
            }
        }
        out.len()
    });
}

/// The output pass (re-read, encode, write parts to a `mem://` store) on every core, parts of 50 000.
#[divan::bench(sample_count = 10)]
fn output_pass(b: Bencher) {
    let (buf, layout) = setup();
    let sc = scan(&buf, &layout, Origin::WHOLE, day(), None);
    let (keep, duplicates) = dedup(&sc.table);
    let a = analyze(&sc.table, &keep, &[], &Segmentation::default()).unwrap();
    let dec = Arc::new(Decisions { scores: a.scores, segment: a.segment, names: a.names, duplicates });
    let input = Arc::new(Input {
        buf: Bytes::from(buf),
        layout,
        origin: Origin::WHOLE,
        fast: sc.fast,
        checkpoints: sc.checkpoints,
        file: "bench.csv".into(),
    });
    let store = cpo_common::store::open("mem://").unwrap();
    let keys = RunKeys::new("bench-20261126-000000000000").unwrap();
    let rt = runtime();
    b.counter(ItemsCount::new(ROWS)).bench(|| {
        rt.block_on(emit::customers(store.clone(), &keys, input.clone(), dec.clone(), 50_000, 0)).map(|w| w.members)
    });
}

//! Micro-benchmarks of the segmentation core on generated customers (`cargo bench -p cpo-segment`):
//! parse + validate (the scan), quintile scoring, and scan + dedup + analysis together.

use cpo_common::config::Segmentation;
use cpo_segment::analyze::analyze;
use cpo_segment::layout::Layout;
use cpo_segment::scan::scan;
use cpo_segment::score::score_all;
use cpo_segment::source::{sniff, Origin};
use cpo_segment::table::dedup;
use divan::counter::ItemsCount;
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

#[divan::bench(sample_count = 10)]
fn parse(b: Bencher) {
    let (buf, layout) = setup();
    b.counter(ItemsCount::new(ROWS)).bench(|| scan(&buf, &layout, Origin::WHOLE, day(), None).table.len());
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

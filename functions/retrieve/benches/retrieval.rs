//! Retrieval cost on the bundled corpus and on a corpus 100 times larger: parsing, index build, and the
//! step's per-segment work (search + passages) for the ten standard segments.
//! Run: `cargo bench -p cpo-retrieve --bench retrieval`.

use std::collections::HashMap;

use chrono::NaiveDate;
use cpo_retrieve::corpus::{self, Corpus};
use cpo_retrieve::local::LocalIndex;
use cpo_retrieve::retriever::{Retriever, SearchRequest};
use cpo_retrieve::{analysis, passages};
use divan::Bencher;

fn main() {
    divan::main();
}

const GOAL: &str = "bring lapsed customers back with the winter range";
const SEGMENTS: [(&str, &str); 10] = [
    ("Champions", "Bought recently, buy often and spend the most."),
    ("Loyal", "Buy regularly and respond well to member benefits."),
    ("Potential Loyalist", "Recent customers with average frequency who could become loyal."),
    ("New", "Made their first purchase very recently."),
    ("Promising", "Recent shoppers who have not bought much yet."),
    ("Need Attention", "Above-average recency and frequency, but slipping."),
    ("About to Sleep", "Below-average recency and frequency; will be lost without a reason to return."),
    ("At Risk", "Used to buy often but have not bought for a long time."),
    ("Can't Lose", "Made the biggest and most frequent purchases, but long ago."),
    ("Hibernating", "Last purchase long ago, few orders and low spend."),
];
const AUDIENCES: [&str; 10] = [
    "High-Value",
    "High-Value",
    "Standard",
    "New Customer",
    "New Customer",
    "Standard",
    "At-Risk",
    "At-Risk",
    "High-Value",
    "At-Risk",
];

fn bundled() -> Corpus {
    corpus::bundled().expect("bundled corpus parses")
}

/// The bundled corpus copied `times` times with distinct ids (≈ 35 × times documents).
fn scaled(times: usize) -> Corpus {
    let base = bundled();
    let mut documents = Vec::with_capacity(base.documents.len() * times);
    for i in 0..times {
        for d in &base.documents {
            let mut d = d.clone();
            d.document_id = format!("{}-{i}", d.document_id);
            documents.push(d);
        }
    }
    Corpus { documents, source: base.source }
}

#[divan::bench]
fn parse_bundled_corpus() -> Corpus {
    bundled()
}

#[divan::bench(args = [1, 100])]
fn build_index(bencher: Bencher, times: usize) {
    let corpus = scaled(times);
    bencher.bench(|| LocalIndex::build(corpus.clone()).expect("index"));
}

/// What the step does per run after the index exists: ten searches, each with passages for its top 5.
#[divan::bench(args = [1, 100])]
fn query_ten_segments(bencher: Bencher, times: usize) {
    let index = LocalIndex::build(scaled(times)).expect("index");
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let as_of = NaiveDate::from_ymd_opt(2026, 1, 15).expect("date");
    bencher.bench(|| {
        let mut analyzer = analysis::analyzer();
        let mut n = 0;
        for ((name, description), audience) in SEGMENTS.iter().zip(AUDIENCES) {
            let query = format!("{name} · {description} · {GOAL}");
            let audiences = vec![audience.to_string()];
            let req = SearchRequest { query: &query, audiences: &audiences, as_of, top_k: 5 };
            let found = rt.block_on(index.search(&req)).expect("search");
            let weights: HashMap<String, f32> = index.term_weights(&analysis::distinct_terms(&mut analyzer, &query));
            for f in found {
                n += passages::select(&f.document.content, &weights, &mut analyzer, 2).len();
            }
        }
        n
    });
}

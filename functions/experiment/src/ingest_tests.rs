//! Ingest on a `mem://` store built by hand: assignments in several parts, outcomes in CSV and JSON lines with
//! duplicates, rejected rows and customers never assigned.

use std::collections::BTreeSet;

use cpo_common::model::experiment::Assignment;

use super::*;
use crate::outcome_rows::Collect;

const RUN: &str = "weekly-20261125-0123456789ab";
const SEGMENTS: [&str; 3] = ["Champions", "At Risk", "Can't Lose"];
const ARMS: [&str; 5] = ["control", "urgent", "informational", "friendly", "holdout"];

fn assignment(i: usize) -> Assignment {
    let arm = ARMS[(i * 7 + i / 3) % ARMS.len()];
    Assignment {
        customer_id: format!("C{i:05}"),
        segment: SEGMENTS[i % SEGMENTS.len()].to_string(),
        arm: arm.to_string(),
        variant_id: if arm == "holdout" { String::new() } else { arm.to_string() },
    }
}

/// Events of customer `i` (before duplicates), as flags.
fn events_of(i: usize) -> u8 {
    let mut f = 0u8;
    let mut on = |cond: bool, e: Event| {
        if cond {
            f |= e.bit();
        }
    };
    on(i % 2 == 0, Event::Delivered);
    on(i % 3 == 0, Event::Open);
    on(i % 6 == 0, Event::Click);
    on(i % 12 == 0, Event::Convert);
    on(i % 17 == 0, Event::Unsubscribe);
    on(i % 29 == 0, Event::Bounce);
    f
}

async fn put(store: &dyn Store, key: &Key, body: String) {
    store.put(key, Bytes::from(body)).await.unwrap();
}

/// `n` customers in parts of `part`; events of every customer split over a CSV and a JSON-lines drop.
async fn setup(n: usize, part: usize) -> (cpo_common::store::DynStore, RunKeys) {
    let store = cpo_common::store::open("mem://").unwrap();
    let keys = RunKeys::new(RUN).unwrap();
    let all: Vec<Assignment> = (0..n).map(assignment).collect();
    for (p, chunk) in all.chunks(part).enumerate() {
        put(
            store.as_ref(),
            &keys.assignments(p),
            chunk.iter().map(|a| serde_json::to_string(a).unwrap() + "\n").collect(),
        )
        .await;
    }
    let mut csv = String::from("customer_id,event,timestamp\n");
    let mut jsonl = String::new();
    for i in 0..n {
        for e in events::ALL {
            if events_of(i) & e.bit() == 0 {
                continue;
            }
            if i % 5 == 0 {
                jsonl.push_str(&format!(
                    "{{\"customer_id\":\"C{i:05}\",\"event\":\"{}\",\"timestamp\":\"2026-11-25T10:00:00Z\"}}\n",
                    e.name()
                ));
            } else {
                csv.push_str(&format!("C{i:05},{},2026-11-25T10:{:02}:00Z\n", e.name(), i % 60));
            }
            if i % 10 == 1 {
                csv.push_str(&format!("C{i:05},{},2026-11-26 08:00:00\n", e.name().to_uppercase()));
            }
        }
    }
    // A repeat far from the customer's other rows, and rows of customers never assigned.
    csv.push_str("C00003,open,2026-11-27T10:00:00Z\n");
    csv.push_str("NOBODY,open,2026-11-25T10:00:00Z\nNOBODY,click,2026-11-25\nC00001,opened,2026-11-25\n");
    jsonl.push_str("{\"customer_id\":\"GHOST\",\"event\":\"open\",\"timestamp\":\"2026-11-25T10:00:00+01:00\"}\n{\n");
    put(store.as_ref(), &keys.outcomes("esp.csv").unwrap(), csv).await;
    put(store.as_ref(), &keys.outcomes("more.jsonl").unwrap(), jsonl).await;
    (store, keys)
}

/// Accept the drops and ingest the chosen files, as the `ingest` action does (no send window here).
async fn ingest_all(store: &dyn Store, keys: &RunKeys) -> Result<StepOutput, StepError> {
    let sel = Selection::load(store, keys, &Rules::default(), 1.0).await?;
    run(store, keys, &sel, &Rules::default()).await
}

/// The counts straight from the generated data.
fn expected(n: usize) -> Counts {
    let mut counts = Counts::new();
    for i in 0..n {
        let a = assignment(i);
        let f = events_of(i);
        let c = counts.entry(a.segment).or_default().entry(a.arm).or_default();
        c.n += 1;
        c.delivered += u64::from(has(f, Event::Delivered));
        for (k, (_, e)) in METRICS.iter().enumerate() {
            c.successes[k] += u64::from(has(f, *e));
        }
    }
    counts
}

#[tokio::test]
async fn counts_ingest_writes_equal_the_re_read_and_the_data() {
    let n = 2_000;
    let (store, keys) = setup(n, 300).await;
    let store = store.as_ref();
    let out = ingest_all(store, &keys).await.unwrap();

    let summary: IngestSummary = store.get_json(&keys.ingest("summary.json")).await.unwrap();
    let stored = crate::analyze::stored_counts(store, &keys, &summary).await.unwrap().expect("ingest/counts.json");
    let re_read = crate::analyze::count(store, &keys).await.unwrap();
    assert_eq!(stored, re_read, "counts.json = the re-read of assignments and ingest/outcomes-*.csv");
    assert_eq!(stored, expected(n), "counts.json = the generated data");
    assert_eq!(list_parts(store, &keys.ingest(""), "outcomes-", ".csv").await.unwrap().len(), 7);

    let with_events = (0..n).filter(|&i| events_of(i) != 0).count() as u64;
    assert_eq!(summary.customers_with_events, with_events);
    for e in events::ALL {
        let want = (0..n).filter(|&i| has(events_of(i), e)).count() as u64;
        assert_eq!(summary.events[e.name()], want, "{}", e.name());
    }
    let dups: u64 = (0..n).filter(|i| i % 10 == 1).map(|i| u64::from(events_of(i).count_ones())).sum();
    assert_eq!(summary.duplicates, dups + 1);
    assert_eq!((summary.unknown_customers, summary.unknown_events), (2, 3));
    assert_eq!(summary.rejected, 2);
    let mut per_file: Vec<(&str, u64)> = summary.files.iter().map(|f| (f.format.as_str(), f.rejected)).collect();
    per_file.sort_unstable();
    assert_eq!(per_file, [("csv", 1), ("jsonl", 1)]);
    assert_eq!(summary.files.iter().map(|f| f.duplicates).sum::<u64>(), summary.duplicates);
    assert_eq!(
        summary.files.iter().map(|f| f.unknown_customers).sum::<u64>(),
        2,
        "NOBODY in the CSV, GHOST in the JSON"
    );
    assert_eq!(
        summary.files.iter().map(|f| f.rows).sum::<u64>(),
        summary.files.iter().map(|f| f.accepted + f.rejected).sum::<u64>()
    );
    assert_eq!(out.counts["customers_with_events"], with_events);

    let unknown = store.get(&keys.ingest("unknown.jsonl")).await.unwrap();
    let unknown: Vec<Rejected> =
        std::str::from_utf8(&unknown).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let raws: BTreeSet<&str> = unknown.iter().map(|r| r.raw.as_str()).collect();
    assert_eq!(
        raws,
        BTreeSet::from([
            "NOBODY,open,2026-11-25T10:00:00+00:00",
            "NOBODY,click,2026-11-25T00:00:00+00:00",
            "GHOST,open,2026-11-25T09:00:00+00:00"
        ])
    );
    assert!(unknown.iter().all(|r| r.field == "customer_id" && r.line > 0));
}

#[tokio::test]
async fn stored_counts_belong_to_one_outcomes_set() {
    let (store, keys) = setup(300, 100).await;
    let store = store.as_ref();
    ingest_all(store, &keys).await.unwrap();
    let mut summary: IngestSummary = store.get_json(&keys.ingest("summary.json")).await.unwrap();
    assert!(crate::analyze::stored_counts(store, &keys, &summary).await.unwrap().is_some());
    summary.files[0].etag.push('x');
    assert!(crate::analyze::stored_counts(store, &keys, &summary).await.unwrap().is_none(), "other outcomes");
}

#[tokio::test]
async fn a_customer_assigned_twice_fails_the_join() {
    let (store, keys) = setup(300, 100).await;
    let store = store.as_ref();
    let again = serde_json::to_string(&assignment(0)).unwrap() + "\n";
    put(store, &keys.assignments(3), again).await;
    let e = ingest_all(store, &keys).await.unwrap_err();
    assert_eq!(e.kind, cpo_common::ErrorKind::Internal);
    assert!(e.message.contains("assigned twice") && !e.message.contains("C00000"), "{e}");
}

#[tokio::test]
async fn rows_are_the_same_whatever_the_windows() {
    let (store, keys) = setup(500, 500).await;
    let store = store.as_ref();
    for o in outcome_objects(store, &keys).await.unwrap() {
        let key = Key::new(o.key.clone()).unwrap();
        let body = store.get(&key).await.unwrap();
        let mut whole = Collect::default();
        let want = outcome_rows::parse(&o.key, body.as_ref(), &mut whole).unwrap();
        for window in [1, 7, 64, 4096] {
            let file = o.key.clone();
            let (got, rows) = windows::with_windows(store, &key, o.size, window, move |input| {
                let mut sink = Collect::default();
                let got = outcome_rows::parse(&file, input, &mut sink)?;
                Ok((got, sink.rows))
            })
            .await
            .unwrap();
            assert_eq!(got, want, "{} window {window}", o.key);
            assert_eq!(format!("{rows:?}"), format!("{:?}", whole.rows), "{} window {window}", o.key);
        }
    }
}

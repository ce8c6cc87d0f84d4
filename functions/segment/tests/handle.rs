//! The step end to end on a `mem://` store: input object → run → handle → members, rejected, segments.

use std::collections::BTreeMap;

use bytes::Bytes;
use cpo_common::keys::RunKeys;
use cpo_common::model::segment::{Member, Rejected, SegmentsDoc};
use cpo_common::run::{prepare, StartOptions};
use cpo_common::store::{open, DynStore, StoreExt};
use cpo_common::{Ctx, ErrorKind, Key, StepError, StepInput, StepOutput};

/// A copy of the old system's `data/raw/customers.csv` (no final newline, as shipped).
const SEED_CUSTOMERS: &str = "../../tests/fixtures/rfm/seed-customers.csv";

async fn setup(file: &str, body: &[u8], campaign_yaml: Option<&str>) -> (Ctx, String) {
    let store: DynStore = open("mem://").unwrap();
    if let Some(y) = campaign_yaml {
        store.put(&Key::new("campaigns/weekly.yaml").unwrap(), Bytes::from(y.to_string())).await.unwrap();
    }
    let key = Key::new(format!("incoming/weekly/{file}")).unwrap();
    store.put(&key, Bytes::copy_from_slice(body)).await.unwrap();
    let run = prepare(store.as_ref(), &key, &StartOptions::default()).await.unwrap();
    (Ctx::new(store), run.run_id)
}

async fn go(ctx: &Ctx, run_id: &str, action: Option<&str>) -> Result<StepOutput, StepError> {
    cpo_segment::handle(
        StepInput { run_id: run_id.into(), action: action.map(String::from), ..Default::default() },
        ctx,
    )
    .await
}

async fn members(ctx: &Ctx, run_id: &str) -> Vec<Member> {
    let keys = RunKeys::new(run_id).unwrap();
    let doc: SegmentsDoc = ctx.store.get_json(&keys.segments()).await.unwrap();
    let mut out = vec![];
    for p in &doc.member_parts {
        let body = ctx.store.get(&Key::new(p.clone()).unwrap()).await.unwrap();
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            out.push(serde_json::from_slice(line).unwrap());
        }
    }
    out
}

async fn rejected(ctx: &Ctx, run_id: &str) -> Vec<Rejected> {
    let keys = RunKeys::new(run_id).unwrap();
    let body = ctx.store.get(&keys.rejected()).await.unwrap();
    body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
}

#[tokio::test]
async fn seed_data_segments_sensibly() {
    let body = std::fs::read(SEED_CUSTOMERS).expect("seed fixture");
    let (ctx, run_id) =
        setup("customers.csv", &body, Some("name: weekly\nsegmentation: {min_segment_size: 10}\n")).await;
    let out = go(&ctx, &run_id, None).await.unwrap();
    assert_eq!(out.counts["input_rows"], 250);
    assert_eq!(out.counts["customers"], 250);
    assert_eq!(out.counts["rejected"], 0);
    let names = out.segments.clone().unwrap();
    // The old data's recency and frequency move together, so customers sit near the R×F diagonal.
    assert_eq!(names, vec!["Champions", "Loyal", "Need Attention", "Hibernating"]);
    let doc: SegmentsDoc = ctx.store.get_json(&RunKeys::new(&run_id).unwrap().segments()).await.unwrap();
    assert!(doc.segments.iter().all(|p| p.size >= 10));
    let merged: Vec<&String> = doc.segments.iter().flat_map(|p| &p.merged_from).collect();
    assert!(!merged.is_empty(), "small segments were merged: {merged:?}");
    let share: f64 = doc.segments.iter().map(|p| p.share).sum();
    assert!((share - 1.0).abs() < 1e-9);
    let m = members(&ctx, &run_id).await;
    assert_eq!(m.len(), 250);
    assert_eq!(m[0].customer_id, "C001");
    assert_eq!(m[0].line, 2);
    assert_eq!(m[0].monetary, 3000.0);
    assert_eq!(m[0].fields["historical_open_rate"], "0.45");
    assert_eq!(m[0].fields["tier"], "Gold");
    // C003: 3 days, 18 purchases × 300 — a best customer; a long-lapsed low spender is not.
    let c3 = m.iter().find(|x| x.customer_id == "C003").unwrap();
    assert_eq!(c3.segment, "Champions", "{c3:?}");
    let text = serde_json::to_string(&doc).unwrap();
    assert!(!text.contains("C001") && !text.contains("C003"), "profiles hold no customer ids");
    let champions = doc.segments.iter().find(|p| p.name == "Champions").unwrap();
    assert!(champions.spend_share > champions.share, "{champions:?}");
    // Re-invoking returns the recorded result.
    assert_eq!(go(&ctx, &run_id, None).await.unwrap(), out);
}

#[tokio::test]
async fn every_bad_row_kind_is_rejected_with_its_reason() {
    let csv = "customer_id,purchase_frequency,avg_order_value,last_engagement_days,first_name\n\
               C1,3,10.5,4,Ann\n\
               C2,x,10,4,Bo\n\
               C3,3,-1,4,Cy\n\
               ,3,1,4,Di\n\
               C4,3,1\n\
               C5,2,20,5,Ed\n\
               C5,2,20,5,Ed\n\
               C6,1,5,9,Fi\n\
               C6,9,5,9,Fi\n\
               C7,1,1,1,Gus";
    let (ctx, run_id) =
        setup("c.csv", csv.as_bytes(), Some("name: weekly\nsegmentation: {max_reject_ratio: 1.0}\n")).await;
    let out = go(&ctx, &run_id, None).await.unwrap();
    let rej = rejected(&ctx, &run_id).await;
    let by_line: BTreeMap<u64, (&str, &str)> =
        rej.iter().map(|r| (r.line, (r.field.as_str(), r.reason.as_str()))).collect();
    assert_eq!(by_line[&3], ("purchase_frequency", "not a number (1 character: letters)"));
    assert!(by_line[&4].1.starts_with("negative spend"), "{:?}", by_line[&4]);
    assert_eq!(by_line[&5], ("customer_id", "missing customer_id"));
    assert_eq!(by_line[&6], ("*", "expected 5 fields, found 3"));
    assert!(by_line[&8].1.contains("duplicate of line 7"));
    assert!(by_line[&9].1.contains("different values") && by_line[&10].1.contains("different values"));
    assert!(!by_line.contains_key(&7));
    assert_eq!(rej.iter().find(|r| r.line == 3).unwrap().raw, "C2,x,10,4,Bo");
    assert!(rej.iter().all(|r| r.file == "incoming/weekly/c.csv"));
    let m = members(&ctx, &run_id).await;
    let ids: Vec<&str> = m.iter().map(|x| x.customer_id.as_str()).collect();
    assert_eq!(ids, vec!["C1", "C5", "C7"]);
    assert_eq!(out.counts["input_rows"], 10);
    assert_eq!(m.len() + rej.len(), 10, "accepted + rejected = input rows");
    assert_eq!(out.counts["rejected"], 7);
}

#[tokio::test]
async fn too_many_rejects_empty_and_header_only_fail_clearly() {
    let csv = "customer_id,purchase_frequency,avg_order_value,last_engagement_days\nC1,1,1,1\nC2,y,1,1\n";
    let (ctx, run_id) = setup("bad.csv", csv.as_bytes(), None).await;
    let e = go(&ctx, &run_id, None).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InputInvalid);
    assert!(e.message.contains("incoming/weekly/bad.csv") && e.message.contains("1 of 2 rows rejected"), "{e}");
    assert!(e.message.contains("line 3, field purchase_frequency: not a number"), "{e}");

    let (ctx, run_id) = setup("empty.csv", b"", None).await;
    let e = go(&ctx, &run_id, None).await.unwrap_err();
    assert!(e.kind == ErrorKind::InputInvalid && e.message.contains("empty"), "{e}");

    let (ctx, run_id) =
        setup("h.csv", b"customer_id,purchase_frequency,avg_order_value,last_engagement_days\r\n", None).await;
    let e = go(&ctx, &run_id, None).await.unwrap_err();
    assert!(e.kind == ErrorKind::InputInvalid && e.message.contains("header but no rows"), "{e}");

    let (ctx, run_id) = setup("cols.csv", b"customer_id,spend\nC1,3\n", None).await;
    let e = go(&ctx, &run_id, None).await.unwrap_err();
    assert!(e.message.contains("line 1") && e.message.contains("purchase_frequency"), "{e}");
}

#[tokio::test]
async fn bom_crlf_quotes_and_no_final_newline() {
    let csv = "\u{feff}customer_id,purchase_frequency,avg_order_value,last_engagement_days,location\r\n\
               C1,3,10,4,\"Portland, OR\"\r\nC2,1,5,40,\"Austin\"\r\n\"C3\",7,20,1,Boston";
    let (ctx, run_id) =
        setup("b.csv", csv.as_bytes(), Some("name: weekly\nsegmentation: {min_segment_size: 0}\n")).await;
    let out = go(&ctx, &run_id, None).await.unwrap();
    assert_eq!(out.counts["customers"], 3);
    let m = members(&ctx, &run_id).await;
    assert_eq!(m[0].fields["location"], "Portland, OR");
    assert_eq!(m[2].customer_id, "C3");
    assert_eq!(m[2].line, 4);
}

/// The same customers as aggregate rows and as transactions segment identically.
#[tokio::test]
async fn aggregates_and_transactions_agree() {
    let agg = cpo_segment::synth::customers_csv(400, 11);
    let text = String::from_utf8(agg.clone()).unwrap();
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let mut tx = String::from("order_date,customer_id,amount,currency,first_name\n");
    let mut jsonl = String::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (id, freq, recency): (&str, u64, i64) = (f[0], f[4].parse().unwrap(), f[6].parse().unwrap());
        // Amounts are whole currency units here so the sum of the orders equals frequency × average exactly.
        let aov: f64 = f[5].parse::<f64>().unwrap().round();
        for k in 0..freq {
            let day = as_of - chrono::Duration::days(recency + (freq - 1 - k) as i64 * 3);
            tx.push_str(&format!("{day},{id},{aov},USD,{}\n", f[9]));
            jsonl.push_str(&format!("{{\"customer_id\":\"{id}\",\"order_date\":\"{day}\",\"amount\":{aov}}}\n"));
        }
    }
    let mut agg_rounded = String::from(text.lines().next().unwrap());
    agg_rounded.push('\n');
    for line in text.lines().skip(1) {
        let mut f: Vec<String> = line.split(',').map(String::from).collect();
        f[5] = format!("{}", f[5].parse::<f64>().unwrap().round());
        agg_rounded.push_str(&f.join(","));
        agg_rounded.push('\n');
    }
    let cfg = "name: weekly\nas_of: 2026-11-20\n";
    let (c1, r1) = setup("agg.csv", agg_rounded.as_bytes(), Some(cfg)).await;
    let (c2, r2) = setup("tx.csv", tx.as_bytes(), Some(cfg)).await;
    let (c3, r3) = setup("tx.jsonl", jsonl.as_bytes(), Some(cfg)).await;
    let o1 = go(&c1, &r1, None).await.unwrap();
    let o2 = go(&c2, &r2, None).await.unwrap();
    let o3 = go(&c3, &r3, None).await.unwrap();
    assert_eq!(o1.segments, o2.segments);
    assert_eq!(o1.segments, o3.segments);
    let (m1, m2, m3) = (members(&c1, &r1).await, members(&c2, &r2).await, members(&c3, &r3).await);
    assert_eq!(m1.len(), 400);
    for ((a, b), c) in m1.iter().zip(&m2).zip(&m3) {
        assert_eq!(a.customer_id, b.customer_id);
        assert_eq!((a.recency, a.frequency, a.monetary), (b.recency, b.frequency, b.monetary), "{}", a.customer_id);
        assert_eq!((a.r, a.f, a.m, &a.segment), (b.r, b.f, b.m, &b.segment));
        assert_eq!((a.r, a.f, a.m, &a.segment), (c.r, c.f, c.m, &c.segment));
    }
    assert_eq!(m2[0].fields["first_name"], m1[0].fields["first_name"]);
    let d2: SegmentsDoc = c2.store.get_json(&RunKeys::new(&r2).unwrap().segments()).await.unwrap();
    assert_eq!(d2.input_format, "transactions");
    assert_eq!(d2.as_of, as_of);
}

#[tokio::test]
async fn transactions_reject_future_dates_and_mixed_currency() {
    let tx = "customer_id,order_date,amount,currency\nC1,2026-01-01,10,USD\nC1,2026-02-01,5,usd\n\
              C2,2030-01-01,10,USD\nC3,2026-01-03,10,EUR\nC4,2026-01-04,-3,USD\nC5,2026-01-05,7,USD\n";
    let cfg = "name: weekly\nas_of: 2026-03-01\nsegmentation: {max_reject_ratio: 0.6, min_segment_size: 0}\n";
    let (ctx, run_id) = setup("t.csv", tx.as_bytes(), Some(cfg)).await;
    let out = go(&ctx, &run_id, None).await.unwrap();
    let rej = rejected(&ctx, &run_id).await;
    let lines: Vec<u64> = rej.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![4, 5, 6]);
    assert!(rej[0].reason.contains("after the run date"));
    assert!(rej[1].reason.contains("currency EUR"));
    assert!(rej[2].reason.starts_with("negative amount"));
    let m = members(&ctx, &run_id).await;
    assert_eq!(m.len(), 2);
    assert_eq!((m[0].recency, m[0].frequency, m[0].monetary), (28.0, 2.0, 15.0));
    assert_eq!(out.counts["input_rows"], 6);
}

/// Sharded actions produce exactly the single pass's members, rejects and segments — with ties everywhere
/// and duplicates that span shards.
#[tokio::test]
async fn sharded_equals_single_pass() {
    let mut csv = String::from_utf8(cpo_segment::synth::customers_csv(3000, 5)).unwrap();
    // Coarse values (many ties across shards) and duplicates across shards, one conflicting.
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    for l in lines.iter_mut().skip(1) {
        let mut f: Vec<String> = l.split(',').map(String::from).collect();
        f[5] = format!("{}", (f[5].parse::<f64>().unwrap() / 50.0).round() * 50.0);
        f[6] = format!("{}", f[6].parse::<u64>().unwrap() / 30 * 30);
        *l = f.join(",");
    }
    let early = lines[10].clone();
    lines.push(early.clone());
    lines.push(early.replacen(",", ",1", 1).replacen("Bronze", "Gold", 1));
    lines.push("C99999999,x,Denver,Gold,1,1,1,0.1,0.01,Al,al@example.com".into());
    csv = lines.join("\r\n");
    let cfg = "name: weekly\nexperiment: {part_size: 700}\n";
    let (ctx, run_id) = setup("big.csv", csv.as_bytes(), Some(cfg)).await;
    let single = go(&ctx, &run_id, None).await.unwrap();
    let single_members = members(&ctx, &run_id).await;
    let single_rejected = rejected(&ctx, &run_id).await;
    let keys = RunKeys::new(&run_id).unwrap();
    let single_doc: SegmentsDoc = ctx.store.get_json(&keys.segments()).await.unwrap();

    // Same store content, a new run for the sharded actions (another campaign digest via seed).
    let key = Key::new("incoming/weekly/big.csv").unwrap();
    let run2 = prepare(ctx.store.as_ref(), &key, &StartOptions { seed: Some(99), ..Default::default() }).await.unwrap();
    let r2 = run2.run_id.clone();
    let plan = cpo_segment::handle(
        StepInput {
            run_id: r2.clone(),
            action: Some("plan".into()),
            extra: [("shard_bytes".to_string(), serde_json::json!(40_000))].into_iter().collect(),
            ..Default::default()
        },
        &ctx,
    )
    .await
    .unwrap();
    let n = plan.counts["shards"].as_u64().unwrap();
    assert!(n >= 4, "{n} shards");
    let shard_input = |action: &str, s: u64| StepInput {
        run_id: r2.clone(),
        action: Some(action.into()),
        extra: [("shard".to_string(), serde_json::json!(s))].into_iter().collect(),
        ..Default::default()
    };
    // Sketches in reverse order: order of completion must not matter.
    for s in (0..n).rev() {
        cpo_segment::handle(shard_input("sketch", s), &ctx).await.unwrap();
    }
    go(&ctx, &r2, Some("merge")).await.unwrap();
    for s in 0..n {
        cpo_segment::handle(shard_input("score", s), &ctx).await.unwrap();
    }
    let sharded = go(&ctx, &r2, Some("finish")).await.unwrap();
    assert_eq!(sharded.segments, single.segments);
    assert_eq!(sharded.counts["customers"], single.counts["customers"]);
    assert_eq!(sharded.counts["rejected"], single.counts["rejected"]);
    assert_eq!(members(&ctx, &r2).await, single_members);
    assert_eq!(rejected(&ctx, &r2).await, single_rejected);
    assert_eq!(single_rejected.len(), 3, "{single_rejected:?}");
    let doc: SegmentsDoc = ctx.store.get_json(&RunKeys::new(&r2).unwrap().segments()).await.unwrap();
    assert_eq!(doc.segments, single_doc.segments);
}

/// Scores and names equal the pandas recipe (`tests/fixtures/rfm/make_expected.py`) on files full of ties.
#[tokio::test]
async fn scores_match_pandas() {
    for n in [7, 13, 250, 2000, 2001] {
        let dir = "../../tests/fixtures/rfm";
        let input = std::fs::read(format!("{dir}/input-{n}.csv")).unwrap();
        let expected = std::fs::read_to_string(format!("{dir}/expected-{n}.csv")).unwrap();
        let (ctx, run_id) =
            setup("ties.csv", &input, Some("name: weekly\nsegmentation: {min_segment_size: 0}\n")).await;
        go(&ctx, &run_id, None).await.unwrap();
        let m = members(&ctx, &run_id).await;
        let mut rdr = csv::Reader::from_reader(expected.as_bytes());
        let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
        assert_eq!(m.len(), n);
        for (got, want) in m.iter().zip(&rows) {
            let want_scores: Vec<u8> = (1..4).map(|i| want[i].parse().unwrap()).collect();
            assert_eq!(got.customer_id, &want[0]);
            assert_eq!(vec![got.r, got.f, got.m], want_scores, "n={n} {}", got.customer_id);
            assert_eq!(got.segment, &want[4], "n={n} {}", got.customer_id);
        }
    }
}

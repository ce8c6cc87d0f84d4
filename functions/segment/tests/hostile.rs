//! Hostile customer files through the step: errors stay short and free of customer data (docs/architecture.md,
//! Integrity §6), control characters reject their row, and oversized headers and lines are refused before
//! memory grows.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cpo_common::keys::RunKeys;
use cpo_common::model::segment::{Member, Rejected, SegmentsDoc};
use cpo_common::run::{prepare, StartOptions};
use cpo_common::store::{open, DynStore, StoreExt};
use cpo_common::{Ctx, ErrorKind, Key, StepError, StepInput, StepOutput};

const HEADER: &str = "customer_id,purchase_frequency,avg_order_value,last_engagement_days,first_name,email";
/// What an error message may be at most: a sentence about the file plus ≤ 200 characters of input.
const MAX_MESSAGE: usize = 600;

async fn setup(file: &str, body: Vec<u8>, campaign_yaml: Option<&str>) -> (Ctx, String) {
    let store: DynStore = open("mem://").unwrap();
    if let Some(y) = campaign_yaml {
        store.put(&Key::new("campaigns/weekly.yaml").unwrap(), Bytes::from(y.to_string())).await.unwrap();
    }
    let key = Key::new(format!("incoming/weekly/{file}")).unwrap();
    store.put(&key, Bytes::from(body)).await.unwrap();
    let run = prepare(store.as_ref(), &key, &StartOptions::default()).await.unwrap();
    (Ctx::new(store), run.run_id)
}

async fn go(ctx: &Ctx, run_id: &str, action: Option<&str>) -> Result<StepOutput, StepError> {
    let extra = match action {
        Some("plan") => [("shard_bytes".to_string(), serde_json::json!(1000))].into_iter().collect(),
        _ => Default::default(),
    };
    cpo_segment::handle(
        StepInput { run_id: run_id.into(), action: action.map(String::from), extra, ..Default::default() },
        ctx,
    )
    .await
}

/// The step's error on `body` in a single pass; with `sharded`, also the sharded actions' (the plan's, or the
/// merge's after every shard was sketched), which must keep the same promises.
async fn refused(file: &str, body: Vec<u8>, sharded: bool) -> Vec<StepError> {
    let (ctx, run_id) = setup(file, body, None).await;
    let mut out = vec![go(&ctx, &run_id, None).await.expect_err("the file must be refused")];
    if sharded {
        let s = match go(&ctx, &run_id, Some("plan")).await {
            Err(p) => p,
            Ok(plan) => {
                for s in 0..plan.counts["shards"].as_u64().unwrap() {
                    let input = StepInput {
                        run_id: run_id.clone(),
                        action: Some("sketch".into()),
                        extra: [("shard".to_string(), serde_json::json!(s))].into_iter().collect(),
                        ..Default::default()
                    };
                    cpo_segment::handle(input, &ctx).await.unwrap();
                }
                go(&ctx, &run_id, Some("merge")).await.expect_err("the sharded merge must refuse the file")
            }
        };
        out.push(s);
    }
    out
}

/// The common promises of every error: its kind, the file, short, and none of `secrets`.
fn bounded(e: &StepError, file: &str, secrets: &[&str]) {
    assert_eq!(e.kind, ErrorKind::InputInvalid, "{}", head(&e.message));
    assert!(e.message.contains(&format!("incoming/weekly/{file}")), "the file is named: {}", head(&e.message));
    assert!(e.message.chars().count() <= MAX_MESSAGE, "{} chars: {}", e.message.len(), head(&e.message));
    assert!(!has_email(&e.message), "an email address in: {}", e.message);
    for s in secrets {
        assert!(!e.message.contains(s), "{s:?} in: {}", e.message);
    }
}

fn head(s: &str) -> String {
    s.chars().take(400).collect()
}

/// Anything shaped like an address: `x@y.z`.
fn has_email(s: &str) -> bool {
    s.match_indices('@').any(|(i, _)| {
        let before = s[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || "._%+-".contains(c));
        let after = &s[i + 1..];
        let domain: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '-').collect();
        before && domain.contains('.')
    })
}

async fn rejected(ctx: &Ctx, run_id: &str) -> Vec<Rejected> {
    let keys = RunKeys::new(run_id).unwrap();
    let body = ctx.store.get(&keys.rejected()).await.unwrap();
    body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
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

/// `n` valid rows.
fn rows(n: usize) -> String {
    rows_at(0, n)
}

/// `n` valid rows (customers `from`, `from + 1`, …).
fn rows_at(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("C{i:04},{},{}.5,{},Name{i},user{i}@example.com\n", i % 9 + 1, i % 50 + 3, i % 30))
        .collect()
}

#[tokio::test]
async fn a_50_mb_line_is_not_echoed() {
    let big = "x".repeat(50 << 20);
    // As a value (the row is bad), and as the whole header.
    let body = format!("{HEADER}\n{}C9,{big},1,1,Al,al@example.com\n{}", rows(3), rows_at(100, 3));
    for e in &refused("long.csv", body.into_bytes(), true).await {
        bounded(
            e,
            "long.csv",
            &["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"],
        );
        assert!(e.message.contains("line 5"), "{}", head(&e.message));
    }
    let body = format!("customer_id,{big}\n{}", rows(3));
    for e in &refused("wide.csv", body.into_bytes(), false).await {
        bounded(
            e,
            "wide.csv",
            &["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"],
        );
        assert!(e.message.contains("line 1"), "{}", head(&e.message));
    }
}

#[tokio::test]
async fn json_given_where_csv_is_expected_leaks_no_emails() {
    // One JSON document of 100 customers on one line (about 29 KB): not JSON lines, so read as CSV.
    let objects: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "{{\"customer_id\":\"C{i:04}\",\"first_name\":\"Name{i}\",\"email\":\"user{i}@example.com\",\
                 \"purchase_frequency\":{},\"avg_order_value\":{}.5,\"last_engagement_days\":{},\
                 \"notes\":\"{}\"}}",
                i % 9 + 1,
                i % 50,
                i % 30,
                "n".repeat(150)
            )
        })
        .collect();
    let body = format!("[{}]\n", objects.join(","));
    assert!(body.len() > 25_000);
    for e in &refused("export.csv", body.into_bytes(), true).await {
        bounded(e, "export.csv", &["Name1", "C0001", "user"]);
        assert!(e.message.contains("line 1"), "{}", e.message);
    }
}

#[tokio::test]
async fn a_headerless_csv_does_not_echo_its_first_row() {
    let body = "C0001,Alice Smith,alice.smith@example.com,3,25.0,10\nC0002,Bob Jones,bob@example.com,1,5.0,90\n";
    for e in &refused("noheader.csv", body.as_bytes().to_vec(), true).await {
        bounded(e, "noheader.csv", &["Alice", "Smith", "alice", "C0001", "25.0"]);
        assert!(e.message.contains("line 1") && e.message.contains("header"), "{}", e.message);
    }
}

#[tokio::test]
async fn rejected_values_are_described_not_echoed() {
    // Shifted columns put names and addresses where numbers belong; a JSON line that is a bare string.
    let mut body = format!("{HEADER}\n{}", rows(4));
    body.push_str("C7,alice.smith@example.com,1,1,Al,x\nC8,1,Alice Smith,1,Al,x\nC9,1,1,bob@example.com,Bo,x\n");
    for e in &refused("shifted.csv", body.into_bytes(), true).await {
        bounded(e, "shifted.csv", &["Alice", "alice", "bob"]);
        assert!(e.message.contains("line 6, field purchase_frequency: not a number"), "{}", e.message);
    }

    let mut body = String::new();
    for i in 0..4 {
        body.push_str(&format!(
            "{{\"customer_id\":\"C{i}\",\"purchase_frequency\":1,\"avg_order_value\":2,\"last_engagement_days\":3}}\n"
        ));
    }
    body.push_str("\"carol.jones@example.com\"\n{\"customer_id\":\"C9\",\"purchase_frequency\":\"Dave Brown\"}\n");
    for e in &refused("j.jsonl", body.into_bytes(), true).await {
        bounded(e, "j.jsonl", &["carol", "Dave", "Brown"]);
        assert!(e.message.contains("line 5") && e.message.contains("line 6"), "{}", e.message);
    }
}

/// A header of a million columns is refused at once, before a table a million columns wide is built.
#[tokio::test]
async fn a_million_column_header_is_refused_quickly() {
    let mut body = String::from(HEADER);
    for i in 0..1_000_000 {
        body.push_str(&format!(",c{i}"));
    }
    body.push('\n');
    body.push_str(&rows(3));
    let t = Instant::now();
    for e in &refused("columns.csv", body.into_bytes(), true).await {
        bounded(e, "columns.csv", &["c999999"]);
        assert!(
            e.message.contains("line 1") && e.message.contains("columns") && e.message.contains("4096"),
            "{}",
            e.message
        );
    }
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

/// A 2 MiB line — a valid row, with an absurd first name — is refused, naming the line and the limit: on the
/// quote-free path, through the csv reader (a quoted field elsewhere), as JSON lines, and in the sharded plan.
#[tokio::test]
async fn a_2_mib_line_is_refused() {
    let name = "n".repeat(2 << 20);
    let cases = [
        ("fast.csv", format!("{HEADER}\n{}C9,1,1,1,{name},x\n{}", rows(3), rows_at(100, 3))),
        (
            "quoted.csv",
            format!("{HEADER}\n{}C9,1,1,1,\"{name}\",x\nC10,1,1,1,\"Salt, Lake\",x\n{}", rows(3), rows_at(100, 3)),
        ),
        // One record of many lines, none of them long: a quote left open.
        ("open.csv", format!("{HEADER}\n{}C9,1,1,1,\"{},x\n{}", rows(3), "ab\n".repeat(1 << 20), rows_at(100, 3))),
        (
            "big.jsonl",
            format!(
                "{}{{\"customer_id\":\"C9\",\"purchase_frequency\":1,\"avg_order_value\":1,\
                 \"last_engagement_days\":1,\"first_name\":\"{name}\"}}\n",
                rows(3)
                    .lines()
                    .map(|l| {
                        let f: Vec<&str> = l.split(',').collect();
                        format!(
                            "{{\"customer_id\":\"{}\",\"purchase_frequency\":{},\"avg_order_value\":{},\
                             \"last_engagement_days\":{}}}\n",
                            f[0], f[1], f[2], f[3]
                        )
                    })
                    .collect::<String>()
            ),
        ),
    ];
    for (file, body) in cases {
        for e in &refused(file, body.into_bytes(), true).await {
            bounded(e, file, &["nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"]);
            let line = if file == "big.jsonl" { "line 4" } else { "line 5" };
            assert!(e.message.contains(line), "{file}: {}", e.message);
            assert!(e.message.contains("1048576 bytes"), "{file}: the limit is named: {}", e.message);
        }
    }
}

/// NUL, escape and other control characters in an id or a merge field reject the row, with a reason; a tab
/// or a newline inside a quoted merge field is text.
#[tokio::test]
async fn control_characters_reject_the_row() {
    let csv = format!(
        "{HEADER}\n{}C\u{0}1,1,1,1,Al,a\nC2\u{7f},1,1,1,Bo,b\nC3,1,1,1,Cy\u{1b}[31m,c\nC4,1,1,1,Di,d\u{0}\n\
         C5,1,1,1,\"Ed\tWard\",e\nC6,1,1,1,\"Fi\nOna\",f\n",
        rows(4)
    );
    let jsonl = {
        let mut s = String::new();
        for l in rows(4).lines() {
            let f: Vec<&str> = l.split(',').collect();
            s.push_str(&format!(
                "{{\"customer_id\":\"{}\",\"purchase_frequency\":{},\"avg_order_value\":{},\"last_engagement_days\":{},\
                 \"first_name\":\"{}\",\"email\":\"{}\"}}\n",
                f[0], f[1], f[2], f[3], f[4], f[5]
            ));
        }
        s.push_str("{\"customer_id\":\"C\\u00001\",\"purchase_frequency\":1,\"avg_order_value\":1,\"last_engagement_days\":1}\n");
        s.push_str("{\"customer_id\":\"C3\",\"purchase_frequency\":1,\"avg_order_value\":1,\"last_engagement_days\":1,\"first_name\":\"Cy\\u001b[31m\"}\n");
        s.push_str("{\"customer_id\":\"C5\",\"purchase_frequency\":1,\"avg_order_value\":1,\"last_engagement_days\":1,\"first_name\":\"Ed\\tWard\"}\n");
        s
    };
    let quote_free = format!("{HEADER}\n{}C\u{0}1,1,1,1,Al,a\nC3,1,1,1,Cy\u{1b}[31m,c\nC7,1,1,1,\u{85}x,z\n", rows(4));
    let cfg = Some("name: weekly\nsegmentation: {max_reject_ratio: 1.0, min_segment_size: 1}\n");
    for (file, body, bad) in [("c.csv", csv, 4), ("c.jsonl", jsonl, 2), ("free.csv", quote_free, 3)] {
        let (ctx, run_id) = setup(file, body.into_bytes(), cfg).await;
        let out = go(&ctx, &run_id, None).await.unwrap_or_else(|e| panic!("{file}: {e}"));
        let rej = rejected(&ctx, &run_id).await;
        let m = members(&ctx, &run_id).await;
        assert_eq!(rej.len(), bad, "{file}: {rej:?}");
        assert_eq!(out.counts["rejected"], bad as u64, "{file}");
        for r in &rej {
            assert!(r.field == "customer_id" || r.field == "first_name" || r.field == "email", "{file}: {r:?}");
            assert!(r.reason.contains("control character"), "{file}: {r:?}");
            assert!(!r.reason.chars().any(|c| c.is_control()), "{file}: {r:?}");
        }
        assert!(m.iter().all(|x| !x.customer_id.chars().any(char::is_control)), "{file}");
        for x in &m {
            for v in x.fields.values() {
                assert!(!v.chars().any(|c| c.is_control() && !"\t\r\n".contains(c)), "{file}: {v:?}");
            }
        }
        if file != "free.csv" {
            assert!(m.iter().any(|x| x.fields.get("first_name").is_some_and(|n| n == "Ed\tWard")), "{file}");
        }
    }
}

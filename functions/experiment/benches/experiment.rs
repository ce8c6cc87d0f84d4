//! Micro-benchmarks of the hot paths: the assignment hash and arm pick (once per customer), one part of the
//! `assign` and `simulate` steps (parse, assign, serialise: × 100 = their CPU time at a million customers),
//! and the statistics of one arm-vs-control comparison (once per row of `analysis.json`).
//!
//! `cargo bench -p cpo-experiment`

use cpo_common::config::Simulation;
use cpo_common::model::variant::Message;
use cpo_common::stats;
use cpo_common::Key;
use cpo_experiment::assign::AssignJob;
use cpo_experiment::hashing::{customer_key, holdout_position, unit_interval};
use cpo_experiment::member::{JsonLines, MemberRef};
use cpo_experiment::plan::{Plan, PlannedMessage, Slot};
use cpo_experiment::send;
use cpo_experiment::simulate::SimJob;
use divan::black_box;

fn main() {
    divan::main();
}

fn plan() -> Plan {
    let slot = |arm: &str, weight: f64| Slot { arm: arm.into(), variant_id: arm.into(), weight };
    let slots = vec![slot("control", 0.25), slot("urgent", 0.25), slot("informational", 0.25), slot("friendly", 0.25)];
    Plan {
        experiment_id: "weekly-2026W48".into(),
        campaign: "weekly".into(),
        holdout: 0.05,
        arm_order: vec![],
        segments: [("Champions".to_string(), slots)].into_iter().collect(),
        fallback: vec![slot("control", 1.0)],
        messages: Default::default(),
        blocked: vec![],
        thompson: None,
    }
}

#[divan::bench]
fn assignment_hash() -> f64 {
    unit_interval(black_box("weekly-2026W48"), black_box("C0001234567"))
}

/// 10 000 customers hashed and placed: × 1000 = the per-customer cost of a 10M-customer run.
#[divan::bench]
fn assign_10k_customers(bencher: divan::Bencher) {
    let plan = plan();
    let ids: Vec<String> = (0..10_000).map(|i| format!("C{i:010}")).collect();
    bencher.bench_local(|| {
        let mut control = 0u32;
        for id in &ids {
            let (arm, _) =
                plan.pick("Champions", holdout_position("weekly", id), unit_interval(&plan.experiment_id, id));
            control += u32::from(arm == "control");
        }
        control
    });
}

/// 10 000 members lines shaped like segment's output for the synthetic customers (`cpo gen customers`).
fn members_part() -> Vec<u8> {
    let mut out = Vec::new();
    let segments = ["Champions", "At Risk", "Hibernating", "Loyal"];
    for i in 0..10_000u32 {
        let line = format!(
            "{{\"customer_id\":\"C{i:08}\",\"line\":{},\"recency\":221.0,\"frequency\":2.0,\"monetary\":51.74,\
             \"r\":{},\"f\":1,\"m\":1,\"segment\":\"{}\",\"fields\":{{\"age\":\"29\",\"location\":\"Philadelphia\",\
             \"tier\":\"Bronze\",\"historical_open_rate\":\"0.{:02}\",\"historical_click_rate\":\"0.007\",\
             \"first_name\":\"Ella\",\"email\":\"ella.{i}@example.net\"}}}}\n",
            i + 2,
            i % 5 + 1,
            segments[i as usize % 4],
            i % 40
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn assign_job() -> AssignJob {
    let mut plan = plan();
    let slots = plan.segments["Champions"].clone();
    for s in ["At Risk", "Hibernating", "Loyal"] {
        plan.segments.insert(s.to_string(), slots.clone());
    }
    let message = Message {
        subject: "Hi {{first_name}}".into(),
        preheader: String::new(),
        body: "Body".into(),
        cta: "Shop".into(),
    };
    plan.messages.insert("control".into(), PlannedMessage { arm: "control".into(), segment: None, message });
    let templates = send::templates("run", &plan);
    AssignJob { plan, templates, render: false, exclusions: Default::default() }
}

/// Parse only: the borrowed members view of one part.
#[divan::bench]
fn members_parse_10k(bencher: divan::Bencher) {
    let body = members_part();
    let key = Key::new("runs/r/customers/members-00000.jsonl").unwrap();
    bencher.counter(divan::counter::BytesCount::new(body.len())).bench_local(|| {
        let mut lines = JsonLines::new(&key, &body).unwrap();
        let mut r = 0u32;
        while let Some(m) = lines.next_row::<MemberRef<'_>>() {
            r += u32::from(m.unwrap().r);
        }
        r
    });
}

/// One part of `assign`: parse, hash, pick, assignments JSONL and send CSV.
#[divan::bench]
fn assign_part_10k(bencher: divan::Bencher) {
    let (body, job) = (members_part(), assign_job());
    let key = Key::new("runs/r/customers/members-00000.jsonl").unwrap();
    bencher.counter(divan::counter::BytesCount::new(body.len())).bench_local(|| job.part(&key, &body).unwrap());
}

/// One part of `simulate`: both parts parsed, one random stream per customer, the CSV rows.
#[divan::bench]
fn simulate_part_10k(bencher: divan::Bencher) {
    let (members, job) = (members_part(), assign_job());
    let mkey = Key::new("runs/r/customers/members-00000.jsonl").unwrap();
    let akey = Key::new("runs/r/assignments/part-00000.jsonl").unwrap();
    let assignments = job.part(&mkey, &members).unwrap().assignments;
    let sim = SimJob::new(Simulation::default(), 7, chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
    bencher
        .counter(divan::counter::BytesCount::new(members.len() + assignments.len()))
        .bench_local(|| sim.part(&mkey, &members, &akey, &assignments).unwrap());
}

#[divan::bench]
fn outcome_customer_key() -> [u8; 12] {
    customer_key(black_box("C0001234567"))
}

#[divan::bench(args = [(120, 1_000, 150, 1_000), (48_000, 400_000, 48_950, 400_100)])]
fn beta_compare(counts: (u64, u64, u64, u64)) -> Option<stats::BetaComparison> {
    let (kc, nc, k, n) = black_box(counts);
    stats::beta_compare(kc, nc, k, n)
}

#[divan::bench]
fn frequentist_row() -> f64 {
    let (kc, nc, k, n) = black_box((4_980u64, 100_000u64, 5_210u64, 100_000u64));
    let t = stats::two_proportion_test(kc, nc, k, n, false).map(|t| t.p_value).unwrap_or(1.0);
    let w = stats::wilson(k, n, 0.05).map(|i| i.low).unwrap_or(0.0);
    let d = stats::newcombe_diff(kc, nc, k, n, 0.05).map(|i| i.low).unwrap_or(0.0);
    let l = stats::lift_ci(kc, nc, k, n, 0.05).map(|i| i.low).unwrap_or(0.0);
    let m = stats::mde(kc as f64 / nc as f64, nc, n, 0.05, 0.8).unwrap_or(0.0);
    t + w + d + l + m
}

#[divan::bench]
fn srm_chi_square() -> Option<(f64, f64)> {
    stats::chi2_goodness_of_fit(
        black_box(&[25_123, 24_877, 12_400, 12_600]),
        &[1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0, 1.0 / 6.0],
    )
}

#[divan::bench]
fn holm_and_bh_12() -> f64 {
    let p = black_box([0.001, 0.2, 0.2, 0.049, 0.0125, 0.9, 0.3, 0.04, 0.00001, 0.7, 0.03, 0.5]);
    stats::holm(&p)[0] + stats::benjamini_hochberg(&p)[0]
}

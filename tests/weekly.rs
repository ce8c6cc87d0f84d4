//! A weekly campaign over three weeks, end to end through the state machines: the same customers file every
//! week, outcomes with unsubscribes and bounces dropped between weeks, and a second campaign ("promo") that
//! sends to part of the same customers between weeks 1 and 2. Run twice: with `cpo run --as-of` on `file://`,
//! and through the trigger's Lambda handler (the weekly schedule with its fire time, outcomes drops as
//! EventBridge "Object Created" events) on moto's S3.
//!
//! The campaign: `holdout: 0.1`, `contact_policy: {max_sends: 1, per_days: 7}` — a weekly send is allowed
//! (the previous week is 7 days back, outside the window), a promo send 3 days before week 2 is not.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use cpo::local::LocalStarter;
use cpo_common::keys::{Key, RunKeys};
use cpo_common::store::emulators::{unique_prefix, EmulatorEnv};
use cpo_common::store::{DynStore, StoreExt};
use cpo_common::Ctx;
use cpo_e2e::*;
use cpo_trigger::handler::{handle_value, Deps};
use cpo_trigger::Starter;
use serde_json::{json, Value};

const N: u64 = 1500;
const WEEKS: [&str; 3] = ["2026-11-23", "2026-11-30", "2026-12-07"];
const PROMO_DATE: &str = "2026-11-27";
const PROMO_CUSTOMERS: usize = 500;

fn weekly_yaml() -> String {
    let text = cpo_common::bundled::campaign_yaml().replace("holdout: 0.0", "holdout: 0.1");
    assert!(text.contains("holdout: 0.1"), "the bundled campaign's holdout line moved");
    format!("{text}\ncontact_policy: {{max_sends: 1, per_days: 7}}\n")
}

fn promo_yaml() -> String {
    cpo_common::bundled::campaign_yaml().replace("name: weekly", "name: promo")
}

/// How a week is started and outcomes are delivered.
#[async_trait::async_trait]
trait Driver {
    fn store(&self) -> DynStore;
    /// Run a campaign for a date; returns its run id.
    async fn run(&self, campaign: &str, date: &str) -> String;
    /// Drop an outcomes file for a run and let the analysis machine ingest it.
    async fn outcomes(&self, run_id: &str, name: &str, csv: String);
}

// ------------------------------------------------------------------------------------- cpo run on file://

struct Cli {
    s: Scratch,
    customers: std::path::PathBuf,
    promo: std::path::PathBuf,
}

#[async_trait::async_trait]
impl Driver for Cli {
    fn store(&self) -> DynStore {
        self.s.store()
    }
    async fn run(&self, campaign: &str, date: &str) -> String {
        let file = self.s.path(&format!("{campaign}.yaml"));
        std::fs::write(&file, if campaign == "weekly" { weekly_yaml() } else { promo_yaml() }).unwrap();
        let input = if campaign == "weekly" { &self.customers } else { &self.promo };
        let mut args = run_args(&self.s.store_url(), input, false);
        args.campaign = file.display().to_string();
        args.as_of = Some(date.parse().unwrap());
        cpo::cmd::run::run(args).await.expect("cpo run");
        run_of(&self.store(), campaign, date).await
    }
    async fn outcomes(&self, run_id: &str, name: &str, csv: String) {
        let path = self.s.path(name);
        std::fs::write(&path, csv).unwrap();
        let args = cpo::cmd::analyze::Args {
            store: self.s.store_url(),
            run: run_id.into(),
            outcomes: vec![path],
            definitions: None,
            json: true,
        };
        cpo::cmd::analyze::run(args).await.expect("cpo analyze");
    }
}

/// The run of a campaign dated `date` (exactly one).
async fn run_of(store: &DynStore, campaign: &str, date: &str) -> String {
    let stamp = date.replace('-', "");
    let runs: BTreeSet<String> = store
        .list(&Key::new("runs/").unwrap())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|o| o.key.strip_prefix("runs/")?.strip_suffix("/input.json").map(String::from))
        .filter(|r| r.starts_with(&format!("{campaign}-{stamp}-")))
        .collect();
    assert_eq!(runs.len(), 1, "{campaign} {date}: {runs:?}");
    runs.into_iter().next().unwrap()
}

// ------------------------------------------------------------------- the trigger's handler on moto's S3

struct Trigger {
    store: DynStore,
    deps: Deps,
    starter: Arc<LocalStarter>,
    bucket: String,
    prefix: String,
}

impl Trigger {
    fn check(&self, from: usize) {
        for f in self.starter.finished.lock().unwrap().iter().skip(from) {
            if let Err(e) = &f.result {
                panic!("execution {} failed: {}: {}", f.start.name, e.error, e.cause);
            }
        }
    }
}

#[async_trait::async_trait]
impl Driver for Trigger {
    fn store(&self) -> DynStore {
        self.store.clone()
    }
    async fn run(&self, campaign: &str, date: &str) -> String {
        let from = self.starter.finished.lock().unwrap().len();
        // EventBridge Scheduler's input with `<aws.scheduler.scheduled-time>` filled in.
        let event = json!({"campaign": campaign, "scheduled_time": format!("{date}T08:00:00Z")});
        let out = handle_value(event, &self.deps).await.expect("trigger (schedule)");
        assert_eq!(out.started.len(), 1, "{out:?}");
        self.check(from);
        run_of(&self.store, campaign, date).await
    }
    async fn outcomes(&self, run_id: &str, name: &str, csv: String) {
        let key = RunKeys::new(run_id).unwrap().outcomes(name).unwrap();
        self.store.put(&key, Bytes::from(csv)).await.unwrap();
        let from = self.starter.finished.lock().unwrap().len();
        let event = json!({
            "version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3", "account": "1",
            "time": "2026-11-24T06:00:00Z", "region": "eu-west-1", "resources": [],
            "detail": {"version": "0", "bucket": {"name": self.bucket}, "object": {"key": format!("{}/{key}", self.prefix)},
                       "reason": "PutObject"},
        });
        let out = handle_value(event, &self.deps).await.expect("trigger (outcomes)");
        assert_eq!(out.started.len(), 1, "{out:?}");
        self.check(from);
    }
}

// ------------------------------------------------------------------------------------------ the weeks

async fn lines_of(store: &DynStore, prefix: &Key) -> Vec<String> {
    lines(store, prefix).await
}

/// Customer ids of a run's send lists (`send/part-*.csv`).
async fn sent(store: &DynStore, run_id: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for o in store.list(&keys(run_id).prefix().join("send/").unwrap()).await.unwrap() {
        if !o.key.ends_with(".csv") {
            continue;
        }
        let body = store.get(&Key::new(o.key).unwrap()).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        out.extend(text.lines().skip(1).map(|l| l.split(',').next().unwrap().to_string()));
    }
    out
}

async fn held_out(store: &DynStore, run_id: &str) -> BTreeSet<String> {
    lines_of(store, &keys(run_id).assignments_prefix())
        .await
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|a| a["arm"] == "holdout")
        .map(|a| a["customer_id"].as_str().unwrap().to_string())
        .collect()
}

/// customer id → reason, from the run's `suppressed/` parts.
async fn left_out(store: &DynStore, run_id: &str) -> BTreeMap<String, String> {
    lines_of(store, &keys(run_id).suppressed_prefix())
        .await
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["customer_id"].as_str().unwrap().to_string(), v["reason"].as_str().unwrap().to_string()))
        .collect()
}

/// Outcomes of a week: every recipient delivered, every 3rd opened, every 11th unsubscribed, every 37th
/// bounced. Returns the CSV and who unsubscribed or bounced.
fn outcomes_csv(recipients: &BTreeSet<String>, date: &str) -> (String, BTreeSet<String>) {
    let mut csv = String::from("customer_id,event,timestamp\n");
    let mut gone = BTreeSet::new();
    for (i, id) in recipients.iter().enumerate() {
        csv.push_str(&format!("{id},delivered,{date}T09:00:00Z\n"));
        if i % 3 == 0 {
            csv.push_str(&format!("{id},open,{date}T12:00:00Z\n"));
        }
        if i % 11 == 0 {
            csv.push_str(&format!("{id},unsubscribe,{date}T13:00:00Z\n"));
            gone.insert(id.clone());
        } else if i % 37 == 5 {
            csv.push_str(&format!("{id},bounce,{date}T09:05:00Z\n"));
            gone.insert(id.clone());
        }
    }
    (csv, gone)
}

async fn three_weeks(d: &dyn Driver, label: &str) {
    let store = d.store();
    let mut runs = Vec::new();
    let mut gone: BTreeSet<String> = BTreeSet::new();
    let mut promo_sent = BTreeSet::new();
    let mut report = Vec::new();
    let mut per_week = Vec::new();
    for (w, date) in WEEKS.iter().enumerate() {
        if w == 1 {
            let promo = d.run("promo", PROMO_DATE).await;
            promo_sent = sent(&store, &promo).await;
            // Suppression is store-wide: the promo, too, leaves out week 1's unsubscribes and bounces.
            let promo_out = left_out(&store, &promo).await;
            assert!(promo_sent.is_disjoint(&gone));
            assert!(promo_out.keys().all(|c| gone.contains(c)), "promo left out only earlier unsubscribes");
            assert_eq!(promo_sent.len() + promo_out.len(), PROMO_CUSTOMERS, "promo has no holdout");
        }
        let run = d.run("weekly", date).await;
        let input: Value = json(&store, &keys(&run).input()).await;
        assert_eq!(input["date"], *date, "the week's date is the send date");
        let recipients = sent(&store, &run).await;
        let why = left_out(&store, &run).await;
        let held = held_out(&store, &run).await;
        // Nobody who unsubscribed or bounced in an earlier week is sent to, or assigned: they are suppressed
        // with the reason their outcome gave.
        for id in &gone {
            assert!(!recipients.contains(id), "week {}: {id} unsubscribed or bounced earlier but is sent to", w + 1);
            let r = why.get(id).map(String::as_str);
            assert!(matches!(r, Some("unsubscribe" | "bounce")), "week {}: {id} left out as {r:?}", w + 1);
        }
        let deferred: BTreeSet<String> =
            why.iter().filter(|(_, r)| *r == "contact_policy").map(|(c, _)| c.clone()).collect();
        let suppressed = why.len() - deferred.len();
        assert_eq!(
            suppressed,
            gone.len(),
            "week {}: suppressed are exactly the earlier unsubscribes and bounces",
            w + 1
        );
        // Contact policy: promo's recipients (3 days before week 2) are deferred in week 2, unless suppressed
        // or held out; weekly sends 7 days apart are allowed, so weeks 1 and 3 defer nobody.
        let expect: BTreeSet<String> = if w == 1 {
            promo_sent.iter().filter(|c| !gone.contains(*c) && !held.contains(*c)).cloned().collect()
        } else {
            BTreeSet::new()
        };
        assert_eq!(deferred, expect, "week {}: deferred", w + 1);
        assert!(deferred.is_disjoint(&recipients));
        assert_eq!(recipients.len() + held.len() + why.len(), N as usize, "week {}: everyone accounted for", w + 1);
        let counts = &json(&store, &keys(&run).step("assign")).await["output"]["counts"];
        assert_eq!(counts["deferred"], deferred.len() as u64);
        assert_eq!(counts["suppressed_total"], suppressed as u64);
        report.push(format!(
            "{label} week {} ({date}): sent {}, held out {}, suppressed {} {}, deferred {}",
            w + 1,
            recipients.len(),
            held.len(),
            suppressed,
            counts["suppressed"],
            deferred.len()
        ));
        // The report counts who was left out, by reason (never who).
        let md = String::from_utf8(store.get(&keys(&run).report("report.md")).await.unwrap().to_vec()).unwrap();
        if suppressed + deferred.len() > 0 {
            let line = md.lines().find(|l| l.starts_with("Left out before assignment:")).expect("report block");
            assert!(line.contains(&format!("{} deferred by the contact policy", deferred.len())), "{line}");
            assert!(w == 0 || line.contains("unsubscribe"), "{line}");
            assert!(!gone.iter().any(|c| md.contains(c.as_str())), "the report names a suppressed customer");
        } else {
            assert!(!md.contains("Left out before assignment"));
        }
        runs.push((run.clone(), held));
        per_week.push((suppressed as u64, deferred.len() as u64));
        if w < 2 {
            let (csv, unsubscribed) = outcomes_csv(&recipients, date);
            d.outcomes(&run, &format!("esp-week{}.csv", w + 1), csv).await;
            gone.extend(unsubscribed);
        }
    }
    assert!(!gone.is_empty());
    // The holdout is a property of the customer: the same customers every week.
    assert!(!runs[0].1.is_empty());
    assert_eq!(runs[0].1, runs[1].1, "holdout week 1 vs 2");
    assert_eq!(runs[0].1, runs[2].1, "holdout week 1 vs 3");
    // The ledger lists the three weeks, in date order, with the counts they recorded.
    let ledger = cpo_experiment::ledger::read(store.as_ref(), "weekly").await.unwrap();
    let listed: Vec<(String, String)> = ledger.iter().map(|e| (e.run_id.clone(), e.date.to_string())).collect();
    let want: Vec<(String, String)> = runs.iter().zip(WEEKS).map(|((r, _), d)| (r.clone(), d.to_string())).collect();
    assert_eq!(listed, want);
    let recorded: Vec<(u64, u64)> =
        ledger.iter().map(|e| (e.counts.suppressed.values().sum(), e.counts.deferred)).collect();
    assert_eq!(recorded, per_week, "ledger (suppressed, deferred) per week");
    assert!(per_week[1].1 > 0, "the promo's recipients are deferred in week 2");
    // `cpo ledger weekly` reads the same entries.
    let args = cpo::cmd::ledger::Args { campaign: "weekly".into(), store: store.url().to_string(), json: true };
    if store.url().starts_with("file://") {
        assert_eq!(cpo::cmd::ledger::run(args).await.expect("cpo ledger"), std::process::ExitCode::SUCCESS);
    }
    for line in report {
        println!("{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_weeks_with_cpo_run_as_of_on_file() {
    let s = Scratch::new();
    let customers = s.customers(N, 21);
    let text = std::fs::read_to_string(&customers).unwrap();
    let promo = s.path("promo.csv");
    std::fs::write(&promo, text.lines().take(PROMO_CUSTOMERS + 1).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let d = Cli { s, customers, promo };
    three_weeks(&d, "file://").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_scheduled_weeks_through_the_trigger_on_moto() {
    let env = EmulatorEnv::require();
    let prefix = unique_prefix("weekly");
    let store = cpo_common::store::open(&env.s3_url(&prefix)).unwrap();
    let starter = Arc::new(LocalStarter::new(Ctx::new(store.clone()), None).with_time_scale(0.0));
    let deps = Deps::for_store(store.clone(), starter.clone() as Arc<dyn Starter>, None).unwrap();
    let customers = cpo_segment::synth::customers_csv(N, 21);
    let text = String::from_utf8(customers.clone()).unwrap();
    let promo = text.lines().take(PROMO_CUSTOMERS + 1).collect::<Vec<_>>().join("\n") + "\n";
    for (key, body) in [
        ("campaigns/weekly.yaml", weekly_yaml().into_bytes()),
        ("campaigns/promo.yaml", promo_yaml().into_bytes()),
        ("incoming/weekly/customers.csv", customers),
        ("incoming/promo/customers.csv", promo.into_bytes()),
    ] {
        store.put(&Key::new(key).unwrap(), Bytes::from(body)).await.unwrap();
    }
    let d = Trigger { store, deps, starter, bucket: env.s3_bucket.clone(), prefix };
    three_weeks(&d, "moto s3").await;
}

// ------------------------------------------------------------------------- thompson allocation over weeks

/// The bundled campaign in thompson mode, with `friendly` clearly the best tone (simulated opens doubled).
fn thompson_yaml() -> String {
    let text = cpo_common::bundled::campaign_yaml();
    let sim = "simulation: {seed: 7, lifts: {urgent: 0.10, informational: 0.05, friendly: 0.15}}";
    assert!(text.contains(sim), "the bundled campaign's simulation line moved");
    text.replace(sim, "simulation: {seed: 7, lifts: {urgent: 0.0, informational: 0.0, friendly: 1.0}}")
        + "\nallocation: {mode: thompson, control_share: 0.25, floor: 0.05, decay: 0.8}\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thompson_weeks_move_share_to_the_clearly_better_tone() {
    const DATES: [&str; 4] = ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"];
    let s = Scratch::new();
    let customers = s.customers(6000, 5);
    let file = s.path("weekly.yaml");
    std::fs::write(&file, thompson_yaml()).unwrap();
    let store = s.store();
    let mut friendly_share = Vec::new();
    for date in DATES {
        let mut args = run_args(&s.store_url(), &customers, true);
        args.campaign = file.display().to_string();
        args.as_of = Some(date.parse().unwrap());
        cpo::cmd::run::run(args).await.expect("cpo run");
        let run_id = run_of(&store, "weekly", date).await;
        let keys = RunKeys::new(&run_id).unwrap();
        let w: Value = store.get_json(&keys.prefix().join("weights.json").unwrap()).await.unwrap();
        assert_eq!(w["mode"], "thompson");
        let segs = w["segments"].as_object().unwrap();
        for (seg, arms) in segs {
            assert!((arms["control"].as_f64().unwrap() - 0.25).abs() < 1e-12, "{date} {seg}: {arms}");
            for (arm, x) in arms.as_object().unwrap() {
                assert!(x.as_f64().unwrap() >= 0.05 - 1e-12, "{date} {seg} {arm} below the floor: {arms}");
            }
        }
        // The weights in force were tested for SRM and match the assignment.
        let analysis: Value = store.get_json(&keys.analysis()).await.unwrap();
        assert_eq!(analysis["srm_flag"], false, "{date}: {}", analysis["srm_p_value"]);
        assert_eq!(analysis["extra"]["weights_in_force"], w["segments"]);
        // friendly's share of everyone assigned this week.
        let arms: Value = store.get_json(&keys.step("assign")).await.unwrap();
        let arms = &arms["output"]["counts"]["arms"];
        let total: f64 = arms.as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum();
        friendly_share.push(arms["friendly"].as_f64().unwrap() / total);
    }
    println!("friendly share by week: {friendly_share:?}");
    assert!((friendly_share[0] - 0.25).abs() < 0.03, "week 1 splits equally: {friendly_share:?}");
    assert!(friendly_share[2] > 0.45 && friendly_share[3] > 0.5, "friendly gains share: {friendly_share:?}");

    // The campaign across weeks.
    let args = cpo::cmd::campaign::Args {
        command: cpo::cmd::campaign::Command::Report(cpo::cmd::campaign::ReportArgs {
            campaign: "weekly".into(),
            store: s.store_url(),
            json: true,
        }),
    };
    cpo::cmd::campaign::run(args).await.expect("cpo campaign report");
    let doc: cpo_common::model::weeks::CampaignWeeksDoc =
        store.get_json(&Key::new("campaigns/weekly/report/report.json").unwrap()).await.unwrap();
    assert_eq!(doc.weeks.len(), 4);
    let big: Vec<_> = doc.segments.iter().filter(|s| s.weeks.iter().all(|w| !w.arms.is_empty())).collect();
    assert!(!big.is_empty());
    let best_friendly = big.iter().filter(|s| s.best.as_ref().is_some_and(|b| b.arm == "friendly")).count();
    assert!(best_friendly * 2 > big.len(), "friendly is the best arm in most segments");
    let (actual, fixed): (u64, f64) = doc
        .segments
        .iter()
        .filter_map(|s| s.cumulative.last())
        .fold((0, 0.0), |(a, f), c| (a + c.actual, f + c.fixed_split));
    println!("cumulative clicks: {actual} with thompson vs {fixed:.1} estimated for the fixed split");
    assert!(actual as f64 > fixed, "thompson earned more than the fixed split: {actual} vs {fixed}");
    for s in &doc.segments {
        assert!(s.weeks.iter().all(|w| w.weights.get("control").is_some_and(|c| (c - 0.25).abs() < 1e-12)));
    }
    let html = store.get(&Key::new("campaigns/weekly/report/index.html").unwrap()).await.unwrap();
    let html = String::from_utf8(html.to_vec()).unwrap();
    assert!(html.contains("Weights in force by week") && html.contains("chance of being best"));
}

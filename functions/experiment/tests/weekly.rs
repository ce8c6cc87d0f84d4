//! A campaign over time on a `mem://` store: suppression before assignment (operator lists, earlier runs'
//! unsubscribes, the consent column), the contact policy across runs, a holdout that stays put, the inputs
//! snapshotted per run, and the ledger.

mod fixture;

use cpo_common::model::experiment::OutcomesSource;
use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use cpo_common::keys::{self, RunKeys};
use cpo_common::model::experiment::Assignment;
use cpo_common::run::RunInput;
use cpo_common::store::StoreExt;
use cpo_common::{ErrorKind, Key, StepInput, Store};
use cpo_experiment::{handle, ledger, suppression};
use fixture::{build, step, Fixture, RUN};
use serde_json::Value;

async fn lines(store: &dyn Store, prefix: &Key) -> Vec<String> {
    let mut out = Vec::new();
    for o in store.list(prefix).await.unwrap() {
        let body = store.get(&Key::new(o.key).unwrap()).await.unwrap();
        out.extend(String::from_utf8(body.to_vec()).unwrap().lines().map(String::from));
    }
    out
}

/// Customer ids of a run's send lists.
async fn sent(store: &dyn Store, run_id: &str) -> BTreeSet<String> {
    let k = RunKeys::new(run_id).unwrap();
    lines(store, &k.prefix().join("send/").unwrap())
        .await
        .iter()
        .filter(|l| l.starts_with('C'))
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

async fn assignments(store: &dyn Store, run_id: &str) -> Vec<Assignment> {
    let k = RunKeys::new(run_id).unwrap();
    lines(store, &k.assignments_prefix()).await.iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// customer id → reason, from `suppressed/`.
async fn left_out(store: &dyn Store, run_id: &str) -> BTreeMap<String, String> {
    let k = RunKeys::new(run_id).unwrap();
    lines(store, &k.suppressed_prefix())
        .await
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["customer_id"].as_str().unwrap().to_string(), v["reason"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The fixture's run copied to another week: same members, variants and verdicts, another id and date.
async fn another_week(f: &Fixture, run_id: &str, date: &str) {
    let store = f.ctx.store.as_ref();
    for o in store.list(&f.keys.prefix()).await.unwrap() {
        let rest = o.key.strip_prefix(f.keys.prefix().as_str()).unwrap();
        if ["steps/", "inputs/", "assignments/", "send/", "suppressed/"].iter().any(|p| rest.starts_with(p)) {
            continue;
        }
        let body = store.get(&Key::new(o.key.clone()).unwrap()).await.unwrap();
        store.put(&Key::new(format!("runs/{run_id}/{rest}")).unwrap(), body).await.unwrap();
    }
    let k = RunKeys::new(run_id).unwrap();
    let mut run: RunInput = store.get_json(&f.keys.input()).await.unwrap();
    run.run_id = run_id.into();
    run.date = date.parse().unwrap();
    store.put_json(&k.input(), &run).await.unwrap();
}

fn step_of(run_id: &str, action: &str) -> StepInput {
    StepInput { run_id: run_id.into(), ..step(action) }
}

#[tokio::test]
async fn suppressed_customers_are_in_no_send_list_and_kept_with_their_reason() {
    let f = build(60, 25, &[], |_| {}).await;
    let store = f.ctx.store.as_ref();
    // An operator list (by id, and by email in another case), and an unsubscribe recorded by an earlier run's
    // ingest — of another campaign, whose run has since expired.
    store
        .put(
            &Key::new("suppression/legal.csv").unwrap(),
            Bytes::from("Customer_ID,email,reason\nC000003,,Legal Request\n,C4@Example.com ,\n"),
        )
        .await
        .unwrap();
    let old = RunKeys::new("other-20261101-0123456789ab").unwrap();
    store
        .put(
            &old.ingest("outcomes-00000.csv"),
            Bytes::from(
                "customer_id,delivered,open,click,convert,unsubscribe,bounce\nC000005,1,1,0,0,1,0\nC000006,1,0,0,0,0,1\nC000007,1,1,1,0,0,0\n",
            ),
        )
        .await
        .unwrap();
    // Made-up outcomes never suppress anyone (an analysis of simulated files records nothing).
    let recorded = suppression::record_from_ingest(store, &old, OutcomesSource::Simulated).await.unwrap();
    assert!(recorded.is_empty(), "{recorded:?}");
    // Real outcomes: every flag counts.
    let recorded = suppression::record_from_ingest(store, &old, OutcomesSource::Real).await.unwrap();
    assert_eq!(recorded, BTreeMap::from([("bounce".into(), 1), ("unsubscribe".into(), 1)]));
    let derived =
        String::from_utf8(store.get(&keys::suppression_derived(old.run_id()).unwrap()).await.unwrap().to_vec())
            .unwrap();
    assert!(!derived.contains("C00000"), "derived entries are keyed hashes, never ids: {derived}");

    let out = handle(step("assign"), &f.ctx).await.unwrap();
    let sent = sent(store, RUN).await;
    for id in ["C000003", "C000004", "C000005", "C000006"] {
        assert!(!sent.contains(id), "{id} is suppressed but in the send list");
        assert!(!assignments(store, RUN).await.iter().any(|a| a.customer_id == id), "{id} assigned");
    }
    assert!(sent.contains("C000007") && sent.contains("C000008"));
    let why = left_out(store, RUN).await;
    assert_eq!(why["C000003"], "list:legal request");
    assert_eq!(why["C000004"], "list:list");
    assert_eq!(why["C000005"], "unsubscribe");
    assert_eq!(why["C000006"], "bounce");
    assert_eq!(why.len(), 4);
    assert_eq!(out.counts["suppressed"]["unsubscribe"], 1);
    assert_eq!(out.counts["suppressed_total"], 4);
    assert_eq!(out.counts["customers"], 60);
    assert_eq!(out.counts["assigned"], 56, "{:?}", out.counts);
}

#[tokio::test]
async fn a_bad_operator_row_fails_assign_naming_file_line_and_field_without_the_value() {
    let f = build(10, 10, &[], |_| {}).await;
    let store = f.ctx.store.as_ref();
    store
        .put(
            &Key::new("suppression/ops.csv").unwrap(),
            Bytes::from("customer_id,email\nC1,ann@example.com\nC2,ann.secret-value\n"),
        )
        .await
        .unwrap();
    let e = handle(step("assign"), &f.ctx).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InputInvalid);
    assert!(e.message.contains("suppression/ops.csv: line 3: field `email`"), "{e}");
    assert!(!e.message.contains("secret"), "the value is echoed: {e}");
    assert!(store.list(&f.keys.prefix().join("send/").unwrap()).await.unwrap().is_empty(), "nothing sent");
}

#[tokio::test]
async fn the_consent_column_suppresses_and_must_exist() {
    // `tier` is Gold for everyone: as an opt-out column with no yes-values nobody is left out, as an opt-in
    // column everyone is (no consent).
    use cpo_common::config::{ConsentColumn, ConsentKind};
    for (kind, expect) in [(ConsentKind::OptOut, 0), (ConsentKind::OptIn, 30)] {
        let f =
            build(30, 30, &[], |c| c.suppression.consent = Some(ConsentColumn { column: "tier".into(), kind })).await;
        let out = handle(step("assign"), &f.ctx).await.unwrap();
        assert_eq!(out.counts["suppressed_total"], expect, "{kind:?}");
    }
    let f = build(30, 30, &[], |c| {
        c.suppression.consent = Some(ConsentColumn { column: "opt_in".into(), kind: ConsentKind::OptIn })
    })
    .await;
    let e = handle(step("assign"), &f.ctx).await.unwrap_err();
    assert!(e.message.contains("suppression.consent.column") && e.message.contains("opt_in"), "{e}");
}

#[tokio::test]
async fn contact_policy_defers_across_weeks_but_never_counts_the_run_itself_or_later_runs() {
    let f = build(90, 30, &[], |c| {
        c.holdout = 0.1;
        c.contact_policy = Some(cpo_common::config::ContactPolicy { max_sends: 1, per_days: 14 });
    })
    .await;
    let store = f.ctx.store.as_ref();
    let week1 = handle(step("assign"), &f.ctx).await.unwrap();
    assert_eq!(week1.counts["deferred"], 0);
    let sent1 = sent(store, RUN).await;
    assert!(!sent1.is_empty());

    let run2 = "weekly-20261202-0123456789ab";
    another_week(&f, run2, "2026-12-02").await;
    let week2 = handle(step_of(run2, "assign"), &f.ctx).await.unwrap();
    assert_eq!(week2.counts["deferred"], sent1.len() as u64, "everyone sent in week 1 is deferred in week 2");
    assert!(sent(store, run2).await.is_empty());
    assert!(left_out(store, run2).await.values().all(|r| r == "contact_policy"));

    // Week 1 again after week 2: its record and snapshot stand, nobody deferred. And what it would read from
    // scratch: week 2's sends are later, its own are not counted.
    let again = handle(step("assign"), &f.ctx).await.unwrap();
    assert_eq!(again.counts["deferred"], 0, "re-running week 1 after week 2 defers nobody");
    assert_eq!(sent(store, RUN).await, sent1);
    let policy = cpo_common::config::ContactPolicy { max_sends: 1, per_days: 14 };
    let (at, _) = suppression::at_limit(store, RUN, "2026-11-25".parse().unwrap(), &policy).await.unwrap();
    assert!(at.is_empty(), "week 1 counts neither itself nor week 2");
    let (at, used) = suppression::at_limit(store, run2, "2026-12-02".parse().unwrap(), &policy).await.unwrap();
    assert_eq!((at.len(), used.len()), (sent1.len(), 1), "week 2 counts week 1 only");
    // A week assigned late (backfilled before week 1) is not deferred by the weeks after it.
    let run0 = "weekly-20261118-0123456789ab";
    another_week(&f, run0, "2026-11-18").await;
    let week0 = handle(step_of(run0, "assign"), &f.ctx).await.unwrap();
    assert_eq!(week0.counts["deferred"], 0);
    // With `per_days: 7` a weekly send is allowed: last week's sends are 7 days back, outside the window.
    let weekly = cpo_common::config::ContactPolicy { max_sends: 1, per_days: 7 };
    let (at, _) = suppression::at_limit(store, run2, "2026-12-02".parse().unwrap(), &weekly).await.unwrap();
    assert!(at.is_empty());

    // Holdout: the same customers in both weeks (week 2 had nobody to send to, yet kept its holdout).
    let held = |a: Vec<Assignment>| -> BTreeSet<String> {
        a.into_iter().filter(|x| x.arm == "holdout").map(|x| x.customer_id).collect()
    };
    let h1 = held(assignments(store, RUN).await);
    assert!(!h1.is_empty());
    assert_eq!(h1, held(assignments(store, run2).await));
}

#[tokio::test]
async fn holdout_is_per_customer_and_independent_of_the_weekly_arm_draw() {
    let f = build(3000, 1000, &[], |c| c.holdout = 0.1).await;
    let store = f.ctx.store.as_ref();
    handle(step("assign"), &f.ctx).await.unwrap();
    let run2 = "weekly-20261202-0123456789ab";
    another_week(&f, run2, "2026-12-02").await;
    handle(step_of(run2, "assign"), &f.ctx).await.unwrap();
    let (a1, a2) = (assignments(store, RUN).await, assignments(store, run2).await);
    let arms = |a: &[Assignment]| -> BTreeMap<String, String> {
        a.iter().map(|x| (x.customer_id.clone(), x.arm.clone())).collect()
    };
    let (m1, m2) = (arms(&a1), arms(&a2));
    let held1: BTreeSet<_> = m1.iter().filter(|(_, a)| *a == "holdout").map(|(c, _)| c.clone()).collect();
    let held2: BTreeSet<_> = m2.iter().filter(|(_, a)| *a == "holdout").map(|(c, _)| c.clone()).collect();
    assert_eq!(held1, held2, "the same customers are held out every week");
    assert!((200..400).contains(&held1.len()), "about 10% held out: {}", held1.len());
    // The weekly arm draw changes (another experiment id) and is independent of the holdout.
    let moved = m1.iter().filter(|(c, a)| *a != "holdout" && m2[*c] != **a).count();
    assert!(moved > 1000, "arms are redrawn each week: {moved} moved");
}

#[tokio::test]
async fn a_rerun_assign_reuses_its_snapshot_and_the_ledger_lists_the_week_once() {
    let f = build(40, 40, &[], |_| {}).await;
    let store = f.ctx.store.as_ref();
    let first = handle(step("assign"), &f.ctx).await.unwrap();
    let sent1 = sent(store, RUN).await;
    // A list added after the week was assigned: a re-delivered event must not change an exported send list.
    store.put(&Key::new("suppression/late.csv").unwrap(), Bytes::from("customer_id\nC000001\n")).await.unwrap();
    let again = handle(step("assign"), &f.ctx).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(sent(store, RUN).await, sent1);
    let rec: Value = store.get_json(&f.keys.step("assign")).await.unwrap();
    let snap = f.keys.snapshot("suppression").to_string();
    assert!(rec["reads"][&snap].is_string(), "assign's reads name its snapshot: {rec}");

    let entries = ledger::read(store, "weekly").await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].run_id, RUN);
    assert_eq!(entries[0].counts.eligible, 40);
    assert_eq!(entries[0].counts.sent, first.counts["sent"].as_u64().unwrap());
    assert_eq!(entries[0].date.to_string(), "2026-11-25");
    // The next week's run picks the late list up.
    let run2 = "weekly-20261202-0123456789ab";
    another_week(&f, run2, "2026-12-02").await;
    handle(step_of(run2, "assign"), &f.ctx).await.unwrap();
    assert!(!sent(store, run2).await.contains("C000001"));
    assert_eq!(ledger::read(store, "weekly").await.unwrap().len(), 2);
}

//! Part alignment and part-parallel processing of `assign` and `simulate`: assignments part i holds exactly
//! the customers of members part i (also when a part is short, as a shard's last part is), and the objects
//! written by the parallel step are byte for byte what processing the parts one after another gives.

mod fixture;

use cpo_common::model::experiment::Assignment;
use cpo_common::model::segment::Member;
use cpo_common::store::StoreExt;
use cpo_common::Key;
use cpo_experiment::assign::AssignJob;
use cpo_experiment::handle;
use cpo_experiment::hashing::{holdout_position, unit_interval};
use cpo_experiment::plan::{Plan, HOLDOUT};
use cpo_experiment::render::{render_run, Selection};
use cpo_experiment::send::{self, neutralise};
use cpo_experiment::simulate::SimJob;
use fixture::{build, member, step, Fixture, RUN};

/// Rewrite the fixture's members (built as a single part 0) as parts of the given sizes, in customer order.
async fn split_members(f: &Fixture, sizes: &[usize]) -> Vec<Vec<Member>> {
    let mut next = 0;
    let mut parts = Vec::new();
    for (p, &n) in sizes.iter().enumerate() {
        let rows: Vec<Member> = (next..next + n).map(member).collect();
        next += n;
        let body: String = rows.iter().map(|m| serde_json::to_string(m).unwrap() + "\n").collect();
        f.ctx.store.put(&f.keys.members(p), body.into()).await.unwrap();
        parts.push(rows);
    }
    parts
}

fn lines(body: &[u8]) -> Vec<&str> {
    std::str::from_utf8(body).unwrap().lines().collect()
}

#[tokio::test]
async fn parts_align_across_a_short_part_and_match_the_owned_model() {
    let f = build(1000, 1000, &[], |c| c.holdout = 0.1).await;
    // 400 | 150 (a shard's short last part) | 400 | 50, with experiment.part_size = 400.
    let parts = split_members(&f, &[400, 150, 400, 50]).await;
    let out = handle(step("assign"), &f.ctx).await.unwrap();
    assert_eq!(out.counts["customers"], 1000);
    assert_eq!(out.counts["parts"], 4);
    let store = f.ctx.store.as_ref();
    let run = cpo_common::run::load(store, RUN).await.unwrap();
    let plan = Plan::load(store, &run).await.unwrap();
    let templates = send::templates(RUN, &plan);
    for (p, members) in parts.iter().enumerate() {
        let body = store.get(&f.keys.assignments(p)).await.unwrap();
        let got: Vec<Assignment> = lines(&body).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(got.len(), members.len(), "part {p}");
        // The owned model, computed independently: same customers, same order, same arm, same bytes.
        let mut send_rows = vec![["customer_id", "email", "arm", "variant_id", "segment"]
            .into_iter()
            .chain(templates.merge_fields.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(",")];
        for (line, (a, m)) in lines(&body).iter().zip(got.iter().zip(members)) {
            let (arm, variant_id) = plan.pick(
                &m.segment,
                holdout_position(&plan.campaign, &m.customer_id),
                unit_interval(&plan.experiment_id, &m.customer_id),
            );
            let want = Assignment {
                customer_id: m.customer_id.clone(),
                segment: m.segment.clone(),
                arm: arm.into(),
                variant_id: variant_id.into(),
            };
            assert_eq!(a, &want);
            assert_eq!(*line, serde_json::to_string(&want).unwrap());
            if arm != HOLDOUT {
                let email = m.fields.get("email").map(String::as_str).unwrap_or("");
                let mut w = csv::Writer::from_writer(Vec::new());
                let merge = templates.merge_fields.iter().map(|n| m.fields.get(n).map(String::as_str).unwrap_or(""));
                let cells: Vec<String> = [m.customer_id.as_str(), email, arm, variant_id, m.segment.as_str()]
                    .into_iter()
                    .chain(merge)
                    .map(|c| neutralise(c).into_owned())
                    .collect();
                w.write_record(&cells).unwrap();
                send_rows.push(String::from_utf8(w.into_inner().unwrap()).unwrap().trim_end().to_string());
            }
        }
        let sent = store.get(&f.keys.send(p)).await.unwrap();
        assert_eq!(lines(&sent), send_rows, "send part {p}");
    }
    assert!(!store.exists(&f.keys.assignments(4)).await.unwrap());

    // Simulate pairs the parts one to one: every non-holdout customer is delivered exactly once.
    let sim = handle(step("simulate"), &f.ctx).await.unwrap();
    let csv = store.get(&Key::new(sim.keys["outcomes"].clone()).unwrap()).await.unwrap();
    let delivered = lines(&csv).iter().filter(|l| l.contains(",delivered,")).count() as u64;
    assert_eq!(delivered, out.counts["sent"].as_u64().unwrap());
}

#[tokio::test]
async fn parallel_steps_write_what_sequential_parts_give() {
    let f = build(2300, 400, &[], |c| c.holdout = 0.05).await;
    handle(step("assign"), &f.ctx).await.unwrap();
    let mut sim = step("simulate");
    sim.seed = Some(3);
    let out = handle(sim, &f.ctx).await.unwrap();
    let store = f.ctx.store.as_ref();
    let run = cpo_common::run::load(store, RUN).await.unwrap();
    let plan = Plan::load(store, &run).await.unwrap();
    let templates = send::templates(RUN, &plan);
    let job = AssignJob { plan, templates, render: false, exclusions: Default::default() };
    let sim_job = SimJob::new(run.config.simulation.clone(), 3, run.date);
    let mut want_csv = b"customer_id,event,timestamp\n".to_vec();
    let mut events = 0;
    for p in 0..6 {
        let (mkey, akey) = (f.keys.members(p), f.keys.assignments(p));
        let members = store.get(&mkey).await.unwrap();
        let part = job.part(&mkey, &members).unwrap();
        assert_eq!(store.get(&akey).await.unwrap(), part.assignments, "assignments part {p}");
        assert_eq!(store.get(&f.keys.send(p)).await.unwrap(), part.send, "send part {p}");
        let (rows, n) = sim_job.part(&mkey, &members, &akey, &part.assignments).unwrap();
        want_csv.extend_from_slice(&rows);
        events += n;
    }
    assert!(!store.exists(&f.keys.members(6)).await.unwrap());
    let got = store.get(&Key::new(out.keys["outcomes"].clone()).unwrap()).await.unwrap();
    assert_eq!(got.as_ref(), want_csv.as_slice());
    assert_eq!(out.counts["events"], events);
}

#[tokio::test]
async fn simulate_refuses_assignments_that_do_not_pair_with_the_members() {
    let f = build(500, 250, &[], |_| {}).await;
    handle(step("assign"), &f.ctx).await.unwrap();
    // Swap the two assignments parts: same customers overall, wrong pairing.
    let store = f.ctx.store.as_ref();
    let (a0, a1) = (store.get(&f.keys.assignments(0)).await.unwrap(), store.get(&f.keys.assignments(1)).await.unwrap());
    store.put(&f.keys.assignments(0), a1).await.unwrap();
    store.put(&f.keys.assignments(1), a0).await.unwrap();
    let e = handle(step("simulate"), &f.ctx).await.unwrap_err();
    assert_eq!(e.kind, cpo_common::ErrorKind::Internal);
    assert!(e.message.contains("part-00000.jsonl line 1") && e.message.contains("different customers"), "{e}");
    assert!(store.list(&f.keys.outcomes_prefix()).await.unwrap().is_empty(), "nothing half-written under outcomes/");
}

#[tokio::test]
async fn render_all_skips_the_holdout_instead_of_stopping_there() {
    let f = build(400, 200, &[], |c| {
        c.holdout = 0.2;
        c.experiment.render = true;
    })
    .await;
    let out = handle(step("assign"), &f.ctx).await.unwrap();
    let sent = out.counts["sent"].as_u64().unwrap();
    assert!(sent < 400);
    let mut all = Vec::new();
    assert_eq!(render_run(f.ctx.store.as_ref(), RUN, &Selection::All, &mut all).await.unwrap(), sent);
    let mut step_rendered = Vec::new();
    for p in 0..2 {
        let key = f.keys.prefix().join(&format!("send/rendered-{p:05}.jsonl")).unwrap();
        step_rendered.extend_from_slice(&f.ctx.store.get(&key).await.unwrap());
    }
    assert_eq!(all, step_rendered);
}

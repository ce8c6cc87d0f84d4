//! The integrity invariants of the safety step (docs/architecture.md, "Integrity"): verdicts bind to the exact
//! bytes screened, a changed text is screened again rather than paired with an old verdict, the audit chain
//! attests what the step published, and concurrent runs never fork it — on every store backend.

use bytes::Bytes;
use chrono::Utc;
use cpo_common::keys::RunKeys;
use cpo_common::model::safety::{AuditRecord, Decision, SafetyDoc, StepAttestation};
use cpo_common::model::variant::{Message, Usage, Variant, VariantStatus, VariantsDoc};
use cpo_common::run::{self, StartOptions};
use cpo_common::step::StepRecord;
use cpo_common::store::emulators::{unique_prefix, EmulatorEnv};
use cpo_common::store::{self, DynStore, StoreExt};
use cpo_common::{Ctx, Key, StepInput};
use cpo_safety::audit;

const HARMFUL: &str = "We will hunt you down and kill you if you do not buy these boots today.";

fn variant(tone: &str, body: &str) -> Variant {
    Variant {
        variant_id: format!("champions-{tone}"),
        segment: "Champions".into(),
        tone: tone.into(),
        status: VariantStatus::Shipped,
        message: Message {
            subject: format!("{tone} news for you"),
            preheader: "Winter range inside".into(),
            body: body.into(),
            cta: "Shop now".into(),
        },
        citations: vec![],
        reasons: vec![],
        provider: "offline".into(),
        model: None,
        attempts: 1,
        usage: Usage::default(),
    }
}

async fn put_variants(ctx: &Ctx, run_id: &str, variants: Vec<Variant>) {
    let doc = VariantsDoc {
        run_id: run_id.into(),
        segment: "Champions".into(),
        slug: "champions".into(),
        variants,
        no_content: false,
        provider: "offline".into(),
        model: None,
        usage: Default::default(),
    };
    ctx.store.put_json(&RunKeys::new(run_id).unwrap().variants("Champions"), &doc).await.unwrap();
}

async fn run_on(store: DynStore, customers: &'static [u8]) -> (Ctx, String) {
    let key = Key::new("incoming/weekly/customers.csv").unwrap();
    store.put(&key, Bytes::from_static(customers)).await.unwrap();
    let run_id = run::prepare(store.as_ref(), &key, &StartOptions::default()).await.unwrap().run_id;
    let ctx = Ctx::new(store);
    put_variants(
        &ctx,
        &run_id,
        vec![
            variant("urgent", "Our wool coats are back for the winter, warm and waterproof."),
            variant("friendly", "The boots you liked are in stock again in every size."),
        ],
    )
    .await;
    (ctx, run_id)
}

fn input(run_id: &str) -> StepInput {
    StepInput { run_id: run_id.into(), campaign: Some("weekly".into()), ..Default::default() }
}

async fn safety_doc(ctx: &Ctx, run_id: &str) -> SafetyDoc {
    ctx.store.get_json(&RunKeys::new(run_id).unwrap().safety()).await.unwrap()
}

/// The reproduction: the run is screened, then generate writes new (harmful) text for the same variant ids —
/// a re-run with a provider override does exactly that. The next safety invocation must screen the new text,
/// and block the harmful one because it judged it.
#[tokio::test]
async fn changed_text_is_screened_again_and_judged() {
    let (ctx, run_id) = run_on(store::open("mem://").unwrap(), b"customer_id\nC1\n").await;
    let first = cpo_safety::handle(input(&run_id), &ctx).await.unwrap();
    assert_eq!(first.counts["approved"], 3, "control and both variants pass first");

    put_variants(
        &ctx,
        &run_id,
        vec![variant("urgent", HARMFUL), variant("friendly", "The boots you liked are in stock again in every size.")],
    )
    .await;
    let second = cpo_safety::handle(input(&run_id), &ctx).await.unwrap();
    let doc = safety_doc(&ctx, &run_id).await;
    let urgent = doc.verdicts.iter().find(|v| v.variant_id == "champions-urgent").unwrap();
    assert_eq!(urgent.text_sha256, variant("urgent", HARMFUL).message.content_sha256(), "verdict is on the new text");
    assert_eq!(urgent.decision, Decision::Blocked);
    assert!(urgent.reasons.iter().any(|r| r.starts_with("Violence")), "blocked by judgement: {:?}", urgent.reasons);
    let friendly = doc.verdicts.iter().find(|v| v.variant_id == "champions-friendly").unwrap();
    assert_eq!(friendly.decision, Decision::Approved, "not everything was blocked");
    assert_eq!(second.counts["approved"], 2);

    // Each screening is its own audit object; the run and the whole chain verify.
    assert_ne!(first.keys["audit"], second.keys["audit"]);
    let report = audit::verify(ctx.store.as_ref(), &run_id).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let chain = audit::verify_chain(ctx.store.as_ref()).await.unwrap();
    assert!(chain.ok(), "{:?}", chain.problems);
    assert_eq!(chain.objects, 2);

    // Unchanged text: the stored result is reused (no third screening, no third audit object).
    let third = cpo_safety::handle(input(&run_id), &ctx).await.unwrap();
    assert_eq!(third, second);
    assert_eq!(audit::verify_chain(ctx.store.as_ref()).await.unwrap().objects, 2);
}

/// A verdict covers all fields by canonical JSON: text moved between fields is a different message.
#[test]
fn verdict_hash_binds_every_field_unambiguously() {
    let a = Message { subject: "Sale\n\nnow".into(), preheader: String::new(), body: "b".into(), cta: "c".into() };
    let b = Message { subject: "Sale".into(), preheader: "now".into(), body: "b".into(), cta: "c".into() };
    assert_ne!(a.content_sha256(), b.content_sha256());
    let mut doc = SafetyDoc {
        run_id: "r".into(),
        policy_version: "1".into(),
        verdicts: vec![],
        approved: 1,
        blocked: 0,
        audit_key: String::new(),
    };
    doc.verdicts.push(cpo_common::model::safety::Verdict {
        variant_id: "v".into(),
        segment: None,
        tone: None,
        decision: Decision::Approved,
        reasons: vec![],
        severities: Default::default(),
        providers: vec![],
        text_sha256: a.content_sha256(),
    });
    assert!(doc.approves("v", &a).unwrap());
    let err = doc.approves("v", &b).unwrap_err();
    assert!(err.to_string().contains("\"v\""), "{err}");
    let step_err: cpo_common::StepError = err.into();
    assert_eq!(step_err.kind, cpo_common::ErrorKind::SafetyUnavailable);
    assert!(doc.approves("other", &a).is_err(), "no verdict is not an approval");
}

async fn step_record(ctx: &Ctx, run_id: &str) -> StepRecord {
    ctx.store.get_json(&RunKeys::new(run_id).unwrap().step("safety")).await.unwrap()
}

/// Editing what the step published — `safety.json`, or the counts of its step record — is detected, even
/// when the forger re-chains the audit object and fixes the recorded last hash.
#[tokio::test]
async fn audit_attests_what_the_step_published() {
    type Forge = fn(&mut SafetyDoc, &mut StepRecord, &mut Vec<String>);
    let cases: Vec<(&str, Forge)> = vec![
        ("approve a blocked verdict in safety.json", |doc, _, _| {
            let v = doc.verdicts.iter_mut().find(|v| v.decision == Decision::Blocked).unwrap();
            v.decision = Decision::Approved;
        }),
        ("swap a verdict's text hash", |doc, _, _| {
            doc.verdicts[1].text_sha256 = variant("urgent", HARMFUL).message.content_sha256();
        }),
        ("raise the approved count in the step record", |_, rec, _| {
            rec.output.counts.insert("approved".into(), 4.into());
        }),
        ("re-chained forged record with edited step counts", |_, rec, lines| {
            // Approve the blocked record, recompute every hash after it, and fix the step record to match.
            let mut prev: Option<String> = None;
            for line in lines.iter_mut() {
                let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
                if v.get("decision").and_then(|d| d.as_str()) == Some("blocked") {
                    v["decision"] = "approved".into();
                    v["reasons"] = serde_json::json!([]);
                }
                if let Some(p) = &prev {
                    v["prev_hash"] = p.clone().into();
                }
                v["hash"] = audit::hash_value(&v).into();
                prev = Some(v["hash"].as_str().unwrap().to_string());
                *line = v.to_string();
            }
            rec.output.counts.insert("audit_last_hash".into(), prev.unwrap().into());
            rec.output.counts.insert("approved".into(), 4.into());
            rec.output.counts.insert("blocked".into(), 0.into());
        }),
    ];
    for (name, forge) in cases {
        let (ctx, run_id) = run_on(store::open("mem://").unwrap(), b"customer_id\nC1\n").await;
        put_variants(
            &ctx,
            &run_id,
            vec![variant("urgent", HARMFUL), variant("friendly", "The boots you liked are in stock again.")],
        )
        .await;
        cpo_safety::handle(input(&run_id), &ctx).await.unwrap();
        assert!(audit::verify(ctx.store.as_ref(), &run_id).await.unwrap().ok());
        let rk = RunKeys::new(&run_id).unwrap();
        let mut doc = safety_doc(&ctx, &run_id).await;
        let mut rec = step_record(&ctx, &run_id).await;
        let key = Key::new(doc.audit_key.clone()).unwrap();
        let body = String::from_utf8(ctx.store.get(&key).await.unwrap().to_vec()).unwrap();
        let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
        forge(&mut doc, &mut rec, &mut lines);
        ctx.store.put_json(&rk.safety(), &doc).await.unwrap();
        ctx.store.put_json(&rk.step("safety"), &rec).await.unwrap();
        ctx.store.put(&key, Bytes::from(lines.join("\n") + "\n")).await.unwrap();
        let report = audit::verify(ctx.store.as_ref(), &run_id).await.unwrap();
        assert!(!report.ok(), "{name} was not detected");
    }
}

/// Rewriting an older object of the chain (even re-hashed throughout) breaks the next object's link.
#[tokio::test]
async fn rewriting_an_older_object_breaks_the_chain() {
    let store = store::open("mem://").unwrap();
    let (ctx, first) = run_on(store.clone(), b"customer_id\nC1\n").await;
    cpo_safety::handle(input(&first), &ctx).await.unwrap();
    let (_, second) = run_on(store.clone(), b"customer_id\nC2\n").await;
    cpo_safety::handle(input(&second), &ctx).await.unwrap();
    assert!(audit::verify_chain(store.as_ref()).await.unwrap().ok());

    let key = cpo_common::keys::audit_chain(0);
    let body = String::from_utf8(store.get(&key).await.unwrap().to_vec()).unwrap();
    let mut prev: Option<String> = None;
    let mut out = String::new();
    for line in body.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["time"] = "2020-01-01T00:00:00Z".into();
        if let Some(p) = &prev {
            v["prev_hash"] = p.clone().into();
        }
        v["hash"] = audit::hash_value(&v).into();
        prev = Some(v["hash"].as_str().unwrap().to_string());
        out.push_str(&v.to_string());
        out.push('\n');
    }
    store.put(&key, Bytes::from(out)).await.unwrap();
    let chain = audit::verify_chain(store.as_ref()).await.unwrap();
    assert!(!chain.ok());
    assert!(chain.problems.iter().any(|p| p.contains("000000000001")), "{:?}", chain.problems);
    assert!(!audit::verify(store.as_ref(), &second).await.unwrap().ok());
}

fn record(run_id: &str, i: usize) -> (Vec<AuditRecord>, StepAttestation) {
    let r = AuditRecord {
        seq: 0,
        time: Utc::now(),
        run_id: run_id.into(),
        variant_id: format!("v{i}"),
        segment: None,
        tone: None,
        text_sha256: format!("{i:064}"),
        providers: vec![],
        severities: Default::default(),
        policy_version: "1".into(),
        policy_sha256: "p".into(),
        decision: Decision::Approved,
        reasons: vec![],
        prev_key: None,
        prev_hash: String::new(),
        hash: String::new(),
    };
    let a = StepAttestation {
        seq: 0,
        time: Utc::now(),
        run_id: run_id.into(),
        step: "safety".into(),
        safety_sha256: "s".into(),
        verdicts_sha256: "v".into(),
        text_sha256: Default::default(),
        approved: 1,
        blocked: 0,
        records: 0,
        prev_hash: String::new(),
        hash: String::new(),
    };
    (vec![r], a)
}

/// Eight runs append at once: every one gets its own position, and the chain is one line without forks.
async fn concurrent_appends_never_fork(store: DynStore) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let (records, att) = record(&format!("run-{i}"), i);
                audit::append(store.as_ref(), records, att).await.unwrap().key.to_string()
            })
        })
        .collect();
    let mut keys = Vec::new();
    for t in tasks {
        keys.push(t.await.unwrap());
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 8, "every run has its own object: {keys:?}");
    let chain = audit::verify_chain(store.as_ref()).await.unwrap();
    assert!(chain.ok(), "{:?}", chain.problems);
    assert_eq!((chain.objects, chain.records), (8, 16));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_on_mem() {
    concurrent_appends_never_fork(store::open("mem://").unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_on_file() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_appends_never_fork(store::open(&format!("file://{}", dir.path().display())).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_on_s3() {
    let env = EmulatorEnv::require();
    let store = store::open(&env.s3_url(&unique_prefix("audit-chain"))).unwrap();
    concurrent_appends_never_fork(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_on_azure() {
    let env = EmulatorEnv::require();
    let store = store::open(&env.az_url(&unique_prefix("audit-chain"))).unwrap();
    concurrent_appends_never_fork(store).await;
}

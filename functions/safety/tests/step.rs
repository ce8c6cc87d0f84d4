//! The safety step end to end on a `mem://` store: verdicts, fail-closed behaviour, the audit trail and its
//! verification against edits, removals, swaps and truncation.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use cpo_common::keys::RunKeys;
use cpo_common::model::safety::{Decision, SafetyDoc};
use cpo_common::model::variant::{Message, Usage, Variant, VariantStatus, VariantsDoc};
use cpo_common::run::{self, StartOptions};
use cpo_common::store::{self, StoreExt};
use cpo_common::{Ctx, ErrorKind, Key, StepInput};
use cpo_safety::audit;

fn variant(segment: &str, tone: &str, status: VariantStatus, body: &str) -> Variant {
    Variant {
        variant_id: format!("{}-{tone}", cpo_common::keys::slug(segment)),
        segment: segment.into(),
        tone: tone.into(),
        status,
        message: Message {
            subject: format!("{tone} news for you, {{{{first_name}}}}"),
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

/// A run with one segment's variants; returns (ctx, run_id).
async fn setup(csv: &'static [u8], campaign_yaml: Option<&str>, variants: Vec<Variant>) -> (Ctx, String) {
    let store = store::open("mem://").unwrap();
    if let Some(y) = campaign_yaml {
        store.put(&Key::new("campaigns/weekly.yaml").unwrap(), Bytes::from(y.to_string())).await.unwrap();
    }
    let key = Key::new("incoming/weekly/customers.csv").unwrap();
    store.put(&key, Bytes::from_static(csv)).await.unwrap();
    let run = run::prepare(store.as_ref(), &key, &StartOptions::default()).await.unwrap();
    let rk = RunKeys::new(&run.run_id).unwrap();
    let doc = VariantsDoc {
        run_id: run.run_id.clone(),
        segment: "Champions".into(),
        slug: "champions".into(),
        variants,
        no_content: false,
        provider: "offline".into(),
        model: None,
        usage: Default::default(),
    };
    store.put_json(&rk.variants("Champions"), &doc).await.unwrap();
    (Ctx::new(store), run.run_id)
}

fn approved(doc: &SafetyDoc, variant_id: &str) -> bool {
    doc.verdicts.iter().any(|v| v.variant_id == variant_id && v.decision == Decision::Approved)
}

fn input(run_id: &str) -> StepInput {
    StepInput { run_id: run_id.into(), campaign: Some("weekly".into()), ..Default::default() }
}

fn standard_variants() -> Vec<Variant> {
    vec![
        variant(
            "Champions",
            "urgent",
            VariantStatus::Shipped,
            "Killer deals end Sunday. Our wool coats are to die for.",
        ),
        variant("Champions", "friendly", VariantStatus::Shipped, "Email jane.doe@example.com to claim your gift."),
        variant("Champions", "informational", VariantStatus::Shipped, "Buy now or we will hurt you."),
        variant("Champions", "calm", VariantStatus::Rejected, "Too short."),
    ]
}

#[tokio::test]
async fn screens_control_and_shipped_variants_fail_closed() {
    let (ctx, run_id) = setup(b"customer_id\nC1\n", None, standard_variants()).await;
    let out = cpo_safety::handle(input(&run_id), &ctx).await.unwrap();
    assert_eq!(out.counts["approved"], 2);
    assert_eq!(out.counts["blocked"], 2);
    // Four screening records and the step's attestation.
    assert_eq!(out.counts["audit_records"], 5);

    let rk = RunKeys::new(&run_id).unwrap();
    let doc: SafetyDoc = ctx.store.get_json(&rk.safety()).await.unwrap();
    assert!(approved(&doc, "control"));
    assert!(approved(&doc, "champions-urgent"), "marketing idioms pass: {:?}", doc.verdicts);
    assert!(!approved(&doc, "champions-friendly"));
    assert!(!approved(&doc, "champions-informational"));
    assert!(!approved(&doc, "champions-calm"), "a rejected variant is never approved");
    assert!(doc.verdicts.iter().all(|v| v.variant_id != "champions-calm"), "rejected variants are not screened");
    let friendly = doc.verdicts.iter().find(|v| v.variant_id == "champions-friendly").unwrap();
    assert!(friendly.reasons.iter().any(|r| r.starts_with("pii_email")), "{:?}", friendly.reasons);
    let info = doc.verdicts.iter().find(|v| v.variant_id == "champions-informational").unwrap();
    assert!(info.reasons.iter().any(|r| r.starts_with("Violence")), "{:?}", info.reasons);

    // No PII, customer id or screened text in the trail.
    let trail = ctx.store.get(&Key::new(doc.audit_key.clone()).unwrap()).await.unwrap();
    let trail = String::from_utf8(trail.to_vec()).unwrap();
    for needle in ["jane.doe", "example.com", "C1", "Killer deals", "hurt you"] {
        assert!(!trail.contains(needle), "audit holds {needle:?}");
    }
    assert_eq!(trail.lines().count(), 5);

    let report = audit::verify(ctx.store.as_ref(), &run_id).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.records, 5);

    // A second invocation returns the stored result without screening again.
    let again = cpo_safety::handle(input(&run_id), &ctx).await.unwrap();
    assert_eq!(again, out);
}

#[tokio::test]
async fn second_run_links_to_the_previous_trail() {
    let (ctx, first) = setup(b"customer_id\nC1\n", None, standard_variants()).await;
    cpo_safety::handle(input(&first), &ctx).await.unwrap();
    let key = Key::new("incoming/weekly/customers.csv").unwrap();
    ctx.store.put(&key, Bytes::from_static(b"customer_id\nC2\n")).await.unwrap();
    let second = run::prepare(ctx.store.as_ref(), &key, &StartOptions::default()).await.unwrap().run_id;
    assert_ne!(first, second);
    cpo_safety::handle(input(&second), &ctx).await.unwrap();
    let r1 = audit::verify(ctx.store.as_ref(), &first).await.unwrap();
    let r2 = audit::verify(ctx.store.as_ref(), &second).await.unwrap();
    assert!(r2.ok(), "{:?}", r2.problems);
    let doc: SafetyDoc = ctx.store.get_json(&RunKeys::new(&second).unwrap().safety()).await.unwrap();
    let trail = audit::read(ctx.store.as_ref(), &Key::new(doc.audit_key).unwrap()).await.unwrap().unwrap();
    let first_record = audit::screenings(&trail)[0];
    assert_eq!(first_record.prev_key.as_deref(), Some(r1.key.as_str()));
    assert_eq!(Some(first_record.prev_hash.clone()), r1.last_hash);
}

/// Rewrite the run's audit object with `f` applied to its lines.
async fn tamper(ctx: &Ctx, run_id: &str, f: impl FnOnce(&mut Vec<String>)) {
    let doc: SafetyDoc = ctx.store.get_json(&RunKeys::new(run_id).unwrap().safety()).await.unwrap();
    let key = Key::new(doc.audit_key).unwrap();
    let body = String::from_utf8(ctx.store.get(&key).await.unwrap().to_vec()).unwrap();
    let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
    f(&mut lines);
    let mut text = lines.join("\n");
    text.push('\n');
    ctx.store.put(&key, Bytes::from(text)).await.unwrap();
}

#[tokio::test]
async fn verify_detects_edit_removal_swap_and_truncation() {
    type Edit = Box<dyn FnOnce(&mut Vec<String>)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("edit", Box::new(|l: &mut Vec<String>| l[2] = l[2].replace("\"blocked\"", "\"approved\""))),
        ("remove", Box::new(|l: &mut Vec<String>| drop(l.remove(1)))),
        ("swap", Box::new(|l: &mut Vec<String>| l.swap(1, 2))),
        ("truncate", Box::new(|l: &mut Vec<String>| l.truncate(3))),
        (
            "re-hashed edit",
            Box::new(|l: &mut Vec<String>| {
                // A forger who recomputes the edited record's own hash still breaks the chain.
                let mut v: serde_json::Value = serde_json::from_str(&l[2]).unwrap();
                v["decision"] = "approved".into();
                v["hash"] = audit::hash_value(&v).into();
                l[2] = v.to_string();
            }),
        ),
    ];
    for (name, edit) in cases {
        let (ctx, run_id) = setup(b"customer_id\nC1\n", None, standard_variants()).await;
        cpo_safety::handle(input(&run_id), &ctx).await.unwrap();
        assert!(audit::verify(ctx.store.as_ref(), &run_id).await.unwrap().ok());
        tamper(&ctx, &run_id, edit).await;
        let report = audit::verify(ctx.store.as_ref(), &run_id).await.unwrap();
        assert!(!report.ok(), "{name} was not detected");
    }
}

/// A local Content Safety endpoint answering every request with `status` and `body`.
async fn content_safety(status: u16, body: &'static str) -> (String, Arc<AtomicU32>) {
    use axum::http::StatusCode;
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async move { (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), calls)
}

fn azure_campaign(endpoint: &str, key_var: &str) -> String {
    format!(
        "name: weekly\nsafety: {{providers: [offline, azure-content-safety], endpoint: '{endpoint}', \
         api_key: 'env:{key_var}', timeout_secs: 2}}\n"
    )
}

#[tokio::test]
async fn azure_configured_in_the_campaign_screens_every_message() {
    let (endpoint, calls) = content_safety(
        200,
        r#"{"blocklistsMatch":[],"categoriesAnalysis":[{"category":"Hate","severity":0},
           {"category":"SelfHarm","severity":0},{"category":"Sexual","severity":0},
           {"category":"Violence","severity":2}]}"#,
    )
    .await;
    // A variable name no other test uses.
    std::env::set_var("CPO_TEST_SAFETY_KEY_OK", "test-key");
    let yaml = azure_campaign(&endpoint, "CPO_TEST_SAFETY_KEY_OK");
    let (ctx, run_id) = setup(b"customer_id\nC1\n", Some(&yaml), standard_variants()).await;
    let out = cpo_safety::handle(input(&run_id), &ctx).await.unwrap();
    assert_eq!(out.counts["approved"], 2, "offline still blocks what it blocks; Azure approves the rest");
    let doc: SafetyDoc = ctx.store.get_json(&RunKeys::new(&run_id).unwrap().safety()).await.unwrap();
    let control = doc.verdicts.iter().find(|v| v.variant_id == "control").unwrap();
    assert_eq!(
        control.providers,
        [format!("offline:{}", cpo_safety::offline::LEXICON_VERSION), "azure-content-safety:2024-09-01".to_string()]
    );
    assert_eq!(control.severities["Violence"], 2);
    assert_eq!(calls.load(Ordering::SeqCst), 4, "control and three shipped variants");

    // Next run, same messages: Azure's answers come from cache/llm/ and the trail says so.
    let key = Key::new("incoming/weekly/customers.csv").unwrap();
    ctx.store.put(&key, Bytes::from_static(b"customer_id\nC9\n")).await.unwrap();
    let next = run::prepare(ctx.store.as_ref(), &key, &StartOptions::default()).await.unwrap().run_id;
    let rk = RunKeys::new(&run_id).unwrap();
    let mut variants: VariantsDoc = ctx.store.get_json(&rk.variants("Champions")).await.unwrap();
    variants.run_id = next.clone();
    ctx.store.put_json(&RunKeys::new(&next).unwrap().variants("Champions"), &variants).await.unwrap();
    let again = cpo_safety::handle(input(&next), &ctx).await.unwrap();
    assert_eq!(again.counts["approved"], 2);
    assert_eq!(calls.load(Ordering::SeqCst), 4, "no new provider calls");
    let doc: SafetyDoc = ctx.store.get_json(&RunKeys::new(&next).unwrap().safety()).await.unwrap();
    let trail = audit::read(ctx.store.as_ref(), &Key::new(doc.audit_key).unwrap()).await.unwrap().unwrap();
    assert!(audit::screenings(&trail).iter().all(|r| r.providers[1].cached && !r.providers[0].cached));
    assert!(audit::verify(ctx.store.as_ref(), &next).await.unwrap().ok());
}

#[tokio::test]
async fn nothing_screenable_fails_with_safety_unavailable() {
    let (endpoint, _) = content_safety(401, r#"{"error":{"code":"401","message":"Access denied"}}"#).await;
    std::env::set_var("CPO_TEST_SAFETY_KEY_DENIED", "wrong-key");
    let yaml = azure_campaign(&endpoint, "CPO_TEST_SAFETY_KEY_DENIED");
    let (ctx, run_id) = setup(b"customer_id\nC1\n", Some(&yaml), standard_variants()).await;
    let err = cpo_safety::handle(input(&run_id), &ctx).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::SafetyUnavailable, "{err}");
    assert!(err.message.contains("HTTP 401"), "{err}");
    let rk = RunKeys::new(&run_id).unwrap();
    assert!(!ctx.store.exists(&rk.safety()).await.unwrap());
    assert!(!ctx.store.exists(&rk.step("safety")).await.unwrap());
}

#[tokio::test]
async fn policy_in_the_store_overrides_the_bundled_one() {
    let (ctx, run_id) = setup(b"customer_id\nC1\n", None, standard_variants()).await;
    let policy = "version: strict-1\nblocklist: [winter range]\nrequired_disclaimers:\n  - id: terms\n    \
                  when: 'deals?'\n    text: 'Terms apply'\n";
    ctx.store.put(&Key::new("policy/safety.yaml").unwrap(), Bytes::from_static(policy.as_bytes())).await.unwrap();
    cpo_safety::handle(input(&run_id), &ctx).await.unwrap();
    let doc: SafetyDoc = ctx.store.get_json(&RunKeys::new(&run_id).unwrap().safety()).await.unwrap();
    assert_eq!(doc.policy_version, "strict-1");
    let urgent = doc.verdicts.iter().find(|v| v.variant_id == "champions-urgent").unwrap();
    assert_eq!(urgent.decision, Decision::Blocked);
    assert!(urgent.reasons.iter().any(|r| r == "missing_disclaimer: terms"), "{:?}", urgent.reasons);
    assert!(urgent.reasons.iter().any(|r| r.starts_with("blocklist")), "{:?}", urgent.reasons);
    assert_eq!(doc.approved, 0);
}

#[tokio::test]
async fn markup_and_links_outside_the_allow_list_are_blocked() {
    let approved_link = "https://northwind.example/content/returns";
    let variants = vec![
        variant("Champions", "script", VariantStatus::Shipped, "Our boots <script>alert(1)</script> keep you warm."),
        variant("Champions", "img", VariantStatus::Shipped, "Our boots <img src=x onerror=alert(1)> keep you warm."),
        variant("Champions", "link", VariantStatus::Shipped, "Our boots keep you warm: https://evil.example/x"),
        variant("Champions", "www", VariantStatus::Shipped, "Our boots keep you warm, see www.evil.example today."),
        variant("Champions", "js", VariantStatus::Shipped, "Our boots keep you warm. javascript:alert(1)"),
        variant("Champions", "handler", VariantStatus::Shipped, "Our boots\" onfocus=\"alert(1)\" keep you warm."),
        variant(
            "Champions",
            "plain",
            VariantStatus::Shipped,
            &format!("Tea & biscuits on us, we <3 you, and 5 < 10. Our returns guide: {approved_link}."),
        ),
    ];
    let yaml = format!(
        "name: weekly\ngeneration: {{allowed_tokens: [first_name, '{approved_link}']}}\nsafety: {{providers: [offline]}}\n"
    );
    let (ctx, run_id) = setup(b"customer_id\nC1\n", Some(&yaml), variants).await;
    cpo_safety::handle(input(&run_id), &ctx).await.unwrap();
    let doc: SafetyDoc = ctx.store.get_json(&RunKeys::new(&run_id).unwrap().safety()).await.unwrap();
    let verdict = |tone: &str| doc.verdicts.iter().find(|v| v.variant_id == format!("champions-{tone}")).unwrap();
    let mut wrong = Vec::new();
    for (tone, code) in [
        ("script", "markup"),
        ("img", "markup"),
        ("link", "link_not_allowed"),
        ("www", "link_not_allowed"),
        ("js", "markup"),
        ("handler", "markup"),
    ] {
        let v = verdict(tone);
        if v.decision != Decision::Blocked || !v.reasons.iter().any(|r| r.starts_with(code)) {
            wrong.push(format!("{tone}: {:?} {:?}", v.decision, v.reasons));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let plain = verdict("plain");
    assert_eq!(plain.decision, Decision::Approved, "{:?}", plain.reasons);
    assert!(approved(&doc, "control"));
    // The trail names the kind of markup, never the link or the text around it.
    let trail = ctx.store.get(&Key::new(doc.audit_key.clone()).unwrap()).await.unwrap();
    let trail = String::from_utf8(trail.to_vec()).unwrap();
    assert!(!trail.contains("evil.example") && !trail.contains("alert(1)"), "{trail}");
}

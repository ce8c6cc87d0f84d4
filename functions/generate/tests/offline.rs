//! The offline default: deterministic, grounded, no network.

mod support;

use cpo_common::model::variant::VariantStatus;
use cpo_common::ErrorKind;
use support::*;

#[tokio::test]
async fn offline_ships_one_grounded_variant_per_tone() {
    let ctx = fixture(config()).await;
    let out = run(&ctx, SEGMENT, &[]).await.unwrap();
    assert_eq!(out.step, "generate-champions");
    assert_eq!(out.counts["shipped"], 3);
    assert_eq!(out.counts["rejected"], 0);
    assert_eq!(out.counts["provider_calls"], 3);
    assert_eq!(out.keys["variants"], format!("runs/{RUN_ID}/variants/champions.json"));

    let doc = variants(&ctx, RUN_ID, SEGMENT).await;
    assert_eq!(doc.provider, "offline");
    let ids: Vec<&str> = doc.variants.iter().map(|v| v.variant_id.as_str()).collect();
    assert_eq!(ids, ["champions-urgent", "champions-informational", "champions-friendly"]);
    let passages = [JACKET, REWARDS, RETURNS];
    for v in &doc.variants {
        assert_eq!(v.status, VariantStatus::Shipped, "{}: {:?}", v.variant_id, v.reasons);
        assert!(v.message.subject.chars().count() <= 60);
        assert!(!v.citations.is_empty());
        for c in &v.citations {
            // Whole sentences, verbatim: stricter than the validator's normalized match.
            assert!(passages.iter().any(|p| p.contains(&c.quote)), "{} quotes {:?}", v.variant_id, c.quote);
            assert!(c.quote.ends_with(['.', '!', '?']), "not a whole sentence: {:?}", c.quote);
            assert!(v.message.body.contains(&c.quote), "the quoted claim must be in the body");
        }
        assert!(v.message.body.contains("{{first_name}}"));
        let words = v.message.body.split_whitespace().count();
        assert!((40..=200).contains(&words), "{words} words");
    }
    let subjects: std::collections::BTreeSet<&str> = doc.variants.iter().map(|v| v.message.subject.as_str()).collect();
    assert_eq!(subjects.len(), 3, "each tone has its own subject pattern: {subjects:?}");
    let ctas: std::collections::BTreeSet<&str> = doc.variants.iter().map(|v| v.message.cta.as_str()).collect();
    assert_eq!(ctas.len(), 3);
}

#[tokio::test]
async fn offline_is_deterministic() {
    let a = fixture(config()).await;
    let b = fixture(config()).await;
    run(&a, SEGMENT, &[]).await.unwrap();
    run(&b, SEGMENT, &[]).await.unwrap();
    let (da, db) = (variants(&a, RUN_ID, SEGMENT).await, variants(&b, RUN_ID, SEGMENT).await);
    assert_eq!(serde_json::to_string(&da).unwrap(), serde_json::to_string(&db).unwrap());
}

#[tokio::test]
async fn segment_without_content_gets_no_variants_and_no_calls() {
    let ctx = fixture(config()).await;
    let out = run(&ctx, EMPTY_SEGMENT, &[]).await.unwrap();
    assert_eq!(out.step, "generate-at-risk");
    assert_eq!(out.counts["provider_calls"], 0);
    assert_eq!(out.counts["no_content"], 1);
    let doc = variants(&ctx, RUN_ID, EMPTY_SEGMENT).await;
    assert!(doc.no_content);
    assert!(doc.variants.is_empty());
}

#[tokio::test]
async fn unknown_segment_is_bad_input_naming_the_file() {
    let ctx = fixture(config()).await;
    let e = run(&ctx, "Nobody", &[]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InputInvalid);
    assert!(e.message.contains("segments.json") && e.message.contains("Nobody"), "{e}");
    let e = cpo_generate::handle_with_env(
        cpo_common::StepInput { run_id: RUN_ID.into(), ..Default::default() },
        &ctx,
        &env(&[]),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("segment"), "{e}");
}

#[tokio::test]
async fn store_prompt_override_errors_name_the_file_and_line() {
    let ctx = fixture(config()).await;
    let key = cpo_common::keys::prompt("tone").unwrap();
    ctx.store.put(&key, bytes::Bytes::from_static(b"Be nice.\n{% if tone %}\nunclosed")).await.unwrap();
    let e = run(&ctx, SEGMENT, &[]).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InputInvalid);
    assert!(e.message.contains("prompts/tone.j2") && e.message.contains("line"), "{e}");
}

#[tokio::test]
async fn custom_tone_and_restricted_merge_fields() {
    let mut cfg = config();
    cfg.tones = vec!["playful".into()];
    cfg.weights = [("control".to_string(), 0.5), ("playful".to_string(), 0.5)].into();
    cfg.generation.allowed_tokens = vec![];
    let ctx = fixture(cfg).await;
    run(&ctx, SEGMENT, &[]).await.unwrap();
    let doc = variants(&ctx, RUN_ID, SEGMENT).await;
    assert_eq!(doc.variants.len(), 1);
    let v = &doc.variants[0];
    assert_eq!(v.variant_id, "champions-playful");
    assert_eq!(v.status, VariantStatus::Shipped, "{:?}", v.reasons);
    assert!(!v.message.body.contains("{{"), "no merge fields are allowed: {}", v.message.body);
}

#[test]
fn bad_provider_name_is_bad_input() {
    // Refused when the campaign loads, before any step runs.
    let e = cpo_common::CampaignConfig::from_yaml("name: x\ngeneration: {provider: gpt}\n", "c.yaml").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InputInvalid);
    assert!(e.message.contains("generation.provider") && e.message.contains("gpt"), "{e}");
}

fn short_hits(n: usize) -> Vec<cpo_common::model::retrieval::Hit> {
    (0..n)
        .map(|i| {
            let text = format!("Layer number {i} keeps you warm outdoors. Each layer {i} is machine washable.");
            hit(&format!("DOC-{i:02}"), &format!("Layer {i}"), &text, 10.0 - i as f32)
        })
        .collect()
}

#[tokio::test]
async fn short_passages_are_combined_until_the_body_is_long_enough() {
    let mut cfg = config();
    cfg.generation.body_words = [100, 200];
    let ctx = cpo_common::Ctx::new(cpo_common::store::open("mem://").unwrap());
    fixture_with(&ctx, RUN_ID, cfg, short_hits(8)).await;
    run(&ctx, SEGMENT, &[]).await.unwrap();
    for v in variants(&ctx, RUN_ID, SEGMENT).await.variants {
        assert_eq!(v.status, VariantStatus::Shipped, "{:?}", v.reasons);
        assert!(v.citations.len() > 5, "{} citations", v.citations.len());
        assert!(v.message.body.split_whitespace().count() >= 100);
    }
}

#[tokio::test]
async fn too_little_content_is_rejected_with_the_reason_not_padded() {
    let mut cfg = config();
    cfg.generation.body_words = [150, 200];
    let ctx = cpo_common::Ctx::new(cpo_common::store::open("mem://").unwrap());
    fixture_with(&ctx, RUN_ID, cfg, short_hits(1)).await;
    let out = run(&ctx, SEGMENT, &[]).await.unwrap();
    assert_eq!(out.counts["rejected"], 3);
    assert_eq!(out.counts["provider_calls"], 6, "one retry per variant");
    let doc = variants(&ctx, RUN_ID, SEGMENT).await;
    assert!(doc.variants[0].reasons[0].contains("words"), "{:?}", doc.variants[0].reasons);
}

/// Lambda's `service_fn` and the local runner's worker threads both need a `Send` handler future.
#[test]
fn handler_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let ctx = cpo_common::Ctx::new(cpo_common::store::open("mem://").unwrap());
    let fut = cpo_generate::handle(input(RUN_ID, SEGMENT), &ctx);
    assert_send(&fut);
}

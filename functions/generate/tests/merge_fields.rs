//! Merge fields never render broken text: a variant may use a field only when every customer gets a value
//! for it, from the customer file's column or from `generation.merge_defaults`.

mod support;

use cpo_common::keys::RunKeys;
use cpo_common::model::segment::SegmentsDoc;
use cpo_common::model::variant::VariantStatus;
use cpo_common::store::StoreExt;
use support::*;

/// The old system's customer file: tier and location, no first_name, no email.
async fn with_columns(ctx: &cpo_common::Ctx, columns: &[&str]) {
    let keys = RunKeys::new(RUN_ID).unwrap();
    let mut doc: SegmentsDoc = ctx.store.get_json(&keys.segments()).await.unwrap();
    doc.columns = Some(columns.iter().map(|c| c.to_string()).collect());
    ctx.store.put_json(&keys.segments(), &doc).await.unwrap();
}

const OLD_FILE: [&str; 7] =
    ["age", "location", "tier", "purchase_frequency", "historical_open_rate", "historical_click_rate", "x"];

#[tokio::test]
async fn a_field_the_file_lacks_without_a_default_is_rejected_and_not_offered() {
    let server = serve(|_, r| Reply::ok(&good_answer(&r.tone()))).await;
    let mut cfg = openai_config(&server.url());
    cfg.generation.merge_defaults.clear();
    cfg.tones = vec!["friendly".into()];
    let ctx = fixture(cfg).await;
    with_columns(&ctx, &OLD_FILE).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(out.counts["rejected"], 1, "{out:?}");
    let v = &variants(&ctx, RUN_ID, SEGMENT).await.variants[0];
    assert!(
        v.reasons.iter().any(|r| r.contains("{{first_name}}") && r.contains("no \"first_name\" column")),
        "{:?}",
        v.reasons
    );
    let (_, system) = server.requests()[0].message(0);
    assert!(!system.contains("{{first_name}}") && system.contains("{{tier}}"), "{system}");
}

#[tokio::test]
async fn a_default_makes_the_field_usable() {
    let server = serve(|_, r| Reply::ok(&good_answer(&r.tone()))).await;
    let mut cfg = openai_config(&server.url());
    cfg.tones = vec!["friendly".into()];
    assert_eq!(cfg.generation.merge_defaults["first_name"], "there", "the default campaign has the fallback");
    let ctx = fixture(cfg).await;
    with_columns(&ctx, &OLD_FILE).await;
    let out = run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    assert_eq!(out.counts["shipped"], 1, "{out:?}");
}

#[tokio::test]
async fn offline_greets_without_the_field_when_nothing_can_fill_it() {
    let mut cfg = config();
    cfg.generation.merge_defaults.clear();
    let ctx = fixture(cfg).await;
    with_columns(&ctx, &OLD_FILE).await;
    let out = run(&ctx, SEGMENT, &[]).await.unwrap();
    assert_eq!(out.counts["shipped"], 3, "{out:?}");
    for v in variants(&ctx, RUN_ID, SEGMENT).await.variants {
        assert_eq!(v.status, VariantStatus::Shipped);
        assert!(!v.message.body.contains("{{first_name}}"), "{}", v.message.body);
        assert!(v.message.body.contains(" there,"), "{}", v.message.body);
    }
}

//! Only text safety approved byte for byte reaches the send list, `templates.json` or `cpo render`: a variant
//! edited after screening fails the step with `Cpo.SafetyUnavailable` naming it, and nothing is written.

mod fixture;

use cpo_common::model::experiment::TemplatesDoc;
use cpo_common::model::variant::VariantsDoc;
use cpo_common::store::StoreExt;
use cpo_common::ErrorKind;
use cpo_experiment::handle;
use cpo_experiment::render::{render_run, Selection};
use fixture::{build, step, RUN};

#[tokio::test]
async fn a_variant_edited_after_screening_is_not_assigned_and_nothing_is_written() {
    let f = build(500, 200, &[], |_| {}).await;
    let store = f.ctx.store.as_ref();
    let key = f.keys.variants("Champions");
    let mut doc: VariantsDoc = store.get_json(&key).await.unwrap();
    doc.variants[0].message.body = "We will hunt you down and kill you.".into();
    let edited = doc.variants[0].variant_id.clone();
    store.put_json(&key, &doc).await.unwrap();

    let err = handle(step("assign"), &f.ctx).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::SafetyUnavailable, "{err}");
    assert!(err.message.contains(&edited), "names the variant: {err}");
    assert!(store
        .list(&f.keys.prefix())
        .await
        .unwrap()
        .iter()
        .all(|o| !o.key.contains("/send/") && !o.key.contains("/assignments/") && !o.key.contains("/steps/assign")));
}

#[tokio::test]
async fn an_edited_template_is_not_rendered() {
    let f = build(300, 300, &[], |_| {}).await;
    handle(step("assign"), &f.ctx).await.unwrap();
    let store = f.ctx.store.as_ref();
    let mut out = Vec::new();
    assert_eq!(render_run(store, RUN, &Selection::All, &mut out).await.unwrap(), 300);

    let mut t: TemplatesDoc = store.get_json(&f.keys.templates()).await.unwrap();
    let id = t.templates.keys().find(|k| *k != "control").unwrap().clone();
    t.templates.get_mut(&id).unwrap().body.push_str(" <script>alert(1)</script>");
    store.put_json(&f.keys.templates(), &t).await.unwrap();
    let mut out = Vec::new();
    let err = render_run(store, RUN, &Selection::All, &mut out).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::SafetyUnavailable, "{err}");
    assert!(err.message.contains(&id), "{err}");
    assert!(out.is_empty(), "nothing rendered");
}

//! Markup and links the retrieved passages do not contain never ship: a model answer carrying `<script>`, an
//! event-handler attribute, a `javascript:` URL or an unknown link is retried with the reason, then rejected.
//! Plain text with `&`, `<3`, `5 < 10` and a link from the passages ships.

mod support;

use cpo_common::model::variant::VariantStatus;
use serde_json::Value;
use support::*;

const LINK: &str = "https://northwind.example/content/returns";

fn one_tone(mut cfg: cpo_common::CampaignConfig) -> cpo_common::CampaignConfig {
    cfg.tones = vec!["urgent".into()];
    cfg.weights = [("control".to_string(), 0.5), ("urgent".to_string(), 0.5)].into();
    cfg
}

/// The good answer with `field` changed by `edit`.
fn answer_with(field: &str, edit: impl Fn(&str) -> String) -> String {
    let mut v: Value = serde_json::from_str(&good_answer("urgent")).unwrap();
    let old = v[field].as_str().unwrap().to_string();
    v[field] = Value::String(edit(&old));
    v.to_string()
}

/// Status and reasons of the one variant generated from `answer` (the server gives it on every attempt).
async fn outcome(answer: String) -> (VariantStatus, Vec<String>) {
    let server = serve(move |_, _| Reply::ok(&answer)).await;
    let ctx = cpo_common::Ctx::new(cpo_common::store::open("mem://").unwrap());
    let mut hits = default_hits();
    let text = format!("Read our returns guide at {LINK} before you send anything back.");
    hits.push(hit("DOC-HELP", "Returns guide", &text, 3.0));
    fixture_with(&ctx, RUN_ID, one_tone(openai_config(&server.url())), hits).await;
    run(&ctx, SEGMENT, &[KEY_ENV]).await.unwrap();
    let doc = variants(&ctx, RUN_ID, SEGMENT).await;
    let v = &doc.variants[0];
    (v.status, v.reasons.clone())
}

#[tokio::test]
async fn markup_and_unknown_links_are_rejected_with_the_field_named() {
    let cases: Vec<(&str, String, &str)> = vec![
        ("script", answer_with("body", |b| format!("{b} <script>alert(1)</script>")), "body"),
        ("img onerror", answer_with("body", |b| format!("{b} <img src=x onerror=alert(1)>")), "body"),
        ("unknown link", answer_with("body", |b| format!("{b} Details: https://evil.example/x")), "body"),
        ("bare domain with a path", answer_with("body", |b| format!("{b} See evil.example/win now.")), "body"),
        ("tag in the cta", answer_with("cta", |_| "Shop <b>now</b>".into()), "cta"),
        ("javascript: URL", answer_with("subject", |s| format!("{s} javascript:alert(1)")), "subject"),
        ("handler without a tag", answer_with("preheader", |_| "x\" onmouseover=\"alert(1)".into()), "preheader"),
        (
            "approved link inside a tag",
            answer_with("preheader", |_| format!("<a href=\"{LINK}\">Returns</a>")),
            "preheader",
        ),
        ("comment", answer_with("body", |b| format!("{b} <!-- hidden -->")), "body"),
    ];
    let mut wrong = Vec::new();
    for (name, answer, field) in cases {
        let (status, reasons) = outcome(answer).await;
        let named = reasons.iter().any(|r| r.contains(&format!("the {field} ")));
        if status != VariantStatus::Rejected || !named {
            wrong.push(format!("{name}: {status:?} {reasons:?}"));
        }
        for r in &reasons {
            assert!(r.chars().count() <= 200, "{name}: reasons stay short: {r}");
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn the_unknown_link_is_shown_in_the_reason() {
    let (_, reasons) = outcome(answer_with("body", |b| format!("{b} Details: https://evil.example/x"))).await;
    assert!(reasons.iter().any(|r| r.contains("https://evil.example/x")), "{reasons:?}");
    let (_, reasons) = outcome(answer_with("body", |b| format!("{b} <script>alert(1)</script>"))).await;
    assert!(reasons.iter().any(|r| r.contains("<script>")), "{reasons:?}");
    let (_, reasons) = outcome(answer_with("body", |b| format!("{b} <img src=x onerror=alert(1)>"))).await;
    let markup: Vec<&String> = reasons.iter().filter(|r| r.contains("markup")).collect();
    assert_eq!(markup.len(), 1, "the handler inside the tag is not reported again: {reasons:?}");
    assert!(markup[0].contains("<img src=x onerror=alert(1)>"), "{reasons:?}");
}

#[tokio::test]
async fn plain_text_and_links_from_the_passages_ship() {
    let answer = answer_with("body", |b| {
        format!("{b} Tea & biscuits are on us, we <3 you, and 5 < 10 < 20. Returns: {LINK}. Rated 4.8/5, and/or more.")
    });
    let (status, reasons) = outcome(answer).await;
    assert_eq!(status, VariantStatus::Shipped, "{reasons:?}");
    let (status, reasons) = outcome(answer_with("cta", |_| "Shop now ->".into())).await;
    assert_eq!(status, VariantStatus::Shipped, "{reasons:?}");
}

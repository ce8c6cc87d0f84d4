//! Grounded copy only: deadlines, urgency and offers must be stated by a passage the draft cites, and the
//! offline composer writes natural sentences without inventing any of them.

mod support;

use cpo_common::model::variant::VariantStatus;
use cpo_generate::brief::Brief;
use cpo_generate::parse::parse;
use cpo_generate::provider::offline::compose;
use cpo_generate::validate::validate;
use proptest::prelude::*;
use serde_json::{json, Value};
use support::*;

const WELCOME: &str = "New members receive 10 percent off their first full-price order. The welcome code arrives \
by email straight after you sign up and is valid for 30 days.";

fn brief(hits: Vec<cpo_common::model::retrieval::Hit>, tone: &str) -> Brief {
    Brief::new(&config(), &profile(SEGMENT, 4.6), &hits, tone)
}

/// A draft that cites the jacket passage (no deadline, no offer) with `subject` and `extra` in the body.
fn draft(subject: &str, extra: &str, doc_id: &str, quote: &str) -> Value {
    let body = format!(
        "Hi {{{{first_name}}}}, winter is here and we picked something for you. {quote} {extra} It packs into \
         its own pocket, and every jacket carries a two-year repair guarantee. Come and see the full winter range."
    );
    json!({"subject": subject, "preheader": "Our warmest jacket", "body": body, "cta": "Shop the range",
           "citations": [{"doc_id": doc_id, "quote": quote}]})
}

fn reasons(d: &Value, b: &Brief) -> Vec<String> {
    validate(&parse(&d.to_string()).unwrap(), b)
}

const JACKET_QUOTE: &str = "The Alpine Down Jacket is filled with responsibly sourced 700-fill down.";

#[test]
fn invented_urgency_is_rejected_and_stated_urgency_is_not() {
    let b = brief(default_hits(), "urgent");
    let r = reasons(&draft("Ending soon: Alpine Down Jacket", "", "DOC-JACKET", JACKET_QUOTE), &b);
    assert!(r.iter().any(|x| x.contains("\"Ending soon\"") && x.contains("deadline")), "{r:?}");
    let r = reasons(&draft("Alpine Down Jacket", "Hurry, before it is gone!", "DOC-JACKET", JACKET_QUOTE), &b);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(reasons(&draft("Alpine Down Jacket", "", "DOC-JACKET", JACKET_QUOTE), &b).is_empty());

    let mut hits = default_hits();
    hits.push(hit("DOC-WELCOME", "Welcome Offer", WELCOME, 4.0));
    let b = brief(hits, "urgent");
    let quote = "The welcome code arrives by email straight after you sign up and is valid for 30 days.";
    let r = reasons(&draft("Last chance: your welcome code", "", "DOC-WELCOME", quote), &b);
    assert!(r.is_empty(), "a cited validity period grounds the urgency: {r:?}");
}

#[test]
fn invented_offers_are_rejected_and_cited_ones_are_not() {
    let mut hits = default_hits();
    hits.push(hit("DOC-WELCOME", "Welcome Offer", WELCOME, 4.0));
    let b = brief(hits, "friendly");
    let r = reasons(&draft("20% off winter jackets", "", "DOC-JACKET", JACKET_QUOTE), &b);
    assert!(r.iter().any(|x| x.contains("\"20% off\"") && x.contains("no cited passage")), "{r:?}");
    let r = reasons(&draft("Jackets", "Enjoy free shipping and a discount.", "DOC-JACKET", JACKET_QUOTE), &b);
    assert_eq!(r.len(), 2, "{r:?}");
    let quote = "New members receive 10 percent off their first full-price order.";
    let r = reasons(&draft("10% off your first order", "", "DOC-WELCOME", quote), &b);
    assert!(r.is_empty(), "the cited passage states the offer: {r:?}");
    let r = reasons(&draft("15% off your first order", "", "DOC-WELCOME", quote), &b);
    assert_eq!(r.len(), 1, "another number is another offer: {r:?}");
}

#[tokio::test]
async fn offline_copy_is_grounded_and_reads_as_prose() {
    let ctx = fixture(config()).await;
    let out = run(&ctx, SEGMENT, &[]).await.unwrap();
    assert_eq!(out.counts["shipped"], 3);
    for v in variants(&ctx, RUN_ID, SEGMENT).await.variants {
        assert_eq!(v.status, VariantStatus::Shipped, "{:?}", v.reasons);
        let m = &v.message;
        for bad in ["Ending soon", "Last chance", "act now", "before it is gone", "Don't wait on this"] {
            let all = format!("{} {} {}", m.subject, m.preheader, m.body).to_lowercase();
            assert!(!all.contains(&bad.to_lowercase()), "{}: {bad:?} in {all}", v.variant_id);
        }
        // Claims are sentences of the prose, not a quotation hung off a lead-in ("Don't wait on this: \"…\"").
        assert!(!m.body.contains(": \"") && !m.body.contains('"'), "{}", m.body);
        for c in &v.citations {
            assert!(m.body.contains(&c.quote));
        }
    }
}

fn sentence() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z]{2,9}", 6..14).prop_map(|w| {
        let mut s = w.join(" ");
        s[..1].make_ascii_uppercase();
        s + "."
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever the passages say, the offline composer's own words never add urgency or an offer: each
    /// reason it can meet comes from the passages (length, merge fields), never from a claim check.
    #[test]
    fn offline_never_adds_a_claim(
        texts in proptest::collection::vec(proptest::collection::vec(sentence(), 1..4), 1..4),
        titles in proptest::collection::vec("[A-Z][a-z]{2,8}( [A-Z][a-z]{2,8}){0,3}", 3),
        tone in prop_oneof![Just("urgent"), Just("informational"), Just("friendly"), Just("seasonal")],
        r_mean in 1.0f64..5.0,
    ) {
        let hits: Vec<_> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| hit(&format!("DOC-{i}"), &titles[i % titles.len()], &t.join(" "), 5.0))
            .collect();
        let b = Brief::new(&config(), &profile(SEGMENT, r_mean), &hits, tone);
        let d = parse(&compose(&b).to_string()).unwrap();
        let r = validate(&d, &b);
        prop_assert!(
            r.iter().all(|x| !x.contains("deadline") && !x.contains("offers")),
            "{:?}\n{}", r, d.message.body
        );
        prop_assert!(!d.message.body.contains('"'));
    }
}

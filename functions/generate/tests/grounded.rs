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
        for bad in [
            "Ending soon",
            "Last chance",
            "act now",
            "before it is gone",
            "Don't wait on this",
            "today",
            "don't miss",
            "right now",
            "while you can",
        ] {
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

/// Words that put a clock on the reader without naming one: each must be stated by a cited passage.
const URGENCY: [&str; 14] = [
    "today",
    "tonight",
    "right now",
    "don't miss",
    "don't wait",
    "while you can",
    "hurry",
    "last chance",
    "limited time",
    "ends soon",
    "ending soon",
    "act now",
    "today only",
    "do not miss",
];

/// A draft with `subject`, `body_extra` after the cited sentence, and `cta`, citing `quote` of `doc_id`.
fn draft_with(subject: &str, body_extra: &str, cta: &str, doc_id: &str, quote: &str) -> Value {
    let body = format!(
        "Hi {{{{first_name}}}}, we picked something for you this week. {quote} {body_extra} Every detail is on \
         the product page, and our store teams are glad to help you choose. Come and see the full winter range."
    );
    json!({"subject": subject, "preheader": "Our warmest jacket", "body": body, "cta": cta,
           "citations": [{"doc_id": doc_id, "quote": quote}]})
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// An urgency word the draft adds, in any field, is rejected when no cited passage states a deadline.
    #[test]
    fn added_urgency_is_rejected(phrase in proptest::sample::select(URGENCY.to_vec()), place in 0usize..3) {
        let b = brief(default_hits(), "urgent");
        let d = match place {
            0 => draft_with(&format!("{}: Alpine Down Jacket", capitalized(phrase)), "", "Shop the range",
                            "DOC-JACKET", JACKET_QUOTE),
            1 => draft_with("Alpine Down Jacket", &format!("Take a look {phrase}."), "Shop the range",
                            "DOC-JACKET", JACKET_QUOTE),
            _ => draft_with("Alpine Down Jacket", "", &format!("Shop {phrase}"), "DOC-JACKET", JACKET_QUOTE),
        };
        let r = reasons(&d, &b);
        prop_assert!(r.iter().any(|x| x.contains("deadline")), "{phrase:?} at {place}: {r:?}");
        // The same draft without the phrase ships: the rejection is the phrase's doing.
        prop_assert!(reasons(&draft_with("Alpine Down Jacket", "", "Shop the range", "DOC-JACKET", JACKET_QUOTE), &b)
            .is_empty());
    }

    /// The same words inside a cited sentence, copied as written, are the passage's words and ship.
    #[test]
    fn urgency_inside_a_quoted_passage_sentence_ships(
        phrase in proptest::sample::select(URGENCY.to_vec()),
        filler in proptest::collection::vec("[a-z]{3,8}", 4..8),
    ) {
        let sentence = format!("{} our walkers {} outdoors.", capitalized(phrase), filler.join(" "));
        let text = format!("{sentence} Every walk is led by store staff and local volunteers.");
        let mut hits = default_hits();
        hits.push(hit("DOC-WALKS", "Trail Days", &text, 4.0));
        let b = brief(hits, "friendly");
        let r = reasons(&draft_with("Trail Days", "", "Find a walk", "DOC-WALKS", &sentence), &b);
        prop_assert!(r.is_empty(), "{sentence:?}: {r:?}");
    }

    /// A day, date or window the draft names is rejected unless a cited passage names the same one.
    #[test]
    fn invented_deadlines_are_rejected_and_stated_ones_ship(
        kind in 0usize..3,
        day in proptest::sample::select(vec!["Monday", "Friday", "Sunday"]),
        date in 1u32..29,
        month in proptest::sample::select(vec!["January", "March", "December"]),
        hours in 2u32..96,
    ) {
        let deadline = match kind {
            0 => format!("by {day}"),
            1 => format!("until {date} {month}"),
            _ => format!("within {hours} hours"),
        };
        let b = brief(default_hits(), "urgent");
        let d = draft_with("Alpine Down Jacket", &format!("Order yours {deadline}."), "Shop the range",
                           "DOC-JACKET", JACKET_QUOTE);
        let r = reasons(&d, &b);
        prop_assert!(r.iter().any(|x| x.contains("deadline")), "{deadline:?}: {r:?}");

        let stated = format!("The winter event runs {deadline} in every store.");
        let mut hits = default_hits();
        hits.push(hit("DOC-EVENT", "Winter Event", &format!("{stated} Walks are led by store staff."), 4.0));
        let b = brief(hits, "urgent");
        let d = draft_with("Winter Event", &format!("Join us {deadline}."), "See the event", "DOC-EVENT", &stated);
        let r = reasons(&d, &b);
        prop_assert!(r.iter().all(|x| !x.contains("deadline")), "{deadline:?} is stated: {r:?}");
    }
}

#[test]
fn pasted_quotes_repeats_and_empty_greetings_are_rejected() {
    let b = brief(default_hits(), "urgent");
    let pasted = draft_with("Alpine Down Jacket", "", "Shop the range", "DOC-JACKET", JACKET_QUOTE);
    let body =
        pasted["body"].as_str().unwrap_or_default().replace(JACKET_QUOTE, &format!("Have a look: \"{JACKET_QUOTE}\""));
    let mut d = pasted.clone();
    d["body"] = json!(body);
    let r = reasons(&d, &b);
    assert!(r.iter().any(|x| x.contains("quotation marks")), "{r:?}");

    let mut d = pasted.clone();
    d["body"] = json!(format!("{} {JACKET_QUOTE}", pasted["body"].as_str().unwrap_or_default()));
    let r = reasons(&d, &b);
    assert!(r.iter().any(|x| x.contains("repeats")), "{r:?}");

    let mut d = pasted;
    d["body"] = json!(d["body"].as_str().unwrap_or_default().replace("Hi {{first_name}},", "Hello ,"));
    let r = reasons(&d, &b);
    assert!(r.iter().any(|x| x.contains("greeting")), "{r:?}");
}

#[test]
fn offline_opening_fits_the_segment() {
    let cases: [(f64, f64, &[&str]); 3] = [
        (1.4, 3.5, &["it has been a while", "it has been some time"]),
        (4.8, 1.0, &["welcome"]),
        (4.6, 4.5, &["so often", "regular customer", "continued custom"]),
    ];
    for (r, f, expect) in cases {
        for tone in ["urgent", "informational", "friendly", "premium"] {
            let mut p = profile(SEGMENT, r);
            p.f_mean = f;
            let b = Brief::new(&config(), &p, &default_hits(), tone);
            let d = parse(&compose(&b).to_string()).unwrap();
            let first = d.message.body.split("\n\n").next().unwrap_or_default().to_lowercase();
            assert!(expect.iter().any(|e| first.contains(e)), "r={r} f={f} {tone}: {first}");
            assert!(validate(&d, &b).is_empty(), "{tone}: {:?}", validate(&d, &b));
        }
    }
}

#[test]
fn offline_paragraphs_never_open_on_a_pronoun_or_skip_a_sentence() {
    let text = "It keeps you warm on cold mornings. The parka is our warmest jacket.";
    let hits = vec![
        hit("DOC-LEAN", "Leaning Parka", text, 9.0),
        hit("DOC-JACKET", "Alpine Down Jacket", JACKET, 8.0),
        hit("DOC-REWARDS", "Northwind Rewards", REWARDS, 7.0),
    ];
    let b = brief(hits, "friendly");
    let d = parse(&compose(&b).to_string()).unwrap();
    // The leaning sentence is skipped, not quoted without its antecedent.
    assert!(d.citations.iter().all(|c| c.doc_id != "DOC-LEAN" || !c.quote.starts_with("It ")), "{:?}", d.citations);
    for para in d.message.body.split("\n\n") {
        let first = para.split_whitespace().next().unwrap_or_default();
        assert!(!["It", "They", "This", "Its"].contains(&first), "{para}");
    }
    // Within a document, sentences keep the passage's order with none skipped.
    let jacket: Vec<&str> = d.citations.iter().filter(|c| c.doc_id == "DOC-JACKET").map(|c| c.quote.as_str()).collect();
    let all = cpo_generate::provider::offline::sentences(JACKET);
    assert_eq!(jacket, all[..jacket.len()].to_vec());
}

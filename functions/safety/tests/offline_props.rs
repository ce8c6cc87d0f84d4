//! Properties of the offline screener's approve/block decision: a harmful phrase stays blocked under case
//! changes, confusable letters, zero-width characters, extra whitespace and benign surrounding copy; the
//! decision is deterministic; and ordinary copy (the bundled content library) is not blocked.

use cpo_common::model::safety::Decision;
use cpo_common::model::variant::Message;
use cpo_safety::decide::screen_message;
use cpo_safety::offline::{analyse_full, Offline};
use cpo_safety::policy::Policy;
use cpo_safety::screener::Screener;
use proptest::prelude::*;

/// Harmful phrases from each family (none is from the held-out split).
const HARMFUL: &[&str] = &[
    "Immigrants are vermin",
    "Refugees breed like rats",
    "a plague of migrants",
    "Muslims spread like cancer",
    "We know where your children catch the bus",
    "It would be a shame if your shop caught fire",
    "Nobody would miss you if you were gone",
    "Go drink some antifreeze",
    "You are a worthless idiot",
    "Reply with your PIN to keep the account open",
    "Someone should shoot that judge",
    "I will kill you",
];

/// Ordinary copy wrapped around the harmful phrase.
const BENIGN: &[&str] = &[
    "Winter coats are here: warm, light and ready for the cold.",
    "Hi {{first_name}}, your favourite boots are back in stock!",
    "Free delivery on every order this weekend",
    "Pest control made easy with our humane traps.",
    "",
];

fn decide(text: &str) -> Decision {
    let chain: Vec<Box<dyn Screener>> = vec![Box::new(Offline)];
    let policy = Policy::bundled().expect("bundled policy");
    let tokens = vec!["first_name".to_string()];
    let m = Message { body: text.to_string(), ..Message::default() };
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(screen_message(&chain, &policy, &tokens, &m, false)).decision
}

/// Latin letters and look-alikes from other scripts and Unicode blocks.
fn confusable(c: char) -> Option<char> {
    Some(match c {
        'a' => 'а', // Cyrillic
        'e' => 'е',
        'o' => 'о',
        'p' => 'р',
        'c' => 'с',
        'x' => 'х',
        'y' => 'у',
        'i' => 'і',
        'A' => 'Α', // Greek
        'O' => 'Ο',
        'l' => 'ⅼ',  // small roman numeral fifty
        'm' => 'ｍ', // fullwidth
        _ => return None,
    })
}

#[derive(Debug, Clone)]
enum Disguise {
    Upper,
    Lower,
    Confusables(Vec<bool>),
    ZeroWidth(Vec<usize>, char),
    Spaces(Vec<usize>),
}

fn disguise() -> impl Strategy<Value = Disguise> {
    prop_oneof![
        Just(Disguise::Upper),
        Just(Disguise::Lower),
        prop::collection::vec(any::<bool>(), 64).prop_map(Disguise::Confusables),
        (
            prop::collection::vec(0usize..64, 1..6),
            prop::sample::select(vec!['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}'])
        )
            .prop_map(|(at, c)| Disguise::ZeroWidth(at, c)),
        prop::collection::vec(1usize..4, 64).prop_map(Disguise::Spaces),
    ]
}

fn apply(text: &str, d: &Disguise) -> String {
    match d {
        Disguise::Upper => text.to_uppercase(),
        Disguise::Lower => text.to_lowercase(),
        Disguise::Confusables(which) => text
            .chars()
            .enumerate()
            .map(
                |(i, c)| {
                    if which.get(i % which.len()).copied().unwrap_or(false) {
                        confusable(c).unwrap_or(c)
                    } else {
                        c
                    }
                },
            )
            .collect(),
        Disguise::ZeroWidth(at, z) => {
            let mut out = String::new();
            for (i, c) in text.chars().enumerate() {
                out.push(c);
                if at.iter().any(|a| a % text.chars().count().max(1) == i) && c.is_alphabetic() {
                    out.push(*z);
                }
            }
            out
        }
        Disguise::Spaces(n) => {
            let mut out = String::new();
            let mut k = 0;
            for c in text.chars() {
                if c == ' ' {
                    let w = n.get(k % n.len()).copied().unwrap_or(1);
                    out.push_str(&[" ", "\t", "\n", "\u{00A0}"][k % 4].repeat(w));
                    k += 1;
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_harmful_phrase_stays_blocked_however_disguised(
        phrase in prop::sample::select(HARMFUL),
        before in prop::sample::select(BENIGN),
        after in prop::sample::select(BENIGN),
        d in disguise(),
    ) {
        let text = format!("{before} {} {after}", apply(phrase, &d));
        prop_assert_eq!(decide(&text), Decision::Blocked, "{:?}", text);
    }

    #[test]
    fn the_decision_is_deterministic(text in "\\PC{0,120}") {
        prop_assert_eq!(analyse_full(&text), analyse_full(&text));
    }
}

#[test]
fn the_bundled_content_library_is_not_blocked() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/content");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("examples/content") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("content file");
        let a = analyse_full(&text).expect("normalisable");
        assert!(a.severities.values().all(|s| *s < 4) && a.fraud.is_empty(), "{}: {:?}", path.display(), a);
        n += 1;
    }
    assert!(n >= 20, "{n} content files");
}

//! The checks a draft must pass to ship (docs/generate.md). Each failure is a sentence a copywriter (or the
//! model, on the retry) can act on; an empty list means the draft ships.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use cpo_common::markup;
use regex::Regex;

use crate::brief::Brief;
use crate::parse::Draft;

/// Shortest normalized quote that is checked as a claim (shorter ones match almost any passage).
pub const MIN_QUOTE_CHARS: usize = 12;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern:?}: {e}")))
}

fn merge_field() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"\{\{([^{}]*)\}\}")
}

/// Placeholder shapes models leave behind: `[Your Name]`, `{name}`, `<<NAME>>`, `%NAME%`, `*|FNAME|*`,
/// and filler words.
fn placeholders() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"\[[^\[\]\n]{1,80}\]|\{[^{}\n]{0,80}\}|<<[^<>\n]{0,80}>>|%[A-Za-z_]{2,40}%|\*\|[^|\n]{1,40}\|\*|(?i:lorem ipsum)|\b(?:TODO|TBD|XXX)\b",
    )
}

/// Lowercase, one space for any whitespace run, typographic quotes and dashes folded to ASCII.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        let c = match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '`' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => '"',
            '\u{2010}'..='\u{2015}' => '-',
            c if c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        if c == '\u{2026}' {
            out.push_str("...");
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// A quote as the model wrote it, stripped of the wrapping it adds: surrounding quotes, ellipses and a final
/// punctuation mark.
fn core_of_quote(quote: &str) -> String {
    let n = normalize(quote);
    let trimmed = n
        .trim_matches(|c: char| c == '"' || c == '\'' || c == ' ')
        .trim_start_matches("...")
        .trim_end_matches("...")
        .trim()
        .trim_end_matches(['.', ',', ';', ':', '!', '?'])
        .trim();
    trimmed.to_string()
}

pub fn validate(draft: &Draft, brief: &Brief) -> Vec<String> {
    let mut reasons = Vec::new();
    let m = &draft.message;
    let subject_chars = m.subject.chars().count();
    if m.subject.trim().is_empty() {
        reasons.push("the subject is empty".to_string());
    } else if subject_chars > brief.subject_max_chars {
        reasons.push(format!("the subject has {subject_chars} characters; the limit is {}", brief.subject_max_chars));
    }
    if m.subject.contains("**") || m.subject.starts_with('#') {
        reasons.push("the subject contains markdown; write plain text".to_string());
    }
    let words = m.body.split_whitespace().count();
    let [min, max] = brief.body_words;
    if words < min || words > max {
        reasons.push(format!("the body has {words} words; it must have between {min} and {max}"));
    }
    if m.cta.trim().is_empty() {
        reasons.push("the call to action (cta) is empty".to_string());
    }
    check_fields(draft, brief, &mut reasons);
    check_markup_and_links(draft, brief, &mut reasons);
    check_citations(draft, brief, &mut reasons);
    check_claims(draft, brief, &mut reasons);
    check_prose(draft, &mut reasons);
    reasons
}

/// Urgency and scarcity: a "now or never" that only a stated end date or limit can justify. Besides the
/// explicit phrases, the everyday words that carry the same pressure ("today", "don't miss", "while you can")
/// count: a reader hears a deadline in them whether or not one is named.
fn urgency() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?i)\b(?:last chance|final chance|ending soon|ends? (?:soon|today|tonight|tomorrow|this week(?:end)?|on \w+|\w+day)|act (?:now|fast|quickly)|hurry|limited[- ]time|for a limited time|today only|today|tonight|right now|now or never|final (?:hours|days?)|last day|running out|(?:while|until) (?:stocks?|supplies) last|before (?:it'?s|it is|they'?re|they are) (?:gone|too late)|don'?t (?:miss|wait|delay)|do not (?:miss|wait|delay)|while (?:you|it) (?:can|still can|lasts?)|(?:offer |sale )?expires?|countdown|only \d+ left|selling fast|almost gone|going fast|(?:this|the) weekend only|this week only|before midnight|time is running out)\b",
    )
}

/// Deadlines: a named day, date or clock time by which something ends, or a short window. A date is
/// grounded only when a cited passage names the same day, date or number.
fn deadline() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?i)\b(?:(?:by|until|till|before|ends?|ending|through|thru|closes?|on) (?:midnight|(?:this |next )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|\d{1,2}(?:st|nd|rd|th)? (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2}(?:st|nd|rd|th)?|\d{1,2}/\d{1,2}(?:/\d{2,4})?|the end of (?:the )?(?:day|week|month|\w+))|(?:within|in|for|next|only) (?:the next )?\d+ (?:hours?|days?)|\d+ (?:hours?|days?) (?:only|left))\b",
    )
}

/// What makes a deadline the same as a passage's: its number, day or month, lowercased.
fn deadline_keys(found: &str) -> Vec<String> {
    const NAMES: [&str; 20] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "midnight",
        "jan",
        "feb",
        "mar",
        "apr",
        "may",
        "jun",
        "jul",
        "aug",
        "sep",
        "oct",
        "nov",
        "dec",
    ];
    normalize(found)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .filter_map(|t| {
            let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() {
                return Some(digits);
            }
            NAMES.iter().find(|n| t.starts_with(*n)).map(|n| n.to_string())
        })
        .collect()
}

/// What a cited passage must say for urgency to be grounded: an end, a limit or a validity period.
fn deadline_support() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?i)\b(?:until|ends?|ending|expires?|expiry|valid for|valid until|last day|deadline|closing date|while (?:stocks?|supplies) lasts?|limited|only \d+|\d{1,2}(?:st|nd|rd|th)? (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*)\b",
    )
}

/// Offers: a price cut, a free extra, bonus points or a promotion mechanism.
fn offer() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?i)(?:\b\d+(?:\.\d+)?\s?(?:%|percent)(?:\s+off)?\b|[$£€]\s?\d+(?:\.\d+)?\s+(?:off|reward|voucher|credit)\b|\bsave\s+(?:up to\s+)?[$£€]\s?\d+\b|\bhalf[- ]price\b|\bfree\s+(?:standard\s+|express\s+|next[- ]day\s+)?(?:shipping|delivery|returns?|gifts?|samples?|postage)\b|\b(?:double|triple|bonus|extra)\s+points\b|\b(?:discount|coupon|promo(?:tion)? code|voucher|sale|clearance|bogo|buy one,? get one)\b)",
    )
}

/// The words an offer is recognised by in a passage: its number (`20%` → `20`) or its key word.
fn offer_key(found: &str) -> String {
    let n = normalize(found);
    if let Some(num) = n.split(|c: char| !(c.is_ascii_digit() || c == '.')).find(|t| !t.is_empty() && t != &".") {
        return num.to_string();
    }
    let key = n.split_whitespace().last().unwrap_or(&n).trim_end_matches('s');
    key.to_string()
}

/// A field with the verbatim text of every citation quote blanked out: what remains is the draft's own
/// wording. A passage sentence such as "Today we run stores in twenty cities." states its own "today";
/// only words the draft adds around the quotes must be grounded some other way.
fn own_words(text: &str, draft: &Draft) -> String {
    let mut out = text.to_string();
    for c in &draft.citations {
        let q = c.quote.trim().trim_matches(|ch: char| ch == '"' || ch == '\u{201C}' || ch == '\u{201D}').trim();
        if q.chars().count() >= MIN_QUOTE_CHARS {
            out = out.replace(q, " ");
        }
    }
    out
}

/// Deadlines, urgency and offers in the copy must be stated by a passage the draft cites: a model (or a
/// template) must not invent a "last chance", a closing date or a discount. Quoted passage text supports
/// itself (see `own_words`); the checks run on the rest.
fn check_claims(draft: &Draft, brief: &Brief, reasons: &mut Vec<String>) {
    let cited: Vec<String> = brief
        .hits
        .iter()
        .filter(|h| draft.citations.iter().any(|c| c.doc_id.trim() == h.doc_id))
        .flat_map(|h| h.passages.iter().map(|p| normalize(&p.text)))
        .collect();
    let has_deadline = cited.iter().any(|p| deadline_support().is_match(p));
    let cited_words: BTreeSet<String> = cited.iter().flat_map(|p| deadline_keys(p.as_str())).collect();
    let m = &draft.message;
    let mut seen = BTreeSet::new();
    for (name, text) in [("subject", &m.subject), ("preheader", &m.preheader), ("body", &m.body), ("cta", &m.cta)] {
        let own = own_words(text, draft);
        for u in urgency().find_iter(&own) {
            let phrase = u.as_str().to_string();
            if !has_deadline && seen.insert(normalize(&phrase)) {
                reasons.push(format!(
                    "the {name} says {phrase:?}, but no cited passage states a deadline or limit; \
                     remove the urgency or cite the passage that states it"
                ));
            }
        }
        for d in deadline().find_iter(&own) {
            let phrase = d.as_str().to_string();
            let keys = deadline_keys(&phrase);
            let supported = !keys.is_empty() && keys.iter().all(|k| cited_words.contains(k));
            if !supported && seen.insert(normalize(&phrase)) {
                reasons.push(format!(
                    "the {name} sets the deadline {phrase:?}, which no cited passage states; \
                     remove it or cite the passage that states it"
                ));
            }
        }
        for o in offer().find_iter(text) {
            let phrase = o.as_str().to_string();
            let key = offer_key(&phrase);
            let supported = cited.iter().any(|p| {
                offer().find_iter(p).any(|q| offer_key(q.as_str()) == key) || (key.len() > 3 && p.contains(&key))
            });
            if !supported && seen.insert(normalize(&phrase)) {
                reasons.push(format!(
                    "the {name} offers {phrase:?}, which no cited passage states; \
                     mention only offers the cited passages contain"
                ));
            }
        }
    }
}

/// Prose a customer would not take seriously: a passage pasted inside quotation marks (`Don't wait on this:
/// "…"`), the same sentence twice, or a greeting whose name slot is empty ("Hello , here is…").
fn check_prose(draft: &Draft, reasons: &mut Vec<String>) {
    let body = normalize(&draft.message.body);
    for (i, c) in draft.citations.iter().enumerate() {
        let quote = core_of_quote(&c.quote);
        if quote.chars().count() >= MIN_QUOTE_CHARS && body.contains(&format!("\"{quote}")) {
            reasons.push(format!(
                "the body pastes citation {} inside quotation marks; restate it as a sentence of the email",
                i + 1
            ));
        }
    }
    let mut seen = BTreeSet::new();
    let mut repeated = BTreeSet::new();
    for s in crate::provider::offline::sentences(&body) {
        let s = s.trim_end_matches(['.', '!', '?']).to_string();
        if s.split_whitespace().count() >= 4 && !seen.insert(s.clone()) {
            repeated.insert(s);
        }
    }
    for s in repeated {
        let shown: String = s.chars().take(EXCERPT_CHARS).collect();
        reasons.push(format!("the body repeats the sentence {shown:?}; say each thing once"));
    }
    for (name, text) in
        [("subject", &draft.message.subject), ("preheader", &draft.message.preheader), ("body", &draft.message.body)]
    {
        if empty_greeting().is_match(text) {
            reasons.push(format!(
                "the {name} has a greeting with no name (\"Hello ,\"); use a merge field with a fallback or none"
            ));
        }
    }
}

fn empty_greeting() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"(?i)\b(?:hi|hello|hey|dear)\s+[,!.;:]")
}

/// Longest piece of a draft quoted in a reason about markup or a link.
const EXCERPT_CHARS: usize = 40;

/// No markup in any field, and only links that the retrieved passages (the approved corpus) or the allowed
/// tokens contain, exactly.
fn check_markup_and_links(draft: &Draft, brief: &Brief, reasons: &mut Vec<String>) {
    let approved: BTreeSet<&str> = brief
        .hits
        .iter()
        .flat_map(|h| h.passages.iter())
        .flat_map(|p| markup::links(&p.text))
        .chain(brief.allowed_tokens.iter().map(String::as_str))
        .collect();
    let m = &draft.message;
    for (name, text) in [("subject", &m.subject), ("preheader", &m.preheader), ("body", &m.body), ("cta", &m.cta)] {
        // One reason per excerpt: a handler inside a tag already shown is not reported again.
        let mut shown_until = 0;
        let mut found = BTreeSet::new();
        for piece in markup::markup(text) {
            if piece.start < shown_until {
                continue;
            }
            let excerpt = piece.excerpt(text, EXCERPT_CHARS);
            shown_until = piece.start + excerpt.len();
            found.insert(excerpt);
        }
        for excerpt in found {
            reasons.push(format!("the {name} contains markup ({excerpt:?}); write plain text, no HTML"));
        }
        let unknown: BTreeSet<&str> = markup::links(text).into_iter().filter(|l| !approved.contains(l)).collect();
        for link in unknown {
            let mut shown: String = link.chars().take(EXCERPT_CHARS).collect();
            if link.chars().count() > EXCERPT_CHARS {
                shown.push('…');
            }
            reasons.push(format!(
                "the {name} links to {shown:?}, which is not in the retrieved passages; use only their links"
            ));
        }
    }
}

/// Merge fields from the allowed list only, and no unfilled placeholders, in every field.
fn check_fields(draft: &Draft, brief: &Brief, reasons: &mut Vec<String>) {
    let m = &draft.message;
    let allowed: Vec<String> = brief.allowed_tokens.iter().map(|t| format!("{{{{{t}}}}}")).collect();
    for (name, text) in [("subject", &m.subject), ("preheader", &m.preheader), ("body", &m.body), ("cta", &m.cta)] {
        let mut bad_tokens = BTreeSet::new();
        let mut unfillable = BTreeSet::new();
        for cap in merge_field().captures_iter(text) {
            let token = cap[1].trim();
            if !brief.allows(token) {
                bad_tokens.insert(format!("{{{{{token}}}}}"));
            } else if !brief.fillable(token) {
                unfillable.insert(token.to_string());
            }
        }
        for t in bad_tokens {
            reasons.push(format!(
                "the {name} uses the merge field {t}, which is not allowed (allowed: {})",
                if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
            ));
        }
        for t in unfillable {
            reasons.push(format!(
                "the {name} uses the merge field {{{{{t}}}}}, but the customer file has no {t:?} column and \
                 generation.merge_defaults has no fallback for it; write the text without it"
            ));
        }
        let without_fields = merge_field().replace_all(text, "");
        let found: BTreeSet<&str> = placeholders().find_iter(&without_fields).map(|m| m.as_str()).collect();
        for p in found {
            let p: String = p.chars().take(40).collect();
            reasons.push(format!("the {name} contains the unfilled placeholder {p:?}"));
        }
    }
}

/// At least one citation; each names a retrieved document and quotes its passages.
fn check_citations(draft: &Draft, brief: &Brief, reasons: &mut Vec<String>) {
    if draft.citations.is_empty() {
        reasons.push("there are no citations; cite at least one retrieved passage by doc_id with a quote".into());
        return;
    }
    let retrieved: Vec<&str> = brief.hits.iter().map(|h| h.doc_id.as_str()).collect();
    for (i, c) in draft.citations.iter().enumerate() {
        let n = i + 1;
        let Some(hit) = brief.hits.iter().find(|h| h.doc_id == c.doc_id.trim()) else {
            let id: String = c.doc_id.chars().take(60).collect();
            reasons.push(format!(
                "citation {n} cites doc_id {id:?}, which is not among the retrieved documents ({})",
                retrieved.join(", ")
            ));
            continue;
        };
        let quote = core_of_quote(&c.quote);
        if quote.chars().count() < MIN_QUOTE_CHARS {
            reasons.push(format!(
                "citation {n} ({}) has a quote too short to verify; copy at least one whole sentence",
                hit.doc_id
            ));
            continue;
        }
        let found = hit.passages.iter().any(|p| normalize(&p.text).contains(&quote));
        if !found {
            reasons.push(format!(
                "citation {n}: the quote is not in the retrieved passages of {}; copy the words exactly",
                hit.doc_id
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_folds_case_space_quotes_and_dashes() {
        assert_eq!(normalize("  It\u{2019}s  \u{201C}Warm\u{201D}\n\u{2014} really "), "it's \"warm\" - really");
        assert_eq!(core_of_quote("\u{201C}\u{2026}members earn points.\u{201D}"), "members earn points");
    }

    #[test]
    fn offer_keys_match_numbers_and_words() {
        assert_eq!(offer_key("20% off"), "20");
        assert_eq!(offer_key("20 percent off"), "20");
        assert_eq!(offer_key("$5 off"), "5");
        assert_eq!(offer_key("free express shipping"), "shipping");
        assert_eq!(offer_key("Free returns"), "return");
        assert_eq!(offer_key("Sale"), "sale");
    }

    #[test]
    fn urgency_words_are_found_and_ordinary_words_are_not() {
        for bad in [
            "Last chance: boots",
            "Ending soon",
            "Act now",
            "ends Sunday",
            "while stocks last",
            "Hurry!",
            "Take a look today.",
            "Don't miss this: boots",
            "Don't wait on this",
            "Shop right now",
            "Treat yourself while you can.",
            "Tonight only",
            "For a limited time",
        ] {
            assert!(urgency().is_match(bad), "{bad}");
        }
        for fine in ["Cold hands can end a winter walk early.", "Take a look.", "We hope to see you soon."] {
            assert!(!urgency().is_match(fine), "{fine}");
        }
    }

    #[test]
    fn deadlines_are_found_with_their_keys() {
        for (bad, keys) in [
            ("Order by Friday", vec!["friday"]),
            ("ends 12 December", vec!["12", "dec"]),
            ("until Dec 24th", vec!["dec", "24"]),
            ("within 48 hours", vec!["48"]),
            ("before midnight", vec!["midnight"]),
        ] {
            let m = deadline().find(bad).map(|m| m.as_str().to_string());
            let m = m.unwrap_or_else(|| panic!("{bad}: no deadline found"));
            assert_eq!(deadline_keys(&m), keys, "{bad}");
        }
        for fine in ["Boots fit true to size.", "Walks last between one and three hours."] {
            assert!(!deadline().is_match(fine), "{fine}");
        }
    }

    #[test]
    fn placeholders_and_merge_fields() {
        let p = placeholders();
        for bad in ["Best, [Your Name]", "Hi {name}", "<<FNAME>>", "Dear %FIRSTNAME%", "*|FNAME|*", "TODO"] {
            assert!(p.is_match(bad), "{bad}");
        }
        assert!(!p.is_match("Hi there, 20% off today"));
        let caps: Vec<String> =
            merge_field().captures_iter("{{ first_name }} {{x|upper}}").map(|c| c[1].trim().into()).collect();
        assert_eq!(caps, ["first_name", "x|upper"]);
    }
}

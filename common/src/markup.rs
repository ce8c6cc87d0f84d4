//! Markup and links in message copy. Messages are plain text that templates place into e-mails: an HTML tag,
//! an event-handler attribute or a script URL in a field could run or restyle in a mail client, and a link
//! nobody approved could send customers anywhere. `generate` rejects drafts with either (links must come from
//! the retrieved passages) and `safety` blocks them again (links must be in the allow list), so both layers
//! agree on what counts, through this module.
//!
//! What counts as markup, chosen so ordinary copy passes (`&`, `<3`, `5 < 10`, `->`):
//! - a tag: `<` directly followed by a letter, `/` and a letter, `!` (comments, doctype) or `?`;
//! - an event-handler attribute: `on` + letters + `=` (`onerror=`, `onmouseover =`), with or without a tag
//!   (English words such as `online` excepted);
//! - a script or data URL: `javascript:`, `vbscript:`, `data:<type>/<subtype>`.
//!
//! A link: `scheme://…`, `www.…`, or a domain followed by a path (`evil.example/x`, which mail clients turn into
//! links). A bare domain without a path (`northwind.example`) is not treated as a link.

use std::sync::LazyLock;

use regex::Regex;

fn re(p: &str) -> Regex {
    // Patterns are constants of this module, covered by its tests.
    Regex::new(p).unwrap_or_else(|e| panic!("markup pattern {p:?}: {e}"))
}

static TAG: LazyLock<Regex> = LazyLock::new(|| re(r"<(/?[A-Za-z][A-Za-z0-9:-]{0,30}|![A-Za-z\[-]|\?[A-Za-z])"));
static HANDLER: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b(on[a-z]{3,30})\s*="));
/// English words that look like handler names (`Online = cheaper`); none is an HTML event.
const NOT_HANDLERS: [&str; 14] = [
    "online",
    "once",
    "onset",
    "onion",
    "onions",
    "ongoing",
    "onboard",
    "onboarding",
    "onsite",
    "onstage",
    "onscreen",
    "oneself",
    "onward",
    "onwards",
];
static SCRIPT_URL: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\b(javascript|vbscript|livescript)\s*:|\b(data)\s*:\s*[a-z]+/[a-z0-9.+-]+"));
static LINK: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?i)\b[a-z][a-z0-9+.-]*://[^\s<>"'`]+|\bwww\.[^\s<>"'`]+|\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}/[^\s<>"'`]*"#,
    )
});

/// One piece of markup: what it is (`<script>`, `onerror=`, `javascript:`) — markup vocabulary only, safe to
/// name in reasons and audit records — and where it starts in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markup {
    pub what: String,
    pub start: usize,
}

impl Markup {
    /// The text from this markup on, at most `max` characters (up to and including the closing `>` when near).
    pub fn excerpt(&self, text: &str, max: usize) -> String {
        let mut out = String::new();
        for c in text[self.start..].chars().take(max) {
            out.push(c);
            if c == '>' {
                break;
            }
        }
        out
    }
}

/// Every piece of markup in `text`, in order.
pub fn markup(text: &str) -> Vec<Markup> {
    let mut out: Vec<Markup> = Vec::new();
    for c in TAG.captures_iter(text) {
        let m = c.get(1).map_or("", |m| m.as_str());
        let what = match m.chars().next() {
            Some('!') => "<!".to_string(),
            Some('?') => "<?".to_string(),
            _ => format!("<{}>", m.to_ascii_lowercase()),
        };
        out.push(Markup { what, start: c.get(0).map_or(0, |m| m.start()) });
    }
    for c in HANDLER.captures_iter(text).filter(|c| !NOT_HANDLERS.contains(&c[1].to_ascii_lowercase().as_str())) {
        out.push(Markup { what: format!("{}=", c[1].to_ascii_lowercase()), start: c.get(0).map_or(0, |m| m.start()) });
    }
    for c in SCRIPT_URL.captures_iter(text) {
        let scheme = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
        out.push(Markup {
            what: format!("{}:", scheme.to_ascii_lowercase()),
            start: c.get(0).map_or(0, |m| m.start()),
        });
    }
    out.sort_by_key(|m| m.start);
    out
}

/// Every link in `text`, without the punctuation that ends a sentence or closes a bracket around it
/// (`(https://a.example/x),` → `https://a.example/x`), in order.
pub fn links(text: &str) -> Vec<&str> {
    LINK.find_iter(text)
        .map(|m| m.as_str().trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}', '*', '_']))
        .filter(|l| !l.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whats(text: &str) -> Vec<String> {
        markup(text).into_iter().map(|m| m.what).collect()
    }

    #[test]
    fn markup_is_found() {
        assert_eq!(whats("Hi <script>alert(1)</script>"), ["<script>", "</script>"]);
        assert_eq!(whats("<img src=x onerror=alert(1)>"), ["<img>", "onerror="]);
        assert_eq!(whats("<SVG/onload=alert(1)>"), ["<svg>", "onload="]);
        assert_eq!(whats("x\" onmouseover = \"alert(1)"), ["onmouseover="]);
        assert_eq!(whats("Click JavaScript:alert(1)"), ["javascript:"]);
        assert_eq!(whats("src=data:text/html;base64,PHNjcmlwdD4="), ["data:"]);
        assert_eq!(whats("a <!-- hidden --> b <?php x ?>"), ["<!", "<?"]);
        assert_eq!(whats("Shop <b>now</b>"), ["<b>", "</b>"]);
    }

    #[test]
    fn plain_copy_has_no_markup() {
        for t in [
            "Tea & biscuits, we <3 you, 5 < 10 and 10 > 5.",
            "Shop now -> <- back, <<< >>>, a < b, x<5",
            "Our data: safe. Online = fast? Only once, on sale, onwards.",
            "Save 20% & get free returns; call it a <win>-win?",
        ] {
            let w = whats(t);
            // `<win>` is a tag to a browser: the one false positive of the rule, and it is deliberate.
            assert!(w.is_empty() || w == ["<win>"], "{t}: {w:?}");
        }
    }

    #[test]
    fn excerpts_stop_at_the_tag_end() {
        let t = "Hi <img src=x onerror=alert(1)> there";
        let m = &markup(t)[0];
        assert_eq!(m.excerpt(t, 40), "<img src=x onerror=alert(1)>");
        assert_eq!(m.excerpt(t, 6), "<img s");
    }

    #[test]
    fn links_are_found_and_trimmed() {
        assert_eq!(links("Go to https://a.example/x."), ["https://a.example/x"]);
        assert_eq!(links("[page](https://a.example/p), and"), ["https://a.example/p"]);
        assert_eq!(links("see www.a.example today"), ["www.a.example"]);
        assert_eq!(links("see evil.example/win now"), ["evil.example/win"]);
        assert_eq!(links("ftp://x.example/f and HTTP://Y.example"), ["ftp://x.example/f", "HTTP://Y.example"]);
        for t in ["Rated 4.8/5, and/or 1.5l/min, e.g./i.e. U.S./Canada", "Write to help@northwind.example", "a.example"]
        {
            assert!(links(t).is_empty(), "{t}: {:?}", links(t));
        }
    }
}

//! Customer ids never appear raw in logs, prompts, reports or the audit trail: they are replaced by a keyed
//! hash (HMAC-SHA-256), so equal ids stay linkable for debugging while the raw id cannot be recovered
//! without the key.
//!
//! The rest keeps customer data out of error messages and logs, and bounds what a hostile file may cost:
//! [`excerpt`] cuts text that may be quoted, [`describe`] says what a refused value is like without quoting it,
//! [`column_list`] quotes a header only when it looks like one, and [`Limits`] caps header width and line length.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Environment variable holding the hashing key; without it a built-in key is used (fine for local runs,
/// documented in the README as something to set in production).
pub const KEY_ENV: &str = "CPO_HASH_KEY";
const DEFAULT_KEY: &[u8] = b"cpo-default-customer-hash-key-v1";

/// 16 hex chars of HMAC-SHA-256(key, id).
pub fn hash_id(id: &str) -> String {
    let key = std::env::var(KEY_ENV).ok();
    hash_id_with(key.as_deref().map(str::as_bytes).unwrap_or(DEFAULT_KEY), id)
}

pub fn hash_id_with(key: &[u8], id: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..8])
}

/// At most this many characters of input text go into an error message or a log line (docs/architecture.md,
/// Integrity §6); customer fields go in none at all.
pub const MAX_INPUT_CHARS: usize = 200;

/// `text` cut to at most `max` characters (on a character boundary), control characters shown as `\u{..}`
/// escapes and counted, and `…` where it was cut. For text that is not a customer field (file and column names).
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let esc: String = if c.is_control() { c.escape_unicode().collect() } else { c.to_string() };
        let n = esc.chars().count();
        if used + n > max {
            out.push('…');
            return out;
        }
        used += n;
        out.push_str(&esc);
    }
    out
}

/// Why a line of JSON lines is not an object, without serde_json's quotes of the input (its messages quote
/// the offending value: "invalid type: string \"alice@example.com\"").
pub fn json_reason(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => "valid JSON but not an object".to_string(),
        serde_json::error::Category::Eof => "not a JSON object (it ends early)".to_string(),
        _ => format!("not a JSON object (invalid JSON at column {})", e.column()),
    }
}

/// Whether `s` (trimmed) is shaped like an email address: `local@domain.tld`.
pub fn looks_like_email(s: &str) -> bool {
    let s = s.trim();
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        }
        None => false,
    }
}

/// What a value is like, without any of its text: for a reason that says why a field was refused without
/// quoting the customer's data. "an email address", "an empty value", or its length and the kinds of
/// characters in it, e.g. "11 characters: letters, a space" or "10 characters: digits, '/'".
pub fn describe(value: &str) -> String {
    let v = value.trim();
    if v.is_empty() {
        return if value.is_empty() { "an empty value".into() } else { "only spaces".into() };
    }
    if looks_like_email(v) {
        return "an email address".into();
    }
    let (mut letters, mut digits, mut spaces, mut controls, mut others) = (false, false, 0usize, false, false);
    let mut symbols: Vec<char> = Vec::new();
    for c in v.chars() {
        if c.is_alphabetic() {
            letters = true;
        } else if c.is_numeric() {
            digits = true;
        } else if c.is_whitespace() && !c.is_control() {
            spaces += 1;
        } else if c.is_control() {
            controls = true;
        } else if c.is_ascii_punctuation() {
            if !symbols.contains(&c) {
                symbols.push(c);
            }
        } else {
            others = true;
        }
    }
    let mut kinds: Vec<String> = Vec::new();
    if letters {
        kinds.push("letters".into());
    }
    if digits {
        kinds.push("digits".into());
    }
    match spaces {
        0 => {}
        1 => kinds.push("a space".into()),
        _ => kinds.push("spaces".into()),
    }
    if controls {
        kinds.push("control characters".into());
    }
    if others {
        kinds.push("other characters".into());
    }
    let shown = symbols.len().min(4);
    kinds.extend(symbols[..shown].iter().map(|c| format!("{c:?}")));
    if symbols.len() > shown {
        kinds.push("other punctuation".into());
    }
    let n = v.chars().count();
    format!("{n} character{}: {}", if n == 1 { "" } else { "s" }, kinds.join(", "))
}

/// Whether a header cell is shaped like a column name rather than a customer's data: short, no email address,
/// no number or date, nothing but letters, digits, spaces and `_ - . / ( ) # $ % & + '` (no quotes, braces,
/// brackets or colons: JSON is not a header).
pub fn looks_like_column_name(s: &str) -> bool {
    let s = s.trim();
    let plain = |c: char| {
        c.is_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.' | '/' | '(' | ')' | '#' | '$' | '%' | '&' | '+' | '\'')
    };
    !s.is_empty()
        && s.chars().count() <= 64
        && s.chars().any(char::is_alphabetic)
        && s.chars().all(plain)
        && s.parse::<f64>().is_err()
        && !s.chars().take(4).all(|c| c.is_ascii_digit())
}

/// A header for an error message: its column names, at most [`MAX_INPUT_CHARS`] characters of them, or `None`
/// when some cell does not look like a column name (the "header" is then likely a customer's row, which no
/// message may quote).
pub fn column_list(names: &[String]) -> Option<String> {
    if !names.iter().all(|n| n.trim().is_empty() || looks_like_column_name(n)) {
        return None;
    }
    let mut out = String::new();
    let mut used = 0;
    for (i, n) in names.iter().enumerate() {
        let name = excerpt(n.trim(), 40);
        let len = name.chars().count() + if i > 0 { 2 } else { 0 };
        if used + len > MAX_INPUT_CHARS {
            out.push_str(&format!(", … ({} more)", names.len() - i));
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&name);
        used += len;
    }
    Some(out)
}

/// How large a customers or outcomes file's lines and header may be: what a row may cost in memory is bounded
/// before the row is split. Read from the environment once ([`limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Columns a header may have ([`MAX_COLUMNS_ENV`], default 4,096).
    pub max_columns: usize,
    /// Bytes a line (a CSV record, quoted newlines included; its line terminator not counted) may have
    /// ([`MAX_LINE_BYTES_ENV`], default 1 MiB).
    pub max_line_bytes: usize,
}

pub const MAX_COLUMNS_ENV: &str = "CPO_MAX_COLUMNS";
pub const MAX_LINE_BYTES_ENV: &str = "CPO_MAX_LINE_BYTES";

impl Default for Limits {
    fn default() -> Self {
        Limits { max_columns: 4096, max_line_bytes: 1 << 20 }
    }
}

impl Limits {
    /// The limits from `var` lookups (the environment in [`limits`]): unset means the default; a value that is
    /// not a whole number in range is an error naming the variable.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Limits, String> {
        let d = Limits::default();
        let read = |name: &str, default: usize, lo: usize, hi: usize| -> Result<usize, String> {
            match var(name) {
                None => Ok(default),
                Some(v) => match v.trim().replace('_', "").parse::<usize>() {
                    Ok(n) if (lo..=hi).contains(&n) => Ok(n),
                    _ => Err(format!("{name}: {:?} is not a whole number from {lo} to {hi}", excerpt(&v, 40))),
                },
            }
        };
        Ok(Limits {
            max_columns: read(MAX_COLUMNS_ENV, d.max_columns, 1, 1 << 20)?,
            max_line_bytes: read(MAX_LINE_BYTES_ENV, d.max_line_bytes, 1 << 10, 1 << 30)?,
        })
    }
}

/// The process's [`Limits`], read from the environment on first use; an invalid value fails every step that
/// reads a customers or outcomes file (`Cpo.InputInvalid` naming the variable) rather than falling back.
pub fn limits() -> Result<Limits, crate::StepError> {
    static LIMITS: std::sync::OnceLock<Result<Limits, String>> = std::sync::OnceLock::new();
    LIMITS.get_or_init(|| Limits::from_vars(|name| std::env::var(name).ok())).clone().map_err(crate::StepError::input)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keyed_and_stable() {
        let a = super::hash_id_with(b"k1", "C001");
        assert_eq!(a, super::hash_id_with(b"k1", "C001"));
        assert_ne!(a, super::hash_id_with(b"k2", "C001"));
        assert!(!a.contains("C001"));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn excerpts_are_bounded_on_char_boundaries() {
        assert_eq!(super::excerpt("abc", 5), "abc");
        assert_eq!(super::excerpt("ééééé", 3), "ééé…");
        assert_eq!(super::excerpt("a\u{0}b", 20), "a\\u{0}b");
        assert!(super::excerpt(&"x".repeat(50_000_000), 200).chars().count() <= 201);
    }

    #[test]
    fn descriptions_quote_nothing() {
        use super::describe;
        assert_eq!(describe("alice.smith@example.com"), "an email address");
        assert_eq!(describe("Alice Smith"), "11 characters: letters, a space");
        assert_eq!(describe("01/02/2026"), "10 characters: digits, '/'");
        assert_eq!(describe(""), "an empty value");
        assert_eq!(describe("C\u{0}1"), "3 characters: letters, digits, control characters");
        assert!(!describe("Bob <b@x>").contains("Bob"));
    }

    #[test]
    fn headers_are_quoted_only_when_they_look_like_one() {
        let h = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        assert_eq!(super::column_list(&h("CustNo,Total,order date")).as_deref(), Some("CustNo, Total, order date"));
        assert!(super::column_list(&h("Spend ($),open %,O'Brien flag")).is_some());
        assert_eq!(super::column_list(&h("C0001,Alice Smith,alice@example.com,3")), None);
        assert_eq!(super::column_list(&h("[{\"customer_id\":\"C1\"")), None);
        let wide: Vec<String> = (0..1000).map(|i| format!("column_{i}")).collect();
        let l = super::column_list(&wide).unwrap();
        assert!(l.chars().count() < 230 && l.ends_with("more)"), "{l}");
    }

    #[test]
    fn limits_are_validated() {
        use super::Limits;
        assert_eq!(Limits::from_vars(|_| None), Ok(Limits::default()));
        let v = |c: &'static str, l: &'static str| {
            move |n: &str| Some(if n == super::MAX_COLUMNS_ENV { c } else { l }.to_string())
        };
        assert_eq!(Limits::from_vars(v("10", "2_048")), Ok(Limits { max_columns: 10, max_line_bytes: 2048 }));
        assert!(Limits::from_vars(v("0", "2048")).unwrap_err().contains("CPO_MAX_COLUMNS"));
        assert!(Limits::from_vars(v("10", "lots")).unwrap_err().contains("CPO_MAX_LINE_BYTES"));
    }
}

//! Borrowed read views of the customer-level JSON lines the experiment reads once per customer
//! (`customers/members-*.jsonl`, `assignments/part-*.jsonl`).
//!
//! The owned `Member` of `cpo_common::model::segment` costs about ten heap allocations per customer (a
//! `BTreeMap<String, String>` of carried fields); at a million customers parsing it dominated `assign` and
//! `simulate`. These views borrow every string from the part's bytes (a string is copied only when it holds
//! a JSON escape) and skip the fields the experiment never reads (`line`, `recency`, `frequency`, …).

use std::borrow::Cow;
use std::fmt;

use cpo_common::{Key, StepError};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A JSON string borrowed from the input when it has no escapes, copied when it has.
///
/// Hand-written because serde's own `Cow<str>` impl always copies; `#[serde(borrow)]` only helps on fields
/// of a derived struct, and the carried fields are read through a map visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl<'a> Str<'a> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// The carried columns of a member (`first_name`, `email`, `historical_open_rate`, …) in file order: a
/// member has about ten, so a linear scan beats building a map per customer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields<'a>(pub Vec<(Str<'a>, Str<'a>)>);

impl Fields<'_> {
    /// The value of `name`; with a repeated name the last one wins, as it did in the owned `BTreeMap`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k.as_str() == name).map(|(_, v)| v.as_str())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(entry) = map.next_entry::<Str<'a>, Str<'a>>()? {
                    out.push(entry);
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// What the experiment reads of one `members-*.jsonl` line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MemberRef<'a> {
    #[serde(borrow)]
    pub customer_id: Str<'a>,
    pub r: u8,
    #[serde(borrow)]
    pub segment: Str<'a>,
    #[serde(borrow, default)]
    pub fields: Fields<'a>,
}

impl MemberRef<'_> {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name)
    }
}

/// What `simulate` reads of one `assignments/part-*.jsonl` line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AssignmentRef<'a> {
    #[serde(borrow)]
    pub customer_id: Str<'a>,
    #[serde(borrow)]
    pub arm: Str<'a>,
}

/// The rows of one JSON-lines part, parsed one line at a time into a borrowed view, so a part never holds
/// more than one parsed row; an unparsable line is an input error naming the key, line and reason (serde
/// names the field).
pub struct JsonLines<'a> {
    key: &'a Key,
    rest: &'a str,
    line: u64,
}

impl<'a> JsonLines<'a> {
    /// The part's bytes are checked to be UTF-8 once, here: serde_json then parses each line as a `&str`
    /// and skips re-validating every string it borrows (that was ~7% of `assign` and `simulate`).
    pub fn new(key: &'a Key, body: &'a [u8]) -> Result<Self, StepError> {
        let text = std::str::from_utf8(body).map_err(|e| {
            let line = body[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            StepError::input(format!("{key}: line {line}: not valid UTF-8"))
        })?;
        Ok(Self { key, rest: text, line: 0 })
    }

    /// The next non-blank line as a `T` (`None` at the end of the part).
    pub fn next_row<T: Deserialize<'a>>(&mut self) -> Option<Result<T, StepError>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            // A newline is ASCII, so both sides of it are whole UTF-8 sequences.
            let (line, rest) = match memchr::memchr(b'\n', self.rest.as_bytes()) {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, ""),
            };
            self.rest = rest;
            self.line += 1;
            // Looks only as far as the first non-blank byte, not along the whole line.
            if line.trim_ascii_start().is_empty() {
                continue;
            }
            return Some(
                serde_json::from_str(line)
                    .map_err(|e| StepError::input(format!("{}: line {}: {e}", self.key, self.line))),
            );
        }
    }

    /// Line number of the row [`JsonLines::next_row`] returned last (1-based).
    pub fn line(&self) -> u64 {
        self.line
    }
}

/// Every row of a part (tests and small parts; the steps stream with [`JsonLines`]).
pub fn parse_lines<'a, T: Deserialize<'a>>(key: &'a Key, body: &'a [u8]) -> Result<Vec<T>, StepError> {
    let mut lines = JsonLines::new(key, body)?;
    let mut out = Vec::new();
    while let Some(row) = lines.next_row() {
        out.push(row?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_plain_strings_and_copies_escaped_ones() {
        let line = br#"{"customer_id":"C1","line":2,"recency":1.0,"frequency":2.0,"monetary":3.0,"r":4,"f":1,"m":2,"segment":"At Risk","fields":{"first_name":"=HYPERLINK(\"x\")","email":"a@b.c","tier":"Gold","tier":"Silver"}}"#;
        let m: MemberRef<'_> = serde_json::from_slice(line).unwrap();
        assert!(matches!(m.customer_id.0, Cow::Borrowed("C1")));
        assert_eq!(m.r, 4);
        assert_eq!(m.segment.as_str(), "At Risk");
        assert!(matches!(m.field("first_name"), Some("=HYPERLINK(\"x\")")));
        assert!(matches!(m.fields.0[0].1 .0, Cow::Owned(_)));
        assert_eq!(m.field("email"), Some("a@b.c"));
        assert_eq!(m.field("tier"), Some("Silver"), "last repeated key wins, as in the owned map");
        assert_eq!(m.field("missing"), None);
    }

    #[test]
    fn members_without_fields_and_bad_lines() {
        let key = Key::new("runs/x/customers/members-00000.jsonl").unwrap();
        let good = b"{\"customer_id\":\"C1\",\"r\":1,\"segment\":\"New\"}\n\n  \n";
        let rows = parse_lines::<MemberRef<'_>>(&key, good).unwrap();
        assert_eq!(rows.len(), 1, "blank lines are skipped");
        assert!(rows[0].fields.0.is_empty());
        let mut body = good.to_vec();
        body.extend_from_slice(b"{\"customer_id\":\"C2\",\"segment\":\"New\"}\n");
        let e = parse_lines::<MemberRef<'_>>(&key, &body).unwrap_err();
        assert_eq!(e.kind, cpo_common::ErrorKind::InputInvalid);
        assert!(e.message.contains("members-00000.jsonl: line 4") && e.message.contains("`r`"), "{e}");
        let e = parse_lines::<MemberRef<'_>>(&key, b"\n{\"customer_id\":\"C\xff\"}\n").unwrap_err();
        assert!(e.message.contains("line 2: not valid UTF-8"), "{e}");
        let bad = b"{\"customer_id\":\"C1\",\"r\":1,\"segment\":\"New\",\"fields\":{\"age\":42}}\n";
        let e = parse_lines::<MemberRef<'_>>(&key, bad).unwrap_err();
        assert!(e.message.contains("line 1"), "{e}");
    }
}

//! JSON that can mean only one thing. `serde_json` keeps the last of repeated keys (`{"hate":0.9,"hate":0.0}`
//! reads as 0.0) and derived structs ignore unknown keys (`{"SEVERITY":6,"severity":0}` reads as 0), so a
//! provider answer is first walked once to refuse any object in which two keys are the same once unescaped
//! and [`fold`]ed (case and punctuation ignored), at any depth; then it is deserialised.
//!
//! Hand-written: serde offers duplicate checks only per map type (`serde_with`), not for a whole document.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Longest piece of an answer quoted in an error (errors end up in verdict reasons and logs).
const MAX_QUOTED: usize = 40;

/// `bytes` as `T`, refusing repeated keys and trailing data; the error is short and says what is wrong.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    reject_repeated_keys(bytes).map_err(|e| short(&e.to_string()))?;
    serde_json::from_slice(bytes).map_err(|e| short(&e.to_string()))
}

/// `Ok` when `bytes` is one JSON value in which no object has two keys with the same [`fold`].
pub fn reject_repeated_keys(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    UniqueKeys.deserialize(&mut de)?;
    de.end()
}

/// A name with case and everything but ASCII letters and digits dropped: `Self-Harm`, `self_harm` and
/// `SELFHARM` all fold to `selfharm`.
pub fn fold(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// `s` cut to a length fit for a reason (serde quotes offending strings in full).
pub fn short(s: &str) -> String {
    const MAX: usize = 160;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX).collect();
    out.push('…');
    out
}

/// `s` quoted and cut to [`MAX_QUOTED`] characters.
pub fn quoted(s: &str) -> String {
    let mut cut: String = s.chars().take(MAX_QUOTED).collect();
    if s.chars().count() > MAX_QUOTED {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// Walks any JSON value, failing on the first object with two keys of the same [`fold`].
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(UniqueKeys)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashMap<String, String> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            match seen.get(&fold(&key)) {
                Some(earlier) if *earlier == key => {
                    return Err(de::Error::custom(format_args!("key {} appears twice in one object", quoted(&key))));
                }
                Some(earlier) => {
                    return Err(de::Error::custom(format_args!(
                        "keys {} and {} differ only in case or punctuation",
                        quoted(earlier),
                        quoted(&key)
                    )));
                }
                None => {}
            }
            seen.insert(fold(&key), key);
            map.next_value_seed(UniqueKeys)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        assert!(reject_repeated_keys(br#"{"a":1,"b":[{"c":1,"d":{"e":true}}],"f":null}"#).is_ok());
        for bad in [
            r#"{"a":1,"a":1}"#,
            r#"{"x":[{"c":1},{"c":2,"c":3}]}"#,
            r#"{"x":{"y":{"hate":0.9,"hate":0.0}}}"#,
            r#"{"Hate":1,"Hat\u0065":2}"#,
        ] {
            let e = reject_repeated_keys(bad.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("appears twice"), "{bad}: {e}");
        }
        assert!(reject_repeated_keys(br#"{"a":1}{"a":2}"#).is_err(), "trailing data");
        for near in
            [r#"{"severity":0,"SEVERITY":6}"#, r#"{"self-harm":0,"self_harm":1}"#, r#"{"x":[{"Hate":1,"hate":2}]}"#]
        {
            let e = reject_repeated_keys(near.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("differ only in case"), "{near}: {e}");
        }
        assert!(reject_repeated_keys(br#"{"hate":1,"hate/threatening":2,"self-harm":3,"self-harm/intent":4}"#).is_ok());
    }

    #[test]
    fn errors_are_short() {
        let long = format!(r#"{{"{}":1,"{}":2}}"#, "k".repeat(500), "k".repeat(500));
        let e = from_slice::<serde_json::Value>(long.as_bytes()).unwrap_err();
        assert!(e.chars().count() < 120, "{e}");
        let e = from_slice::<u8>(format!("{:?}", "v".repeat(500)).as_bytes()).unwrap_err();
        assert!(e.chars().count() <= 161, "{e}");
    }
}

//! Canonical JSON: object keys sorted at every level, no whitespace. It is the one form CPO hashes, so a hash
//! never depends on field order in a file, on serde_json features or on pretty-printing. Verdicts, step
//! records and the audit chain all hash through here (docs/architecture.md, "Integrity").

use serde::Serialize;
use serde_json::Value;

use crate::keys::sha256_hex;

/// `v` in canonical form.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// SHA-256 (hex) of the canonical JSON of `v`.
pub fn sha256_value(v: &Value) -> String {
    sha256_hex(to_string(v).as_bytes())
}

/// SHA-256 (hex) of the canonical JSON of anything serializable. Serializing plain data types cannot fail; a
/// type that can (a map with non-string keys) hashes its error text, which is still deterministic.
pub fn sha256_of<T: Serialize + ?Sized>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(v) => sha256_value(&v),
        Err(e) => sha256_hex(format!("unserializable: {e}").as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(to_string(&a), r#"{"a":{"x":"s","y":[1,2]},"b":1}"#);
        assert_eq!(sha256_value(&a), sha256_value(&b));
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        // A joined-text hash would confuse these two; canonical JSON cannot.
        let one = json!({"subject": "a\n\nb", "body": ""});
        let two = json!({"subject": "a", "body": "b"});
        assert_ne!(sha256_value(&one), sha256_value(&two));
    }
}

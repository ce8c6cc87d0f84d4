//! One file → one validated [`Document`]. JSON files follow the old system's schema; Markdown files carry the
//! same fields as YAML front matter and take `content` from the body. Both go through one JSON value, so
//! the field rules (known fields, types, dates, required text) are written once.

use cpo_common::model::content::Document;
use serde_json::{Map, Value};

use super::markdown;
use super::DocumentError;

/// Every field a document may have. Unknown fields are rejected: a misspelt `expires` must not silently let
/// an expired offer through.
const FIELDS: [&str; 10] = [
    "document_id",
    "title",
    "category",
    "content",
    "audience",
    "keywords",
    "approval_date",
    "expires",
    "source_url",
    "metadata",
];

/// Longest accepted `document_id` (it is repeated in every citation).
const MAX_ID_CHARS: usize = 128;

/// Parse one document; `file` (a store key or a file name) decides the format by its extension and names the
/// document in errors.
pub fn parse_document(file: &str, text: &str) -> Result<Document, DocumentError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lower = file.to_ascii_lowercase();
    let value = if lower.ends_with(".json") {
        json_value(file, text)?
    } else if lower.ends_with(".md") || lower.ends_with(".markdown") {
        markdown_value(file, text)?
    } else {
        return Err(err(file, None, None, "unsupported file type; approved documents are .json or .md"));
    };
    let doc = from_value(file, value)?;
    validate(file, doc)
}

fn err(file: &str, line: Option<usize>, field: Option<&str>, reason: impl Into<String>) -> DocumentError {
    DocumentError { file: file.to_string(), line, field: field.map(String::from), reason: reason.into() }
}

fn json_value(file: &str, text: &str) -> Result<Map<String, Value>, DocumentError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(err(file, Some(1), None, "a document must be a JSON object")),
        Err(e) => Err(err(file, Some(e.line()), None, format!("not valid JSON: {}", without_position(&e)))),
    }
}

/// serde_json appends " at line L column C"; the line is reported separately.
fn without_position(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_string()
}

fn markdown_value(file: &str, text: &str) -> Result<Map<String, Value>, DocumentError> {
    let parts = markdown::split_front_matter(text).ok_or_else(|| {
        err(file, Some(1), None, "a Markdown document starts with YAML front matter between `---` lines")
    })?;
    let mut map = match serde_yaml_ng::from_str::<Value>(parts.front_matter) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(err(file, Some(2), None, "front matter must be a YAML mapping of fields")),
        Err(e) => {
            // +1: the YAML starts on the line after the opening `---`.
            let line = e.location().map(|l| l.line() + 1);
            return Err(err(file, line, None, format!("front matter is not valid YAML: {e}")));
        }
    };
    if map.contains_key("content") {
        return Err(err(
            file,
            None,
            Some("content"),
            "a Markdown document takes its content from the body, not the front matter",
        ));
    }
    map.insert("content".into(), Value::String(markdown::to_plain_text(parts.body)));
    Ok(map)
}

fn from_value(file: &str, map: Map<String, Value>) -> Result<Document, DocumentError> {
    if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(err(file, None, Some(unknown), format!("unknown field (known fields: {})", FIELDS.join(", "))));
    }
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        // A missing field is reported by serde at the root ("missing field `title`"): name the field itself.
        match reason.strip_prefix("missing field `").and_then(|r| r.strip_suffix('`')) {
            Some(field) => err(file, None, Some(field), "required field is missing"),
            None => err(file, None, Some(&path), reason),
        }
    })
}

fn validate(file: &str, mut doc: Document) -> Result<Document, DocumentError> {
    for (field, value) in [
        ("document_id", &mut doc.document_id),
        ("title", &mut doc.title),
        ("category", &mut doc.category),
        ("audience", &mut doc.audience),
    ] {
        *value = value.trim().to_string();
        if value.chars().any(char::is_control) {
            return Err(err(file, None, Some(field), "contains a control character"));
        }
    }
    for (field, value) in [("document_id", &doc.document_id), ("title", &doc.title), ("audience", &doc.audience)] {
        if value.is_empty() {
            return Err(err(file, None, Some(field), "must not be empty"));
        }
    }
    if doc.document_id.chars().count() > MAX_ID_CHARS {
        return Err(err(file, None, Some("document_id"), format!("longer than {MAX_ID_CHARS} characters")));
    }
    if doc.content.trim().is_empty() {
        return Err(err(file, None, Some("content"), "must not be empty"));
    }
    if let Some(expires) = doc.expires {
        if expires <= doc.approval_date {
            return Err(err(file, None, Some("expires"), "must be later than approval_date"));
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
  "document_id": "D1",
  "title": "Title",
  "category": "Product",
  "content": "One sentence. Two sentences.",
  "audience": "All",
  "keywords": ["a"],
  "approval_date": "2025-11-01T00:00:00Z",
  "source_url": "https://example.com/x",
  "metadata": {"author": "Team"}
}"#;

    #[test]
    fn old_system_schema_parses() {
        let doc = parse_document("content/approved/d1.json", GOOD).unwrap();
        assert_eq!(doc.document_id, "D1");
        assert_eq!(doc.keywords, vec!["a"]);
    }

    #[test]
    fn missing_field_is_named() {
        let text = GOOD.replace("\"title\": \"Title\",\n", "");
        let e = parse_document("content/approved/d1.json", &text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("title"));
        assert_eq!(e.to_string(), "content/approved/d1.json: field `title`: required field is missing");
    }

    #[test]
    fn wrong_type_is_named() {
        let text = GOOD.replace(r#"["a"]"#, r#""a, b""#);
        let e = parse_document("d1.json", &text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("keywords"), "{e}");
        let text = GOOD.replace(r#"["a"]"#, r#"["a", 3]"#);
        let e = parse_document("d1.json", &text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("keywords[1]"), "{e}");
    }

    #[test]
    fn bad_date_is_named() {
        let text = GOOD.replace("2025-11-01T00:00:00Z", "next Tuesday");
        let e = parse_document("d1.json", &text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("approval_date"));
        assert!(e.reason.contains("next Tuesday"), "{e}");
    }

    #[test]
    fn unknown_field_is_named() {
        let text = GOOD.replace("\"source_url\"", "\"expiry\": \"2026-01-01\", \"source_url\"");
        let e = parse_document("d1.json", &text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("expiry"));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let text = GOOD.replace("\"Title\",", "\"Title\"");
        let e = parse_document("d1.json", &text).unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().starts_with("d1.json: line 4: not valid JSON"), "{e}");
    }

    #[test]
    fn empty_and_inconsistent_fields_are_named() {
        let e = parse_document("d1.json", &GOOD.replace("\"D1\"", "\"  \"")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("document_id"));
        let e = parse_document("d1.json", &GOOD.replace("One sentence. Two sentences.", " ")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("content"));
        let text = GOOD.replace("\"source_url\"", "\"expires\": \"2025-10-01\", \"source_url\"");
        let e = parse_document("d1.json", &text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("expires"));
    }

    #[test]
    fn other_extensions_are_refused() {
        let e = parse_document("notes.txt", GOOD).unwrap_err();
        assert!(e.reason.contains("unsupported"), "{e}");
    }
}

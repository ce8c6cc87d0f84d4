//! Model output → a draft variant. Models wrap JSON in markdown fences, rename fields, or answer in the
//! "**Subject:** … **Body:** …" style the old system saved verbatim; all of that is accepted here and cleaned,
//! and whatever is still wrong is left for validation to name.

use cpo_common::model::variant::{Citation, Message};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub message: Message,
    pub citations: Vec<Citation>,
}

/// Parse a provider's text; the error says why nothing usable was found.
pub fn parse(text: &str) -> Result<Draft, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the output is empty".into());
    }
    let unfenced = strip_fences(text);
    if let Some(obj) = json_object(unfenced) {
        return Ok(from_json(&obj));
    }
    from_labelled_text(unfenced).ok_or_else(|| {
        let head: String = text.chars().take(80).collect();
        format!("the output is neither a JSON object nor Subject/Body text (starts with {head:?})")
    })
}

/// The inside of the first ``` fence, when there is one.
fn strip_fences(text: &str) -> &str {
    let Some(open) = text.find("```") else { return text };
    let after = &text[open + 3..];
    // Skip the info string (`json`) up to the end of the line.
    let inner_start = after.find('\n').map(|i| i + 1).unwrap_or(0);
    let inner = &after[inner_start..];
    match inner.find("```") {
        Some(close) => inner[..close].trim(),
        None => inner.trim(),
    }
}

/// The outermost `{…}` of the text that parses as a JSON object.
fn json_object(text: &str) -> Option<Map<String, Value>> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    if end <= start {
        return None;
    }
    match serde_json::from_str::<Value>(&text[start..=end]) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// A field by any of its common names, case-insensitively.
fn field<'a>(obj: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v))
}

/// A string field; arrays of strings (paragraphs) are joined with blank lines.
fn text_field(obj: &Map<String, Value>, names: &[&str]) -> String {
    match field(obj, names) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n\n"),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn from_json(obj: &Map<String, Value>) -> Draft {
    let citations = match field(obj, &["citations", "sources", "references"]) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|c| match c {
                Value::Object(c) => Some(Citation {
                    doc_id: text_field(c, &["doc_id", "document_id", "docid", "id", "source"]).trim().to_string(),
                    quote: text_field(c, &["quote", "text", "snippet", "excerpt", "text_snippet"]).trim().to_string(),
                }),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Draft {
        message: Message {
            subject: clean_line(&text_field(obj, &["subject", "subject_line", "title"]), &["subject"]),
            preheader: clean_line(&text_field(obj, &["preheader", "preview", "preview_text"]), &["preheader"]),
            body: clean_body(&text_field(obj, &["body", "email_body", "content", "text"])),
            cta: clean_line(&text_field(obj, &["cta", "call_to_action", "button"]), &["cta", "call to action"]),
        },
        citations,
    }
}

/// Strip a leading `**Label:**` / `Label:` (any case, markdown emphasis or not).
fn strip_label<'a>(s: &'a str, labels: &[&str]) -> &'a str {
    let t = s.trim_start().trim_start_matches(['*', '#', '_', ' ']);
    for label in labels {
        if t.get(..label.len()).is_some_and(|head| head.eq_ignore_ascii_case(label)) {
            let rest = t[label.len()..].trim_start_matches(['*', '_', ' ']);
            if let Some(rest) = rest.strip_prefix(':') {
                return rest.trim_start_matches(['*', '_']).trim_start();
            }
        }
    }
    s
}

fn clean_line(s: &str, labels: &[&str]) -> String {
    let s = strip_label(s.trim(), labels).trim();
    let s = s.trim_matches(|c| c == '"' || c == '“' || c == '”').trim();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clean_body(s: &str) -> String {
    let s = strip_label(s.trim(), &["body"]).trim();
    // Markdown hard breaks ("  \n") are layout, not content.
    s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim().to_string()
}

/// `Subject: …` / `Preheader: …` / `Body: …` / `CTA: …` sections, as models write when JSON is not enforced.
fn from_labelled_text(text: &str) -> Option<Draft> {
    #[derive(Clone, Copy, PartialEq)]
    enum Part {
        None,
        Subject,
        Preheader,
        Body,
        Cta,
    }
    let mut parts: [String; 4] = Default::default();
    let mut current = Part::None;
    let labels = [
        (Part::Subject, &["subject", "subject line"][..]),
        (Part::Preheader, &["preheader", "preview"][..]),
        (Part::Body, &["body", "email body"][..]),
        (Part::Cta, &["cta", "call to action"][..]),
    ];
    for line in text.lines() {
        let mut matched = false;
        for (part, names) in labels {
            let rest = strip_label(line, names);
            if !std::ptr::eq(rest, line) {
                current = part;
                matched = true;
                let idx = part as usize - 1;
                parts[idx].push_str(rest);
                parts[idx].push('\n');
                break;
            }
        }
        if !matched && current != Part::None {
            let idx = current as usize - 1;
            parts[idx].push_str(line);
            parts[idx].push('\n');
        }
    }
    if parts[0].trim().is_empty() || parts[2].trim().is_empty() {
        return None;
    }
    Some(Draft {
        message: Message {
            subject: clean_line(&parts[0], &[]),
            preheader: clean_line(&parts[1], &[]),
            body: clean_body(&parts[2]),
            cta: clean_line(&parts[3], &[]),
        },
        citations: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_json_with_labelled_fields() {
        let text = "Here you go:\n```json\n{\"Subject\": \"**Subject:** Last Chance! Unlock Premium \", \
                    \"preheader\": \"p\", \"body\": \"\\n**Body:**  \\nDear friend,  \\nText.\", \"cta\": \"Go\", \
                    \"citations\": [{\"document_id\": \"DOC001\", \"quote\": \" Premium \"}]}\n```\nThanks";
        let d = parse(text).unwrap();
        assert_eq!(d.message.subject, "Last Chance! Unlock Premium");
        assert_eq!(d.message.body, "Dear friend,\nText.");
        assert_eq!(d.citations, vec![Citation { doc_id: "DOC001".into(), quote: "Premium".into() }]);
    }

    #[test]
    fn old_system_output_parses_without_citations() {
        // Verbatim shape of the old system's saved variants (its `data/processed/variants.json`).
        let text = "**Subject:** Last Chance! Unlock Exclusive Premium Features \n\n**Body:**  \nDear Valued Gold \
                    Member,  \n\nTime is running out! [Source: Premium Widget Features, Advanced Capabilities]";
        let d = parse(text).unwrap();
        assert_eq!(d.message.subject, "Last Chance! Unlock Exclusive Premium Features");
        assert!(d.message.body.starts_with("Dear Valued Gold Member,"), "{:?}", d.message.body);
        assert!(d.citations.is_empty());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse("").is_err());
        assert!(parse("{\"subject\": ").unwrap_err().contains("neither"));
        assert!(parse("[1, 2, 3]").is_err());
    }
}

//! Rendering the [`Report`] with minijinja. Every value from a run (segment names, message text, document
//! titles, quotes, reasons) is untrusted: the HTML template auto-escapes for HTML, and the Markdown template
//! auto-escapes for Markdown-with-inline-HTML through the custom formatter below, so neither template can
//! forget an escape. Only the number filters (digits and symbols) and the Rust-built SVG charts are marked safe.

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State};
use serde::Serialize;

use cpo_common::model::experiment::Metric;

use crate::view::Report;
use crate::{charts, fmt};

const HTML: &str = "report.html";
const MARKDOWN: &str = "report.md";

/// Escape for Markdown that may contain inline HTML: HTML-significant characters become entities (so no tag
/// or entity survives), Markdown punctuation is backslash-escaped (no emphasis, link, code or table cell can
/// be opened), and line breaks become `<br>` so a value cannot start a heading, list or quote on a new line.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '!' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Markdown code span that its content cannot end early: the fence is one backtick longer than the longest
/// backtick run inside, and line breaks become spaces (a code span cannot hold them).
pub fn md_code(s: &str) -> String {
    let text: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

fn formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    if state.auto_escape() == AutoEscape::Custom("markdown") {
        if value.is_safe() {
            return write!(out, "{value}").map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()));
        }
        let text = if value.is_none() || value.is_undefined() { String::new() } else { value.to_string() };
        return out.write_str(&md_escape(&text)).map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()));
    }
    minijinja::escape_formatter(out, state, value)
}

/// A figure filter: numbers (or none → "–") in, a safe string out.
fn num_filter(f: fn(f64) -> String) -> impl Fn(Option<f64>) -> Value + Send + Sync + 'static {
    move |x: Option<f64>| Value::from_safe_string(x.map(f).unwrap_or_else(|| fmt::NA.into()))
}

fn env() -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".md") {
            AutoEscape::Custom("markdown")
        } else if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(formatter);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("pct", num_filter(fmt::pct));
    env.add_filter("signed_pct", num_filter(fmt::signed_pct));
    env.add_filter("pp", num_filter(fmt::pp));
    env.add_filter("pvalue", num_filter(fmt::pvalue));
    env.add_filter("prob", num_filter(fmt::prob));
    env.add_filter("usd", num_filter(fmt::usd));
    env.add_filter("int", |x: Option<u64>| Value::from_safe_string(x.map(fmt::int).unwrap_or_else(|| fmt::NA.into())));
    env.add_filter("ms", |x: u64| Value::from_safe_string(fmt::duration_ms(x)));
    env.add_filter("fixed", |x: Option<f64>, digits: Option<usize>| {
        Value::from_safe_string(x.map(|x| fmt::fixed(x, digits.unwrap_or(1))).unwrap_or_else(|| fmt::NA.into()))
    });
    env.add_filter("code", |s: String| Value::from_safe_string(md_code(&s)));
    // Not marked safe: the text of a figure comes from the analysis and is escaped like any other value.
    env.add_filter("figure", |v: Value| {
        let json = serde_json::to_value(&v).unwrap_or(serde_json::Value::Null);
        fmt::figure(&json)
    });
    env.add_filter("metric_name", |m: String| fmt::metric_name(&m));
    env.add_filter("time", |t: String| {
        chrono::DateTime::parse_from_rfc3339(&t).map(|t| fmt::time(&t.to_utc())).unwrap_or(t)
    });
    env.add_template(HTML, include_str!("../templates/report.html"))?;
    env.add_template(MARKDOWN, include_str!("../templates/report.md"))?;
    Ok(env)
}

#[derive(Serialize)]
struct Term {
    term: &'static str,
    meaning: &'static str,
}

#[derive(Serialize)]
struct Charts {
    rates: Option<Value>,
    lifts: Option<Value>,
    segments: Option<Value>,
    safety: Option<Value>,
}

fn charts(r: &Report) -> Charts {
    Charts {
        rates: r.experiment.as_ref().map(|e| Value::from_safe_string(charts::rates(e))),
        lifts: r.experiment.as_ref().map(|e| Value::from_safe_string(charts::lifts(e))),
        segments: (!r.segments.is_empty()).then(|| Value::from_safe_string(charts::segment_sizes(r))),
        safety: (!r.safety.by_segment.is_empty()).then(|| Value::from_safe_string(charts::safety(r))),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("report template {template}: {source}")]
pub struct RenderError {
    template: &'static str,
    #[source]
    source: Error,
}

/// The report as (`index.html`, `report.md`).
pub fn render(r: &Report) -> Result<(String, String), RenderError> {
    let env = env().map_err(|source| RenderError { template: "(loading)", source })?;
    let guardrail_metrics: Vec<&str> = Metric::ALL.iter().filter(|m| m.is_guardrail()).map(|m| m.as_str()).collect();
    let ctx = minijinja::context! {
        r => Value::from_serialize(r),
        charts => Value::from_serialize(charts(r)),
        glossary => Value::from_serialize(crate::glossary::GLOSSARY.iter().map(|(term, meaning)| Term { term, meaning }).collect::<Vec<_>>()),
        guardrail_metrics => Value::from_serialize(&guardrail_metrics),
    };
    let html =
        env.get_template(HTML).and_then(|t| t.render(&ctx)).map_err(|source| RenderError { template: HTML, source })?;
    let md = env
        .get_template(MARKDOWN)
        .and_then(|t| t.render(&ctx))
        .map_err(|source| RenderError { template: MARKDOWN, source })?;
    Ok((html, md))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escape_neutralises_markup() {
        assert_eq!(md_escape("<script>alert(1)</script>"), "&lt;script&gt;alert\\(1\\)&lt;/script&gt;");
        assert_eq!(md_escape("a|b *c* [x](y)"), "a\\|b \\*c\\* \\[x\\]\\(y\\)");
        assert_eq!(md_escape("line\n# heading"), "line<br>\\# heading");
        assert_eq!(md_escape("Can't Lose"), "Can't Lose");
        assert_eq!(md_code("runs/a_b/"), "`runs/a_b/`");
        assert_eq!(md_code("a``b\nc"), "```a``b c```");
        assert_eq!(md_code("`x"), "`` `x ``");
    }
}

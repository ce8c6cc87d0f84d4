//! What an email service imports: the send list (`send/part-*.csv`: one row per customer who gets a message,
//! with the merge fields its message uses) and `send/templates.json` (every message in merge-field syntax).
//! Also the renderer that fills the merge fields in, for `cpo render` and `experiment.render`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use cpo_common::model::experiment::{RenderedMessage, Template, TemplatesDoc};
use cpo_common::StepError;
use regex::Regex;

use crate::parts::csv_error;
use crate::plan::Plan;

/// The fixed leading columns of the send list.
pub const FIXED_COLUMNS: [&str; 5] = ["customer_id", "email", "arm", "variant_id", "segment"];

/// `{{ name }}` merge fields. Only this syntax is substituted: message text may come from a model, so it is
/// never evaluated as a template language (no loops, filters or includes to abuse).
fn merge_field() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}").unwrap_or_else(|e| panic!("{e}")))
}

/// Spreadsheet formula injection: a cell starting with `=`, `+`, `-`, `@` (or a tab / carriage return, which
/// some spreadsheets skip before those) is prefixed with `'` so it is shown as text, never evaluated.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// `send/templates.json` of a plan without merge-field defaults.
pub fn templates(run_id: &str, plan: &Plan) -> TemplatesDoc {
    templates_with_defaults(run_id, plan, &BTreeMap::new())
}

/// `send/templates.json` of a plan: the messages in force, the merge fields they use and the fallbacks of
/// those fields (`defaults`: `generation.merge_defaults`).
pub fn templates_with_defaults(run_id: &str, plan: &Plan, defaults: &BTreeMap<String, String>) -> TemplatesDoc {
    let mut fields = BTreeSet::new();
    let mut templates = BTreeMap::new();
    for (variant_id, m) in &plan.messages {
        for text in [&m.message.subject, &m.message.preheader, &m.message.body, &m.message.cta] {
            for c in merge_field().captures_iter(text) {
                fields.insert(c[1].to_string());
            }
        }
        templates.insert(
            variant_id.clone(),
            Template {
                variant_id: variant_id.clone(),
                arm: m.arm.clone(),
                segment: m.segment.clone(),
                subject: m.message.subject.clone(),
                preheader: m.message.preheader.clone(),
                body: m.message.body.clone(),
                cta: m.message.cta.clone(),
            },
        );
    }
    let merge_fields: Vec<String> = fields.into_iter().filter(|f| !FIXED_COLUMNS.contains(&f.as_str())).collect();
    let merge_defaults = defaults
        .iter()
        .filter(|(f, v)| merge_fields.contains(f) && !v.is_empty())
        .map(|(f, v)| (f.clone(), v.clone()))
        .collect();
    TemplatesDoc { run_id: run_id.to_string(), merge_fields, templates, merge_defaults }
}

/// A customer's value of a merge field: their own when present and not blank, else the campaign's default.
pub fn field_or_default<'v>(
    own: Option<&'v str>,
    name: &str,
    defaults: &'v BTreeMap<String, String>,
) -> Option<&'v str> {
    own.filter(|v| !v.trim().is_empty()).or_else(|| defaults.get(name).map(String::as_str))
}

/// Fill `{{ name }}` from `fields`; a field the customer has no value for becomes empty.
pub fn fill(text: &str, fields: &dyn Fn(&str) -> Option<String>) -> String {
    merge_field().replace_all(text, |c: &regex::Captures<'_>| fields(&c[1]).unwrap_or_default()).into_owned()
}

/// A customer's fully rendered message; a field they have no value for takes its entry in `defaults`.
pub fn render(
    template: &Template,
    defaults: &BTreeMap<String, String>,
    customer_id: &str,
    email: Option<&str>,
    own: &dyn Fn(&str) -> Option<String>,
) -> RenderedMessage {
    let fields = |name: &str| own(name).filter(|v| !v.trim().is_empty()).or_else(|| defaults.get(name).cloned());
    let fields: &dyn Fn(&str) -> Option<String> = &fields;
    RenderedMessage {
        customer_id: customer_id.to_string(),
        email: email.filter(|e| !e.is_empty()).map(str::to_string),
        arm: template.arm.clone(),
        variant_id: template.variant_id.clone(),
        subject: fill(&template.subject, fields),
        preheader: fill(&template.preheader, fields),
        body: fill(&template.body, fields),
        cta: fill(&template.cta, fields),
    }
}

/// Builds one `send/part-*.csv`.
pub struct SendWriter {
    csv: csv::Writer<Vec<u8>>,
    merge_fields: Vec<String>,
    defaults: BTreeMap<String, String>,
    rows: usize,
}

impl SendWriter {
    pub fn new(merge_fields: &[String]) -> Result<Self, StepError> {
        Self::with_capacity(merge_fields, 0)
    }

    /// A writer whose output buffer starts at `bytes` (a part's send list is written in one go).
    pub fn with_capacity(merge_fields: &[String], bytes: usize) -> Result<Self, StepError> {
        let mut csv = csv::Writer::from_writer(Vec::with_capacity(bytes));
        let header: Vec<&str> = FIXED_COLUMNS.iter().copied().chain(merge_fields.iter().map(String::as_str)).collect();
        csv.write_record(&header).map_err(csv_error("send list"))?;
        Ok(Self { csv, merge_fields: merge_fields.to_vec(), defaults: BTreeMap::new(), rows: 0 })
    }

    /// Fill a merge-field cell the customer has no value for with its default (an email service would
    /// otherwise render "Hello , …").
    pub fn with_defaults(mut self, defaults: &BTreeMap<String, String>) -> Self {
        self.defaults = defaults.clone();
        self
    }

    /// One row: the fixed columns, then each merge field looked up with `field` (empty when absent). Every
    /// cell is neutralised; cells are written one by one so a row costs no allocation unless one needs it.
    pub fn push<'v>(&mut self, fixed: [&str; 5], field: impl Fn(&str) -> Option<&'v str>) -> Result<(), StepError> {
        for c in fixed {
            self.csv.write_field(neutralise(c).as_bytes()).map_err(csv_error("send list"))?;
        }
        for f in &self.merge_fields {
            let value = field_or_default(field(f), f, &self.defaults).unwrap_or("");
            self.csv.write_field(neutralise(value).as_bytes()).map_err(csv_error("send list"))?;
        }
        self.csv.write_record(std::iter::empty::<&[u8]>()).map_err(csv_error("send list"))?;
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn finish(self) -> Result<Vec<u8>, StepError> {
        self.csv.into_inner().map_err(|e| StepError::internal(format!("send list CSV: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        for bad in ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\t=1"] {
            assert!(neutralise(bad).starts_with('\''), "{bad}");
        }
        assert_eq!(neutralise("Ada"), "Ada");
        let mut w = SendWriter::new(&["first_name".to_string()]).unwrap();
        let fields = BTreeMap::from([("first_name".to_string(), "=cmd|' /C calc'!A0".to_string())]);
        w.push(["C1", "a@example.com", "control", "control", "New"], |n| fields.get(n).map(String::as_str)).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert!(text.contains("'=cmd"), "{text}");
        assert!(text.starts_with("customer_id,email,arm,variant_id,segment,first_name\n"));
    }

    #[test]
    fn missing_merge_fields_take_their_default_in_the_send_list_and_the_rendering() {
        let defaults = BTreeMap::from([("first_name".to_string(), "there".to_string())]);
        let mut w = SendWriter::new(&["first_name".to_string(), "tier".to_string()]).unwrap().with_defaults(&defaults);
        let ada = BTreeMap::from([("first_name".to_string(), "Ada".to_string())]);
        let blank = BTreeMap::from([("first_name".to_string(), "  ".to_string())]);
        for (id, f) in [("C1", &ada), ("C2", &blank), ("C3", &BTreeMap::new())] {
            w.push([id, "", "control", "control", "New"], |n| f.get(n).map(String::as_str)).unwrap();
        }
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        let rows: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            rows,
            ["C1,,control,control,New,Ada,", "C2,,control,control,New,there,", "C3,,control,control,New,there,"]
        );
        let t = Template {
            variant_id: "v".into(),
            arm: "friendly".into(),
            segment: None,
            subject: "For you".into(),
            preheader: String::new(),
            body: "Hello {{first_name}}, here is something in {{location}}.".into(),
            cta: "Go".into(),
        };
        let none = |_: &str| None;
        assert_eq!(render(&t, &defaults, "C3", None, &none).body, "Hello there, here is something in .");
        let own = |n: &str| (n == "first_name").then(|| "Ada".to_string());
        assert_eq!(render(&t, &defaults, "C1", None, &own).body, "Hello Ada, here is something in .");
    }

    #[test]
    fn only_merge_fields_are_substituted() {
        let f = |n: &str| (n == "first_name").then(|| "Ada".to_string());
        assert_eq!(fill("Hi {{first_name}}, {{ first_name }}! {{tier}}", &f), "Hi Ada, Ada! ");
        assert_eq!(fill("{% for x in y %}{{ 1+1 }}", &f), "{% for x in y %}{{ 1+1 }}");
    }
}

//! The known truth of a simulated season (`cpo simulate season --truth FILE|preset`): the true click rate of
//! every segment × arm, week by week. Outcomes are drawn from it (`season::draw`) and regret is measured
//! against it (`season::regret`); docs/experiment.md ("Simulated seasons") documents the file format.
//!
//! A truth file is YAML or JSON (chosen by the extension `.json`, else YAML, which also reads JSON):
//!
//! ```yaml
//! default:                 # rates of any segment not listed below (optional)
//!   control: 0.02
//!   urgent: 0.03
//!   informational: 0.03
//!   friendly: 0.03
//! segments:
//!   Champions:
//!     control: 0.02
//!     urgent: [0.08, 0.08, 0.07, 0.06]   # week 1, 2, 3, 4; the last value holds for later weeks
//!     informational: 0.03
//!     friendly: 0.03
//! ```
//!
//! The file is read into a generic tree first and walked by hand, so every error names the file and the exact
//! field (`segments.Champions.urgent[2]`) — serde's untagged enums would only say "did not match any variant".

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A truth file that cannot be used, naming the file and the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TruthError {
    #[error("{file}: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{file}: field `{field}`: {reason}")]
    Field { file: String, field: String, reason: String },
}

impl TruthError {
    fn field(file: &str, field: impl Into<String>, reason: impl Into<String>) -> Self {
        TruthError::Field { file: file.to_string(), field: field.into(), reason: reason.into() }
    }
}

/// The built-in truths (click rates; in each segment a different tone is best, rotating over the tones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Control 2%, the segment's best tone 8%, the other tones 3%, every week.
    Stationary,
    /// As stationary, but the best tone falls linearly from 8% in week 1 to 3% in week 12 (and stays there).
    Decaying,
    /// As stationary until week 6; from week 7 the next tone (in the campaign's order) is the 8% one and the
    /// former best falls to 3%.
    ChangingWinner,
}

/// Rates of the presets (DESIGN §9's season benchmark).
pub const CONTROL_RATE: f64 = 0.02;
pub const BEST_RATE: f64 = 0.08;
pub const OTHER_RATE: f64 = 0.03;
/// The week by which the decaying best tone has fallen to [`OTHER_RATE`].
pub const DECAY_UNTIL_WEEK: u32 = 12;
/// The first week of the new winner in [`Preset::ChangingWinner`].
pub const CHANGE_AT_WEEK: u32 = 7;

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Stationary, Preset::Decaying, Preset::ChangingWinner];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Stationary => "stationary",
            Preset::Decaying => "decaying",
            Preset::ChangingWinner => "changing-winner",
        }
    }

    /// `stationary`, `decaying`, `changing-winner` (also `changing_winner`).
    pub fn parse(s: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == s || p.name().replace('-', "_") == s)
    }

    /// The preset's truth for these segments and tones over `weeks` weeks. Segment i (in sorted order) has
    /// `tones[i mod tones]` as its best tone, so neighbouring segments have different winners.
    pub fn truth(self, segments: &[String], tones: &[String], weeks: u32) -> Truth {
        let mut sorted: Vec<&String> = segments.iter().collect();
        sorted.sort();
        sorted.dedup();
        let k = tones.len().max(1);
        let weeks = weeks.max(1);
        let mut out = BTreeMap::new();
        for (i, segment) in sorted.into_iter().enumerate() {
            let mut arms = BTreeMap::new();
            arms.insert("control".to_string(), Rates::constant(CONTROL_RATE));
            for (j, tone) in tones.iter().enumerate() {
                let best = j == i % k;
                let next = j == (i + 1) % k && k > 1;
                let rates = match self {
                    Preset::Stationary => Rates::constant(if best { BEST_RATE } else { OTHER_RATE }),
                    Preset::Decaying if best => Rates::weekly(
                        (1..=weeks.max(DECAY_UNTIL_WEEK))
                            .map(|w| {
                                let t = f64::from(w.min(DECAY_UNTIL_WEEK) - 1) / f64::from(DECAY_UNTIL_WEEK - 1);
                                BEST_RATE - (BEST_RATE - OTHER_RATE) * t
                            })
                            .collect(),
                    ),
                    Preset::Decaying => Rates::constant(OTHER_RATE),
                    Preset::ChangingWinner if best || next => Rates::weekly(
                        (1..=weeks.max(CHANGE_AT_WEEK))
                            .map(|w| if (w < CHANGE_AT_WEEK) == best { BEST_RATE } else { OTHER_RATE })
                            .collect(),
                    ),
                    Preset::ChangingWinner => Rates::constant(OTHER_RATE),
                };
                arms.insert(tone.clone(), rates);
            }
            out.insert(segment.clone(), arms);
        }
        Truth { default: None, segments: out }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An arm's true rate week by week: `week 1, week 2, …`; the last value holds for later weeks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rates(Vec<f64>);

impl Rates {
    pub fn constant(rate: f64) -> Self {
        Rates(vec![rate])
    }
    pub fn weekly(rates: Vec<f64>) -> Self {
        Rates(rates)
    }
    /// The rate in week `week` (1-based; week 0 reads as week 1).
    pub fn at(&self, week: u32) -> f64 {
        let i = (week.max(1) as usize - 1).min(self.0.len().saturating_sub(1));
        self.0.get(i).copied().unwrap_or(0.0)
    }
    pub fn values(&self) -> &[f64] {
        &self.0
    }
}

/// Segment → arm → rates, with optional defaults for segments not listed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Truth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<BTreeMap<String, Rates>>,
    #[serde(default)]
    pub segments: BTreeMap<String, BTreeMap<String, Rates>>,
}

impl Truth {
    /// The true rate of `arm` in `segment` in `week`, from the segment's own entry, else the defaults.
    pub fn rate(&self, segment: &str, arm: &str, week: u32) -> Option<f64> {
        self.segments
            .get(segment)
            .and_then(|arms| arms.get(arm))
            .or_else(|| self.default.as_ref().and_then(|d| d.get(arm)))
            .map(|r| r.at(week))
    }

    /// Every arm of every segment of a run must have a rate; `source` names the truth in the error.
    pub fn covers(&self, source: &str, segments: &[String], arms: &[String]) -> Result<(), TruthError> {
        for s in segments {
            for a in arms {
                if self.rate(s, a, 1).is_none() {
                    let field =
                        if self.segments.contains_key(s) { format!("segments.{s}.{a}") } else { "default".into() };
                    return Err(TruthError::field(
                        source,
                        field,
                        format!(
                            "no rate for arm {a:?} of segment {s:?} (the run's segments are {}; give the segment an \
                             entry or add `default`)",
                            segments.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Segments the truth names that the run does not have (a warning: small segments are merged away).
    pub fn unknown_segments<'a>(&'a self, segments: &[String]) -> Vec<&'a str> {
        self.segments.keys().filter(|s| !segments.contains(s)).map(String::as_str).collect()
    }

    /// Parse a truth file's text; `file` names it in errors, `arms` are the arms the campaign can have
    /// (`control` and its tones): another arm name is a typo, not a rate to ignore.
    pub fn parse(text: &str, file: &str, arms: &[String]) -> Result<Truth, TruthError> {
        let tree: Value = if file.ends_with(".json") {
            serde_json::from_str(text)
                .map_err(|e| TruthError::Unreadable { file: file.into(), reason: format!("not JSON: {e}") })?
        } else {
            serde_yaml_ng::from_str(text)
                .map_err(|e| TruthError::Unreadable { file: file.into(), reason: format!("not YAML: {e}") })?
        };
        let Value::Object(top) = tree else {
            return Err(TruthError::Unreadable {
                file: file.into(),
                reason: format!("expected a mapping with `segments` (and optionally `default`), found {}", kind(&tree)),
            });
        };
        let mut truth = Truth::default();
        for (name, value) in &top {
            match name.as_str() {
                "default" => truth.default = Some(arm_rates(file, "default", value, arms)?),
                "segments" => {
                    let Value::Object(segments) = value else {
                        return Err(TruthError::field(
                            file,
                            "segments",
                            format!("expected a mapping of segment name → arm rates, found {}", kind(value)),
                        ));
                    };
                    for (segment, arms_value) in segments {
                        if segment.trim().is_empty() {
                            return Err(TruthError::field(file, "segments", "a segment name is empty"));
                        }
                        let field = format!("segments.{segment}");
                        truth.segments.insert(segment.clone(), arm_rates(file, &field, arms_value, arms)?);
                    }
                }
                "description" => {}
                other => {
                    return Err(TruthError::field(
                        file,
                        other,
                        "unknown field (expected `segments`, `default` or `description`)",
                    ))
                }
            }
        }
        if truth.segments.is_empty() && truth.default.is_none() {
            return Err(TruthError::field(file, "segments", "no segment and no `default`: nothing to draw from"));
        }
        Ok(truth)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn arm_rates(file: &str, field: &str, v: &Value, arms: &[String]) -> Result<BTreeMap<String, Rates>, TruthError> {
    let Value::Object(map) = v else {
        return Err(TruthError::field(file, field, format!("expected a mapping of arm → rate, found {}", kind(v))));
    };
    let mut out = BTreeMap::new();
    for (arm, value) in map {
        let f = format!("{field}.{arm}");
        if !arms.is_empty() && !arms.contains(arm) {
            return Err(TruthError::field(
                file,
                f,
                format!("unknown arm {arm:?}: the campaign's arms are {}", arms.join(", ")),
            ));
        }
        let rates = match value {
            Value::Array(list) if list.is_empty() => {
                return Err(TruthError::field(file, f, "an empty list: give at least week 1's rate"))
            }
            Value::Array(list) => {
                list.iter().enumerate().map(|(i, x)| rate(file, &format!("{f}[{i}]"), x)).collect::<Result<_, _>>()?
            }
            x => vec![rate(file, &f, x)?],
        };
        out.insert(arm.clone(), Rates(rates));
    }
    Ok(out)
}

fn rate(file: &str, field: &str, v: &Value) -> Result<f64, TruthError> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    match x {
        Some(x) if x.is_finite() && (0.0..=1.0).contains(&x) => Ok(x),
        Some(x) => Err(TruthError::field(file, field, format!("{x} is not a rate between 0 and 1 (2% is 0.02)"))),
        None => Err(TruthError::field(
            file,
            field,
            format!("expected a rate between 0 and 1 or a list of weekly rates, found {}", kind(v)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arms() -> Vec<String> {
        ["control", "urgent", "informational", "friendly"].map(String::from).to_vec()
    }

    #[test]
    fn parses_constants_lists_and_defaults() {
        let text = "default: {control: 0.02, urgent: 0.03, informational: 0.03, friendly: 0.03}\n\
                    segments:\n  Champions: {urgent: [0.08, 0.06]}\n";
        let t = Truth::parse(text, "t.yaml", &arms()).unwrap();
        assert_eq!(t.rate("Champions", "urgent", 1), Some(0.08));
        assert_eq!(t.rate("Champions", "urgent", 2), Some(0.06));
        assert_eq!(t.rate("Champions", "urgent", 9), Some(0.06), "the last value holds");
        assert_eq!(t.rate("Champions", "control", 3), Some(0.02), "from the defaults");
        assert_eq!(t.rate("New", "friendly", 1), Some(0.03));
        let json = r#"{"segments": {"New": {"control": 0.01, "urgent": 0.1, "informational": 0, "friendly": 1}}}"#;
        let t = Truth::parse(json, "t.json", &arms()).unwrap();
        assert_eq!(t.rate("New", "friendly", 1), Some(1.0));
        assert_eq!(t.rate("Other", "friendly", 1), None);
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let cases = [
            ("segments: {A: {urgent: 1.5}}", "t.yaml: field `segments.A.urgent`: 1.5 is not a rate"),
            ("segments: {A: {urgent: [0.1, -0.1]}}", "field `segments.A.urgent[1]`: -0.1 is not a rate"),
            ("segments: {A: {urgent: []}}", "field `segments.A.urgent`: an empty list"),
            ("segments: {A: {urgentt: 0.1}}", "field `segments.A.urgentt`: unknown arm \"urgentt\""),
            ("segments: {A: {urgent: high}}", "field `segments.A.urgent`: expected a rate"),
            ("segments: {A: [0.1]}", "field `segments.A`: expected a mapping of arm"),
            ("segments: [A]", "field `segments`: expected a mapping of segment"),
            ("segment: {A: {urgent: 0.1}}", "field `segment`: unknown field"),
            // NaN has no JSON form: it reads as no value at all.
            ("default: {control: .nan}", "field `default.control`: expected a rate"),
            ("{}", "field `segments`: no segment and no `default`"),
            ("- 1", "t.yaml: expected a mapping"),
            ("a: [", "t.yaml: not YAML"),
        ];
        for (text, want) in cases {
            let e = Truth::parse(text, "t.yaml", &arms()).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let e = Truth::parse("{\"segments\": 3", "t.json", &arms()).unwrap_err().to_string();
        assert!(e.starts_with("t.json: not JSON"), "{e}");
    }

    #[test]
    fn coverage_is_checked_against_the_run() {
        let t = Truth::parse("segments: {A: {control: 0.02, urgent: 0.05}}", "t.yaml", &arms()).unwrap();
        let segs = vec!["A".to_string(), "B".to_string()];
        let e = t.covers("t.yaml", &segs, &["control".into(), "urgent".into()]).unwrap_err().to_string();
        assert!(e.contains("field `default`") && e.contains("segment \"B\""), "{e}");
        let e = t.covers("t.yaml", &segs[..1], &["control".into(), "friendly".into()]).unwrap_err().to_string();
        assert!(e.contains("field `segments.A.friendly`"), "{e}");
        assert!(t.covers("t.yaml", &segs[..1], &["control".into(), "urgent".into()]).is_ok());
        assert_eq!(t.unknown_segments(&["B".into()]), vec!["A"]);
    }

    #[test]
    fn presets_have_a_different_best_tone_per_segment() {
        let tones: Vec<String> = ["urgent", "informational", "friendly"].map(String::from).to_vec();
        let segs: Vec<String> = ["B", "A", "C", "D"].map(String::from).to_vec();
        let best = |t: &Truth, s: &str, w: u32| {
            tones.iter().max_by(|a, b| t.rate(s, a, w).unwrap().total_cmp(&t.rate(s, b, w).unwrap())).cloned().unwrap()
        };
        let st = Preset::Stationary.truth(&segs, &tones, 12);
        assert_eq!([best(&st, "A", 1), best(&st, "B", 1), best(&st, "C", 1)], ["urgent", "informational", "friendly"]);
        assert_eq!(best(&st, "D", 1), "urgent");
        assert_eq!(st.rate("A", "control", 5), Some(0.02));
        assert_eq!(st.rate("A", "friendly", 5), Some(0.03));
        let de = Preset::Decaying.truth(&segs, &tones, 12);
        assert_eq!(de.rate("A", "urgent", 1), Some(0.08));
        assert!((de.rate("A", "urgent", 12).unwrap() - 0.03).abs() < 1e-12);
        assert!((de.rate("A", "urgent", 20).unwrap() - 0.03).abs() < 1e-12);
        let mid = de.rate("A", "urgent", 6).unwrap();
        assert!((mid - (0.08 - 0.05 * 5.0 / 11.0)).abs() < 1e-12, "{mid}");
        let ch = Preset::ChangingWinner.truth(&segs, &tones, 12);
        assert_eq!((best(&ch, "A", 6), best(&ch, "A", 7)), ("urgent".into(), "informational".into()));
        assert_eq!(ch.rate("A", "urgent", 7), Some(0.03));
        assert_eq!(ch.rate("A", "informational", 12), Some(0.08));
        assert_eq!(ch.rate("A", "friendly", 7), Some(0.03));
        assert_eq!(Preset::parse("changing_winner"), Some(Preset::ChangingWinner));
        assert_eq!(Preset::parse("changing-winner"), Some(Preset::ChangingWinner));
        assert_eq!(Preset::parse("./stationary"), None);
    }
}

//! Choice rules: comparisons (`StringEquals`, `NumericLessThanPath`, `StringMatches`, `IsPresent`, …) and the
//! boolean combinators `And`, `Or`, `Not`.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use super::errors::{self, Failure};
use super::intrinsic::json_eq;
use super::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    Null,
    Present,
    Numeric,
    String,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone)]
pub enum Operand {
    Lit(Value),
    Path(Path),
}

#[derive(Debug, Clone)]
pub enum Op {
    Compare(Kind, Cmp, Operand),
    Matches(String),
    Test(Test, bool),
}

/// A Choice Rule (top-level rules carry `Next`, nested ones must not).
#[derive(Debug, Clone)]
pub enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Data { variable: Path, op: Op },
}

const COMPARISONS: &[(&str, Kind, Cmp)] = &[
    ("StringEquals", Kind::String, Cmp::Eq),
    ("StringLessThan", Kind::String, Cmp::Lt),
    ("StringGreaterThan", Kind::String, Cmp::Gt),
    ("StringLessThanEquals", Kind::String, Cmp::Le),
    ("StringGreaterThanEquals", Kind::String, Cmp::Ge),
    ("NumericEquals", Kind::Numeric, Cmp::Eq),
    ("NumericLessThan", Kind::Numeric, Cmp::Lt),
    ("NumericGreaterThan", Kind::Numeric, Cmp::Gt),
    ("NumericLessThanEquals", Kind::Numeric, Cmp::Le),
    ("NumericGreaterThanEquals", Kind::Numeric, Cmp::Ge),
    ("BooleanEquals", Kind::Boolean, Cmp::Eq),
    ("TimestampEquals", Kind::Timestamp, Cmp::Eq),
    ("TimestampLessThan", Kind::Timestamp, Cmp::Lt),
    ("TimestampGreaterThan", Kind::Timestamp, Cmp::Gt),
    ("TimestampLessThanEquals", Kind::Timestamp, Cmp::Le),
    ("TimestampGreaterThanEquals", Kind::Timestamp, Cmp::Ge),
];

const TESTS: &[(&str, Test)] = &[
    ("IsNull", Test::Null),
    ("IsPresent", Test::Present),
    ("IsNumeric", Test::Numeric),
    ("IsString", Test::String),
    ("IsBoolean", Test::Boolean),
    ("IsTimestamp", Test::Timestamp),
];

type ParseError = (String, String);

fn perr(field: &str, msg: impl Into<String>) -> ParseError {
    (field.to_string(), msg.into())
}

impl Rule {
    /// Parse one rule object; `top` says whether `Next` is expected (and returned). Error fields are relative
    /// to the rule.
    pub fn parse(obj: &Map<String, Value>, top: bool) -> Result<(Rule, Option<String>), ParseError> {
        let mut next = None;
        let mut rule = None;
        let mut variable = None;
        for (key, value) in obj {
            match key.as_str() {
                "Next" if top => {
                    next = Some(value.as_str().ok_or_else(|| perr("Next", "must be a string"))?.to_string());
                }
                "Next" => return Err(perr("Next", "only top-level choice rules may have Next")),
                "Comment" => {}
                "Variable" => {
                    let text = value.as_str().ok_or_else(|| perr("Variable", "must be a path string"))?;
                    variable = Some(Path::parse(text).map_err(|e| perr("Variable", e))?);
                }
                "And" | "Or" => {
                    let items = value
                        .as_array()
                        .filter(|a| !a.is_empty())
                        .ok_or_else(|| perr(key, "must be a non-empty array of rules"))?;
                    let mut rules = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let sub = item.as_object().ok_or_else(|| perr(&format!("{key}[{i}]"), "must be an object"))?;
                        let (r, _) = Rule::parse(sub, false).map_err(|(f, e)| (format!("{key}[{i}].{f}"), e))?;
                        rules.push(r);
                    }
                    set_once(&mut rule, key, if key == "And" { Rule::And(rules) } else { Rule::Or(rules) })?;
                }
                "Not" => {
                    let sub = value.as_object().ok_or_else(|| perr("Not", "must be a rule object"))?;
                    let (r, _) = Rule::parse(sub, false).map_err(|(f, e)| (format!("Not.{f}"), e))?;
                    set_once(&mut rule, key, Rule::Not(Box::new(r)))?;
                }
                _ => {
                    let op = parse_op(key, value)?;
                    set_once(&mut rule, key, Rule::Data { variable: Path::parse("$").map_err(|e| perr(key, e))?, op })?;
                }
            }
        }
        let mut rule = rule.ok_or_else(|| perr("", "a choice rule needs a comparison operator, And, Or or Not"))?;
        match (&mut rule, variable) {
            (Rule::Data { variable: v, .. }, Some(var)) => *v = var,
            (Rule::Data { .. }, None) => return Err(perr("Variable", "a comparison needs a Variable")),
            (_, Some(_)) => return Err(perr("Variable", "And, Or and Not take no Variable")),
            (_, None) => {}
        }
        if top && next.is_none() {
            return Err(perr("Next", "a top-level choice rule needs Next"));
        }
        Ok((rule, next))
    }

    /// Evaluate against `input` (`$`) and `context` (`$$`).
    pub fn eval(&self, input: &Value, context: &Value) -> Result<bool, Failure> {
        match self {
            Rule::And(rules) => {
                for r in rules {
                    if !r.eval(input, context)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rules) => {
                for r in rules {
                    if r.eval(input, context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(r) => Ok(!r.eval(input, context)?),
            Rule::Data { variable, op } => {
                let doc = if variable.context { context } else { input };
                if let Op::Test(Test::Present, want) = op {
                    return Ok(variable.exists(doc) == *want);
                }
                let value = variable.select(doc).map_err(|_| {
                    errors::runtime(format!(
                        "Invalid path '{}': The choice state's condition path references an invalid value.",
                        variable.text
                    ))
                })?;
                match op {
                    Op::Test(test, want) => Ok(test_value(*test, &value) == *want),
                    Op::Matches(pattern) => Ok(value.as_str().is_some_and(|s| wildcard_match(pattern, s))),
                    Op::Compare(kind, cmp, operand) => {
                        let other = match operand {
                            Operand::Lit(v) => v.clone(),
                            Operand::Path(p) => {
                                let doc = if p.context { context } else { input };
                                p.select(doc).map_err(|_| {
                                    errors::runtime(format!(
                                        "Invalid path '{}': The choice state's comparison path references an \
                                         invalid value.",
                                        p.text
                                    ))
                                })?
                            }
                        };
                        Ok(compare(*kind, &value, &other).is_some_and(|ord| holds(*cmp, ord)))
                    }
                }
            }
        }
    }
}

fn set_once(slot: &mut Option<Rule>, key: &str, rule: Rule) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(perr(key, "a choice rule holds exactly one operator"));
    }
    *slot = Some(rule);
    Ok(())
}

fn parse_op(key: &str, value: &Value) -> Result<Op, ParseError> {
    if let Some(&(_, test)) = TESTS.iter().find(|t| t.0 == key) {
        let want = value.as_bool().ok_or_else(|| perr(key, "must be true or false"))?;
        return Ok(Op::Test(test, want));
    }
    if key == "StringMatches" {
        let pattern = value.as_str().ok_or_else(|| perr(key, "must be a string"))?;
        return Ok(Op::Matches(pattern.to_string()));
    }
    let (base, is_path) = match key.strip_suffix("Path") {
        Some(base) => (base, true),
        None => (key, false),
    };
    let Some(&(_, kind, cmp)) = COMPARISONS.iter().find(|c| c.0 == base) else {
        return Err(perr(key, "unknown or unsupported choice operator"));
    };
    if is_path {
        let text = value.as_str().ok_or_else(|| perr(key, "must be a path string"))?;
        return Ok(Op::Compare(kind, cmp, Operand::Path(Path::parse(text).map_err(|e| perr(key, e))?)));
    }
    let ok = match kind {
        Kind::String => value.is_string(),
        Kind::Numeric => value.is_number(),
        Kind::Boolean => value.is_boolean(),
        Kind::Timestamp => value.as_str().is_some_and(|s| timestamp(s).is_some()),
    };
    if !ok {
        let want = match kind {
            Kind::String => "a string",
            Kind::Numeric => "a number",
            Kind::Boolean => "a boolean",
            Kind::Timestamp => "an RFC 3339 timestamp string",
        };
        return Err(perr(key, format!("must be {want}")));
    }
    Ok(Op::Compare(kind, cmp, Operand::Lit(value.clone())))
}

fn holds(cmp: Cmp, ord: Ordering) -> bool {
    match cmp {
        Cmp::Eq => ord == Ordering::Equal,
        Cmp::Lt => ord == Ordering::Less,
        Cmp::Gt => ord == Ordering::Greater,
        Cmp::Le => ord != Ordering::Greater,
        Cmp::Ge => ord != Ordering::Less,
    }
}

/// Compare two values as `kind`; `None` when either is not of that type (the rule is then false).
fn compare(kind: Kind, a: &Value, b: &Value) -> Option<Ordering> {
    match kind {
        Kind::String => Some(a.as_str()?.cmp(b.as_str()?)),
        Kind::Boolean => Some(a.as_bool()?.cmp(&b.as_bool()?)),
        Kind::Numeric => {
            let (x, y) = (a.as_number()?, b.as_number()?);
            if json_eq(a, b) {
                return Some(Ordering::Equal);
            }
            match (x.as_i64(), y.as_i64()) {
                (Some(p), Some(q)) => Some(p.cmp(&q)),
                _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
            }
        }
        Kind::Timestamp => Some(timestamp(a.as_str()?)?.cmp(&timestamp(b.as_str()?)?)),
    }
}

fn test_value(test: Test, v: &Value) -> bool {
    match test {
        Test::Null => v.is_null(),
        Test::Present => true,
        Test::Numeric => v.is_number(),
        Test::String => v.is_string(),
        Test::Boolean => v.is_boolean(),
        Test::Timestamp => v.as_str().is_some_and(|s| timestamp(s).is_some()),
    }
}

/// RFC 3339 timestamps with an uppercase `T` separator, as the spec requires.
pub fn timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    if s.len() < 11 || s.as_bytes()[10] != b'T' {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

/// `StringMatches`: `*` matches any run of characters; `\*` is a literal star and `\\` a literal backslash.
pub fn wildcard_match(pattern: &str, s: &str) -> bool {
    #[derive(PartialEq)]
    enum P {
        Star,
        Char(char),
    }
    let mut parts = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => parts.push(P::Char(chars.next().unwrap_or('\\'))),
            '*' => parts.push(P::Star),
            c => parts.push(P::Char(c)),
        }
    }
    let text: Vec<char> = s.chars().collect();
    // Greedy matching with backtracking to the last star: linear in practice.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match parts.get(p) {
            Some(P::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(P::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    parts[p..].iter().all(|x| *x == P::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("log-*.txt", "log-2024.txt"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "aXbYbc"));
        assert!(!wildcard_match("log-*.txt", "log-2024.csv"));
        assert!(wildcard_match(r"a\*", "a*"));
        assert!(!wildcard_match(r"a\*", "ab"));
        assert!(wildcard_match(r"a\\b", r"a\b"));
    }

    #[test]
    fn timestamps() {
        assert!(timestamp("2016-03-14T01:59:00Z").is_some());
        assert!(timestamp("2016-03-14T01:59:00.123+02:00").is_some());
        assert!(timestamp("2016-03-14t01:59:00Z").is_none());
        assert!(timestamp("2016-03-14").is_none());
    }
}

//! The JSONPath dialect of the States Language: reference paths (`$.a.b`, `$.a[0]`, `$['x y']`, `$$.` for the
//! context object) and, where the spec allows a full Path (InputPath, OutputPath, ItemsPath, payload templates),
//! the selectors `*`, `..`, slices `[a:b:c]` and unions `[0,1]`. Filter expressions (`[?(...)]`) are rejected at
//! load. Hand-written because the crates on offer implement RFC 9535 semantics (always a node list), while Step
//! Functions follows Jayway: a definite path yields one value, an indefinite one an array.

use serde_json::{Map, Value};

use super::cursor::Cursor;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    Index(i64),
    Wildcard,
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Union(Vec<Seg>),
    /// `..x`: `x` applied to the node and every descendant.
    Descend(Box<Seg>),
}

/// A parsed path. `context` is true for `$$` paths, which read the context object instead of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub text: String,
    pub context: bool,
    segs: Vec<Seg>,
}

/// Why a path could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub String);

impl Path {
    /// Parse `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (context, rest) = if let Some(rest) = text.strip_prefix("$$") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix('$') {
            (false, rest)
        } else {
            return Err(format!("path {text:?} must start with '$'"));
        };
        let segs = Parser::new("path", text, rest).segments()?;
        Ok(Self { text: text.to_string(), context, segs })
    }

    /// `$` (or `$$`): the whole document.
    pub fn is_root(&self) -> bool {
        self.segs.is_empty()
    }

    /// A Reference Path identifies exactly one node: only fields and indexes.
    pub fn is_reference(&self) -> bool {
        self.segs.iter().all(|s| matches!(s, Seg::Field(_) | Seg::Index(_)))
    }

    /// Select from `doc`. A reference path yields the node or an error when it is absent; any other path yields
    /// the array of matches (possibly empty), as Jayway JsonPath does.
    pub fn select(&self, doc: &Value) -> Result<Value, PathError> {
        self.select_segs(&self.segs, doc)
    }

    fn select_segs(&self, segs: &[Seg], doc: &Value) -> Result<Value, PathError> {
        if self.is_reference() {
            let mut cur = doc;
            for seg in segs {
                cur = step_definite(cur, seg)
                    .ok_or_else(|| PathError(format!("the path {:?} matches nothing", self.text)))?;
            }
            return Ok(cur.clone());
        }
        let mut nodes = vec![doc];
        for seg in segs {
            let mut next = Vec::new();
            for node in nodes {
                apply(node, seg, &mut next);
            }
            nodes = next;
        }
        Ok(Value::Array(nodes.into_iter().cloned().collect()))
    }

    /// True when a reference path resolves in `doc` (Choice `IsPresent`).
    pub fn exists(&self, doc: &Value) -> bool {
        match self.select(doc) {
            Ok(Value::Array(items)) if !self.is_reference() => !items.is_empty(),
            Ok(_) => true,
            Err(_) => false,
        }
    }

    /// ResultPath semantics: a copy of `doc` with `value` stored at this (reference) path, creating missing
    /// intermediate objects. Storing through a scalar, or at an index past the end of an array, is an error.
    pub fn write(&self, doc: &Value, value: Value) -> Result<Value, PathError> {
        if self.segs.is_empty() {
            return Ok(value);
        }
        let mut out = doc.clone();
        let mut cur = &mut out;
        let last = self.segs.len() - 1;
        for (i, seg) in self.segs.iter().enumerate() {
            let fail = |what: &str| PathError(format!("cannot apply ResultPath {:?}: {what}", self.text));
            match seg {
                Seg::Field(name) => {
                    let Value::Object(map) = cur else {
                        return Err(fail(&format!("the value before field {name:?} is not an object")));
                    };
                    if i == last {
                        map.insert(name.clone(), value);
                        return Ok(out);
                    }
                    let entry = map.entry(name.clone()).or_insert_with(|| Value::Object(Map::new()));
                    if entry.is_null() {
                        *entry = Value::Object(Map::new());
                    }
                    cur = entry;
                }
                Seg::Index(idx) => {
                    let Value::Array(items) = cur else {
                        return Err(fail(&format!("the value before index [{idx}] is not an array")));
                    };
                    let len = items.len() as i64;
                    let at = if *idx < 0 { len + idx } else { *idx };
                    if at < 0 || at >= len {
                        return Err(fail(&format!("index [{idx}] is outside an array of {len} items")));
                    }
                    let slot = &mut items[at as usize];
                    if i == last {
                        *slot = value;
                        return Ok(out);
                    }
                    cur = slot;
                }
                _ => return Err(fail("only fields and indexes can be written")),
            }
        }
        Ok(out)
    }
}

/// The context object (`$$`). `Execution.Input` is held apart and shared, so that building a state's context
/// does not copy the execution input (a Map over 10,000 items would otherwise copy it 10,000 times).
#[derive(Debug, Clone)]
pub struct Context {
    pub doc: Value,
    pub execution_input: std::sync::Arc<Value>,
}

impl Context {
    /// Read `p` from `$` (`input`) or, for a `$$` path, from this context.
    pub fn resolve(&self, p: &Path, input: &Value) -> Result<Value, PathError> {
        if !p.context {
            return p.select(input);
        }
        let execution_input = matches!(
            p.segs.as_slice(),
            [Seg::Field(a), Seg::Field(b), ..] if a == "Execution" && b == "Input"
        );
        if execution_input {
            return p.select_segs(&p.segs[2..], &self.execution_input);
        }
        let reaches_input = match p.segs.first() {
            None => true,
            Some(Seg::Field(a)) => a == "Execution" && p.segs.len() == 1 || !p.is_reference(),
            Some(_) => true,
        };
        if reaches_input {
            let mut full = self.doc.clone();
            full["Execution"]["Input"] = (*self.execution_input).clone();
            return p.select(&full);
        }
        p.select(&self.doc)
    }

    /// `IsPresent` for `$` or `$$` paths.
    pub fn exists(&self, p: &Path, input: &Value) -> bool {
        match self.resolve(p, input) {
            Ok(Value::Array(items)) if !p.is_reference() => !items.is_empty(),
            Ok(_) => true,
            Err(_) => false,
        }
    }
}

fn step_definite<'a>(node: &'a Value, seg: &Seg) -> Option<&'a Value> {
    match (seg, node) {
        (Seg::Field(name), Value::Object(map)) => map.get(name),
        (Seg::Index(idx), Value::Array(items)) => {
            let len = items.len() as i64;
            let at = if *idx < 0 { len + idx } else { *idx };
            if at < 0 {
                None
            } else {
                items.get(at as usize)
            }
        }
        _ => None,
    }
}

fn apply<'a>(node: &'a Value, seg: &Seg, out: &mut Vec<&'a Value>) {
    match seg {
        Seg::Field(_) | Seg::Index(_) => out.extend(step_definite(node, seg)),
        Seg::Wildcard => match node {
            Value::Object(map) => out.extend(map.values()),
            Value::Array(items) => out.extend(items.iter()),
            _ => {}
        },
        Seg::Slice(start, end, step) => {
            if let Value::Array(items) = node {
                let len = items.len() as i64;
                let step = step.unwrap_or(1);
                if step <= 0 {
                    return;
                }
                let norm = |v: i64| if v < 0 { (len + v).max(0) } else { v.min(len) };
                let (from, to) = (norm(start.unwrap_or(0)), norm(end.unwrap_or(len)));
                let mut i = from;
                while i < to {
                    out.push(&items[i as usize]);
                    i += step;
                }
            }
        }
        Seg::Union(parts) => {
            for part in parts {
                apply(node, part, out);
            }
        }
        Seg::Descend(inner) => {
            apply(node, inner, out);
            match node {
                Value::Object(map) => map.values().for_each(|child| apply(child, seg, out)),
                Value::Array(items) => items.iter().for_each(|child| apply(child, seg, out)),
                _ => {}
            }
        }
    }
}

/// This grammar's rules, as methods of the shared [`Cursor`] (private to this module).
type Parser<'t> = Cursor<'t>;

impl Parser<'_> {
    fn segments(mut self) -> Result<Vec<Seg>, String> {
        let mut segs = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                '.' => {
                    self.pos += 1;
                    if self.peek() == Some('.') {
                        self.pos += 1;
                        let inner = if self.peek() == Some('[') { self.bracket()? } else { self.dotted()? };
                        segs.push(Seg::Descend(Box::new(inner)));
                    } else {
                        segs.push(self.dotted()?);
                    }
                }
                '[' => segs.push(self.bracket()?),
                _ => return Err(self.err(&format!("unexpected {c:?}"))),
            }
        }
        Ok(segs)
    }

    fn dotted(&mut self) -> Result<Seg, String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == '.' || c == '[' {
                break;
            }
            if c.is_whitespace() || matches!(c, ']' | '\'' | '"' | '(' | ')' | '?' | '@' | ',') {
                return Err(self.err(&format!("unexpected {c:?} in a field name")));
            }
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        match name.as_str() {
            "" => Err(self.err("empty field name")),
            "*" => Ok(Seg::Wildcard),
            _ => Ok(Seg::Field(name)),
        }
    }

    fn bracket(&mut self) -> Result<Seg, String> {
        self.pos += 1; // '['
        let mut parts = Vec::new();
        loop {
            self.skip_ws();
            let part = match self.peek() {
                Some('\'') | Some('"') => Seg::Field(self.quoted()?),
                Some('*') => {
                    self.pos += 1;
                    Seg::Wildcard
                }
                Some('?') | Some('(') => return Err(self.err("filter and script expressions are not supported")),
                Some(_) => self.index_or_slice()?,
                None => return Err(self.err("unclosed '['")),
            };
            parts.push(part);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(']') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Seg::Union(parts) })
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn quoted(&mut self) -> Result<String, String> {
        let quote = self.peek().unwrap_or('\'');
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated quoted name")),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) => out.push(c),
                        None => return Err(self.err("dangling '\\'")),
                    }
                    self.pos += 1;
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn int(&mut self) -> Result<Option<i64>, String> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| self.err(&format!("bad number {text:?}")))
    }

    fn index_or_slice(&mut self) -> Result<Seg, String> {
        let first = self.int()?;
        self.skip_ws();
        if self.peek() != Some(':') {
            return first.map(Seg::Index).ok_or_else(|| self.err("expected an index, a quoted name or '*'"));
        }
        self.pos += 1;
        self.skip_ws();
        let end = self.int()?;
        self.skip_ws();
        let step = if self.peek() == Some(':') {
            self.pos += 1;
            self.skip_ws();
            self.int()?
        } else {
            None
        };
        Ok(Seg::Slice(first, end, step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_paths() {
        let doc = json!({"foo": 123, "bar": ["a", "b", "c"], "car": {"cdr": true}, "x y": 1});
        assert_eq!(Path::parse("$.foo").unwrap().select(&doc).unwrap(), json!(123));
        assert_eq!(Path::parse("$.bar[1]").unwrap().select(&doc).unwrap(), json!("b"));
        assert_eq!(Path::parse("$.bar[-1]").unwrap().select(&doc).unwrap(), json!("c"));
        assert_eq!(Path::parse("$.car.cdr").unwrap().select(&doc).unwrap(), json!(true));
        assert_eq!(Path::parse("$['x y']").unwrap().select(&doc).unwrap(), json!(1));
        assert!(Path::parse("$.nope").unwrap().select(&doc).is_err());
        assert!(Path::parse("$$.Execution.Input").unwrap().context);
    }

    #[test]
    fn indefinite_paths_yield_arrays() {
        let doc = json!({"a": [1, 2, 3, 4], "o": {"x": {"v": 1}, "y": {"v": 2}}});
        assert_eq!(Path::parse("$.a[0:2]").unwrap().select(&doc).unwrap(), json!([1, 2]));
        assert_eq!(Path::parse("$.a[*]").unwrap().select(&doc).unwrap(), json!([1, 2, 3, 4]));
        assert_eq!(Path::parse("$.a[0,3]").unwrap().select(&doc).unwrap(), json!([1, 4]));
        assert_eq!(Path::parse("$.o.*.v").unwrap().select(&doc).unwrap(), json!([1, 2]));
        assert_eq!(Path::parse("$..v").unwrap().select(&doc).unwrap(), json!([1, 2]));
        assert_eq!(Path::parse("$.nothing[*]").unwrap().select(&doc).unwrap(), json!([]));
    }

    #[test]
    fn bad_paths_are_rejected() {
        for bad in ["a.b", "$.", "$[?(@.a)]", "$.a[", "$..", "$.a b"] {
            assert!(Path::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn context_paths_reach_the_shared_execution_input() {
        let ctx = Context {
            doc: json!({"Execution": {"Name": "e"}, "State": {"Name": "S"}}),
            execution_input: std::sync::Arc::new(json!({"a": [1, 2]})),
        };
        let input = json!({"a": "state input"});
        let sel = |p: &str| ctx.resolve(&Path::parse(p).unwrap(), &input);
        assert_eq!(sel("$$.Execution.Input.a[1]").unwrap(), json!(2));
        assert_eq!(sel("$$.Execution.Input").unwrap(), json!({"a": [1, 2]}));
        assert_eq!(sel("$$.Execution").unwrap(), json!({"Name": "e", "Input": {"a": [1, 2]}}));
        assert_eq!(sel("$$.State.Name").unwrap(), json!("S"));
        assert_eq!(sel("$.a").unwrap(), json!("state input"));
        assert!(sel("$$.Execution.Input.b").is_err());
        assert!(ctx.exists(&Path::parse("$$.Execution.Input.a").unwrap(), &input));
    }

    #[test]
    fn write_creates_intermediate_objects() {
        let p = Path::parse("$.a.b.c").unwrap();
        assert_eq!(p.write(&json!({"x": 1}), json!(2)).unwrap(), json!({"x": 1, "a": {"b": {"c": 2}}}));
        assert!(p.write(&json!({"a": 5}), json!(2)).is_err());
        assert!(Path::parse("$.x").unwrap().write(&json!([1]), json!(2)).is_err());
        let arr = Path::parse("$.l[1]").unwrap();
        assert_eq!(arr.write(&json!({"l": [0, 0]}), json!(9)).unwrap(), json!({"l": [0, 9]}));
        assert!(arr.write(&json!({"l": [0]}), json!(9)).is_err());
    }
}

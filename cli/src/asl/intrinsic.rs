//! Intrinsic functions (`States.Format(...)` and friends): parsed once at load, evaluated per state. Arguments
//! are literals (`'text'` with `\'`, `\{`, `\}`, `\\` escapes, numbers, `true`, `false`, `null`), paths (`$.a`,
//! `$$.Execution.Name`) or nested calls. Semantics and limits follow the Step Functions documentation.

use base64::Engine as _;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Number, Value};

use super::cursor::Cursor;
use super::errors::{self, Failure};
use super::path::{Context, Path};

/// The intrinsic functions of the JSONPath query language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

const FUNCS: &[(&str, Func, usize, usize)] = &[
    ("States.Format", Func::Format, 1, usize::MAX),
    ("States.StringToJson", Func::StringToJson, 1, 1),
    ("States.JsonToString", Func::JsonToString, 1, 1),
    ("States.Array", Func::Array, 0, usize::MAX),
    ("States.ArrayPartition", Func::ArrayPartition, 2, 2),
    ("States.ArrayContains", Func::ArrayContains, 2, 2),
    ("States.ArrayRange", Func::ArrayRange, 3, 3),
    ("States.ArrayGetItem", Func::ArrayGetItem, 2, 2),
    ("States.ArrayLength", Func::ArrayLength, 1, 1),
    ("States.ArrayUnique", Func::ArrayUnique, 1, 1),
    ("States.Base64Encode", Func::Base64Encode, 1, 1),
    ("States.Base64Decode", Func::Base64Decode, 1, 1),
    ("States.Hash", Func::Hash, 2, 2),
    ("States.JsonMerge", Func::JsonMerge, 3, 3),
    ("States.MathRandom", Func::MathRandom, 2, 3),
    ("States.MathAdd", Func::MathAdd, 2, 2),
    ("States.StringSplit", Func::StringSplit, 2, 2),
    ("States.UUID", Func::Uuid, 0, 0),
];

/// The most nested calls a field may hold (Step Functions allows 10).
const MAX_DEPTH: usize = 10;
/// Size limits the service applies to string arguments and generated arrays.
const MAX_STRING: usize = 10_000;
const MAX_RANGE: usize = 1000;

/// One argument of a call.
#[derive(Debug, Clone)]
pub enum Arg {
    /// A string literal: its value, and its pieces for `States.Format` (escaped braces are not placeholders).
    Str(String, Vec<Piece>),
    Lit(Value),
    Path(Path),
    Call(Box<Call>),
}

/// A piece of a `States.Format` template.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Hole,
}

/// A parsed call.
#[derive(Debug, Clone)]
pub struct Call {
    pub name: &'static str,
    pub func: Func,
    pub args: Vec<Arg>,
}

/// True when a `.$` value is an intrinsic call rather than a path.
pub fn looks_like_call(text: &str) -> bool {
    text.trim_start().starts_with("States.")
}

impl Call {
    /// Parse a whole field value such as `States.Format('{}', $.a)`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut p = Parser::new("intrinsic", text, text);
        p.ws();
        let call = p.call(1)?;
        p.ws();
        if p.pos != p.chars.len() {
            return Err(p.err("unexpected text after the call"));
        }
        Ok(call)
    }

    /// Evaluate with `input` as `$` and `context` as `$$`; `rng` serves `States.MathRandom` and `States.UUID`
    /// when no seed is given.
    pub fn eval(&self, input: &Value, context: &Context, rng: &mut rand::rngs::StdRng) -> Result<Value, Failure> {
        let mut args = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            args.push(match arg {
                Arg::Str(s, _) => Value::String(s.clone()),
                Arg::Lit(v) => v.clone(),
                Arg::Path(p) => context
                    .resolve(p, input)
                    .map_err(|e| errors::runtime(format!("{}: argument {}: {}", self.name, p.text, e.0)))?,
                Arg::Call(c) => c.eval(input, context, rng)?,
            });
        }
        self.apply(args, rng)
    }

    fn fail(&self, why: impl std::fmt::Display) -> Failure {
        Failure { error: errors::INTRINSIC_FAILURE.into(), cause: format!("{} failed: {why}", self.name) }
    }

    fn apply(&self, mut args: Vec<Value>, rng: &mut rand::rngs::StdRng) -> Result<Value, Failure> {
        match self.func {
            Func::Format => {
                let pieces = match &self.args[0] {
                    Arg::Str(_, pieces) => pieces.clone(),
                    _ => match &args[0] {
                        Value::String(s) => format_pieces(s),
                        other => return Err(self.fail(format!("the template is {}, not a string", kind(other)))),
                    },
                };
                let holes = pieces.iter().filter(|p| **p == Piece::Hole).count();
                if holes != args.len() - 1 {
                    return Err(self.fail(format!("{holes} placeholders but {} values", args.len() - 1)));
                }
                let mut out = String::new();
                let mut values = args.drain(1..);
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => out.push_str(&t),
                        Piece::Hole => match values.next() {
                            Some(Value::String(s)) => out.push_str(&s),
                            Some(v) => out.push_str(&v.to_string()),
                            None => {}
                        },
                    }
                }
                Ok(Value::String(out))
            }
            Func::StringToJson => {
                let s = self.string(&args[0], "the argument")?;
                serde_json::from_str(s).map_err(|e| self.fail(format!("the argument is not JSON: {e}")))
            }
            Func::JsonToString => Ok(Value::String(args[0].to_string())),
            Func::Array => Ok(Value::Array(args)),
            Func::ArrayPartition => {
                let items = self.array(&args[0], "the first argument")?;
                let size = self.int(&args[1], "the chunk size")?;
                if size < 1 {
                    return Err(self.fail("the chunk size must be a positive integer"));
                }
                Ok(Value::Array(items.chunks(size as usize).map(|c| Value::Array(c.to_vec())).collect()))
            }
            Func::ArrayContains => {
                let items = self.array(&args[0], "the first argument")?;
                Ok(Value::Bool(items.iter().any(|v| json_eq(v, &args[1]))))
            }
            Func::ArrayRange => {
                let (start, end, step) =
                    (self.int(&args[0], "the start")?, self.int(&args[1], "the end")?, self.int(&args[2], "the step")?);
                if step == 0 {
                    return Err(self.fail("the step must not be 0"));
                }
                let count = if (step > 0 && end < start) || (step < 0 && end > start) {
                    0
                } else {
                    ((end - start) / step + 1) as usize
                };
                if count > MAX_RANGE {
                    return Err(self.fail(format!("the range has {count} items, more than {MAX_RANGE}")));
                }
                Ok(Value::Array((0..count as i64).map(|i| Value::from(start + i * step)).collect()))
            }
            Func::ArrayGetItem => {
                let items = self.array(&args[0], "the first argument")?;
                let index = self.int(&args[1], "the index")?;
                usize::try_from(index)
                    .ok()
                    .and_then(|i| items.get(i))
                    .cloned()
                    .ok_or_else(|| self.fail(format!("index {index} is outside an array of {} items", items.len())))
            }
            Func::ArrayLength => Ok(Value::from(self.array(&args[0], "the argument")?.len())),
            Func::ArrayUnique => {
                let items = self.array(&args[0], "the argument")?;
                let mut out: Vec<Value> = Vec::new();
                for v in items {
                    if !out.iter().any(|seen| json_eq(seen, v)) {
                        out.push(v.clone());
                    }
                }
                Ok(Value::Array(out))
            }
            Func::Base64Encode => {
                let s = self.limited(&args[0])?;
                Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(s)))
            }
            Func::Base64Decode => {
                let s = self.limited(&args[0])?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| self.fail(format!("not Base64: {e}")))?;
                String::from_utf8(bytes).map(Value::String).map_err(|_| self.fail("the decoded data is not UTF-8"))
            }
            Func::Hash => {
                let data = self.limited(&args[0])?;
                let algorithm = self.string(&args[1], "the algorithm")?;
                Ok(Value::String(hash(data.as_bytes(), algorithm).ok_or_else(|| {
                    self.fail(format!("unknown algorithm {algorithm:?} (MD5, SHA-1, SHA-256, SHA-384, SHA-512)"))
                })?))
            }
            Func::JsonMerge => {
                let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
                    return Err(self.fail("both arguments must be objects"));
                };
                if args[2] != Value::Bool(false) {
                    return Err(self.fail("only shallow merging is supported: the third argument must be false"));
                }
                let mut out: Map<String, Value> = a.clone();
                out.extend(b.clone());
                Ok(Value::Object(out))
            }
            Func::MathRandom => {
                let start = self.int(&args[0], "the start")?;
                let end = self.int(&args[1], "the end")?;
                if start >= end {
                    return Err(self.fail("the start must be less than the end"));
                }
                let n = match args.get(2) {
                    Some(seed) => {
                        let seed = self.int(seed, "the seed")?;
                        rand::rngs::StdRng::seed_from_u64(seed as u64).random_range(start..end)
                    }
                    None => rng.random_range(start..end),
                };
                Ok(Value::from(n))
            }
            Func::MathAdd => {
                let a = self.int(&args[0], "the first argument")?;
                let b = self.int(&args[1], "the second argument")?;
                for v in [a, b] {
                    if i32::try_from(v).is_err() {
                        return Err(self.fail(format!("{v} is outside the 32-bit integer range")));
                    }
                }
                Ok(Value::from(a + b))
            }
            Func::StringSplit => {
                let s = self.string(&args[0], "the first argument")?;
                let delims = self.string(&args[1], "the delimiters")?;
                Ok(Value::Array(
                    s.split(|c| delims.contains(c))
                        .filter(|part| !part.is_empty())
                        .map(|part| Value::String(part.to_string()))
                        .collect(),
                ))
            }
            Func::Uuid => {
                let mut bytes = [0u8; 16];
                rng.fill(&mut bytes);
                Ok(Value::String(uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()))
            }
        }
    }

    fn string<'v>(&self, v: &'v Value, what: &str) -> Result<&'v str, Failure> {
        v.as_str().ok_or_else(|| self.fail(format!("{what} is {}, not a string", kind(v))))
    }

    fn limited<'v>(&self, v: &'v Value) -> Result<&'v str, Failure> {
        let s = self.string(v, "the argument")?;
        if s.chars().count() > MAX_STRING {
            return Err(self.fail(format!("the argument is longer than {MAX_STRING} characters")));
        }
        Ok(s)
    }

    fn array<'v>(&self, v: &'v Value, what: &str) -> Result<&'v Vec<Value>, Failure> {
        v.as_array().ok_or_else(|| self.fail(format!("{what} is {}, not an array", kind(v))))
    }

    /// An integer argument; non-integers are rounded, as the service does.
    fn int(&self, v: &Value, what: &str) -> Result<i64, Failure> {
        match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(i),
                None => n
                    .as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 9.0e15)
                    .map(|f| f.round() as i64)
                    .ok_or_else(|| self.fail(format!("{what} {n} is out of range"))),
            },
            other => Err(self.fail(format!("{what} is {}, not a number", kind(other)))),
        }
    }
}

fn hash(data: &[u8], algorithm: &str) -> Option<String> {
    use sha2::Digest as _;
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
    Some(match algorithm {
        "MD5" => hex(&<md5::Md5 as md5::Digest>::digest(data)),
        "SHA-1" => hex(&<sha1::Sha1 as sha1::Digest>::digest(data)),
        "SHA-256" => hex(&sha2::Sha256::digest(data)),
        "SHA-384" => hex(&sha2::Sha384::digest(data)),
        "SHA-512" => hex(&sha2::Sha512::digest(data)),
        _ => return None,
    })
}

/// A JSON type name for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_eq(x, y),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn num_eq(x: &Number, y: &Number) -> bool {
    match (x.as_i64(), y.as_i64()) {
        (Some(a), Some(b)) => a == b,
        _ => x.as_f64() == y.as_f64(),
    }
}

/// Split a Format template held in a value (not a literal) into text and `{}` holes.
fn format_pieces(s: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // Data is not source text: an escape is honoured, any other backslash is kept as it is.
            '\\' => match chars.peek() {
                Some(&e @ ('{' | '}' | '\\' | '\'')) => {
                    chars.next();
                    text.push(e);
                }
                _ => text.push('\\'),
            },
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Hole);
            }
            _ => text.push(c),
        }
    }
    pieces.push(Piece::Text(text));
    pieces
}

/// This grammar's rules, as methods of the shared [`Cursor`] (private to this module).
type Parser<'t> = Cursor<'t>;

impl Parser<'_> {
    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn call(&mut self, depth: usize) -> Result<Call, String> {
        if depth > MAX_DEPTH {
            return Err(self.err(&format!("more than {MAX_DEPTH} nested calls")));
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '.') {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        let Some(&(name, func, min, max)) = FUNCS.iter().find(|f| f.0 == name) else {
            return Err(self.err(&format!("unknown intrinsic function {name:?}")));
        };
        self.ws();
        if self.peek() != Some('(') {
            return Err(self.err("expected '('"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.ws();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                args.push(self.arg(depth)?);
                self.ws();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.err("expected ',' or ')'")),
                }
            }
        }
        if args.len() < min || args.len() > max {
            let want = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(self.err(&format!("{name} takes {want} arguments, got {}", args.len())));
        }
        if func == Func::Format {
            if let Arg::Str(_, pieces) = &args[0] {
                let holes = pieces.iter().filter(|p| **p == Piece::Hole).count();
                if holes != args.len() - 1 {
                    return Err(self.err(&format!("{holes} placeholders but {} values", args.len() - 1)));
                }
            }
        }
        Ok(Call { name, func, args })
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, String> {
        match self.peek() {
            Some('\'') => self.string(),
            Some('$') => {
                let start = self.pos;
                let mut bracket = 0usize;
                let mut quote: Option<char> = None;
                while let Some(c) = self.peek() {
                    match (quote, c) {
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), '\\') => self.pos += 1,
                        (Some(_), _) => {}
                        (None, '\'' | '"') if bracket > 0 => quote = Some(c),
                        (None, '[') => bracket += 1,
                        (None, ']') => bracket = bracket.saturating_sub(1),
                        (None, ',' | ')') if bracket == 0 => break,
                        _ => {}
                    }
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                Path::parse(text.trim()).map(Arg::Path).map_err(|e| self.err(&e))
            }
            Some('S') => Ok(Arg::Call(Box::new(self.call(depth + 1)?))),
            Some(_) => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ',' && c != ')' && !c.is_whitespace()) {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                match serde_json::from_str::<Value>(&text) {
                    Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => Ok(Arg::Lit(v)),
                    _ => Err(self.err(&format!("bad argument {text:?}"))),
                }
            }
            None => Err(self.err("missing argument")),
        }
    }

    fn string(&mut self) -> Result<Arg, String> {
        self.pos += 1;
        let mut value = String::new();
        let mut pieces = Vec::new();
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(e @ ('\'' | '{' | '}' | '\\')) => {
                            value.push(e);
                            text.push(e);
                        }
                        _ => return Err(self.err("open escape '\\' (use \\\\ for a backslash)")),
                    }
                    self.pos += 1;
                }
                Some('\'') => {
                    self.pos += 1;
                    pieces.push(Piece::Text(text));
                    return Ok(Arg::Str(value, pieces));
                }
                Some('{') if self.chars.get(self.pos + 1) == Some(&'}') => {
                    self.pos += 2;
                    value.push_str("{}");
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                    pieces.push(Piece::Hole);
                }
                Some(c) => {
                    value.push(c);
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

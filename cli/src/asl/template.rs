//! Payload templates (`Parameters`, `ItemSelector`, `ResultSelector`, `ItemReader.Parameters`): a JSON object
//! whose keys ending in `.$` take their value from a path or an intrinsic call, at any depth (objects inside
//! arrays included).

use serde_json::{Map, Value};

use super::errors::{self, Failure};
use super::intrinsic::{self, Call};
use super::path::Path;

#[derive(Debug, Clone)]
pub enum Template {
    Lit(Value),
    Obj(Vec<(String, Template)>),
    Arr(Vec<Template>),
    Path(Path),
    Call(Call),
}

impl Template {
    /// Compile `value`; errors name the offending key (dotted, relative to the template).
    pub fn compile(value: &Value) -> Result<Self, (String, String)> {
        match value {
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (key, v) in map {
                    if let Some(name) = key.strip_suffix(".$") {
                        let Value::String(expr) = v else {
                            return Err((key.clone(), "a '.$' field must hold a path or intrinsic string".into()));
                        };
                        let t = if intrinsic::looks_like_call(expr) {
                            Template::Call(Call::parse(expr).map_err(|e| (key.clone(), e))?)
                        } else {
                            Template::Path(Path::parse(expr).map_err(|e| (key.clone(), e))?)
                        };
                        fields.push((name.to_string(), t));
                    } else {
                        let t = Self::compile(v).map_err(|(k, e)| (format!("{key}.{k}"), e))?;
                        fields.push((key.clone(), t));
                    }
                }
                Ok(Template::Obj(fields))
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    out.push(Self::compile(v).map_err(|(k, e)| (format!("[{i}].{k}"), e))?);
                }
                Ok(Template::Arr(out))
            }
            other => Ok(Template::Lit(other.clone())),
        }
    }

    /// Build the payload from `input` (`$`) and `context` (`$$`). A path that matches nothing is a
    /// `States.Runtime` error naming the field.
    pub fn eval(&self, input: &Value, context: &Value, rng: &mut rand::rngs::StdRng) -> Result<Value, Failure> {
        self.eval_field(input, context, rng, "")
    }

    fn eval_field(
        &self,
        input: &Value,
        context: &Value,
        rng: &mut rand::rngs::StdRng,
        field: &str,
    ) -> Result<Value, Failure> {
        Ok(match self {
            Template::Lit(v) => v.clone(),
            Template::Obj(fields) => {
                let mut map = Map::with_capacity(fields.len());
                for (name, t) in fields {
                    let key = if matches!(t, Template::Path(_) | Template::Call(_)) {
                        format!("{name}.$")
                    } else {
                        name.clone()
                    };
                    map.insert(name.clone(), t.eval_field(input, context, rng, &key)?);
                }
                Value::Object(map)
            }
            Template::Arr(items) => {
                let mut out = Vec::with_capacity(items.len());
                for t in items {
                    out.push(t.eval_field(input, context, rng, field)?);
                }
                Value::Array(out)
            }
            Template::Path(p) => {
                let doc = if p.context { context } else { input };
                p.select(doc).map_err(|_| {
                    errors::runtime(format!(
                        "The JSONPath '{}' specified for the field '{field}' could not be found in the input '{}'",
                        p.text,
                        truncate(&doc.to_string())
                    ))
                })?
            }
            Template::Call(c) => c.eval(input, context, rng)?,
        })
    }
}

/// Inputs quoted in error causes are cut to keep causes readable.
pub fn truncate(s: &str) -> String {
    const MAX: usize = 512;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

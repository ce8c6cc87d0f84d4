//! Prompt templates (minijinja): `prompts/<name>.j2` from the store when present, else the bundled
//! `examples/prompts/<name>.j2`. `system` states the rules and output contract, `brief` carries the segment
//! profile and the retrieved passages (delimited as untrusted data), `tone` (or `tone_<tone>`) the tone
//! instructions, `retry` the reasons a first draft failed.

use std::collections::BTreeMap;

use cpo_common::keys::{self, sha256_hex};
use cpo_common::store::{Store, StoreExt};
use cpo_common::{bundled, StepError};
use minijinja::{context, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::brief::Brief;
use crate::provider::ChatMessage;

pub struct Prompts {
    env: Environment<'static>,
    /// Template name → where it came from (`prompts/x.j2` or `bundled:examples/prompts/x.j2`), for errors.
    sources: BTreeMap<String, String>,
}

/// A passage as a prompt shows it.
#[derive(Serialize)]
struct PromptPassage<'a> {
    doc_id: &'a str,
    title: &'a str,
    category: &'a str,
    text: String,
}

impl Prompts {
    /// Load the templates this run needs. A tone uses `tone_<tone>.j2` when one exists, else `tone.j2`.
    pub async fn load(store: &dyn Store, tones: &[String]) -> Result<Self, StepError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        let mut sources = BTreeMap::new();
        let mut names: Vec<String> = ["system", "brief", "retry"].map(String::from).to_vec();
        for tone in tones {
            names.push(format!("tone_{tone}"));
        }
        names.push("tone".into());
        for name in names {
            let Some((source, text)) = fetch(store, &name).await? else {
                if name.starts_with("tone_") {
                    continue;
                }
                return Err(StepError::input(format!(
                    "prompt template {name}: neither prompts/{name}.j2 in the store nor a bundled default exists"
                )));
            };
            env.add_template_owned(name.clone(), text)
                .map_err(|e| StepError::input(format!("{source}: {}", describe(&e))))?;
            sources.insert(name, source);
        }
        Ok(Self { env, sources })
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, StepError> {
        let source = self.sources.get(name).cloned().unwrap_or_else(|| name.to_string());
        let tmpl = self.env.get_template(name).map_err(|e| StepError::input(format!("{source}: {}", describe(&e))))?;
        let text = tmpl.render(ctx).map_err(|e| StepError::input(format!("{source}: {}", describe(&e))))?;
        Ok(text.trim().to_string())
    }

    /// The conversation for a first draft (`previous` = None) or for the one retry (the rejected answer and
    /// why it was rejected).
    pub fn messages(&self, brief: &Brief, previous: Option<(&str, &[String])>) -> Result<Vec<ChatMessage>, StepError> {
        let tone_template = if self.sources.contains_key(&format!("tone_{}", brief.tone)) {
            format!("tone_{}", brief.tone)
        } else {
            "tone".to_string()
        };
        let boundary = boundary(brief);
        let marker = boundary.as_str();
        let passages: Vec<PromptPassage> = brief
            .hits
            .iter()
            .flat_map(|h| {
                h.passages.iter().map(move |p| PromptPassage {
                    doc_id: &h.doc_id,
                    title: &h.title,
                    category: &h.category,
                    text: p.text.replace(marker, ""),
                })
            })
            .collect();
        // Only fields every customer can be given a value for are offered to the model.
        let merge_fields: Vec<String> =
            brief.allowed_tokens.iter().filter(|t| brief.fillable(t)).map(|t| format!("{{{{{t}}}}}")).collect();
        let ctx = context! {
            tone => &brief.tone,
            goal => &brief.goal,
            segment => &brief.segment,
            passages => passages,
            doc_ids => brief.hits.iter().map(|h| h.doc_id.as_str()).collect::<Vec<_>>(),
            boundary => &boundary,
            subject_max_chars => brief.subject_max_chars,
            body_min_words => brief.body_words[0],
            body_max_words => brief.body_words[1],
            merge_fields => merge_fields,
        };
        let tone_instructions = self.render(&tone_template, ctx.clone())?;
        let ctx = context! { tone_instructions => tone_instructions, ..ctx };
        let mut messages = vec![
            ChatMessage::new("system", self.render("system", ctx.clone())?),
            ChatMessage::new("user", self.render("brief", ctx.clone())?),
        ];
        if let Some((answer, reasons)) = previous {
            messages.push(ChatMessage::new("assistant", answer));
            messages.push(ChatMessage::new("user", self.render("retry", context! { reasons => reasons, ..ctx })?));
        }
        Ok(messages)
    }
}

/// The marker around untrusted passages: derived from their content, so text inside cannot forge the end
/// marker (it would have to contain the hash of itself), yet identical across runs (cache keys stay stable).
fn boundary(brief: &Brief) -> String {
    let mut text = String::new();
    for h in &brief.hits {
        text.push_str(&h.doc_id);
        for p in &h.passages {
            text.push('\u{1f}');
            text.push_str(&p.text);
        }
    }
    format!("UNTRUSTED-{}", &sha256_hex(text.as_bytes())[..16])
}

/// The store's override, else the bundled default.
async fn fetch(store: &dyn Store, name: &str) -> Result<Option<(String, String)>, StepError> {
    let key = keys::prompt(name).map_err(|e| StepError::input(e.to_string()))?;
    if let Some(bytes) = store.get_opt(&key).await? {
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| StepError::input(format!("{key}: not UTF-8")))?;
        return Ok(Some((key.to_string(), text)));
    }
    Ok(bundled::prompt(name).map(|t| (format!("bundled:examples/prompts/{name}.j2"), t.to_string())))
}

/// A template error with its line, as minijinja reports it.
fn describe(e: &minijinja::Error) -> String {
    let msg = match e.line() {
        Some(line) => format!("line {line}: {e}"),
        None => e.to_string(),
    };
    cpo_common::error::with_sources(msg, e)
}

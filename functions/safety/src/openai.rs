//! `openai-moderation`: `POST {base}/v1/moderations`. Its categories are mapped BY NAME onto Azure's four
//! (hate, harassment → Hate; self-harm/* → SelfHarm; sexual/* → Sexual; violence/*, harassment/threatening →
//! Violence), and its 0–1 scores onto Azure's severity scale (≥ 0.2 → 2, ≥ 0.5 → 4, ≥ 0.85 → 6; a flagged
//! category is at least 4; `sexual/minors` flagged is 6), so one policy threshold applies to every provider.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use crate::http::{self, HttpOpts};
use crate::screener::{Scores, ScreenError, Screener};

/// Azure category ← moderation categories. The first one listed must be in every answer.
const MAP: [(&str, &[&str]); 4] = [
    ("Hate", &["hate", "hate/threatening", "harassment"]),
    ("SelfHarm", &["self-harm", "self-harm/intent", "self-harm/instructions"]),
    ("Sexual", &["sexual", "sexual/minors"]),
    ("Violence", &["violence", "violence/graphic", "harassment/threatening"]),
];

#[derive(Debug, Deserialize)]
struct Response {
    #[serde(default)]
    model: Option<String>,
    results: Vec<ModResult>,
}

#[derive(Debug, Deserialize)]
struct ModResult {
    #[serde(default)]
    categories: BTreeMap<String, Option<bool>>,
    category_scores: BTreeMap<String, Option<f64>>,
}

/// Azure severity of a moderation score.
pub fn severity(score: f64) -> u8 {
    match score {
        s if s >= 0.85 => 6,
        s if s >= 0.5 => 4,
        s if s >= 0.2 => 2,
        _ => 0,
    }
}

pub struct OpenAiModeration {
    client: reqwest::Client,
    url: String,
    key: String,
    model: String,
    opts: HttpOpts,
}

impl OpenAiModeration {
    pub fn new(base: &str, key: String, model: String, opts: HttpOpts) -> Result<Self, ScreenError> {
        let base = base.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        Ok(Self { client: http::client()?, url: format!("{base}/v1/moderations"), key, model, opts })
    }
}

fn parse(bytes: &[u8]) -> Result<(Option<String>, Scores), ScreenError> {
    let r: Response = serde_json::from_slice(bytes).map_err(|e| ScreenError::Unparseable(e.to_string()))?;
    let res = r.results.into_iter().next().ok_or_else(|| ScreenError::Unparseable("no results".into()))?;
    let mut scores = Scores::default();
    for (cat, names) in MAP {
        if res.category_scores.get(names[0]).copied().flatten().is_none() {
            return Err(ScreenError::MissingCategory(format!("{cat} ({})", names[0])));
        }
        let mut sev = 0u8;
        for n in names {
            let score = res.category_scores.get(*n).copied().flatten().unwrap_or(0.0);
            if !(0.0..=1.0).contains(&score) {
                return Err(ScreenError::Unparseable(format!("{n} score {score} out of 0-1")));
            }
            let mut s = severity(score);
            if res.categories.get(*n).copied().flatten() == Some(true) {
                s = s.max(if *n == "sexual/minors" { 6 } else { 4 });
            }
            sev = sev.max(s);
        }
        scores.severities.insert(cat.to_string(), sev);
    }
    Ok((r.model, scores))
}

#[async_trait]
impl Screener for OpenAiModeration {
    fn name(&self) -> &str {
        "openai-moderation"
    }
    fn model(&self) -> String {
        self.model.clone()
    }
    fn cache_identity(&self) -> Option<String> {
        Some(format!("{}|{}", self.url, self.model))
    }
    async fn screen(&self, text: &str) -> Result<Scores, ScreenError> {
        let body = json!({"model": self.model, "input": text});
        let bytes = http::send_with_retry(&self.opts, "openai-moderation", || {
            self.client.post(&self.url).bearer_auth(&self.key).json(&body)
        })
        .await?;
        let (model, scores) = parse(&bytes)?;
        if let Some(m) = model {
            tracing::debug!(model = %m, "moderation answered");
        }
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_map_by_name_onto_severities() {
        let body = br#"{"id":"modr-1","model":"omni-moderation-latest","results":[{"flagged":true,
          "categories":{"hate":false,"self-harm":false,"sexual":false,"violence":true,"sexual/minors":false},
          "category_scores":{"hate":0.01,"hate/threatening":0.0,"harassment":0.3,"self-harm":0.0,
          "self-harm/intent":0.0,"self-harm/instructions":0.0,"sexual":0.6,"sexual/minors":0.0,
          "violence":0.4,"violence/graphic":0.0,"harassment/threatening":0.0}}]}"#;
        let (model, s) = parse(body).unwrap();
        assert_eq!(model.as_deref(), Some("omni-moderation-latest"));
        assert_eq!(s.severities["Hate"], 2, "harassment 0.3 → 2");
        assert_eq!(s.severities["Sexual"], 4);
        assert_eq!(s.severities["Violence"], 4, "flagged lifts 0.4 to 4");
        assert_eq!(s.severities["SelfHarm"], 0);
    }

    #[test]
    fn missing_category_is_an_error() {
        let body = br#"{"results":[{"categories":{},"category_scores":{"hate":0.0,"sexual":0.0,"violence":0.0}}]}"#;
        assert!(matches!(parse(body), Err(ScreenError::MissingCategory(_))));
        assert!(matches!(parse(br#"{"results":[]}"#), Err(ScreenError::Unparseable(_))));
    }
}

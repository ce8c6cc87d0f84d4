//! `azure-content-safety`: Azure AI Content Safety text analysis, API version 2024-09-01.
//! `POST {endpoint}/contentsafety/text:analyze?api-version=2024-09-01` with `Ocp-Apim-Subscription-Key`;
//! categories are read BY NAME from `categoriesAnalysis` (never by position), custom blocklists are sent as
//! `blocklistNames` and their matches reported.

use async_trait::async_trait;
use cpo_common::model::safety::CATEGORIES;
use serde::Deserialize;
use serde_json::json;

use crate::http::{self, HttpOpts};
use crate::policy::AzureOptions;
use crate::screener::{Scores, ScreenError, Screener};

pub const API_VERSION: &str = "2024-09-01";
/// The service's limit on `text` per request (characters).
const MAX_TEXT_CHARS: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Analysis {
    categories_analysis: Vec<CategoryAnalysis>,
    #[serde(default)]
    blocklists_match: Vec<BlocklistMatch>,
}

#[derive(Debug, Deserialize)]
struct CategoryAnalysis {
    category: String,
    severity: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlocklistMatch {
    blocklist_name: String,
    #[serde(default)]
    blocklist_item_text: String,
}

pub struct AzureContentSafety {
    client: reqwest::Client,
    url: String,
    key: String,
    opts: HttpOpts,
    options: AzureOptions,
}

impl AzureContentSafety {
    pub fn new(endpoint: &str, key: String, opts: HttpOpts, options: AzureOptions) -> Result<Self, ScreenError> {
        let url = format!("{}/contentsafety/text:analyze?api-version={API_VERSION}", endpoint.trim_end_matches('/'));
        Ok(Self { client: http::client()?, url, key, opts, options })
    }

    async fn analyse(&self, text: &str) -> Result<Scores, ScreenError> {
        let body = json!({
            "text": text,
            "categories": CATEGORIES,
            "blocklistNames": self.options.blocklist_names,
            "haltOnBlocklistHit": false,
            "outputType": self.options.output_type,
        });
        let bytes = http::send_with_retry(&self.opts, "azure-content-safety", || {
            self.client.post(&self.url).header("Ocp-Apim-Subscription-Key", &self.key).json(&body)
        })
        .await?;
        parse(&bytes)
    }
}

/// Map an answer to [`Scores`]; unknown categories are ignored, missing ones are caught by the caller.
fn parse(bytes: &[u8]) -> Result<Scores, ScreenError> {
    let a: Analysis = serde_json::from_slice(bytes).map_err(|e| ScreenError::Unparseable(e.to_string()))?;
    let mut scores = Scores::default();
    for c in a.categories_analysis {
        if let Some(name) = CATEGORIES.iter().find(|n| **n == c.category) {
            let sev = u8::try_from(c.severity).ok().filter(|s| *s <= 7).ok_or_else(|| {
                ScreenError::Unparseable(format!("{} severity {} out of 0-7", c.category, c.severity))
            })?;
            scores.severities.insert(name.to_string(), sev);
        }
    }
    scores.blocklist_hits =
        a.blocklists_match.into_iter().map(|m| format!("{}:{}", m.blocklist_name, m.blocklist_item_text)).collect();
    Ok(scores)
}

#[async_trait]
impl Screener for AzureContentSafety {
    fn name(&self) -> &str {
        "azure-content-safety"
    }
    fn model(&self) -> String {
        API_VERSION.to_string()
    }
    fn cache_identity(&self) -> Option<String> {
        Some(format!("{}|{:?}|{}", self.url, self.options.blocklist_names, self.options.output_type))
    }
    async fn screen(&self, text: &str) -> Result<Scores, ScreenError> {
        // Long texts are analysed in service-sized chunks; the worst chunk decides.
        let chars: Vec<char> = text.chars().collect();
        let mut total = Scores::default();
        for chunk in chars.chunks(MAX_TEXT_CHARS).map(|c| c.iter().collect::<String>()) {
            let s = self.analyse(&chunk).await?.complete()?;
            for (k, v) in s.severities {
                let e = total.severities.entry(k).or_insert(0);
                *e = (*e).max(v);
            }
            total.blocklist_hits.extend(s.blocklist_hits);
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_mapped_by_name_not_position() {
        let body = br#"{"blocklistsMatch":[],"categoriesAnalysis":[
            {"category":"Violence","severity":6},{"category":"Hate","severity":0},
            {"category":"Sexual","severity":2},{"category":"SelfHarm","severity":4}]}"#;
        let s = parse(body).unwrap();
        assert_eq!(s.severities["Violence"], 6);
        assert_eq!(s.severities["SelfHarm"], 4);
        assert_eq!(s.severities["Hate"], 0);
        assert_eq!(s.severities["Sexual"], 2);
    }

    #[test]
    fn missing_and_bad_answers_are_errors() {
        let s = parse(br#"{"categoriesAnalysis":[{"category":"Hate","severity":0}]}"#).unwrap();
        assert_eq!(s.complete().unwrap_err(), ScreenError::MissingCategory("SelfHarm".into()));
        assert!(matches!(parse(b"<html>"), Err(ScreenError::Unparseable(_))));
        assert!(matches!(
            parse(br#"{"categoriesAnalysis":[{"category":"Hate","severity":-1}]}"#),
            Err(ScreenError::Unparseable(_))
        ));
    }
}

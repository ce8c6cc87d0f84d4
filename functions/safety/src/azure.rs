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
use crate::screener::{misspelt, Scores, ScreenError, Screener};
use crate::strict_json;

pub const API_VERSION: &str = "2024-09-01";
/// Version of the answer rules in [`parse`], part of the cache identity: answers cached under laxer rules are
/// not reused.
const ANSWER_RULES: &str = "strict-1";
/// The service's limit on `text` per request (characters).
const MAX_TEXT_CHARS: usize = 10_000;

/// `AnalyzeTextResult` as documented for 2024-09-01. Unknown fields are ignored (the service may add some);
/// repeated keys anywhere are refused by [`strict_json`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Analysis {
    categories_analysis: Vec<CategoryAnalysis>,
    /// Optional in the schema, but always sent when `blocklistNames` were: then its absence is an error.
    #[serde(default)]
    blocklists_match: Option<Vec<BlocklistMatch>>,
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
    #[allow(dead_code)]
    blocklist_item_id: String,
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
        parse(&bytes, &self.options)
    }
}

/// Map an answer to [`Scores`], strictly: every category name spelled as documented and answered once, every
/// severity a value of the requested `outputType`. A name that differs from a known category only in case or
/// punctuation is an error; an unknown category is an error when its severity is above 0 and ignored at 0 (it reports no
/// harm, and the service may add categories). Missing categories are caught by [`Scores::complete`].
fn parse(bytes: &[u8], options: &AzureOptions) -> Result<Scores, ScreenError> {
    let a: Analysis = strict_json::from_slice(bytes).map_err(ScreenError::Unparseable)?;
    let eight_levels = options.output_type == "EightSeverityLevels";
    let mut scores = Scores::default();
    for c in a.categories_analysis {
        let name = strict_json::quoted(&c.category);
        let sev = u8::try_from(c.severity)
            .ok()
            .filter(|s| if eight_levels { *s <= 7 } else { *s <= 6 && s % 2 == 0 })
            .ok_or_else(|| {
                ScreenError::Unparseable(format!(
                    "{name} severity {} is not a {} value",
                    c.severity, options.output_type
                ))
            })?;
        match CATEGORIES.iter().find(|n| **n == c.category) {
            Some(known) => {
                let earlier = scores.severities.insert(known.to_string(), sev);
                if earlier.is_some() {
                    return Err(ScreenError::Unparseable(format!("category {name} is answered twice")));
                }
            }
            None if CATEGORIES.iter().any(|n| misspelt(&c.category, n)) => {
                return Err(ScreenError::Unparseable(format!("category {name} is not spelled as documented")));
            }
            None if sev > 0 => {
                return Err(ScreenError::Unparseable(format!("unknown category {name} with severity {sev}")))
            }
            None => {}
        }
    }
    let matches = match a.blocklists_match {
        Some(m) => m,
        None if !options.blocklist_names.is_empty() => {
            return Err(ScreenError::Unparseable("no blocklistsMatch although blocklists were named".into()));
        }
        None => Vec::new(),
    };
    scores.blocklist_hits =
        matches.into_iter().map(|m| format!("{}:{}", m.blocklist_name, m.blocklist_item_text)).collect();
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
        Some(format!("{}|{:?}|{}|{ANSWER_RULES}", self.url, self.options.blocklist_names, self.options.output_type))
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
        let s = parse(body, &AzureOptions::default()).unwrap();
        assert_eq!(s.severities["Violence"], 6);
        assert_eq!(s.severities["SelfHarm"], 4);
        assert_eq!(s.severities["Hate"], 0);
        assert_eq!(s.severities["Sexual"], 2);
    }

    #[test]
    fn missing_and_bad_answers_are_errors() {
        let four = AzureOptions::default();
        let s = parse(br#"{"categoriesAnalysis":[{"category":"Hate","severity":0}]}"#, &four).unwrap();
        assert_eq!(s.complete().unwrap_err(), ScreenError::MissingCategory("SelfHarm".into()));
        for bad in [
            &b"<html>"[..],
            br#"{"categoriesAnalysis":[{"category":"Hate","severity":-1}]}"#,
            br#"{"categoriesAnalysis":[{"category":"Hate","severity":3}]}"#,
            br#"{"categoriesAnalysis":[{"category":"Hate","severity":2},{"category":"Hate","severity":0}]}"#,
            br#"{"categoriesAnalysis":[{"category":"HATE","severity":0}]}"#,
            br#"{"categoriesAnalysis":[{"category":"Self-Harm","severity":0}]}"#,
            br#"{"categoriesAnalysis":[{"category":"Terrorism","severity":2}]}"#,
            br#"{"categoriesAnalysis":[{"category":"Hate","severity":2,"severity":0}]}"#,
        ] {
            let e = parse(bad, &four).unwrap_err();
            assert!(matches!(e, ScreenError::Unparseable(_)), "{}: {e}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn eight_levels_accept_every_value_to_7() {
        let eight = AzureOptions { output_type: "EightSeverityLevels".into(), ..AzureOptions::default() };
        for sev in 0..=7 {
            let body = format!(r#"{{"categoriesAnalysis":[{{"category":"Hate","severity":{sev}}}]}}"#);
            assert_eq!(parse(body.as_bytes(), &eight).unwrap().severities["Hate"], sev);
        }
        assert!(parse(br#"{"categoriesAnalysis":[{"category":"Hate","severity":8}]}"#, &eight).is_err());
    }

    #[test]
    fn unknown_category_at_zero_is_ignored() {
        let body =
            br#"{"categoriesAnalysis":[{"category":"Hate","severity":0},{"category":"Terrorism","severity":0}]}"#;
        let s = parse(body, &AzureOptions::default()).unwrap();
        assert_eq!(s.severities.keys().collect::<Vec<_>>(), ["Hate"]);
    }
}

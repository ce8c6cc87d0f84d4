//! `openai-moderation`: `POST {base}/v1/moderations`. Its categories are mapped BY NAME onto Azure's four
//! (hate, harassment → Hate; self-harm/* → SelfHarm; sexual/* → Sexual; violence/*, harassment/threatening →
//! Violence), and its 0–1 scores onto Azure's severity scale (≥ 0.2 → 2, ≥ 0.5 → 4, ≥ 0.85 → 6; a flagged
//! category is at least 4; `sexual/minors` flagged is 6), so one policy threshold applies to every provider.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use crate::http::{self, HttpOpts};
use crate::screener::{misspelt, Scores, ScreenError, Screener};
use crate::strict_json;

/// Azure category ← moderation categories. Every one listed must be in every answer (all moderation models
/// since 2023 answer them).
const MAP: [(&str, &[&str]); 4] = [
    ("Hate", &["hate", "hate/threatening", "harassment"]),
    ("SelfHarm", &["self-harm", "self-harm/intent", "self-harm/instructions"]),
    ("Sexual", &["sexual", "sexual/minors"]),
    ("Violence", &["violence", "violence/graphic", "harassment/threatening"]),
];

/// Categories OpenAI documents without an Azure counterpart. Nullable: models without them answer `null`.
const UNMAPPED: [&str; 2] = ["illicit", "illicit/violent"];

/// Version of the answer rules in [`parse`], part of the cache identity: answers cached under laxer rules are
/// not reused.
const ANSWER_RULES: &str = "strict-1";

/// The moderation object as documented. Unknown fields are ignored (e.g. `category_applied_input_types`);
/// repeated keys anywhere are refused by [`strict_json`].
#[derive(Debug, Deserialize)]
struct Response {
    #[allow(dead_code)]
    id: String,
    model: String,
    results: Vec<ModResult>,
}

#[derive(Debug, Deserialize)]
struct ModResult {
    flagged: bool,
    categories: BTreeMap<String, Option<bool>>,
    category_scores: BTreeMap<String, Option<f64>>,
}

fn documented(key: &str) -> bool {
    MAP.iter().any(|(_, names)| names.contains(&key)) || UNMAPPED.contains(&key)
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

/// Map an answer to [`Scores`], strictly: every mapped category present in both `categories` (a boolean)
/// and `category_scores` (a number in 0..=1); a name that differs from a documented one only in case or
/// punctuation is an error, and so is an unknown category that is flagged or scores ≥ 0.2 (unknown and below that: ignored).
/// Every result counts (the worst decides). `flagged: true` must be explained by a mapped category: a flag
/// no Azure category carries (`illicit`, or none at all) is a [`ScreenError::Flagged`], which blocks.
fn parse(bytes: &[u8]) -> Result<(String, Scores), ScreenError> {
    let r: Response = strict_json::from_slice(bytes).map_err(ScreenError::Unparseable)?;
    if r.results.is_empty() {
        return Err(ScreenError::Unparseable("no results".into()));
    }
    let mut scores = Scores::default();
    for res in &r.results {
        for (cat, sev) in severities(res)? {
            let e = scores.severities.entry(cat).or_insert(0);
            *e = (*e).max(sev);
        }
    }
    Ok((r.model, scores))
}

/// Azure severities of one result.
fn severities(res: &ModResult) -> Result<BTreeMap<String, u8>, ScreenError> {
    let bad = ScreenError::Unparseable;
    let in_range = |n: &str, score: f64| {
        if (0.0..=1.0).contains(&score) {
            Ok(score)
        } else {
            Err(bad(format!("{} score {score} out of 0-1", strict_json::quoted(n))))
        }
    };
    for key in res.categories.keys().chain(res.category_scores.keys()).filter(|k| !documented(k)) {
        let name = strict_json::quoted(key);
        if MAP.iter().flat_map(|(_, names)| names.iter()).chain(UNMAPPED.iter()).any(|n| misspelt(key, n)) {
            return Err(bad(format!("category {name} is not spelled as documented")));
        }
        let flagged = res.categories.get(key).copied().flatten() == Some(true);
        let score = in_range(key, res.category_scores.get(key).copied().flatten().unwrap_or(0.0))?;
        if flagged || severity(score) > 0 {
            return Err(bad(format!("unknown category {name} is flagged or scores {score}")));
        }
    }
    for n in UNMAPPED {
        if let Some(score) = res.category_scores.get(n).copied().flatten() {
            in_range(n, score)?;
        }
    }
    let mut out = BTreeMap::new();
    let mut explained = false;
    for (cat, names) in MAP {
        let mut sev = 0u8;
        for n in names {
            let score = match res.category_scores.get(*n) {
                None => return Err(ScreenError::MissingCategory(format!("{cat} ({n})"))),
                Some(None) => return Err(bad(format!("{n} score is null"))),
                Some(Some(s)) => in_range(n, *s)?,
            };
            let flagged = match res.categories.get(*n) {
                None | Some(None) => return Err(bad(format!("no true/false flag for {n}"))),
                Some(Some(f)) => *f,
            };
            let mut s = severity(score);
            if flagged {
                explained = true;
                s = s.max(if *n == "sexual/minors" { 6 } else { 4 });
            }
            sev = sev.max(s);
        }
        out.insert(cat.to_string(), sev);
    }
    let unmapped: Vec<&str> =
        UNMAPPED.into_iter().filter(|n| res.categories.get(*n).copied().flatten() == Some(true)).collect();
    if !unmapped.is_empty() {
        return Err(ScreenError::Flagged(format!("{} (no Azure category)", unmapped.join(", "))));
    }
    if res.flagged && !explained {
        return Err(ScreenError::Flagged("true with no category flagged".into()));
    }
    Ok(out)
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
        Some(format!("{}|{}|{ANSWER_RULES}", self.url, self.model))
    }
    async fn screen(&self, text: &str) -> Result<Scores, ScreenError> {
        let body = json!({"model": self.model, "input": text});
        let bytes = http::send_with_retry(&self.opts, "openai-moderation", || {
            self.client.post(&self.url).bearer_auth(&self.key).json(&body)
        })
        .await?;
        let (model, scores) = parse(&bytes)?;
        tracing::debug!(model = %model, "moderation answered");
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A moderation answer: `scores` over 0.0 for every mapped key, `flags` true, the rest false.
    fn answer(scores: &[(&str, f64)], flags: &[&str], flagged: bool) -> Vec<u8> {
        let keys = MAP.iter().flat_map(|(_, names)| names.iter().copied()).chain(UNMAPPED);
        let (mut cats, mut sc) = (serde_json::Map::new(), serde_json::Map::new());
        for k in keys {
            cats.insert(k.into(), json!(flags.contains(&k)));
            sc.insert(k.into(), json!(scores.iter().find(|(n, _)| *n == k).map_or(0.0, |(_, s)| *s)));
        }
        let r = json!({"flagged": flagged, "categories": cats, "category_scores": sc});
        json!({"id": "modr-1", "model": "omni-moderation-latest", "results": [r]}).to_string().into_bytes()
    }

    #[test]
    fn scores_map_by_name_onto_severities() {
        let body =
            answer(&[("hate", 0.01), ("harassment", 0.3), ("sexual", 0.6), ("violence", 0.4)], &["violence"], true);
        let (model, s) = parse(&body).unwrap();
        assert_eq!(model, "omni-moderation-latest");
        assert_eq!(s.severities["Hate"], 2, "harassment 0.3 → 2");
        assert_eq!(s.severities["Sexual"], 4);
        assert_eq!(s.severities["Violence"], 4, "flagged lifts 0.4 to 4");
        assert_eq!(s.severities["SelfHarm"], 0);
        let (_, s) = parse(&answer(&[], &["sexual/minors"], true)).unwrap();
        assert_eq!(s.severities["Sexual"], 6, "sexual/minors flagged is 6");
    }

    #[test]
    fn missing_category_is_an_error() {
        for key in ["hate", "violence/graphic", "self-harm/instructions"] {
            let mut v: serde_json::Value = serde_json::from_slice(&answer(&[], &[], false)).unwrap();
            v["results"][0]["category_scores"].as_object_mut().unwrap().remove(key);
            assert!(matches!(parse(v.to_string().as_bytes()), Err(ScreenError::MissingCategory(_))), "{key}");
        }
        let body = br#"{"id":"m","model":"x","results":[{"flagged":false,"categories":{},
          "category_scores":{"hate":0.0,"sexual":0.0,"violence":0.0}}]}"#;
        assert!(parse(body).is_err());
        assert!(matches!(parse(br#"{"id":"m","model":"x","results":[]}"#), Err(ScreenError::Unparseable(_))));
    }

    #[test]
    fn flags_without_a_mapped_category_are_errors() {
        assert!(matches!(parse(&answer(&[], &[], true)), Err(ScreenError::Flagged(_))));
        assert!(matches!(parse(&answer(&[("illicit", 0.9)], &["illicit"], true)), Err(ScreenError::Flagged(_))));
        assert!(matches!(parse(&answer(&[], &["illicit/violent"], false)), Err(ScreenError::Flagged(_))));
        assert!(parse(&answer(&[("illicit", 0.3)], &[], false)).is_ok(), "an unflagged illicit score is no harm");
    }

    #[test]
    fn out_of_range_and_misspelt_are_errors() {
        for (key, score) in [
            ("hate", 1.01),
            ("violence", -0.1),
            ("illicit", 2.0),
            ("Hate", 0.0),
            ("self_harm", 0.0),
            ("terrorism", 0.3),
        ] {
            let mut v: serde_json::Value = serde_json::from_slice(&answer(&[], &[], false)).unwrap();
            v["results"][0]["category_scores"][key] = json!(score);
            let e = parse(v.to_string().as_bytes()).unwrap_err();
            assert!(matches!(e, ScreenError::Unparseable(_)), "{key} {score}: {e}");
        }
        let mut v: serde_json::Value = serde_json::from_slice(&answer(&[], &[], false)).unwrap();
        v["results"][0]["categories"]["terrorism"] = json!(true);
        assert!(matches!(parse(v.to_string().as_bytes()), Err(ScreenError::Unparseable(_))));
    }
}

//! The closing summary of `cpo run` / `cpo analyze`: what a marketer wants to know, and where the report is.
//! It reads the run's documents as plain JSON so it shows whatever the steps recorded.

use std::path::PathBuf;

use cpo_common::keys::{Key, RunKeys};
use cpo_common::model::experiment::{AnalysisDoc, Decision};
use cpo_common::store::{DynStore, StoreExt, StoreUrl};
use serde_json::{json, Value};

async fn doc(store: &DynStore, key: &Key) -> anyhow::Result<Option<Value>> {
    Ok(store.get_json_opt::<Value>(key).await?)
}

/// Where an object is for a human: a file path for `file://` stores, else the store URL and key.
pub fn location(store: &DynStore, key: &Key) -> String {
    match StoreUrl::parse(store.url()) {
        Ok(StoreUrl::File { root }) => {
            let p = PathBuf::from(root).join(key.as_str());
            std::path::absolute(&p).unwrap_or(p).display().to_string()
        }
        _ => format!("{}/{}", store.url().trim_end_matches('/'), key),
    }
}

fn n(v: &Value, path: &[&str]) -> Value {
    let mut cur = v;
    for p in path {
        cur = match cur.get(p) {
            Some(x) => x,
            None => return Value::Null,
        };
    }
    cur.clone()
}

/// Summary of a run as JSON (also what `--json` prints).
pub async fn collect(store: &DynStore, run_id: &str) -> anyhow::Result<Value> {
    let keys = RunKeys::new(run_id)?;
    let segments = doc(store, &keys.segments()).await?.unwrap_or(Value::Null);
    let safety = doc(store, &keys.safety()).await?.unwrap_or(Value::Null);
    let analysis = doc(store, &keys.analysis()).await?;
    let assign = doc(store, &keys.step("assign")).await?.unwrap_or(Value::Null);
    let seg_list: Vec<Value> = n(&segments, &["segments"])
        .as_array()
        .map(|a| a.iter().map(|s| json!({"name": n(s, &["name"]), "size": n(s, &["size"])})).collect())
        .unwrap_or_default();
    let report = keys.report("index.html");
    let report_exists = store.exists(&report).await?;
    let headline = doc(store, &keys.report("report.json")).await?.map(|r| n(&r, &["summary", "headline"]));
    let generation = generation(store, &keys).await?;
    let warnings: Vec<String> = serde_json::from_value::<cpo_common::model::segment::SegmentsDoc>(segments.clone())
        .map(|s| s.warnings())
        .unwrap_or_default();
    Ok(json!({
        "run_id": run_id,
        "customers": n(&segments, &["customers"]),
        "rejected": n(&segments, &["rejected"]),
        "segments": seg_list,
        "variants_approved": n(&safety, &["approved"]),
        "variants_blocked": n(&safety, &["blocked"]),
        "arms": n(&assign, &["output", "counts"]),
        "suppressed": n(&assign, &["output", "counts", "suppressed"]),
        "deferred": n(&assign, &["output", "counts", "deferred"]),
        "simulated": analysis.as_ref().map(|a| n(a, &["simulated"])).unwrap_or(Value::Null),
        "decision": analysis.as_ref().map(|a| n(a, &["decision"])).unwrap_or(json!("awaiting_outcomes")),
        "winner": analysis.as_ref().map(|a| n(a, &["winner"])).unwrap_or(Value::Null),
        "decision_reasons": analysis.as_ref().map(|a| n(a, &["decision_reasons"])).unwrap_or(Value::Null),
        "headline": headline.unwrap_or(Value::Null),
        "generation": generation,
        "warnings": warnings,
        "report": if report_exists { json!(location(store, &report)) } else { Value::Null },
    }))
}

/// Per segment: drafts shipped and rejected by the generator, and why each rejected one was.
async fn generation(store: &DynStore, keys: &RunKeys) -> anyhow::Result<Value> {
    let mut out = Vec::new();
    for o in store.list(&keys.variants_prefix()).await? {
        let Some(d) = doc(store, &Key::new(o.key)?).await? else { continue };
        let variants = d["variants"].as_array().cloned().unwrap_or_default();
        let shipped = variants.iter().filter(|v| v["status"] == "shipped").count();
        let rejected: Vec<Value> = variants
            .iter()
            .filter(|v| v["status"] == "rejected")
            .map(|v| json!({"variant_id": v["variant_id"], "reasons": v["reasons"]}))
            .collect();
        out.push(json!({
            "segment": d["segment"],
            "shipped": shipped,
            "rejected": rejected.len(),
            "no_content": d["no_content"],
            "rejected_drafts": rejected,
        }));
    }
    Ok(Value::Array(out))
}

/// At most `max` characters of `s`, on a character boundary.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

/// What a run reused from an earlier one: its step records made before `since` (this process's start), and
/// the provider calls those steps had made — calls this run did not make again.
pub async fn reused(store: &DynStore, run_id: &str, since: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Value> {
    let keys = RunKeys::new(run_id)?;
    let (mut steps, mut of, mut saved) = (0u64, 0u64, 0u64);
    for o in store.list(&keys.steps_prefix()).await? {
        let rec: Value = store.get_json(&Key::new(o.key)?).await?;
        of += 1;
        let started = rec["started_at"].as_str().and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok());
        if started.is_some_and(|t| t < since) {
            steps += 1;
            saved += rec["output"]["counts"]["provider_calls"].as_u64().unwrap_or(0);
        }
    }
    Ok(json!({"steps": steps, "of": of, "provider_calls_saved": saved}))
}

/// Print the summary of a run; `since` (when this process started) adds what the run reused.
pub async fn print(
    store: &DynStore,
    run_id: &str,
    as_json: bool,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<()> {
    let mut s = collect(store, run_id).await?;
    if let Some(since) = since {
        s["reused"] = reused(store, run_id, since).await?;
    }
    if as_json {
        crate::outln!("{}", serde_json::to_string_pretty(&s)?)?;
        return Ok(());
    }
    let keys = RunKeys::new(run_id)?;
    crate::outln!("run        {run_id}")?;
    crate::outln!("customers  {} accepted, {} rejected", s["customers"], s["rejected"])?;
    if s["rejected"].as_u64().unwrap_or(0) > 0 {
        crate::outln!("           rejected rows: {}", location(store, &keys.rejected()))?;
    }
    let segs: Vec<String> = s["segments"]
        .as_array()
        .map(|a| a.iter().map(|x| format!("{} {}", x["name"].as_str().unwrap_or("?"), x["size"])).collect())
        .unwrap_or_default();
    crate::outln!("segments   {}: {}", segs.len(), segs.join(", "))?;
    for g in s["generation"].as_array().into_iter().flatten() {
        let seg = g["segment"].as_str().unwrap_or("?");
        let (shipped, rejected) = (g["shipped"].as_u64().unwrap_or(0), g["rejected"].as_u64().unwrap_or(0));
        let note = if g["no_content"] == json!(true) {
            " (no approved content: control only)"
        } else if shipped == 0 && rejected > 0 {
            " (every draft rejected: control only)"
        } else {
            ""
        };
        crate::outln!("drafts     {seg}: {shipped} shipped, {rejected} rejected{note}")?;
        for d in g["rejected_drafts"].as_array().into_iter().flatten() {
            let reasons: Vec<&str> = d["reasons"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let id = d["variant_id"].as_str().unwrap_or("?");
            crate::outln!("           rejected {id}: {}", clip(&reasons.join("; "), 300))?;
        }
    }
    crate::outln!(
        "variants   {} approved, {} blocked (control included)",
        s["variants_approved"],
        s["variants_blocked"]
    )?;
    if let Some(line) = audience_line(&s) {
        crate::outln!("audience   {line}")?;
    }
    for w in s["warnings"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        crate::outln!("WARNING    {w}")?;
    }
    let label = if s["simulated"] == json!(true) { "SIMULATED — " } else { "" };
    // The analysis's own decision type (`awaiting_outcomes` is not one: no analysis yet).
    let result = match serde_json::from_value::<Decision>(s["decision"].clone()) {
        Ok(Decision::NotTrustworthy) => format!("not trustworthy: {}", s["decision_reasons"]),
        Ok(d) if d.has_winner() => format!("{}: {}", d.label(), s["winner"].as_str().unwrap_or("?")),
        Ok(d) => d.label().to_string(),
        Err(_) => "awaiting outcomes".to_string(),
    };
    // The report's own sentence when there is one, so terminal and report say exactly the same.
    crate::outln!("result     {label}{}", s["headline"].as_str().unwrap_or(&result))?;
    if s["reused"]["steps"].as_u64().unwrap_or(0) > 0 {
        let saved = s["reused"]["provider_calls_saved"].as_u64().unwrap_or(0);
        crate::outln!(
            "reused     {} of {} steps from an earlier run of the same input and config ({saved} provider call{} \
             saved)",
            s["reused"]["steps"],
            s["reused"]["of"],
            if saved == 1 { "" } else { "s" }
        )?;
    }
    match s["report"].as_str() {
        Some(r) => crate::outln!("report     {r}")?,
        None => crate::outln!("report     (not written)")?,
    }
    Ok(())
}

/// Who the week reached and who it left out: `N sent, N held out, N suppressed (reason N, …), N deferred
/// (contact policy)`.
fn audience_line(s: &Value) -> Option<String> {
    let counts = &s["arms"];
    let sent = counts["sent"].as_u64()?;
    let by_reason: Vec<String> =
        s["suppressed"].as_object().map(|m| m.iter().map(|(r, n)| format!("{r} {n}")).collect()).unwrap_or_default();
    let suppressed: u64 = s["suppressed"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    let mut line =
        format!("{sent} sent, {} held out, {suppressed} suppressed", counts["held_out"].as_u64().unwrap_or(0));
    if !by_reason.is_empty() {
        line.push_str(&format!(" ({})", by_reason.join(", ")));
    }
    line.push_str(&format!(", {} deferred (contact policy)", s["deferred"].as_u64().unwrap_or(0)));
    Some(line)
}

/// The analysis result table (`cpo analyze`), or the analysis JSON with `--json`.
pub async fn print_analysis(store: &DynStore, run_id: &str, as_json: bool) -> anyhow::Result<()> {
    let keys = RunKeys::new(run_id)?;
    let analysis: AnalysisDoc = store
        .get_json_opt(&keys.analysis())
        .await?
        .ok_or_else(|| anyhow::anyhow!("run {run_id}: no analysis.json was written"))?;
    if as_json {
        crate::outln!("{}", serde_json::to_string_pretty(&analysis)?)?;
    } else {
        crate::out::print(format_args!("{}", cpo_experiment::table(&analysis)))?;
    }
    Ok(())
}

/// Provider calls of a run: what the generate and safety steps recorded in their `counts.provider_calls`,
/// counting only steps that ran since `since` when given (a cached re-run runs none of them).
pub async fn provider_calls(
    store: &DynStore,
    run_id: &str,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<u64> {
    let keys = RunKeys::new(run_id)?;
    let mut total = 0;
    for o in store.list(&keys.steps_prefix()).await? {
        let rec: Value = store.get_json(&Key::new(o.key)?).await?;
        let started = rec["started_at"].as_str().and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok());
        if since.is_none() || started >= since {
            total += rec["output"]["counts"]["provider_calls"].as_u64().unwrap_or(0);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod audience_tests {
    use super::*;

    #[test]
    fn the_audience_line_counts_who_was_left_out_by_reason() {
        let s = json!({
            "arms": {"sent": 799, "held_out": 144},
            "suppressed": {"bounce": 34, "unsubscribe": 124},
            "deferred": 399,
        });
        assert_eq!(
            audience_line(&s).unwrap(),
            "799 sent, 144 held out, 158 suppressed (bounce 34, unsubscribe 124), 399 deferred (contact policy)"
        );
        let none = json!({"arms": {"sent": 10, "held_out": 0}, "suppressed": {}, "deferred": 0});
        assert_eq!(audience_line(&none).unwrap(), "10 sent, 0 held out, 0 suppressed, 0 deferred (contact policy)");
        assert!(audience_line(&json!({})).is_none(), "no assign record yet");
    }
}

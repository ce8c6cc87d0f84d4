//! Shared test setup: a `mem://` store with a prepared run (through `cpo_common::run::prepare`, the path the
//! trigger and `cpo run` take) and a `segments.json` as the segment step writes it.
#![allow(dead_code)]

use bytes::Bytes;
use cpo_common::keys::RunKeys;
use cpo_common::model::segment::{SegmentProfile, SegmentsDoc};
use cpo_common::run::{self, RunInput, StartOptions};
use cpo_common::store::{self, DynStore, StoreExt};
use cpo_common::{bundled, Ctx, Key, StepInput};
use serde_json::json;

pub const AS_OF: &str = "2026-01-15";

/// The ten segments of the standard R×F map, with descriptions like the segment step writes.
pub const STANDARD: [(&str, &str); 10] = [
    ("Champions", "Bought recently, buy often and spend the most."),
    ("Loyal", "Buy regularly and respond well to member benefits."),
    ("Potential Loyalist", "Recent customers with average frequency who could become loyal."),
    ("New", "Made their first purchase very recently."),
    ("Promising", "Recent shoppers who have not bought much yet."),
    ("Need Attention", "Above-average recency and frequency, but slipping."),
    ("About to Sleep", "Below-average recency and frequency; will be lost without a reason to return."),
    ("At Risk", "Used to buy often but have not bought for a long time."),
    ("Can't Lose", "Made the biggest and most frequent purchases, but long ago."),
    ("Hibernating", "Last purchase long ago, few orders and low spend."),
];

pub fn profile(name: &str, description: &str, tier: Option<&str>) -> SegmentProfile {
    let mut p: SegmentProfile = serde_json::from_value(json!({
        "name": name, "slug": cpo_common::keys::slug(name), "size": 25, "share": 0.1,
        "r_mean": 3.0, "f_mean": 3.0, "m_mean": 3.0, "r_median": 3.0, "f_median": 3.0, "m_median": 3.0,
        "recency_median_days": 30.0, "frequency_median": 5.0, "monetary_median": 600.0, "spend_share": 0.1,
        "description": description
    }))
    .expect("profile JSON matches SegmentProfile");
    if let Some(t) = tier {
        p.typical.insert("tier".into(), t.into());
    }
    p
}

pub fn standard_profiles() -> Vec<SegmentProfile> {
    STANDARD.iter().map(|(n, d)| profile(n, d, None)).collect()
}

/// The bundled campaign with a fixed run date and `extra` YAML appended (later keys override).
pub fn campaign_yaml(extra: &str) -> String {
    let base = bundled::campaign_yaml().replace("as_of: null", &format!("as_of: {AS_OF}"));
    format!("{base}\n{extra}\n")
}

pub struct Fixture {
    pub store: DynStore,
    pub ctx: Ctx,
    pub run: RunInput,
}

impl Fixture {
    pub fn input(&self) -> StepInput {
        StepInput { run_id: self.run.run_id.clone(), campaign: Some("weekly".into()), ..Default::default() }
    }
    pub fn keys(&self) -> RunKeys {
        RunKeys::new(&self.run.run_id).expect("valid run id")
    }
}

/// Store objects to put before the run is prepared (documents, overrides).
pub async fn put(store: &DynStore, key: &str, body: &str) {
    store.put(&Key::new(key).expect("test key"), Bytes::from(body.to_string())).await.expect("put");
}

pub async fn fixture(campaign: &str, profiles: Vec<SegmentProfile>, content_prefix: Option<&str>) -> Fixture {
    fixture_with(store::open("mem://").expect("mem store"), campaign, profiles, content_prefix).await
}

pub async fn fixture_with(
    store: DynStore,
    campaign: &str,
    profiles: Vec<SegmentProfile>,
    content_prefix: Option<&str>,
) -> Fixture {
    put(&store, "campaigns/weekly.yaml", campaign).await;
    put(&store, "incoming/weekly/customers.csv", "customer_id\nC1\n").await;
    let opts = StartOptions {
        seed: None,
        content_prefix: content_prefix.map(|p| Key::new(p).expect("prefix")),
        ..Default::default()
    };
    let input = Key::new("incoming/weekly/customers.csv").expect("key");
    let run = run::prepare(store.as_ref(), &input, &opts).await.expect("prepare run");
    let keys = RunKeys::new(&run.run_id).expect("run id");
    let segments = SegmentsDoc {
        run_id: run.run_id.clone(),
        as_of: run.date,
        input_format: "customers".into(),
        input_rows: 250,
        customers: 250,
        rejected: 0,
        segments: profiles,
        member_parts: vec![],
        columns: None,
    };
    store.put_json(&keys.segments(), &segments).await.expect("segments.json");
    Fixture { ctx: Ctx::new(store.clone()), store, run }
}

/// A document in the old JSON schema.
pub fn json_doc(id: &str, title: &str, audience: &str, approved: &str, content: &str) -> String {
    serde_json::to_string_pretty(&json!({
        "document_id": id, "title": title, "category": "Product", "content": content, "audience": audience,
        "keywords": [], "approval_date": approved, "source_url": "https://example.test/x", "metadata": {}
    }))
    .expect("json")
}

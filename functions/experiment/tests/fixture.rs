//! A run with everything the experiment step reads, built in a `mem://` store: run input, members, segments,
//! variants and safety verdicts.

#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use cpo_common::config::CampaignConfig;
use cpo_common::keys::{slug, RunKeys};
use cpo_common::model::safety::{Decision, SafetyDoc, Verdict};
use cpo_common::model::segment::{Member, SegmentProfile, SegmentsDoc};
use cpo_common::model::variant::{Message, Usage, Variant, VariantStatus, VariantsDoc};
use cpo_common::run::{Digests, InputRef, RunInput};
use cpo_common::store::StoreExt;
use cpo_common::{Ctx, StepInput};

pub const RUN: &str = "weekly-20261125-0123456789ab";
pub const SEGMENTS: [&str; 3] = ["Champions", "At Risk", "Can't Lose"];

pub struct Fixture {
    pub ctx: Ctx,
    pub keys: RunKeys,
    pub config: CampaignConfig,
}

pub fn step(action: &str) -> StepInput {
    StepInput { run_id: RUN.into(), campaign: Some("weekly".into()), action: Some(action.into()), ..Default::default() }
}

pub fn member(i: usize) -> Member {
    let segment = SEGMENTS[i % SEGMENTS.len()].to_string();
    let mut fields = BTreeMap::new();
    fields
        .insert("first_name".to_string(), if i == 0 { "=HYPERLINK(\"http://x\")".into() } else { format!("Name{i}") });
    if i % 2 == 0 {
        fields.insert("email".to_string(), format!("c{i}@example.com"));
    }
    fields.insert("tier".to_string(), ["Gold", "Silver", "Bronze"][i / 7 % 3].into());
    if i % 5 == 0 {
        fields.insert("historical_open_rate".into(), "0.4".into());
        fields.insert("historical_click_rate".into(), "0.08".into());
    }
    Member {
        customer_id: format!("C{i:06}"),
        line: i as u64 + 2,
        recency: 10.0,
        frequency: 3.0,
        monetary: 100.0,
        r: (i % 5) as u8 + 1,
        f: 3,
        m: 3,
        segment,
        fields,
    }
}

/// `n` members in parts of `part` rows; `blocked` variant ids fail safety.
pub async fn build(n: usize, part: usize, blocked: &[&str], mutate: impl FnOnce(&mut CampaignConfig)) -> Fixture {
    let store = cpo_common::store::open("mem://").unwrap();
    let keys = RunKeys::new(RUN).unwrap();
    let mut config = CampaignConfig::default();
    config.control.subject = "Hello {{first_name}}".into();
    config.experiment.part_size = 400;
    mutate(&mut config);
    let run = RunInput {
        run_id: RUN.into(),
        campaign: "weekly".into(),
        input: InputRef {
            key: "incoming/weekly/c.csv".into(),
            version: "v".into(),
            size: 1,
            last_modified: Utc::now(),
        },
        date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        config: config.clone(),
        config_source: "test".into(),
        digests: Digests { config: "c".into(), corpus: "c".into(), policy: "p".into(), prompts: "q".into() },
        providers: "offline".into(),
        seed: 7,
        content_prefix: None,
        created_at: Utc::now(),
    };
    store.put_json(&keys.input(), &run).await.unwrap();
    let members: Vec<Member> = (0..n).map(member).collect();
    let mut parts = Vec::new();
    for (p, chunk) in members.chunks(part).enumerate() {
        let body: String = chunk.iter().map(|m| serde_json::to_string(m).unwrap() + "\n").collect();
        store.put(&keys.members(p), body.into()).await.unwrap();
        parts.push(keys.members(p).to_string());
    }
    let profiles = SEGMENTS
        .iter()
        .map(|s| SegmentProfile {
            name: s.to_string(),
            slug: slug(s),
            size: 0,
            share: 0.0,
            r_mean: 0.0,
            f_mean: 0.0,
            m_mean: 0.0,
            r_median: 0.0,
            f_median: 0.0,
            m_median: 0.0,
            recency_median_days: 0.0,
            frequency_median: 0.0,
            monetary_median: 0.0,
            spend_share: 0.0,
            typical: BTreeMap::new(),
            description: String::new(),
            merged_from: vec![],
        })
        .collect();
    let seg_doc = SegmentsDoc {
        run_id: RUN.into(),
        as_of: run.date,
        input_format: "customers".into(),
        input_rows: n as u64,
        customers: n as u64,
        rejected: 0,
        segments: profiles,
        member_parts: parts,
        columns: None,
    };
    store.put_json(&keys.segments(), &seg_doc).await.unwrap();
    let mut verdicts = vec![verdict("control", Decision::Approved, &config.control.message())];
    for s in SEGMENTS {
        let variants: Vec<Variant> = config
            .tones
            .iter()
            .map(|t| {
                let id = format!("{}-{t}", slug(s));
                let decision = if blocked.contains(&id.as_str()) { Decision::Blocked } else { Decision::Approved };
                let message = Message {
                    subject: format!("{t} news for {{{{first_name}}}}"),
                    preheader: "pre".into(),
                    body: format!("Dear {{{{ first_name }}}}, your {{{{tier}}}} perks ({id})."),
                    cta: "Shop".into(),
                };
                verdicts.push(verdict(&id, decision, &message));
                Variant {
                    variant_id: id.clone(),
                    segment: s.to_string(),
                    tone: t.clone(),
                    status: VariantStatus::Shipped,
                    message,
                    citations: vec![],
                    reasons: vec![],
                    provider: "offline".into(),
                    model: None,
                    attempts: 1,
                    usage: Usage::default(),
                }
            })
            .collect();
        let doc = VariantsDoc {
            run_id: RUN.into(),
            segment: s.into(),
            slug: slug(s),
            variants,
            no_content: false,
            provider: "offline".into(),
            model: None,
            usage: Default::default(),
        };
        store.put_json(&keys.variants(s), &doc).await.unwrap();
    }
    let safety = SafetyDoc {
        run_id: RUN.into(),
        policy_version: "1".into(),
        approved: 0,
        blocked: 0,
        verdicts,
        audit_key: "audit/x".into(),
    };
    store.put_json(&keys.safety(), &safety).await.unwrap();
    Fixture { ctx: Ctx::new(store), keys, config }
}

fn verdict(id: &str, decision: Decision, message: &Message) -> Verdict {
    Verdict {
        variant_id: id.into(),
        segment: None,
        tone: None,
        decision,
        reasons: vec![],
        severities: BTreeMap::new(),
        providers: vec!["offline".into()],
        text_sha256: message.content_sha256(),
    }
}

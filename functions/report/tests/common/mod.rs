//! A realistic run in a `mem://` store, built from the model structs the other steps write: three segments
//! (one with hostile markup in its name), variants with citations (one with a `<script>` body, one rejected by
//! the generator, one blocked by safety), assignment counts, customer-level parts holding PII the report must
//! never show, and an analysis.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use cpo_common::keys::{slug, Key, RunKeys};
use cpo_common::model::experiment::{
    AnalysisDoc, Assignment, AttributeRow, Explain, GuardrailCheck, GuardrailStatus, IngestSummary, Metric,
    OutcomesFile, OutcomesSource, ResultRow, Template, TemplatesDoc,
};
use cpo_common::model::retrieval::{Hit, Passage, RetrievalDoc, SegmentRetrieval};
use cpo_common::model::safety::{Decision, SafetyDoc, Verdict};
use cpo_common::model::segment::{SegmentProfile, SegmentsDoc};
use cpo_common::model::variant::{Citation, Message, Usage, Variant, VariantStatus, VariantsDoc};
use cpo_common::run::{Digests, InputRef, RunInput};
use cpo_common::step::StepRecord;
use cpo_common::store::{self, ObjectMeta, PutOutcome, Store, StoreError, StoreExt};
use cpo_common::{CampaignConfig, Ctx, StepOutput};
use serde_json::json;

pub const RUN_ID: &str = "weekly-20261120-0123456789ab";
pub const HOSTILE_SEGMENT: &str = "Loyal <script>alert('segment')</script>";
pub const HOSTILE_BODY: &str =
    "Hi {{first_name}}, <script>console.error('xss-body')</script><img src=x onerror=alert(1)> our boots are back.";
pub const HOSTILE_TITLE: &str = "Winter <b>Boots</b> & \"Jackets\" | guide";
/// Customer-level values written to the run's customer objects; none may appear in a report.
pub const PII: [&str; 4] = ["CUST-900017", "ada.lovelace@example.com", "Ada", "CUST-900018"];
pub const TONES: [&str; 3] = ["urgent", "informational", "friendly"];
pub const SEGMENTS: [&str; 3] = ["Champions", HOSTILE_SEGMENT, "At Risk"];

/// A store that records the order of writes (to check the manifest comes last).
#[derive(Debug)]
pub struct Recording {
    inner: store::DynStore,
    pub puts: Mutex<Vec<String>>,
}

impl Recording {
    pub fn new() -> Arc<Self> {
        Arc::new(Self { inner: store::open("mem://").unwrap(), puts: Mutex::new(vec![]) })
    }
    pub fn take_puts(&self) -> Vec<String> {
        std::mem::take(&mut self.puts.lock().unwrap())
    }
}

#[async_trait]
impl Store for Recording {
    fn url(&self) -> &str {
        self.inner.url()
    }
    async fn get(&self, key: &Key) -> Result<Bytes, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &Key, body: Bytes) -> Result<ObjectMeta, StoreError> {
        self.puts.lock().unwrap().push(key.to_string());
        self.inner.put(key, body).await
    }
    async fn put_if_absent(&self, key: &Key, body: Bytes) -> Result<PutOutcome, StoreError> {
        self.puts.lock().unwrap().push(key.to_string());
        self.inner.put_if_absent(key, body).await
    }
    async fn list(&self, prefix: &Key) -> Result<Vec<ObjectMeta>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        self.inner.head(key).await
    }
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap()
}

pub fn keys() -> RunKeys {
    RunKeys::new(RUN_ID).unwrap()
}

pub fn run_input() -> RunInput {
    let mut config =
        CampaignConfig { goal: "bring lapsed customers back with the winter range".into(), ..Default::default() };
    config.control.subject = "This week at Northwind Outfitters".into();
    config.control.body = "Thank you for shopping with Northwind. Our winter range has arrived.".into();
    RunInput {
        run_id: RUN_ID.into(),
        campaign: "weekly".into(),
        input: InputRef {
            key: "incoming/weekly/customers.csv".into(),
            version: "abc".into(),
            size: 40_960,
            last_modified: t0(),
        },
        date: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        config,
        config_source: "bundled:examples/campaigns/weekly.yaml".into(),
        digests: Digests { config: "c".into(), corpus: "d".into(), policy: "p".into(), prompts: "q".into() },
        providers: "generate=offline:-;safety=offline;retrieve=local".into(),
        seed: 7,
        content_prefix: None,
        created_at: t0(),
    }
}

fn profile(name: &str, size: u64, share: f64) -> SegmentProfile {
    SegmentProfile {
        name: name.into(),
        slug: slug(name),
        size,
        share,
        r_mean: 4.2,
        f_mean: 3.9,
        m_mean: 4.1,
        r_median: 4.0,
        f_median: 4.0,
        m_median: 4.0,
        recency_median_days: 12.0,
        frequency_median: 6.0,
        monetary_median: 412.5,
        spend_share: share * 1.3,
        typical: BTreeMap::new(),
        description: format!("{name}: recent, frequent buyers"),
        merged_from: vec![],
    }
}

pub fn segments_doc() -> SegmentsDoc {
    SegmentsDoc {
        run_id: RUN_ID.into(),
        as_of: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        input_format: "customers".into(),
        input_rows: 1002,
        customers: 1000,
        rejected: 2,
        segments: vec![
            profile(SEGMENTS[0], 400, 0.4),
            profile(SEGMENTS[1], 350, 0.35),
            profile(SEGMENTS[2], 250, 0.25),
        ],
        member_parts: vec![keys().members(0).to_string()],
        columns: None,
    }
}

pub fn retrieval_doc() -> RetrievalDoc {
    let hit = |id: &str, title: &str| Hit {
        doc_id: id.into(),
        title: title.into(),
        category: "product".into(),
        audience: "All".into(),
        score: 3.2,
        passages: vec![Passage { start: 0, end: 40, text: "Our winter boots are waterproof.".into() }],
    };
    RetrievalDoc {
        run_id: RUN_ID.into(),
        as_of: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        retriever: "bm25".into(),
        corpus_documents: 30,
        eligible_documents: 24,
        segments: SEGMENTS
            .iter()
            .map(|s| SegmentRetrieval {
                segment: s.to_string(),
                slug: slug(s),
                query: "winter range".into(),
                audiences: vec!["All".into()],
                hits: vec![hit("DOC-007", HOSTILE_TITLE), hit("DOC-012", "Free returns for members")],
            })
            .collect(),
        no_content: vec![],
    }
}

pub fn variant(segment: &str, tone: &str) -> Variant {
    let body = if segment == HOSTILE_SEGMENT && tone == "friendly" {
        HOSTILE_BODY.to_string()
    } else {
        format!("Hi {{{{first_name}}}}, a {tone} note for {segment}: our winter boots are waterproof.")
    };
    let rejected = segment == "At Risk" && tone == "informational";
    Variant {
        variant_id: format!("{}-{tone}", slug(segment)),
        segment: segment.into(),
        tone: tone.into(),
        status: if rejected { VariantStatus::Rejected } else { VariantStatus::Shipped },
        message: Message {
            subject: format!("{tone} winter news"),
            preheader: "Boots, jackets and layers".into(),
            body,
            cta: "Shop the winter range".into(),
        },
        citations: vec![
            Citation { doc_id: "DOC-007".into(), quote: "Our winter boots are waterproof.".into() },
            Citation { doc_id: "DOC-012".into(), quote: "Members enjoy <free> returns within 60 days.".into() },
        ],
        reasons: if rejected { vec!["body has 12 words; at least 40 required".into()] } else { vec![] },
        provider: "offline".into(),
        model: None,
        attempts: if rejected { 2 } else { 1 },
        usage: Usage {
            prompt_tokens: 300,
            completion_tokens: 120,
            cost_usd: 0.000117,
            calls: 1,
            cached: false,
            cache_hits: 0,
        },
    }
}

pub fn variants_doc(segment: &str) -> VariantsDoc {
    let variants: Vec<Variant> = TONES.iter().map(|t| variant(segment, t)).collect();
    let mut usage = Usage::default();
    for v in &variants {
        usage.add(&v.usage);
    }
    VariantsDoc {
        run_id: RUN_ID.into(),
        segment: segment.into(),
        slug: slug(segment),
        variants,
        no_content: false,
        provider: "offline".into(),
        model: None,
        usage,
    }
}

/// The blocked variant: Champions' urgent message.
pub fn blocked_id() -> String {
    format!("{}-urgent", slug("Champions"))
}

pub fn safety_doc() -> SafetyDoc {
    let mut verdicts = vec![Verdict {
        variant_id: "control".into(),
        segment: None,
        tone: None,
        decision: Decision::Approved,
        reasons: vec![],
        severities: BTreeMap::new(),
        providers: vec!["offline".into()],
        text_sha256: run_input().config.control.message().content_sha256(),
    }];
    for s in SEGMENTS {
        for v in variants_doc(s).variants.iter().filter(|v| v.status == VariantStatus::Shipped) {
            let blocked = v.variant_id == blocked_id();
            verdicts.push(Verdict {
                variant_id: v.variant_id.clone(),
                segment: Some(s.into()),
                tone: Some(v.tone.clone()),
                decision: if blocked { Decision::Blocked } else { Decision::Approved },
                reasons: if blocked {
                    vec!["urgency: false scarcity (\"only 2 left <today>\")".into()]
                } else {
                    vec![]
                },
                severities: BTreeMap::new(),
                providers: vec!["offline".into()],
                text_sha256: v.message.content_sha256(),
            });
        }
    }
    let blocked = verdicts.iter().filter(|v| v.decision == Decision::Blocked).count() as u64;
    SafetyDoc {
        run_id: RUN_ID.into(),
        policy_version: "policy-v3".into(),
        approved: verdicts.len() as u64 - blocked,
        blocked,
        verdicts,
        audit_key: cpo_common::keys::audit_chain(0).to_string(),
    }
}

/// Arms in force per segment: control plus the approved, shipped tones.
pub fn arms_of(segment: &str) -> Vec<String> {
    let safety = safety_doc();
    std::iter::once("control".to_string())
        .chain(
            TONES
                .iter()
                .filter(|t| {
                    let id = format!("{}-{t}", slug(segment));
                    safety.verdicts.iter().any(|v| v.variant_id == id && v.decision == Decision::Approved)
                })
                .map(|t| t.to_string()),
        )
        .collect()
}

/// Segment → arm → customers, as the assign step counts them (sizes split evenly, remainder to control).
pub fn arm_counts() -> BTreeMap<String, BTreeMap<String, u64>> {
    segments_doc()
        .segments
        .iter()
        .map(|s| {
            let arms = arms_of(&s.name);
            let each = s.size / arms.len() as u64;
            let mut m: BTreeMap<String, u64> = arms.iter().map(|a| (a.clone(), each)).collect();
            *m.entry("control".into()).or_default() += s.size - each * arms.len() as u64;
            (s.name.clone(), m)
        })
        .collect()
}

fn record(step: &str, offset_s: i64, ms: i64, output: StepOutput) -> StepRecord {
    StepRecord {
        run_id: RUN_ID.into(),
        step: step.into(),
        status: cpo_common::step::StepStatus::Succeeded,
        input_hash: "h".into(),
        started_at: t0() + Duration::seconds(offset_s),
        finished_at: t0() + Duration::seconds(offset_s) + Duration::milliseconds(ms),
        duration_ms: ms as u64,
        output,
        reads: Default::default(),
    }
}

fn row(arm: &str, metric: Metric, segment: Option<&str>, n: u64, k: u64, control: Option<(u64, u64)>) -> ResultRow {
    let rate = k as f64 / n as f64;
    let (lo, hi) = (rate - 0.02, rate + 0.02);
    let diff = control.map(|(cn, ck)| rate - ck as f64 / cn as f64);
    ResultRow {
        arm: arm.into(),
        metric,
        segment: segment.map(String::from),
        n,
        successes: k,
        rate,
        ci_low: lo,
        ci_high: hi,
        lift: control.map(|(cn, ck)| rate / (ck as f64 / cn as f64) - 1.0),
        lift_ci_low: control.map(|(cn, ck)| rate / (ck as f64 / cn as f64) - 1.2),
        lift_ci_high: control.map(|(cn, ck)| rate / (ck as f64 / cn as f64) - 0.8),
        diff,
        diff_ci_low: diff.map(|d| d - 0.03),
        diff_ci_high: diff.map(|d| d + 0.03),
        p_value: control.map(|_| 0.0123),
        p_holm: control.filter(|_| metric == Metric::Click).map(|_| 0.0369),
        p_bh: control.filter(|_| metric != Metric::Click).map(|_| 0.0246),
        prob_beat_control: control.map(|_| 0.9871),
        prob_worse: control.map(|_| 0.0129),
        expected_loss: control.map(|_| 0.00042),
        mde: control.map(|_| 0.0317),
    }
}

/// Rate and lift by attribute, as the analysis writes it (a long value and a hostile one included).
pub fn explain() -> Explain {
    let mut rows = vec![];
    for (attribute, value, n, kc, kf) in [
        ("tier", "Gold", 400u64, 20u64, 36u64),
        ("tier", "Bronze <script>alert('tier')</script>", 600, 30, 33),
        ("historical open rate band", "1: low (under 2.5%)", 500, 10, 14),
        ("historical open rate band", "3: high (6.5% and over)", 500, 45, 70),
    ] {
        for (arm, k) in [("control", kc), ("friendly", kf)] {
            let control = arm != "control";
            let rate = k as f64 / n as f64;
            let cr = kc as f64 / n as f64;
            rows.push(AttributeRow {
                attribute: attribute.into(),
                value: value.into(),
                arm: arm.into(),
                n,
                successes: k,
                rate,
                ci_low: rate * 0.8,
                ci_high: rate * 1.2,
                control_rate: Some(cr),
                diff: control.then_some(rate - cr),
                diff_ci_low: control.then_some(rate - cr - 0.01),
                diff_ci_high: control.then_some(rate - cr + 0.01),
                lift: control.then_some(rate / cr - 1.0),
                p_value: control.then_some(0.02),
                p_bh: control.then_some(0.04),
            });
        }
    }
    Explain {
        metric: Metric::Click,
        min_group: 100,
        rows,
        skipped: vec![],
        findings: vec!["For tier Gold, friendly raised the click rate against control: 9.0% vs 5.0%.".into()],
    }
}

pub fn analysis_doc(simulated: bool) -> AnalysisDoc {
    let mut results = vec![];
    let arms: BTreeMap<String, u64> =
        arm_counts().values().flat_map(|m| m.iter()).fold(BTreeMap::new(), |mut acc, (a, n)| {
            *acc.entry(a.clone()).or_default() += n;
            acc
        });
    for (metric, base) in [(Metric::Open, 0.25), (Metric::Click, 0.06), (Metric::Unsubscribe, 0.003)] {
        let cn = arms["control"];
        let ck = (cn as f64 * base).round() as u64;
        for (arm, n) in &arms {
            let bump = match arm.as_str() {
                "friendly" => 1.4,
                "urgent" => 1.1,
                _ => 1.0,
            };
            let k = if arm == "control" { ck } else { (*n as f64 * base * bump).round() as u64 };
            let control = (arm != "control").then_some((cn, ck));
            results.push(row(arm, metric, None, *n, k, control));
        }
    }
    for (seg, m) in arm_counts() {
        let cn = m["control"];
        let ck = cn / 16;
        for (arm, n) in &m {
            let control = (arm != "control").then_some((cn, ck));
            results.push(row(arm, Metric::Click, Some(&seg), *n, n / 14, control));
        }
    }
    AnalysisDoc {
        run_id: RUN_ID.into(),
        simulated,
        outcomes: vec![keys().outcomes("simulated-7.csv").unwrap().to_string()],
        primary_metric: Metric::Click,
        results,
        srm_p_value: 0.4213,
        srm_flag: false,
        decision: cpo_common::model::experiment::Decision::Ship,
        winner: Some("friendly".into()),
        decision_reasons: vec!["friendly beats control on click rate after Holm correction".into()],
        outcomes_source: if simulated { OutcomesSource::Simulated } else { OutcomesSource::Real },
        holdout_lift: None,
        guardrails: vec![GuardrailCheck {
            metric: Metric::Unsubscribe,
            arm: "friendly".into(),
            status: GuardrailStatus::Harm,
            rate: 0.0042,
            control_rate: 0.003,
            diff: Some(0.0012),
            lift: Some(0.4),
            p_value: Some(0.0123),
            prob_worse: Some(0.9871),
            max_increase: 0.005,
        }],
        explain: Some(explain()),
        extra: serde_json::from_value(json!({
            "mde_click": 0.0213,
            "power": {"friendly": {"mde": 0.012345678, "power_at_observed": null}},
            "blocked_variants": ["champions-urgent", "<x>"],
            "rows": [{"ignored": true}],
            "srm": {"per_segment": {"Loyal <script>alert('segment')</script>": 0.5}}
        }))
        .unwrap(),
    }
}

/// Everything the campaign machine writes before the report step.
pub async fn campaign_run(store: &dyn Store) {
    let k = keys();
    store.put_json(&k.input(), &run_input()).await.unwrap();
    store.put_json(&k.segments(), &segments_doc()).await.unwrap();
    store.put_json(&k.retrieval(), &retrieval_doc()).await.unwrap();
    for s in SEGMENTS {
        store.put_json(&k.variants(s), &variants_doc(s)).await.unwrap();
    }
    let safety = safety_doc();
    store.put_json(&k.safety(), &safety).await.unwrap();
    store.put(&Key::new(safety.audit_key.clone()).unwrap(), Bytes::from_static(b"{\"n\":1}\n")).await.unwrap();

    // Customer-level objects: hold PII by necessity; the report may only count them.
    let member = json!({"customer_id": PII[0], "line": 2, "recency": 3.0, "frequency": 9.0, "monetary": 900.0,
        "r": 5, "f": 5, "m": 5, "segment": "Champions", "fields": {"first_name": PII[2], "email": PII[1]}});
    store.put(&k.members(0), Bytes::from(format!("{member}\n"))).await.unwrap();
    let mut lines = String::new();
    for (seg, arms) in arm_counts() {
        for (arm, n) in arms {
            for i in 0..n {
                let a = Assignment {
                    customer_id: if i == 0 { PII[0].into() } else { format!("CUST-{seg:.3}-{arm}-{i}") },
                    segment: seg.clone(),
                    arm: arm.clone(),
                    variant_id: if arm == "control" { "control".into() } else { format!("{}-{arm}", slug(&seg)) },
                };
                lines.push_str(&serde_json::to_string(&a).unwrap());
                lines.push('\n');
            }
        }
    }
    store.put(&k.assignments(0), Bytes::from(lines)).await.unwrap();
    let send =
        format!("customer_id,email,first_name,arm,variant_id\n{},{},{},control,control\n", PII[3], PII[1], PII[2]);
    store.put(&k.send(0), Bytes::from(send)).await.unwrap();
    // Templates carry exactly the screened texts (the report refuses any other).
    let template = |id: &str, arm: &str| {
        let m = if arm == "control" { run_input().config.control.message() } else { variant("Champions", arm).message };
        Template {
            variant_id: id.into(),
            arm: arm.into(),
            segment: None,
            subject: m.subject,
            preheader: m.preheader,
            body: m.body,
            cta: m.cta,
        }
    };
    let templates = TemplatesDoc {
        run_id: RUN_ID.into(),
        merge_fields: vec!["first_name".into()],
        templates: [("champions-friendly", "friendly"), ("control", "control")]
            .into_iter()
            .map(|(id, arm)| (id.to_string(), template(id, arm)))
            .collect(),
        merge_defaults: Default::default(),
    };
    store.put_json(&k.templates(), &templates).await.unwrap();

    let mut steps = vec![
        record("segment", 0, 1200, StepOutput::new(RUN_ID, "segment").count("customers", 1000)),
        record("retrieve", 2, 300, StepOutput::new(RUN_ID, "retrieve")),
    ];
    // As the generate step counts (its record carries the segment's usage).
    for (i, s) in SEGMENTS.iter().enumerate() {
        let u = variants_doc(s).usage;
        let out = StepOutput::new(RUN_ID, "generate")
            .count("variants", 3)
            .count("provider_calls", u.calls)
            .count("cached", u.cache_hits)
            .count("prompt_tokens", u.prompt_tokens)
            .count("completion_tokens", u.completion_tokens)
            .count("cost_usd", u.cost_usd);
        steps.push(record(&format!("generate-{}", slug(s)), 3 + i as i64, 450, out));
    }
    steps.push(record("safety", 7, 800, StepOutput::new(RUN_ID, "safety").count("approved", safety.approved)));
    steps.push(record(
        "assign",
        9,
        2100,
        StepOutput::new(RUN_ID, "assign")
            .count("customers", 1000)
            .count("arms", json!({"control": 1}))
            .count("segments", json!(arm_counts())),
    ));
    for r in steps {
        store.put_json(&k.step(&r.step), &r).await.unwrap();
    }
}

/// What the analysis machine adds.
pub async fn analysis_run(store: &dyn Store, simulated: bool) {
    let k = keys();
    store
        .put(&k.outcomes("simulated-7.csv").unwrap(), Bytes::from(format!("customer_id,event\n{},open\n", PII[0])))
        .await
        .unwrap();
    let outcomes = k.outcomes("simulated-7.csv").unwrap();
    let summary = IngestSummary {
        run_id: RUN_ID.into(),
        files: vec![OutcomesFile {
            key: outcomes.to_string(),
            etag: "e1".into(),
            format: "csv".into(),
            rows: 1312,
            accepted: 1309,
            rejected: 3,
            simulated,
            ..OutcomesFile::default()
        }],
        events: [("open".to_string(), 302), ("click".to_string(), 67)].into_iter().collect(),
        duplicates: 11,
        rejected: 3,
        unknown_customers: 2,
        unknown_events: 4,
        customers_with_events: 310,
        simulated,
        outcomes_key: k.ingest("outcomes-").to_string(),
        ..IngestSummary::default()
    };
    store.put_json(&k.ingest("summary.json"), &summary).await.unwrap();
    store.put_json(&k.analysis(), &analysis_doc(simulated)).await.unwrap();
    let rec = record("analyze", 60, 900, StepOutput::new(RUN_ID, "analyze").count("events", 1));
    store.put_json(&k.step("analyze"), &rec).await.unwrap();
}

pub fn ctx(store: Arc<Recording>) -> Ctx {
    Ctx::new(store)
}

pub async fn text(store: &dyn Store, key: &Key) -> String {
    String::from_utf8(store.get(key).await.unwrap().to_vec()).unwrap()
}

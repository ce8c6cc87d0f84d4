//! Produced by `experiment`: assignments (customer-level) and the analysis (aggregates only).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One line of `assignments/part-NNNNN.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub customer_id: String,
    pub segment: String,
    /// `control`, a tone, or `holdout`.
    pub arm: String,
    /// `<segment slug>-<tone>`, `control`, or empty for holdout.
    pub variant_id: String,
}

/// One row of `analysis.json` `results` (and of `cpo analyze --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub arm: String,
    pub metric: Metric,
    /// `None` = overall.
    pub segment: Option<String>,
    pub n: u64,
    pub successes: u64,
    pub rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Relative lift vs control (None for control).
    pub lift: Option<f64>,
    /// Katz log risk-ratio 95% CI of `lift` (undefined with a zero count).
    #[serde(default)]
    pub lift_ci_low: Option<f64>,
    #[serde(default)]
    pub lift_ci_high: Option<f64>,
    pub diff: Option<f64>,
    pub diff_ci_low: Option<f64>,
    pub diff_ci_high: Option<f64>,
    pub p_value: Option<f64>,
    /// Holm across the arms on the primary metric: the decision family.
    pub p_holm: Option<f64>,
    /// Benjamini–Hochberg across the other metrics × arms: exploratory.
    pub p_bh: Option<f64>,
    /// Chance the arm is better than control in the metric's good direction (a lower rate for a guardrail).
    /// `None` when neither arm has an event (nothing to compare).
    pub prob_beat_control: Option<f64>,
    /// Chance the arm is worse than control (a higher rate for a guardrail).
    #[serde(default)]
    pub prob_worse: Option<f64>,
    pub expected_loss: Option<f64>,
    /// Minimum detectable absolute difference vs control at the configured power and α (pooled variance at
    /// the control rate).
    #[serde(default)]
    pub mde: Option<f64>,
}

/// `send/templates.json`: every message an email service needs, in merge-field syntax (`{{first_name}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplatesDoc {
    pub run_id: String,
    /// Columns of `send/part-*.csv` after the fixed ones, in order: the merge fields the messages use.
    pub merge_fields: Vec<String>,
    /// Keyed by `variant_id` (`control` for the control message).
    pub templates: std::collections::BTreeMap<String, Template>,
    /// Merge field → the text used for a customer without a value (`generation.merge_defaults`, limited to
    /// the fields the messages use). The send list already carries it in those cells.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub merge_defaults: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub variant_id: String,
    /// `control` or a tone.
    pub arm: String,
    /// `None` for the control message (the same for every segment).
    pub segment: Option<String>,
    pub subject: String,
    pub preheader: String,
    pub body: String,
    pub cta: String,
}

impl Template {
    /// The message fields (what safety's verdict for `variant_id` must cover byte for byte).
    pub fn message(&self) -> crate::model::variant::Message {
        crate::model::variant::Message {
            subject: self.subject.clone(),
            preheader: self.preheader.clone(),
            body: self.body.clone(),
            cta: self.cta.clone(),
        }
    }
}

/// One fully rendered message (`cpo render`, `send/rendered-*.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedMessage {
    pub customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub arm: String,
    pub variant_id: String,
    pub subject: String,
    pub preheader: String,
    pub body: String,
    pub cta: String,
}

/// One outcomes object as ingest saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutcomesFile {
    pub key: String,
    pub etag: String,
    /// `csv` or `jsonl`.
    pub format: String,
    pub rows: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub simulated: bool,
    /// SHA-256 of the content (`key` is `ingest/files/<sha256>.<ext>`).
    #[serde(default)]
    pub sha256: String,
    /// The drop it came from (`outcomes/<file>`, first seen).
    #[serde(default)]
    pub source: String,
    /// Rows of event types the mapping ignores.
    #[serde(default)]
    pub ignored: u64,
    /// Rows repeating a (customer, event) pair already seen in this or an earlier file.
    #[serde(default)]
    pub duplicates: u64,
    /// Distinct customers of this file never assigned in the run.
    #[serde(default)]
    pub unknown_customers: u64,
}

/// `ingest/refused/<sha256>.json`: a drop that is not analysed, and why (the drop stays under `outcomes/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusedFile {
    pub sha256: String,
    /// The drop (`runs/<id>/outcomes/<file>`).
    pub source: String,
    pub reason: String,
    pub rows: u64,
    pub rejected: u64,
    pub refused_at: chrono::DateTime<chrono::Utc>,
}

/// Which outcomes an analysis used: real files whenever the run has any, else the simulated ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomesSource {
    Real,
    Simulated,
    #[default]
    None,
}

/// Whether the long-run lift against the holdout could be measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldoutLiftStatus {
    Measured,
    /// With `reason`: no holdout, simulated outcomes, or no conversions of held-out customers yet.
    NotMeasurableYet,
}

/// Long-run lift of the campaign against the global holdout, on conversions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutLift {
    pub status: HoldoutLiftStatus,
    pub reason: Option<String>,
    pub metric: String,
    pub treated_n: u64,
    pub treated_conversions: u64,
    pub holdout_n: u64,
    pub holdout_conversions: u64,
    pub treated_rate: Option<f64>,
    pub holdout_rate: Option<f64>,
    /// Relative lift of treated over holdout, with its CI.
    pub lift: Option<f64>,
    pub lift_ci_low: Option<f64>,
    pub lift_ci_high: Option<f64>,
    pub diff: Option<f64>,
    pub diff_ci_low: Option<f64>,
    pub diff_ci_high: Option<f64>,
    pub p_value: Option<f64>,
}

/// `ingest/summary.json`: what the cumulative outcomes held (aggregates only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestSummary {
    pub run_id: String,
    pub files: Vec<OutcomesFile>,
    /// Distinct (customer, event) pairs per event type among assigned customers.
    pub events: std::collections::BTreeMap<String, u64>,
    /// Rows repeating a (customer, event) pair already seen.
    pub duplicates: u64,
    pub rejected: u64,
    /// Customers with events who were never assigned, and their (deduplicated) events.
    pub unknown_customers: u64,
    pub unknown_events: u64,
    /// Assigned customers with at least one event.
    pub customers_with_events: u64,
    pub simulated: bool,
    /// Drops refused (each with its reason); they block nothing.
    #[serde(default)]
    pub refused: Vec<RefusedFile>,
    /// Which files `files` are: real, or simulated only when the run has no real file.
    #[serde(default)]
    pub source: OutcomesSource,
    /// Accepted files left out of this analysis (simulated ones once real outcomes exist).
    #[serde(default)]
    pub set_aside: Vec<String>,
    /// Key of the per-customer outcome object (`ingest/outcomes.csv`).
    pub outcomes_key: String,
}

/// `analysis.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisDoc {
    pub run_id: String,
    pub simulated: bool,
    pub outcomes: Vec<String>,
    /// The metric the decision is about (`experiment.primary_metric`).
    #[serde(default = "default_primary")]
    pub primary_metric: Metric,
    pub results: Vec<ResultRow>,
    pub srm_p_value: f64,
    pub srm_flag: bool,
    pub decision: Decision,
    /// The arm the decision is about (set for `ship`, `ship_with_caution`, `do_not_ship`).
    pub winner: Option<String>,
    pub decision_reasons: Vec<String>,
    /// Real or simulated outcomes (never both).
    #[serde(default)]
    pub outcomes_source: OutcomesSource,
    /// Treated vs global holdout on conversions, or why that cannot be measured yet.
    #[serde(default)]
    pub holdout_lift: Option<HoldoutLift>,
    /// Every non-control arm on every guardrail metric (overall).
    #[serde(default)]
    pub guardrails: Vec<GuardrailCheck>,
    /// Rate and lift by customer attribute (absent when the members carry no usable attribute).
    #[serde(default)]
    pub explain: Option<Explain>,
    /// The settings, tests and inputs behind the figures. Its fields are sorted by name, as the JSON is.
    #[serde(default, deserialize_with = "null_as_default")]
    pub extra: AnalysisDetails,
}

/// `extra` of `analysis.json`. Every field is optional so that an analysis written before a field existed
/// still reads, and fields this version does not know are kept in `other`: the report shows them all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisDetails {
    /// `fixed` or `thompson`: how the weights in force were set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_variants: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuity_correction: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub families: Option<TestFamilies>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<GuardrailSettings>,
    /// Customers held out: `null` when the plan holds none out.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub holdout: Option<Option<HoldoutCount>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest: Option<IngestTallies>,
    /// Arm → power of the test on the primary metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<BTreeMap<String, ArmPower>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_target: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_metric: Option<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srm: Option<SrmDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srm_alpha: Option<f64>,
    /// Segment → arm → weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_in_force: Option<BTreeMap<String, BTreeMap<String, f64>>>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// The multiple-testing families, described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestFamilies {
    pub decision: String,
    pub exploratory: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardrailSettings {
    pub max_increase: f64,
    pub metrics: Vec<Metric>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutCount {
    pub n: u64,
}

/// What ingest set aside or could not match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestTallies {
    pub customers_with_events: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub unknown_customers: u64,
    pub unknown_events: u64,
}

/// Power of one arm against control; `null` where it cannot be computed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmPower {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub mde: Option<Option<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub mde_relative: Option<Option<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub power_at_observed: Option<Option<f64>>,
}

/// The sample ratio mismatch test.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SrmDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<SrmBasis>,
    /// Segment → p-value of the segment's own test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_segment: Option<BTreeMap<String, f64>>,
    /// The stratified chi-square statistic: `null` when no segment could be tested.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub statistic: Option<Option<f64>>,
}

/// What the SRM test counts: deliveries when the outcomes report them, else assignments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SrmBasis {
    Delivered,
    Assigned,
}

/// A field that is present, `null` included (`Some(None)`); an absent one is `None` through `default`.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn null_as_default<'de, D: serde::Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn default_primary() -> Metric {
    Metric::Click
}

/// `ingest/counts.json`: customers assigned and customers with each event per (segment, arm), counted by
/// `ingest` while it joins the outcomes with the assignments, so `analyze` reads this small object instead of
/// every customer-level part again. Aggregates only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestCounts {
    pub run_id: String,
    /// `key\tetag` lines of the outcomes objects counted (the identity recorded in `steps/ingest.json`), so a
    /// reader can tell counts of another outcomes set apart.
    pub outcomes_identity: String,
    /// In (segment, arm) order.
    pub cells: Vec<ArmCounts>,
}

/// One (segment, arm) of [`IngestCounts`]: `n` customers assigned (intention to treat), and of them how many
/// have each event at least once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmCounts {
    pub segment: String,
    pub arm: String,
    pub n: u64,
    pub delivered: u64,
    pub open: u64,
    pub click: u64,
    pub convert: u64,
    pub unsubscribe: u64,
}

/// An engagement metric of the analysis: the share of assigned customers with at least one such event. The
/// one definition the config, the analysis, the report and the CLI use (see `docs/experiment.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Open,
    Click,
    Convert,
    Unsubscribe,
}

impl Metric {
    /// In display order; guardrails last.
    pub const ALL: [Metric; 4] = [Metric::Open, Metric::Click, Metric::Convert, Metric::Unsubscribe];

    /// The name in `analysis.json` and the config (`click`).
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Open => "open",
            Metric::Click => "click",
            Metric::Convert => "convert",
            Metric::Unsubscribe => "unsubscribe",
        }
    }

    /// What a reader calls it (`click rate`).
    pub fn label(self) -> &'static str {
        match self {
            Metric::Open => "open rate",
            Metric::Click => "click rate",
            Metric::Convert => "conversion rate",
            Metric::Unsubscribe => "unsubscribe rate",
        }
    }

    /// A guardrail measures harm: an arm must not raise it. It is never a primary metric's family member.
    pub fn is_guardrail(self) -> bool {
        matches!(self, Metric::Unsubscribe)
    }

    /// Whether a higher rate is the good direction (false for guardrails).
    pub fn higher_is_better(self) -> bool {
        !self.is_guardrail()
    }

    pub fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the analysis recommends. The older values (`winner`, `no_significant_difference`) still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// An arm beats control on the primary metric and no guardrail shows harm.
    #[serde(alias = "winner")]
    Ship,
    /// An arm beats control, but it significantly raises a guardrail metric (below its limit).
    ShipWithCaution,
    /// The best arm beats control but raises a guardrail metric beyond its limit.
    DoNotShip,
    /// Enough data to have seen a realistic effect, and no arm differs from control.
    #[serde(alias = "no_significant_difference")]
    NoDifference,
    /// No arm differs yet, and the test could not have seen a realistic effect: collect more outcomes.
    KeepTesting,
    /// Too few (or no) primary-metric events to compare arms at all.
    NotEnoughData,
    /// The assignment itself is broken (sample ratio mismatch): no figure can be trusted.
    NotTrustworthy,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Ship => "ship",
            Decision::ShipWithCaution => "ship_with_caution",
            Decision::DoNotShip => "do_not_ship",
            Decision::NoDifference => "no_difference",
            Decision::KeepTesting => "keep_testing",
            Decision::NotEnoughData => "not_enough_data",
            Decision::NotTrustworthy => "not_trustworthy",
        }
    }

    /// Words for a reader (`ship with caution`).
    pub fn label(self) -> &'static str {
        match self {
            Decision::Ship => "ship",
            Decision::ShipWithCaution => "ship with caution",
            Decision::DoNotShip => "do not ship",
            Decision::NoDifference => "no difference",
            Decision::KeepTesting => "keep testing",
            Decision::NotEnoughData => "not enough data",
            Decision::NotTrustworthy => "not trustworthy",
        }
    }

    /// Whether the decision names an arm (`winner` is set).
    pub fn has_winner(self) -> bool {
        matches!(self, Decision::Ship | Decision::ShipWithCaution | Decision::DoNotShip)
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an arm fares on a guardrail metric against control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailStatus {
    /// No significant increase.
    Ok,
    /// A significant increase (unadjusted p < α), below the configured limit.
    Harm,
    /// A significant increase beyond the configured limit.
    Breach,
}

/// One arm on one guardrail metric (`analysis.json` `guardrails`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardrailCheck {
    pub metric: Metric,
    pub arm: String,
    pub status: GuardrailStatus,
    pub rate: f64,
    pub control_rate: f64,
    pub diff: Option<f64>,
    pub lift: Option<f64>,
    pub p_value: Option<f64>,
    /// Chance the arm's rate is higher (worse) than control's.
    pub prob_worse: Option<f64>,
    /// Absolute increase that counts as a breach.
    pub max_increase: f64,
}

/// Rate and lift against control by customer attribute (`analysis.json` `explain`): aggregates of groups of
/// at least `min_group` customers, never a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explain {
    pub metric: Metric,
    pub min_group: u64,
    pub rows: Vec<AttributeRow>,
    /// Attributes left out, with why (too many distinct values, looks like personal data…).
    #[serde(default)]
    pub skipped: Vec<String>,
    /// Plain sentences naming the strongest differences.
    pub findings: Vec<String>,
}

/// One (attribute, value, arm) of [`Explain`]. Control rows carry the group's rate only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeRow {
    /// `tier`, `location`, `age band`, `historical open rate band`…
    pub attribute: String,
    pub value: String,
    pub arm: String,
    pub n: u64,
    pub successes: u64,
    pub rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub control_rate: Option<f64>,
    pub diff: Option<f64>,
    pub diff_ci_low: Option<f64>,
    pub diff_ci_high: Option<f64>,
    pub lift: Option<f64>,
    pub p_value: Option<f64>,
    /// Benjamini–Hochberg over every (attribute, value, arm) comparison: exploratory.
    pub p_bh: Option<f64>,
}

/// How customers are split between the arms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocationMode {
    /// The configured `weights`, every week.
    #[default]
    Fixed,
    /// Per segment, from the probability that each tone is best given earlier weeks (Beta posteriors).
    Thompson,
}

impl AllocationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AllocationMode::Fixed => "fixed",
            AllocationMode::Thompson => "thompson",
        }
    }
}

impl std::fmt::Display for AllocationMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

//! The campaign report across weeks (`campaigns/<campaign>/report/report.json`, `cpo campaign report`):
//! per segment, each arm's rate by week, the weights in force each week, cumulative successes against what
//! a fixed split would have earned, the week-stratified comparison with control, and the current best arm.
//! Aggregates only.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::model::experiment::{Metric, OutcomesSource};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignWeeksDoc {
    pub campaign: String,
    /// The metric every figure is about (the newest run's allocation metric).
    pub metric: Metric,
    pub generated_at: DateTime<Utc>,
    /// Every week of the ledger, oldest first.
    pub weeks: Vec<WeekInfo>,
    pub segments: Vec<SegmentWeeks>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeekInfo {
    pub run_id: String,
    pub date: NaiveDate,
    pub mode: crate::model::experiment::AllocationMode,
    /// Whose outcomes the week's analysis used; `none` when it has not been analysed yet.
    pub outcomes_source: OutcomesSource,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentWeeks {
    pub segment: String,
    /// Arms that appear in any week: control first, then tones by name.
    pub arms: Vec<String>,
    pub weeks: Vec<SegmentWeek>,
    /// Running totals over the analysed weeks.
    pub cumulative: Vec<Cumulative>,
    /// Each tone against control over the analysed weeks, stratified by week.
    pub versus_control: Vec<Stratified>,
    /// The arm most likely best now, from the Beta posteriors of the discounted counts (as next week's
    /// allocation would see them), control included.
    pub best: Option<Best>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentWeek {
    pub run_id: String,
    pub date: NaiveDate,
    /// Arm → share of the segment's non-holdout customers in force that week.
    pub weights: BTreeMap<String, f64>,
    /// Arm → counts and rate (empty until the week is analysed).
    pub arms: BTreeMap<String, ArmWeek>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmWeek {
    pub n: u64,
    pub successes: u64,
    pub rate: f64,
    /// Wilson 95% interval.
    pub ci_low: f64,
    pub ci_high: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cumulative {
    pub date: NaiveDate,
    /// Customers with the metric's event, summed over the analysed weeks so far.
    pub actual: u64,
    /// What the campaign's fixed `weights` (renormalised over each week's arms in force) would have earned on
    /// the same customers, at each arm's observed rate that week.
    pub fixed_split: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stratified {
    pub arm: String,
    /// Mantel–Haenszel difference `arm − control` over the weeks, with its 95% interval.
    pub diff: Option<f64>,
    pub diff_ci_low: Option<f64>,
    pub diff_ci_high: Option<f64>,
    /// Weeks compared (an arm and control both with customers).
    pub weeks: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub arm: String,
    /// Arm → chance it has the highest rate.
    pub prob_best: BTreeMap<String, f64>,
}

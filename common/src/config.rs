//! Campaign configuration (docs/architecture.md, "Campaign configuration"). Every field has a default so a minimal file
//! works; unknown fields are rejected so a typo never silently falls back to a default.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::StepError;
use crate::named::{GenerationProvider, RetrievalProvider, SafetyProvider};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignConfig {
    /// Campaign id (`[A-Za-z0-9_-]`).
    pub name: String,
    pub goal: String,
    /// Experiment id for assignment hashing; default `<name>-<as_of ISO week>`.
    pub experiment_id: Option<String>,
    /// The run date; `None` → latest date in the input (aggregate files: the input's last-modified date).
    pub as_of: Option<NaiveDate>,
    pub segmentation: Segmentation,
    /// Segment name → audiences of approved content; overrides the default map (`audiences_for`).
    pub audiences: BTreeMap<String, Vec<String>>,
    pub tones: Vec<String>,
    pub control: ControlMessage,
    /// Arm → weight (`control` plus one per tone); renormalised over the arms in force.
    pub weights: BTreeMap<String, f64>,
    /// Share of all customers held out of the campaign (receive nothing): the same customers every week (a
    /// hash of customer and campaign, not of the run).
    pub holdout: f64,
    /// Who is left out before assignment besides the store's suppression lists (docs/architecture.md,
    /// "A campaign over time").
    pub suppression: SuppressionConfig,
    /// At most `max_sends` messages per customer over `per_days` days, across every campaign of the store.
    pub contact_policy: Option<ContactPolicy>,
    pub generation: Generation,
    pub safety: Safety,
    pub retrieval: Retrieval,
    pub experiment: Experiment,
    /// Model → token prices in USD.
    pub prices: BTreeMap<String, Price>,
    pub simulation: Simulation,
    /// Outcomes files: send window, reject limit, the email service's export format. Left out of the
    /// serialized config (and so of the config digest) while it is the default.
    #[serde(skip_serializing_if = "crate::outcomes::OutcomesConfig::is_default")]
    pub outcomes: crate::outcomes::OutcomesConfig,
    /// How each week's customers are split between the arms: the fixed `weights`, or Thompson sampling over
    /// earlier weeks (docs/architecture.md, "A campaign over time"). Left out of the serialized config while
    /// it is the default, so fixed-weight campaigns keep their run ids.
    #[serde(skip_serializing_if = "Allocation::is_default")]
    pub allocation: Allocation,
}

/// `allocation: {mode, control_share, floor, metric, prior, decay}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Allocation {
    pub mode: AllocationMode,
    /// Thompson: share of the non-holdout customers that always get the control.
    pub control_share: f64,
    /// Thompson: least share of every shipped tone, so no tone stops being measured.
    pub floor: f64,
    /// Thompson: the metric a tone is judged on; `None` → `experiment.primary_metric`.
    pub metric: Option<crate::model::experiment::Metric>,
    /// Thompson: Beta prior of every tone's rate.
    pub prior: BetaPrior,
    /// Thompson: weight of a week's counts per week of age (1 = every week counts fully).
    pub decay: f64,
}

/// How customers are split between the arms (a model type: analyses and the campaign report record it).
pub use crate::model::experiment::AllocationMode;

/// Beta(alpha, beta) prior over a rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BetaPrior {
    pub alpha: f64,
    pub beta: f64,
}

impl Default for BetaPrior {
    fn default() -> Self {
        Self { alpha: 1.0, beta: 1.0 }
    }
}

impl Default for Allocation {
    fn default() -> Self {
        Self {
            mode: AllocationMode::Fixed,
            control_share: 0.25,
            floor: 0.05,
            metric: None,
            prior: BetaPrior::default(),
            decay: 0.8,
        }
    }
}

impl Allocation {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Check the fields against each other and the number of configured tones; `Err((field, why))`.
    pub fn validate(&self, tones: usize) -> Result<(), (String, String)> {
        let e = |f: &str, why: String| Err((format!("allocation.{f}"), why));
        if !(0.0..1.0).contains(&self.control_share) {
            return e("control_share", format!("{} must be in [0, 1)", self.control_share));
        }
        if !(0.0..=1.0).contains(&self.floor) {
            return e("floor", format!("{} must be in [0, 1]", self.floor));
        }
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return e("decay", format!("{} must be in (0, 1]", self.decay));
        }
        let BetaPrior { alpha, beta } = self.prior;
        if !(alpha.is_finite() && beta.is_finite() && alpha > 0.0 && beta > 0.0) {
            return e("prior", format!("alpha {alpha} and beta {beta} must be positive numbers"));
        }
        if let Some(m) = self.metric {
            if m.is_guardrail() {
                return e("metric", format!("{m} is a guardrail; choose open, click or convert"));
            }
        }
        let needed = self.control_share + self.floor * tones as f64;
        // A hair of tolerance so that 0.25 + 0.25 × 3 is accepted despite binary rounding.
        if needed > 1.0 + 1e-9 {
            return e(
                "floor",
                format!(
                    "control_share {} + floor {} × {tones} tones = {needed:.4} exceeds 1",
                    self.control_share, self.floor
                ),
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Segmentation {
    pub bins: u8,
    pub min_segment_size: u64,
    pub max_reject_ratio: f64,
    /// Canonical column name → header in the file.
    pub columns: BTreeMap<String, String>,
    /// `auto` (from the header), `customers` (aggregates) or `transactions`.
    pub format: String,
    /// Override of the R×F → segment name map: name → list of "R,F" cells like "5,4".
    pub names: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SuppressionConfig {
    /// A consent or opt-out column of the customers file.
    pub consent: Option<ConsentColumn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentColumn {
    /// The column's header in the customers file.
    pub column: String,
    /// `opt_in`: only customers whose value is yes/true/y/1 are contacted (reason `no_consent` otherwise);
    /// `opt_out`: customers whose value is yes/true/y/1 are left out (reason `opted_out`).
    #[serde(default)]
    pub kind: ConsentKind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentKind {
    #[default]
    OptIn,
    OptOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactPolicy {
    pub max_sends: u32,
    pub per_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlMessage {
    pub subject: String,
    pub preheader: String,
    pub body: String,
    pub cta: String,
}

impl ControlMessage {
    /// The control as the message customers receive (what safety screens and verdicts bind to).
    pub fn message(&self) -> crate::model::variant::Message {
        crate::model::variant::Message {
            subject: self.subject.clone(),
            preheader: self.preheader.clone(),
            body: self.body.clone(),
            cta: self.cta.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Generation {
    pub provider: GenerationProvider,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_version: Option<String>,
    /// Where the API key comes from: `env:VAR`, `aws-secrets:ARN`, `azure-keyvault:URL` (never the key).
    pub api_key: Option<String>,
    pub max_concurrency: usize,
    pub timeout_secs: u64,
    pub max_retries: u32,
    pub temperature: f64,
    pub subject_max_chars: usize,
    pub body_words: [usize; 2],
    /// Personalization tokens a message may use, e.g. `first_name`.
    pub allowed_tokens: Vec<String>,
    /// Merge field → text used when a customer has no value for it (`first_name: there` renders
    /// "Hi there," rather than "Hi ,"). A variant using a field that the customer file lacks and that has no
    /// default here is rejected at validation.
    pub merge_defaults: BTreeMap<String, String>,
    /// Upper bound on the tokens of one answer (`max_tokens` on the wire); unset = the server's default.
    /// Small local models can otherwise ramble until their context is full.
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Safety {
    /// Chained screeners; all must approve.
    pub providers: Vec<SafetyProvider>,
    pub policy: String,
    pub endpoint: Option<String>,
    pub api_key: Option<String>,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retrieval {
    pub provider: RetrievalProvider,
    pub top_k: usize,
    pub passages_per_doc: usize,
    pub endpoint: Option<String>,
    pub index: Option<String>,
    pub api_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Experiment {
    pub alpha: f64,
    pub power: f64,
    pub srm_alpha: f64,
    pub continuity_correction: bool,
    /// The metric the decision is about; an unknown name is rejected when the config loads.
    pub primary_metric: crate::model::experiment::Metric,
    /// Unsubscribe-rate increase vs control (absolute) that breaches the guardrail.
    pub guardrail_max_increase: f64,
    /// Rows per members part (segment), and so per assignments/send part, which pair one to one with the members
    /// parts (a shard's last part can be shorter).
    pub part_size: usize,
    /// Also write fully rendered messages next to the send list.
    pub render: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_1k: f64,
    pub output_per_1k: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Simulation {
    pub seed: u64,
    /// Tone → relative lift of the open probability.
    pub lifts: BTreeMap<String, f64>,
    pub base_open_rate: f64,
    pub click_ratio: f64,
    pub convert_ratio: f64,
    pub unsubscribe_rate: f64,
}

impl Default for CampaignConfig {
    fn default() -> Self {
        let tones: Vec<String> = ["urgent", "informational", "friendly"].map(String::from).to_vec();
        let mut weights = BTreeMap::new();
        weights.insert("control".to_string(), 0.25);
        for t in &tones {
            weights.insert(t.clone(), 0.25);
        }
        Self {
            name: "weekly".into(),
            goal: String::new(),
            experiment_id: None,
            as_of: None,
            segmentation: Segmentation::default(),
            audiences: BTreeMap::new(),
            tones,
            control: ControlMessage::default(),
            weights,
            holdout: 0.0,
            suppression: SuppressionConfig::default(),
            contact_policy: None,
            generation: Generation::default(),
            safety: Safety::default(),
            retrieval: Retrieval::default(),
            experiment: Experiment::default(),
            prices: BTreeMap::new(),
            simulation: Simulation::default(),
            outcomes: crate::outcomes::OutcomesConfig::default(),
            allocation: Allocation::default(),
        }
    }
}

impl Default for Segmentation {
    fn default() -> Self {
        Self {
            bins: 5,
            min_segment_size: 50,
            max_reject_ratio: 0.05,
            columns: BTreeMap::new(),
            format: "auto".into(),
            names: BTreeMap::new(),
        }
    }
}

impl Default for ControlMessage {
    fn default() -> Self {
        Self {
            subject: "News from us this week".into(),
            preheader: "A quick update for you".into(),
            body: "Thank you for being a customer. Here is what is new this week.".into(),
            cta: "See what's new".into(),
        }
    }
}

impl Default for Generation {
    fn default() -> Self {
        Self {
            provider: GenerationProvider::Offline,
            model: None,
            base_url: None,
            api_version: None,
            api_key: None,
            max_concurrency: 4,
            timeout_secs: 60,
            max_retries: 4,
            temperature: 0.7,
            subject_max_chars: 60,
            body_words: [60, 200],
            allowed_tokens: vec!["first_name".into(), "tier".into(), "location".into()],
            merge_defaults: BTreeMap::from([("first_name".to_string(), "there".to_string())]),
            max_tokens: None,
        }
    }
}

impl Default for Safety {
    fn default() -> Self {
        Self {
            providers: vec![SafetyProvider::Offline],
            policy: "policy/safety.yaml".into(),
            endpoint: None,
            api_key: None,
            timeout_secs: 20,
        }
    }
}

impl Default for Retrieval {
    fn default() -> Self {
        Self {
            provider: RetrievalProvider::Local,
            top_k: 5,
            passages_per_doc: 2,
            endpoint: None,
            index: None,
            api_key: None,
        }
    }
}

impl Default for Experiment {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            power: 0.8,
            srm_alpha: 0.001,
            continuity_correction: false,
            primary_metric: crate::model::experiment::Metric::Click,
            guardrail_max_increase: 0.005,
            part_size: 100_000,
            render: false,
        }
    }
}

impl Default for Simulation {
    fn default() -> Self {
        let lifts = [("urgent", 0.10), ("informational", 0.05), ("friendly", 0.15)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Self { seed: 7, lifts, base_open_rate: 0.25, click_ratio: 0.25, convert_ratio: 0.2, unsubscribe_rate: 0.003 }
    }
}

impl CampaignConfig {
    /// Parse and validate a YAML campaign file; `source` names the file in errors.
    pub fn from_yaml(text: &str, source: &str) -> Result<Self, StepError> {
        let cfg: CampaignConfig =
            serde_yaml_ng::from_str(text).map_err(|e| StepError::input(format!("{source}: {e}")))?;
        cfg.validate(source)?;
        Ok(cfg)
    }

    pub fn validate(&self, source: &str) -> Result<(), StepError> {
        let err = |field: &str, why: String| Err(StepError::input(format!("{source}: field `{field}`: {why}")));
        if crate::keys::check_id("campaign", &self.name).is_err() || self.name.len() > 40 {
            return err("name", format!("{:?} must be 1-40 characters of [A-Za-z0-9_-]", self.name));
        }
        if self.tones.is_empty() {
            return err("tones", "at least one tone is required".into());
        }
        for t in &self.tones {
            if crate::keys::check_id("tone", t).is_err() || t == "control" || t == "holdout" {
                return err("tones", format!("{t:?} is not a valid tone name"));
            }
        }
        for (arm, w) in &self.weights {
            if !(w.is_finite() && *w >= 0.0) {
                return err("weights", format!("{arm}: weight {w} must be a non-negative number"));
            }
            if arm != "control" && !self.tones.contains(arm) {
                return err("weights", format!("{arm:?} is neither `control` nor a tone"));
            }
        }
        if !(0.0..1.0).contains(&self.holdout) {
            return err("holdout", format!("{} must be in [0, 1)", self.holdout));
        }
        if let Some(p) = &self.contact_policy {
            if p.max_sends == 0 || p.per_days == 0 || p.per_days > 366 {
                return err("contact_policy", "max_sends must be at least 1 and per_days in 1..=366".into());
            }
        }
        if let Some(c) = &self.suppression.consent {
            if c.column.trim().is_empty() {
                return err("suppression.consent.column", "must name a column of the customers file".into());
            }
        }
        if !(0.0..=1.0).contains(&self.segmentation.max_reject_ratio) {
            return err("segmentation.max_reject_ratio", "must be in [0, 1]".into());
        }
        if self.segmentation.bins < 2 {
            return err("segmentation.bins", "must be at least 2".into());
        }
        if let Err((field, why)) = self.outcomes.validate() {
            return err(&field, why);
        }
        if let Err((field, why)) = self.allocation.validate(self.tones.len()) {
            return err(&field, why);
        }
        if self.experiment.primary_metric.is_guardrail() {
            return err(
                "experiment.primary_metric",
                format!(
                    "{} is a guardrail (an arm must not raise it); choose open, click or convert",
                    self.experiment.primary_metric
                ),
            );
        }
        Ok(())
    }

    /// Weight of an arm (a tone without an explicit weight gets the control's weight, else equal share).
    pub fn weight(&self, arm: &str) -> f64 {
        self.weights.get(arm).copied().unwrap_or_else(|| 1.0 / (self.tones.len() + 1) as f64)
    }

    /// The metric Thompson allocation judges tones on.
    pub fn allocation_metric(&self) -> crate::model::experiment::Metric {
        self.allocation.metric.unwrap_or(self.experiment.primary_metric)
    }

    /// Canonical JSON, the basis of the config digest in `run_id`.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        crate::keys::sha256_hex(&json)
    }

    /// Experiment id: configured, else `<name>-<ISO year>W<week>` of `as_of`.
    pub fn experiment_id(&self, as_of: NaiveDate) -> String {
        use chrono::Datelike;
        self.experiment_id.clone().unwrap_or_else(|| {
            let w = as_of.iso_week();
            format!("{}-{}W{:02}", self.name, w.year(), w.week())
        })
    }

    /// Audiences of approved content a segment may receive (configured, else the default map of docs/architecture.md,
    /// "Segments and content").
    pub fn audiences_for(&self, segment: &str) -> Vec<String> {
        if let Some(a) = self.audiences.get(segment) {
            return a.clone();
        }
        let default = match segment {
            "Champions" | "Loyal" | "Can't Lose" => "High-Value",
            "New" | "Promising" => "New Customer",
            "At Risk" | "About to Sleep" | "Hibernating" => "At-Risk",
            _ => "Standard",
        };
        vec![default.to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_example_parses() {
        let text = crate::bundled::campaign_yaml();
        let cfg = CampaignConfig::from_yaml(text, "examples/campaigns/weekly.yaml").unwrap();
        assert_eq!(cfg.name, "weekly");
        assert_eq!(cfg.tones.len(), 3);
    }

    #[test]
    fn unknown_field_is_named() {
        let e = CampaignConfig::from_yaml("name: x\ntonez: []\n", "c.yaml").unwrap_err();
        assert!(e.message.contains("c.yaml") && e.message.contains("tonez"), "{e}");
    }

    #[test]
    fn unknown_primary_metric_is_rejected_at_load() {
        let e = CampaignConfig::from_yaml("name: x\nexperiment: {primary_metric: clicks}\n", "c.yaml").unwrap_err();
        assert!(e.message.contains("c.yaml") && e.message.contains("clicks"), "{e}");
        assert!(e.message.contains("click") && e.message.contains("convert"), "lists the metrics: {e}");
        let e =
            CampaignConfig::from_yaml("name: x\nexperiment: {primary_metric: unsubscribe}\n", "c.yaml").unwrap_err();
        assert!(e.message.contains("experiment.primary_metric") && e.message.contains("guardrail"), "{e}");
        let cfg = CampaignConfig::from_yaml("name: x\nexperiment: {primary_metric: convert}\n", "c.yaml").unwrap();
        assert_eq!(cfg.experiment.primary_metric, crate::model::experiment::Metric::Convert);
    }

    #[test]
    fn weekly_fields_parse_and_are_checked() {
        let cfg = CampaignConfig::from_yaml(
            "name: x\ncontact_policy: {max_sends: 1, per_days: 7}\nsuppression: {consent: {column: opt_in}}\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(cfg.contact_policy, Some(ContactPolicy { max_sends: 1, per_days: 7 }));
        assert_eq!(cfg.suppression.consent.unwrap().kind, ConsentKind::OptIn);
        for bad in [
            "contact_policy: {max_sends: 0, per_days: 7}",
            "contact_policy: {max_sends: 1}",
            "suppression: {consent: {column: x, kind: maybe}}",
        ] {
            let e = CampaignConfig::from_yaml(&format!("name: x\n{bad}\n"), "c.yaml").unwrap_err();
            assert!(e.message.contains("c.yaml"), "{e}");
        }
    }

    #[test]
    fn allocation_parses_and_defaults_leave_the_digest_alone() {
        let fixed = CampaignConfig::from_yaml("name: x\n", "c.yaml").unwrap();
        let explicit = CampaignConfig::from_yaml("name: x\nallocation: {mode: fixed}\n", "c.yaml").unwrap();
        assert_eq!(fixed.digest(), explicit.digest(), "a default allocation is not serialized");
        let cfg = CampaignConfig::from_yaml(
            "name: x\nallocation: {mode: thompson, control_share: 0.2, floor: 0.1, metric: convert, \
             prior: {alpha: 2, beta: 50}, decay: 0.5}\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(cfg.allocation.mode, AllocationMode::Thompson);
        assert_eq!(cfg.allocation.prior, BetaPrior { alpha: 2.0, beta: 50.0 });
        assert_eq!(cfg.allocation_metric(), crate::model::experiment::Metric::Convert);
        assert_ne!(cfg.digest(), fixed.digest());
        let t = CampaignConfig::from_yaml("name: x\nallocation: {mode: thompson}\n", "c.yaml").unwrap();
        assert_eq!((t.allocation.control_share, t.allocation.floor, t.allocation.decay), (0.25, 0.05, 0.8));
        assert_eq!(t.allocation_metric(), crate::model::experiment::Metric::Click);
        // 0.25 + 0.25 × 3 = 1 exactly: allowed.
        CampaignConfig::from_yaml("name: x\nallocation: {mode: thompson, control_share: 0.25, floor: 0.25}\n", "c")
            .unwrap();
    }

    #[test]
    fn allocation_errors_name_the_field() {
        for (bad, field) in [
            ("{mode: thompson, control_share: 0.5, floor: 0.2}", "allocation.floor"),
            ("{mode: bandit}", "mode"),
            ("{mode: thompson, metric: clicks}", "clicks"),
            ("{mode: thompson, metric: unsubscribe}", "allocation.metric"),
            ("{mode: thompson, control_share: 1.2}", "allocation.control_share"),
            ("{mode: thompson, decay: 0}", "allocation.decay"),
            ("{mode: thompson, prior: {alpha: 0, beta: 1}}", "allocation.prior"),
            ("{mode: thompson, weights: {}}", "weights"),
        ] {
            let e = CampaignConfig::from_yaml(&format!("name: x\nallocation: {bad}\n"), "c.yaml").unwrap_err();
            assert!(e.message.contains("c.yaml") && e.message.contains(field), "{bad}: {e}");
        }
        let e = CampaignConfig::from_yaml(
            "name: x\nallocation: {mode: thompson, control_share: 0.5, floor: 0.2}\n",
            "c.yaml",
        )
        .unwrap_err();
        assert!(e.message.contains("exceeds 1") && e.message.contains("3 tones"), "{e}");
    }

    #[test]
    fn bad_weight_arm_is_named() {
        let e = CampaignConfig::from_yaml("name: x\nweights: {shouty: 1}\n", "c.yaml").unwrap_err();
        assert!(e.message.contains("weights"), "{e}");
    }
}

//! A season week's outcomes, drawn from the truth for the customers assign actually put on each arm — so the
//! weights in force (fixed or learned) decide how many customers see each arm's true rate.
//!
//! Each customer's draw is a keyed hash of (seed, week, customer id) → [0, 1): deterministic per seed,
//! independent of row order and part size, and the same number for a customer in a fixed and in a thompson
//! season of the same seed (common random numbers: the two policies differ only where they assign
//! differently). A customer clicks when the number is below its arm's true rate. The rows are what an email
//! service exports (`customer_id,event,timestamp`: `delivered` for everyone sent, `click` for clickers), so
//! ingest and analyze treat them exactly like a real export.

use std::collections::BTreeMap;

use bytes::Bytes;
use cpo_common::keys::RunKeys;
use cpo_common::{Key, StepError, Store};
use serde::{Deserialize, Serialize};

use super::truth::Truth;
use crate::assignment_ref;
use crate::parts::{blocking, list_parts};
use crate::plan::HOLDOUT;
use crate::simulate::Clock;

/// Why a week could not be drawn.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DrawError {
    #[error("the truth has no rate for arm {arm:?} of segment {segment:?} (week {week})")]
    NoRate { segment: String, arm: String, week: u32 },
    #[error("{0}")]
    Step(#[from] StepError),
}

/// Customers and clicks of one arm in one segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmTally {
    pub n: u64,
    pub clicks: u64,
}

/// A week's draw: segment → arm → tally (non-holdout), and the holdout's size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub segments: BTreeMap<String, BTreeMap<String, ArmTally>>,
    pub held_out: u64,
}

impl Tally {
    fn add(&mut self, segment: &str, arm: &str, click: bool) {
        let arms = match self.segments.get_mut(segment) {
            Some(a) => a,
            None => self.segments.entry(segment.to_string()).or_default(),
        };
        let t = match arms.get_mut(arm) {
            Some(t) => t,
            None => arms.entry(arm.to_string()).or_default(),
        };
        t.n += 1;
        t.clicks += u64::from(click);
    }

    fn merge(&mut self, other: Tally) {
        self.held_out += other.held_out;
        for (s, arms) in other.segments {
            let mine = self.segments.entry(s).or_default();
            for (a, t) in arms {
                let m = mine.entry(a).or_default();
                m.n += t.n;
                m.clicks += t.clicks;
            }
        }
    }

    /// Customers on any arm but the holdout.
    pub fn sent(&self) -> u64 {
        self.segments.values().flat_map(|a| a.values()).map(|t| t.n).sum()
    }

    /// Customers on `arm` across segments.
    pub fn arm(&self, arm: &str) -> ArmTally {
        self.segments
            .values()
            .filter_map(|a| a.get(arm))
            .fold(ArmTally::default(), |acc, t| ArmTally { n: acc.n + t.n, clicks: acc.clicks + t.clicks })
    }
}

/// The draw of one customer in one week: a uniform number in [0, 1) and the minute of its events.
pub fn customer_draw(seed: u64, week: u32, customer_id: &str) -> (f64, i64) {
    let d = crate::hashing::digest(&[b"cpo-season", &seed.to_le_bytes(), &week.to_le_bytes(), customer_id.as_bytes()]);
    let mut x = [0u8; 8];
    x.copy_from_slice(&d[..8]);
    let u = (u64::from_be_bytes(x) >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    // Within the first three days after the send: well inside any outcomes window.
    let minute = i64::from(u16::from_le_bytes([d[8], d[9]])) % (72 * 60);
    (u, minute)
}

/// Draws the rows of one assignments part.
pub struct WeekDraw {
    pub truth: Truth,
    pub week: u32,
    pub seed: u64,
    pub clock: Clock,
}

impl WeekDraw {
    pub fn part(&self, key: &Key, body: &[u8]) -> Result<(Vec<u8>, Tally), DrawError> {
        let mut tally = Tally::default();
        let mut csv = csv::Writer::from_writer(Vec::with_capacity(body.len() / 2));
        let mut failed: Option<DrawError> = None;
        assignment_ref::for_each(key, body, |a| {
            if a.arm == HOLDOUT {
                tally.held_out += 1;
                return Ok(());
            }
            let Some(p) = self.truth.rate(&a.segment, &a.arm, self.week) else {
                failed =
                    Some(DrawError::NoRate { segment: a.segment.to_string(), arm: a.arm.to_string(), week: self.week });
                return Err(StepError::input("no rate"));
            };
            let (u, minute) = customer_draw(self.seed, self.week, &a.customer_id);
            let click = u < p;
            let id = a.customer_id.as_bytes();
            csv.write_record([id, b"delivered", self.clock.at(0).as_bytes()]).map_err(csv_err)?;
            if click {
                csv.write_record([id, b"click", self.clock.at(minute.max(1)).as_bytes()]).map_err(csv_err)?;
            }
            tally.add(&a.segment, &a.arm, click);
            Ok(())
        })
        .map_err(|e| failed.take().unwrap_or(DrawError::Step(e)))?;
        let body = csv.into_inner().map_err(|e| StepError::internal(format!("season outcomes CSV: {e}")))?;
        Ok((body, tally))
    }
}

fn csv_err(e: csv::Error) -> StepError {
    StepError::internal(format!("season outcomes CSV: {e}"))
}

/// The week's outcomes file of a run (CSV with header) and its tally, from every assignments part.
pub async fn draw_run(
    store: &dyn Store,
    run_id: &str,
    draw: std::sync::Arc<WeekDraw>,
) -> Result<(Bytes, Tally), DrawError> {
    let keys = RunKeys::new(run_id).map_err(StepError::from)?;
    let mut out = b"customer_id,event,timestamp\n".to_vec();
    let mut tally = Tally::default();
    for key in list_parts(store, &keys.assignments_prefix(), "part-", ".jsonl").await? {
        let body = store.get(&key).await.map_err(StepError::from)?;
        let d = draw.clone();
        let drawn = blocking("season draw", move || {
            d.part(&key, &body).map_err(|e| match e {
                DrawError::Step(s) => s,
                other => StepError::input(other.to_string()),
            })
        })
        .await?;
        out.extend_from_slice(&drawn.0);
        tally.merge(drawn.1);
    }
    Ok((Bytes::from(out), tally))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::season::truth::Preset;

    fn week_draw(week: u32) -> WeekDraw {
        let tones: Vec<String> = ["urgent", "informational", "friendly"].map(String::from).to_vec();
        WeekDraw {
            truth: Preset::Stationary.truth(&["A".to_string()], &tones, 4),
            week,
            seed: 7,
            clock: Clock::new(chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()),
        }
    }

    fn part(n: usize, arm: &str) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{{\"customer_id\":\"C{i}\",\"segment\":\"A\",\"arm\":\"{arm}\",\"variant_id\":\"v\"}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn clicks_follow_the_truth_and_are_deterministic() {
        let key = Key::new("runs/r/assignments/part-00000.jsonl").unwrap();
        let d = week_draw(1);
        let (csv, t) = d.part(&key, &part(20_000, "urgent")).unwrap();
        let a = t.segments["A"]["urgent"];
        assert_eq!(a.n, 20_000);
        // 8% of 20,000 = 1,600 ± 3σ (σ ≈ 38).
        assert!((1_485..=1_715).contains(&a.clicks), "{a:?}");
        let text = String::from_utf8(csv.clone()).unwrap();
        assert_eq!(text.lines().filter(|l| l.contains(",delivered,")).count(), 20_000);
        assert_eq!(text.lines().filter(|l| l.contains(",click,")).count() as u64, a.clicks);
        assert!(text.starts_with("C0,delivered,2026-01-05T09:00:00Z"), "{}", &text[..60]);
        assert_eq!(d.part(&key, &part(20_000, "urgent")).unwrap().0, csv, "same seed, same file");
        let other = WeekDraw { seed: 8, ..week_draw(1) };
        assert_ne!(other.part(&key, &part(20_000, "urgent")).unwrap().0, csv, "another seed, another draw");
        let (_, ctrl) = d.part(&key, &part(20_000, "control")).unwrap();
        assert!((320..=480).contains(&ctrl.segments["A"]["control"].clicks), "2% of 20,000: {ctrl:?}");
    }

    #[test]
    fn holdout_is_counted_not_drawn_and_a_missing_rate_is_an_error() {
        let key = Key::new("runs/r/assignments/part-00000.jsonl").unwrap();
        let d = week_draw(2);
        let (csv, t) = d.part(&key, &part(5, "holdout")).unwrap();
        assert!(csv.is_empty() && t.held_out == 5 && t.sent() == 0);
        let e = d.part(&key, &part(1, "mystery")).unwrap_err();
        assert!(matches!(&e, DrawError::NoRate { arm, .. } if arm == "mystery"), "{e}");
        let e = d.part(&key, b"{\"customer_id\":\"C1\"}\n").unwrap_err();
        assert!(e.to_string().contains("part-00000.jsonl"), "{e}");
    }

    #[test]
    fn draws_are_uniform_and_keyed() {
        let n = 50_000;
        let mean = (0..n).map(|i| customer_draw(1, 1, &format!("C{i}")).0).sum::<f64>() / f64::from(n);
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        assert_ne!(customer_draw(1, 1, "C1").0, customer_draw(1, 2, "C1").0);
        assert_ne!(customer_draw(1, 1, "C1").0, customer_draw(2, 1, "C1").0);
        assert!((0..1000).all(|i| (0..72 * 60).contains(&customer_draw(3, 4, &format!("X{i}")).1)));
    }
}

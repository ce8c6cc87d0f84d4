//! `simulate` (demos only): seeded engagement events for the assigned customers, written as the single object
//! `outcomes/simulated-<seed>.csv` so the analysis machine follows exactly as it would for a real file. Every
//! figure computed from it is labelled `simulated`.
//!
//! Model, per customer (each customer has its own random stream, so results do not depend on row order):
//! delivered always; open with p = base × (1 + lift of the arm's tone), where base = the member's
//! `historical_open_rate` when present, else `simulation.base_open_rate` scaled by recency (R score 1…5 →
//! ×0.6…×1.4, so segments differ); click given open = `historical_click_rate / historical_open_rate` when both
//! are present, else `simulation.click_ratio`; convert given click = `simulation.convert_ratio`; unsubscribe
//! = `simulation.unsubscribe_rate` × (1 + lift). The holdout receives nothing and has no events.
//!
//! Members part i and assignments part i hold the same customers in the same order (see `assign`), so each
//! pair of parts is simulated on its own, on every core, and the CSV is streamed to the store in part order:
//! memory holds the parts in flight, never the whole file.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use cpo_common::config::Simulation;
use cpo_common::keys::RunKeys;
use cpo_common::run::RunInput;
use cpo_common::store::StoreError;
use cpo_common::{Ctx, Key, StepError, StepOutput};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::hashing::customer_seed;
use crate::member::{AssignmentRef, JsonLines, Str};
use crate::parts::{blocking, csv_error, list_parts, workers};
use crate::plan::HOLDOUT;

/// Minutes after the send time (09:00 UTC of the run date) within which each event happens.
const DELIVERED_WITHIN: i64 = 10;
const OPENED_FROM: i64 = 10;
const OPENED_WITHIN: i64 = 72 * 60;
const CLICKED_WITHIN: i64 = 60;
const CONVERTED_WITHIN: i64 = 24 * 60;
/// No event is later than this (open + click + convert delays).
const LAST_MINUTE: i64 = OPENED_WITHIN + CLICKED_WITHIN + CONVERTED_WITHIN;

pub async fn run(ctx: &Ctx, run: &RunInput, seed: u64) -> Result<StepOutput, StepError> {
    let store = ctx.store.as_ref();
    let keys = RunKeys::new(&run.run_id)?;
    let members = list_parts(store, &keys.members_prefix(), "members-", ".jsonl").await?;
    let assignments = list_parts(store, &keys.assignments_prefix(), "part-", ".jsonl").await?;
    if members.len() != assignments.len() {
        return Err(StepError::internal(format!(
            "run {}: {} assignments parts for {} members parts; they must pair up one to one: re-run the \
             assign step",
            run.run_id,
            assignments.len(),
            members.len()
        )));
    }
    let job = Arc::new(SimJob::new(run.config.simulation.clone(), seed, run.date));
    let events = Arc::new(AtomicU64::new(0));
    // The store sees a stream failure as its own error; the step's typed error is kept here to return it. Parts
    // run concurrently, so a later part can fail first: keep the error of the lowest part, the one the stream
    // yields first, so the message does not depend on timing.
    let failed: Arc<Mutex<Option<(usize, StepError)>>> = Arc::default();
    let key = keys.outcomes(&format!("simulated-{seed}.csv"))?;

    let header = futures::stream::once(async { Ok(Bytes::from_static(HEADER)) });
    let (events_in, failed_in, stream_key, shared) = (events.clone(), failed.clone(), key.clone(), ctx.store.clone());
    let body = futures::stream::iter(members.into_iter().zip(assignments).enumerate())
        .map(move |(index, (mkey, akey))| {
            let (store, job, events, failed, key) =
                (shared.clone(), job.clone(), events_in.clone(), failed_in.clone(), stream_key.clone());
            async move {
                let part = async {
                    let (m, a) = futures::try_join!(store.get(&mkey), store.get(&akey))?;
                    blocking("simulate", move || job.part(&mkey, &m, &akey, &a)).await
                };
                match part.await {
                    Ok((csv, n)) => {
                        events.fetch_add(n, Ordering::Relaxed);
                        Ok(Bytes::from(csv))
                    }
                    Err(e) => {
                        let reason = e.message.clone();
                        if let Ok(mut slot) = failed.lock() {
                            if slot.as_ref().is_none_or(|(first, _)| index < *first) {
                                *slot = Some((index, e));
                            }
                        }
                        Err(StoreError::Backend { key: key.to_string(), source: reason.into() })
                    }
                }
            }
        })
        .buffered(workers());
    let written = ctx.store.put_large(&key, header.chain(body).boxed()).await;
    if let Err(e) = written {
        let step_error = failed.lock().ok().and_then(|mut slot| slot.take()).map(|(_, e)| e);
        return Err(step_error.unwrap_or_else(|| e.into()));
    }
    let events = events.load(Ordering::Relaxed);
    tracing::info!(run_id = %run.run_id, seed, events, "simulated outcomes written (SIMULATED)");
    Ok(StepOutput::new(&run.run_id, "simulate").key("outcomes", &key).count("events", events).count("simulated", true))
}

const HEADER: &[u8] = b"customer_id,event,timestamp\n";

/// Everything a part needs, shared read-only by the workers.
pub struct SimJob {
    sim: Simulation,
    seed: u64,
    clock: Clock,
}

impl SimJob {
    pub fn new(sim: Simulation, seed: u64, date: NaiveDate) -> Self {
        Self { sim, seed, clock: Clock::new(date) }
    }

    /// The CSV rows (no header) of one pair of parts and their event count. The pair must hold the same
    /// customers in the same order; anything else means the assignments are not this members set's.
    pub fn part(
        &self,
        members_key: &Key,
        members: &[u8],
        assignments_key: &Key,
        assignments: &[u8],
    ) -> Result<(Vec<u8>, u64), StepError> {
        let (mut ml, mut al) = (JsonLines::new(members_key, members)?, JsonLines::new(assignments_key, assignments)?);
        // About 1.3 events per customer at ~40 bytes each, against ~90 bytes of assignment line.
        let mut csv = csv::Writer::from_writer(Vec::with_capacity(assignments.len() / 2));
        let mut events = 0u64;
        let misaligned = |what: &str, al: &JsonLines<'_>, ml: &JsonLines<'_>| {
            StepError::internal(format!(
                "{assignments_key} line {} and {members_key} line {}: {what}; the assignments parts must pair \
                 with the members parts (same customers, same order): re-run the assign step",
                al.line(),
                ml.line()
            ))
        };
        // Members that assign left out (suppressed or deferred: `suppressed/`) have no assignment line; the
        // others pair in order, so a member is skipped only on the way to the next assigned customer.
        while let Some(a) = al.next_row::<AssignmentRef<'_>>() {
            let a = a?;
            let m = loop {
                match ml.next_row::<SimMember<'_>>() {
                    Some(m) => {
                        let m = m?;
                        if m.customer_id == a.customer_id {
                            break m;
                        }
                    }
                    None => return Err(misaligned("different customers (or more assignments than members)", &al, &ml)),
                }
            };
            if a.arm.as_str() == HOLDOUT {
                continue;
            }
            let lift = self.sim.lifts.get(a.arm.as_str()).copied().unwrap_or(0.0);
            let profile = Profile {
                r: m.r,
                historical_open_rate: m.fields.open.as_ref().map(Str::as_str),
                historical_click_rate: m.fields.click.as_ref().map(Str::as_str),
            };
            let mut rng = StdRng::seed_from_u64(customer_seed(self.seed, a.customer_id.as_str()));
            for (event, minutes) in simulate_customer(&self.sim, &profile, lift, &mut rng) {
                for cell in [a.customer_id.as_str().as_bytes(), event.as_bytes(), self.clock.at(minutes).as_bytes()] {
                    csv.write_field(cell).map_err(csv_error("simulated outcomes"))?;
                }
                csv.write_record(std::iter::empty::<&[u8]>()).map_err(csv_error("simulated outcomes"))?;
                events += 1;
            }
        }
        let body = csv.into_inner().map_err(|e| StepError::internal(format!("simulated outcomes CSV: {e}")))?;
        Ok((body, events))
    }
}

/// What the model reads of a member.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Profile<'a> {
    pub r: u8,
    pub historical_open_rate: Option<&'a str>,
    pub historical_click_rate: Option<&'a str>,
}

/// One customer's events with minutes after the send time.
pub fn simulate_customer(sim: &Simulation, p: &Profile<'_>, lift: f64, rng: &mut StdRng) -> Vec<(&'static str, i64)> {
    let rate = |v: Option<&str>| v.and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite());
    let hist_open = rate(p.historical_open_rate).filter(|v| (0.0..=1.0).contains(v));
    let base = hist_open.unwrap_or_else(|| sim.base_open_rate * (0.6 + 0.2 * (f64::from(p.r.clamp(1, 5)) - 1.0)));
    let open_p = (base * (1.0 + lift)).clamp(0.0, 1.0);
    let click_ratio = match (hist_open, rate(p.historical_click_rate)) {
        (Some(o), Some(c)) if o > 0.0 && c >= 0.0 => (c / o).min(1.0),
        _ => sim.click_ratio,
    };
    let unsubscribe_p = (sim.unsubscribe_rate * (1.0 + lift)).clamp(0.0, 1.0);
    let mut out = Vec::with_capacity(5);
    out.push(("delivered", rng.random_range(0..DELIVERED_WITHIN)));
    if rng.random::<f64>() < open_p {
        let opened = rng.random_range(OPENED_FROM..OPENED_WITHIN);
        out.push(("open", opened));
        if rng.random::<f64>() < click_ratio {
            let clicked = opened + rng.random_range(0..CLICKED_WITHIN);
            out.push(("click", clicked));
            if rng.random::<f64>() < sim.convert_ratio {
                out.push(("convert", clicked + rng.random_range(1..CONVERTED_WITHIN)));
            }
        }
    }
    if rng.random::<f64>() < unsubscribe_p {
        out.push(("unsubscribe", rng.random_range(OPENED_FROM..OPENED_WITHIN)));
    }
    out
}

/// RFC 3339 timestamps (UTC, whole seconds) of every minute an event can happen at, formatted once per run:
/// chrono's formatting per event was a tenth of the step's time.
pub struct Clock {
    start: DateTime<Utc>,
    minutes: Vec<String>,
}

impl Clock {
    pub fn new(date: NaiveDate) -> Self {
        let start = Utc.from_utc_datetime(&date.and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default()));
        let minutes = (0..=LAST_MINUTE).map(|m| format_ts(start, m)).collect();
        Self { start, minutes }
    }

    /// The timestamp `minutes` after the send time.
    pub fn at(&self, minutes: i64) -> std::borrow::Cow<'_, str> {
        match usize::try_from(minutes).ok().and_then(|m| self.minutes.get(m)) {
            Some(s) => s.as_str().into(),
            // Outside the model's range: cannot happen today, still correct if the model changes.
            None => format_ts(self.start, minutes).into(),
        }
    }
}

fn format_ts(start: DateTime<Utc>, minutes: i64) -> String {
    (start + Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What `simulate` reads of a members line: the carried fields other than the two rates are skipped
/// without being collected.
#[derive(Debug, Deserialize)]
struct SimMember<'a> {
    #[serde(borrow)]
    customer_id: Str<'a>,
    r: u8,
    #[serde(borrow, default)]
    fields: Rates<'a>,
}

#[derive(Debug, Default)]
struct Rates<'a> {
    open: Option<Str<'a>>,
    click: Option<Str<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Rates<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Rates<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Rates::default();
                while let Some(name) = map.next_key::<Str<'a>>()? {
                    // A repeated name: the last one wins, as in the owned member's map.
                    match name.as_str() {
                        "historical_open_rate" => out.open = Some(map.next_value()?),
                        "historical_click_rate" => out.click = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_matches_chrono_at_every_minute() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let clock = Clock::new(date);
        assert_eq!(clock.at(0), "2026-11-25T09:00:00Z");
        assert_eq!(clock.at(15 * 60), "2026-11-26T00:00:00Z");
        assert_eq!(clock.at(LAST_MINUTE + 1), "2026-11-29T10:01:00Z", "past the table: formatted on demand");
        let start = Utc.from_utc_datetime(&date.and_hms_opt(9, 0, 0).unwrap());
        for m in [1, 59, 60, 901, LAST_MINUTE] {
            assert_eq!(clock.at(m), format_ts(start, m));
        }
    }

    #[test]
    fn sim_member_keeps_only_the_rates() {
        let line = br#"{"customer_id":"C1","line":2,"r":3,"segment":"New","fields":{"email":"a@b.c","historical_open_rate":"0.4","age":"7","historical_click_rate":"0.1"}}"#;
        let m: SimMember<'_> = serde_json::from_slice(line).unwrap();
        assert_eq!((m.customer_id.as_str(), m.r), ("C1", 3));
        assert_eq!(m.fields.open.unwrap().as_str(), "0.4");
        assert_eq!(m.fields.click.unwrap().as_str(), "0.1");
        let bare: SimMember<'_> = serde_json::from_slice(br#"{"customer_id":"C2","r":1}"#).unwrap();
        assert!(bare.fields.open.is_none() && bare.fields.click.is_none());
    }

    #[test]
    fn misaligned_parts_are_refused() {
        let job = SimJob::new(Simulation::default(), 7, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
        let (mk, ak) = (Key::new("r/members-00000.jsonl").unwrap(), Key::new("r/part-00000.jsonl").unwrap());
        let members = b"{\"customer_id\":\"C1\",\"r\":1}\n{\"customer_id\":\"C2\",\"r\":1}\n";
        let one = b"{\"customer_id\":\"C1\",\"arm\":\"control\"}\n";
        // A member without an assignment was left out by assign (suppressed or deferred): no events.
        let (csv, _) = job.part(&mk, members, &ak, one).unwrap();
        assert!(!String::from_utf8(csv).unwrap().contains("C2"));
        let swapped = b"{\"customer_id\":\"C2\",\"arm\":\"control\"}\n{\"customer_id\":\"C1\",\"arm\":\"control\"}\n";
        let e = job.part(&mk, members, &ak, swapped).unwrap_err();
        assert!(e.message.contains("line 2") && e.message.contains("different customers"), "{e}");
        let stranger = b"{\"customer_id\":\"C9\",\"arm\":\"control\"}\n";
        assert!(job.part(&mk, members, &ak, stranger).is_err());
        let (csv, n) = job
            .part(
                &mk,
                members,
                &ak,
                b"{\"customer_id\":\"C1\",\"arm\":\"holdout\"}\n{\"customer_id\":\"C2\",\"arm\":\"x\"}\n",
            )
            .unwrap();
        let text = String::from_utf8(csv).unwrap();
        assert!(n >= 1 && text.starts_with("C2,delivered,2026-11-25T09:0"), "holdout has no events: {text}");
        assert_eq!(text.lines().count() as u64, n);
    }
}

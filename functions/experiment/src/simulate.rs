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

use bytes::Bytes;
use chrono::{Duration, NaiveTime, TimeZone, Utc};
use cpo_common::config::Simulation;
use cpo_common::keys::RunKeys;
use cpo_common::model::experiment::Assignment;
use cpo_common::model::segment::Member;
use cpo_common::run::RunInput;
use cpo_common::{Ctx, StepError, StepOutput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::hashing::customer_seed;
use crate::parts::{list_parts, JsonlParts};
use crate::plan::HOLDOUT;

pub async fn run(ctx: &Ctx, run: &RunInput, seed: u64) -> Result<StepOutput, StepError> {
    let store = ctx.store.as_ref();
    let keys = RunKeys::new(&run.run_id)?;
    let sim = &run.config.simulation;
    let mut members = JsonlParts::<Member>::new(list_parts(store, &keys.members_prefix(), "members-", ".jsonl").await?);
    let mut assignments =
        JsonlParts::<Assignment>::new(list_parts(store, &keys.assignments_prefix(), "part-", ".jsonl").await?);
    let start = Utc.from_utc_datetime(&run.date.and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default()));
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(["customer_id", "event", "timestamp"]).map_err(csv_err)?;
    let mut events = 0u64;
    // Assignments were written in member order: walk both together.
    while let Some(a) = assignments.next(store).await? {
        let m = members
            .next(store)
            .await?
            .ok_or_else(|| StepError::internal(format!("run {}: more assignments than members", run.run_id)))?;
        if m.customer_id != a.customer_id {
            return Err(StepError::internal(format!(
                "run {}: assignments are not in member order; re-run the assign step",
                run.run_id
            )));
        }
        if a.arm == HOLDOUT {
            continue;
        }
        let lift = sim.lifts.get(&a.arm).copied().unwrap_or(0.0);
        let mut rng = StdRng::seed_from_u64(customer_seed(seed, &a.customer_id));
        for (event, minutes) in simulate_customer(sim, &m, lift, &mut rng) {
            let ts = (start + Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            csv.write_record([a.customer_id.as_str(), event, ts.as_str()]).map_err(csv_err)?;
            events += 1;
        }
    }
    let body = csv.into_inner().map_err(|e| StepError::internal(format!("simulated outcomes CSV: {e}")))?;
    let key = keys.outcomes(&format!("simulated-{seed}.csv"))?;
    ctx.store.put(&key, Bytes::from(body)).await?;
    tracing::info!(run_id = %run.run_id, seed, events, "simulated outcomes written (SIMULATED)");
    Ok(StepOutput::new(&run.run_id, "simulate").key("outcomes", &key).count("events", events).count("simulated", true))
}

/// One customer's events with minutes after the send time.
pub fn simulate_customer(sim: &Simulation, m: &Member, lift: f64, rng: &mut StdRng) -> Vec<(&'static str, i64)> {
    let field = |name: &str| m.fields.get(name).and_then(|v| v.trim().parse::<f64>().ok()).filter(|v| v.is_finite());
    let hist_open = field("historical_open_rate").filter(|v| (0.0..=1.0).contains(v));
    let base = hist_open.unwrap_or_else(|| sim.base_open_rate * (0.6 + 0.2 * (f64::from(m.r.clamp(1, 5)) - 1.0)));
    let open_p = (base * (1.0 + lift)).clamp(0.0, 1.0);
    let click_ratio = match (hist_open, field("historical_click_rate")) {
        (Some(o), Some(c)) if o > 0.0 && c >= 0.0 => (c / o).min(1.0),
        _ => sim.click_ratio,
    };
    let unsubscribe_p = (sim.unsubscribe_rate * (1.0 + lift)).clamp(0.0, 1.0);
    let mut out = vec![("delivered", rng.random_range(0..10))];
    if rng.random::<f64>() < open_p {
        let opened = rng.random_range(10..72 * 60);
        out.push(("open", opened));
        if rng.random::<f64>() < click_ratio {
            let clicked = opened + rng.random_range(0..60);
            out.push(("click", clicked));
            if rng.random::<f64>() < sim.convert_ratio {
                out.push(("convert", clicked + rng.random_range(1..24 * 60)));
            }
        }
    }
    if rng.random::<f64>() < unsubscribe_p {
        out.push(("unsubscribe", rng.random_range(10..72 * 60)));
    }
    out
}

fn csv_err(e: csv::Error) -> StepError {
    StepError::internal(format!("simulated outcomes CSV: {e}"))
}

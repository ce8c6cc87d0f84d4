//! Retriers and Catchers of Task, Parallel and Map states, and the backoff arithmetic.

use rand::Rng;

use super::path::Path;

/// `JitterStrategy` of a Retrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Jitter {
    None,
    /// A random delay between 0 and the computed one.
    Full,
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub jitter: Jitter,
}

impl Default for Retrier {
    /// The spec's defaults: 1 s, 3 attempts, rate 2.0, no cap, no jitter.
    fn default() -> Self {
        Self {
            error_equals: Vec::new(),
            interval_seconds: 1.0,
            max_attempts: 3,
            backoff_rate: 2.0,
            max_delay_seconds: None,
            jitter: Jitter::None,
        }
    }
}

impl Retrier {
    /// Seconds to wait before retry number `retry` (0 for the first) of this retrier, before jitter:
    /// `IntervalSeconds × BackoffRate^retry`, capped at `MaxDelaySeconds`.
    pub fn base_delay(&self, retry: u32) -> f64 {
        let delay = self.interval_seconds * self.backoff_rate.powi(retry as i32);
        match self.max_delay_seconds {
            Some(max) => delay.min(max),
            None => delay,
        }
    }

    /// The delay actually waited: the base delay, or a uniform draw in `[0, base]` under `FULL` jitter.
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> f64 {
        let base = self.base_delay(retry);
        match self.jitter {
            Jitter::None => base,
            Jitter::Full if base > 0.0 => rng.random_range(0.0..=base),
            Jitter::Full => 0.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    /// `None`: `"ResultPath": null` (the error output is discarded).
    pub result_path: Option<Path>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_follows_the_spec_example() {
        // "four retry attempts after waits of 3, 4.5, 6.75 and 10.125 seconds"
        let r = Retrier { interval_seconds: 3.0, max_attempts: 4, backoff_rate: 1.5, ..Retrier::default() };
        let delays: Vec<f64> = (0..4).map(|i| r.base_delay(i)).collect();
        assert_eq!(delays, vec![3.0, 4.5, 6.75, 10.125]);
        let capped = Retrier { max_delay_seconds: Some(5.0), ..r };
        assert_eq!(capped.base_delay(3), 5.0);
    }

    #[test]
    fn full_jitter_stays_within_the_base_delay() {
        let r = Retrier { interval_seconds: 2.0, jitter: Jitter::Full, ..Retrier::default() };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let draws: Vec<f64> = (0..50).map(|_| r.delay(2, &mut rng)).collect();
        assert!(draws.iter().all(|d| (0.0..=8.0).contains(d)));
        assert!(draws.iter().any(|d| (d - draws[0]).abs() > 1e-9), "jitter must vary");
    }
}

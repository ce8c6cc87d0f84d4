//! HTTP retry rules every provider client shares (generation, safety screening): how long a server asked us
//! to wait, and how long to wait when it did not say.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Exponential backoff with "equal jitter": half the step fixed, half random, so concurrent clients that
/// failed together do not retry together.
pub fn backoff(base: Duration, attempt: u32, cap: Duration) -> Duration {
    let step = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(cap);
    let half = step / 2;
    half + half.mul_f64(jitter(attempt))
}

/// A fraction in [0, 1) that differs between processes and calls: std's randomly keyed SipHash over the clock
/// and the attempt (no RNG crate needed for spreading retries).
fn jitter(attempt: u32) -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a date in the past means retry now");
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_grows_and_stays_within_bounds() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        for attempt in 1..8 {
            let full = base.saturating_mul(1 << (attempt - 1)).min(cap);
            let d = backoff(base, attempt, cap);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} outside [{:?}, {full:?}]", full / 2);
        }
    }
}

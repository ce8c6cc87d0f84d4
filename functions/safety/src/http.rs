//! Shared HTTP behaviour of the network screeners: a per-attempt timeout, retries with exponential backoff
//! on 429 and 5xx (honouring `Retry-After`), and every failure mapped to a [`ScreenError`] so the caller
//! blocks the text instead of guessing.

use std::time::Duration;

use bytes::Bytes;
use cpo_common::http::{backoff, retry_after};

use crate::screener::ScreenError;

/// Timeout and retry settings of one provider.
#[derive(Debug, Clone)]
pub struct HttpOpts {
    pub timeout: Duration,
    /// Retries after the first attempt (on 429, 5xx, timeouts and connection errors).
    pub max_retries: u32,
    /// First backoff; doubles each retry (with jitter: half fixed, half random), capped at `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for HttpOpts {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(20),
            max_retries: 3,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// One client for all providers of a process (connection reuse); timeouts are set per request.
pub fn client() -> Result<reqwest::Client, ScreenError> {
    reqwest::Client::builder()
        .user_agent(concat!("cpo-safety/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ScreenError::NotConfigured(format!("HTTP client: {e}")))
}

/// Send the request `build` makes until it succeeds or retries run out; the 2xx body on success.
pub async fn send_with_retry<F>(opts: &HttpOpts, provider: &str, build: F) -> Result<Bytes, ScreenError>
where
    F: Fn() -> reqwest::RequestBuilder,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let last = attempt > opts.max_retries;
        let wait = backoff(opts.backoff, attempt, opts.max_backoff);
        match build().timeout(opts.timeout).send().await {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    return resp.bytes().await.map_err(|e| {
                        if e.is_timeout() {
                            ScreenError::Timeout(attempt)
                        } else {
                            ScreenError::Network(e.to_string())
                        }
                    });
                }
                let retryable = status.as_u16() == 429 || status.is_server_error();
                if !retryable || last {
                    return Err(ScreenError::Status { status: status.as_u16(), attempts: attempt });
                }
                let after = retry_after(resp.headers()).map(|d| d.min(opts.max_backoff));
                tracing::warn!(provider, status = status.as_u16(), attempt, "provider asked us to retry");
                tokio::time::sleep(after.unwrap_or(wait)).await;
            }
            Err(e) => {
                let err =
                    if e.is_timeout() { ScreenError::Timeout(attempt) } else { ScreenError::Network(e.to_string()) };
                if last {
                    return Err(err);
                }
                tracing::warn!(provider, attempt, error = %err, "provider call failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

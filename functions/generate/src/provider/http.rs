//! One HTTP POST with the resilience a paid API needs: a per-request timeout, a process-wide bound on
//! concurrent requests per endpoint (so a Map of segments cannot stampede one server), and retries with
//! exponential backoff and jitter that honour `Retry-After` on 429 and 5xx.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use cpo_common::http::{backoff, retry_after};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use tokio::sync::Semaphore;

use super::ProviderError;

/// The process's HTTP client (connection pools are per client, so one client serves every call).
pub fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("cpo-generate/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    })
}

/// The concurrency bound of an endpoint, shared by every request this process sends to it.
fn limiter(endpoint: &str, permits: usize) -> Arc<Semaphore> {
    static LIMITERS: OnceLock<Mutex<HashMap<String, Arc<Semaphore>>>> = OnceLock::new();
    let map = LIMITERS.get_or_init(Default::default);
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(endpoint.to_string()).or_insert_with(|| Arc::new(Semaphore::new(permits.max(1)))).clone()
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub timeout: Duration,
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub max_backoff: Duration,
}

pub struct Transport {
    provider: &'static str,
    limiter: Arc<Semaphore>,
    policy: Policy,
}

/// Longest response excerpt kept in an error message.
const DETAIL_CHARS: usize = 300;

impl Transport {
    pub fn new(provider: &'static str, endpoint: &str, max_concurrency: usize, policy: Policy) -> Self {
        Self { provider, limiter: limiter(endpoint, max_concurrency), policy }
    }

    /// POST `body` as JSON; the successful response body, or the last failure once retries are spent.
    pub async fn post_json(
        &self,
        url: &reqwest::Url,
        headers: HeaderMap,
        body: &serde_json::Value,
    ) -> Result<Bytes, ProviderError> {
        self.post_json_unless(url, headers, body, |_| false).await
    }

    /// [`Transport::post_json`], except that an error response whose body satisfies `refused` (whatever its
    /// status, 5xx included) is returned at once as [`ProviderError::Rejected`]: the server has said what it
    /// will not do, and asking again cannot change that.
    pub async fn post_json_unless(
        &self,
        url: &reqwest::Url,
        headers: HeaderMap,
        body: &serde_json::Value,
        refused: fn(&str) -> bool,
    ) -> Result<Bytes, ProviderError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = {
                let _permit = self.limiter.acquire().await.map_err(|_| ProviderError::Unavailable {
                    provider: self.provider,
                    attempts: attempt,
                    detail: "request limiter closed".into(),
                })?;
                self.send_once(url, headers.clone(), body, refused).await
            };
            let (err, retry_after) = match outcome {
                Ok(bytes) => return Ok(bytes),
                Err(Failure::Final(e)) => return Err(e(attempt)),
                Err(Failure::Retryable { error, retry_after }) => (error, retry_after),
            };
            if attempt > self.policy.max_retries {
                return Err(err(attempt));
            }
            let wait = match retry_after {
                Some(d) if d > self.policy.max_backoff => {
                    // The server asks for a longer pause than a function should sleep through; the state
                    // machine's Retry waits instead, without billing.
                    return Err(err(attempt));
                }
                Some(d) => d,
                None => backoff(self.policy.backoff_base, attempt, self.policy.max_backoff),
            };
            tracing::warn!(
                provider = self.provider,
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %err(attempt),
                "provider call failed; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once(
        &self,
        url: &reqwest::Url,
        headers: HeaderMap,
        body: &serde_json::Value,
        refused: fn(&str) -> bool,
    ) -> Result<Bytes, Failure> {
        let provider = self.provider;
        let sent = client().post(url.clone()).headers(headers).json(body).timeout(self.policy.timeout).send().await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                let detail = if e.is_timeout() {
                    format!("no response within {}s", self.policy.timeout.as_secs_f64())
                } else {
                    format!("request failed: {}", without_url(&e))
                };
                return Err(Failure::retry(move |attempts| ProviderError::Unavailable {
                    provider,
                    attempts,
                    detail: detail.clone(),
                }));
            }
        };
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                let detail = if e.is_timeout() {
                    format!("response body not received within {}s", self.policy.timeout.as_secs_f64())
                } else {
                    format!("reading the response failed: {}", without_url(&e))
                };
                return Err(Failure::retry(move |attempts| ProviderError::Unavailable {
                    provider,
                    attempts,
                    detail: detail.clone(),
                }));
            }
        };
        if status.is_success() {
            return Ok(bytes);
        }
        let detail = format!("HTTP {status}: {}", excerpt(&bytes));
        if status != StatusCode::TOO_MANY_REQUESTS && refused(&String::from_utf8_lossy(&bytes)) {
            let detail = excerpt(&bytes);
            return Err(Failure::Final(Box::new(move |_| ProviderError::Rejected {
                provider,
                status: status.as_u16(),
                detail: detail.clone(),
            })));
        }
        match status {
            StatusCode::TOO_MANY_REQUESTS => Err(Failure::Retryable {
                error: Box::new(move |attempts| ProviderError::Throttled {
                    provider,
                    attempts,
                    detail: detail.clone(),
                }),
                retry_after,
            }),
            s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => Err(Failure::Retryable {
                error: Box::new(move |attempts| ProviderError::Unavailable {
                    provider,
                    attempts,
                    detail: detail.clone(),
                }),
                retry_after,
            }),
            s => {
                let detail = excerpt(&bytes);
                Err(Failure::Final(Box::new(move |_| ProviderError::Rejected {
                    provider,
                    status: s.as_u16(),
                    detail: detail.clone(),
                })))
            }
        }
    }
}

type MakeError = Box<dyn Fn(u32) -> ProviderError + Send + Sync>;

/// A failed attempt: the error it becomes (given the attempt count) and whether another attempt may help.
enum Failure {
    Final(MakeError),
    Retryable { error: MakeError, retry_after: Option<Duration> },
}

impl Failure {
    fn retry(f: impl Fn(u32) -> ProviderError + Send + Sync + 'static) -> Self {
        Failure::Retryable { error: Box::new(f), retry_after: None }
    }
}

/// reqwest errors print the URL, which for Azure Key Vault or a proxy may carry query secrets; drop it.
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(url.as_str(), "<endpoint>");
    }
    cpo_common::error::with_sources(msg, e)
}

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text: String = text.chars().filter(|c| !c.is_control() || *c == ' ').take(DETAIL_CHARS).collect();
    if text.is_empty() {
        "(empty body)".into()
    } else {
        text
    }
}

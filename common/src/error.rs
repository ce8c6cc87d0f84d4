//! Typed step errors. Their names (`Cpo.InputInvalid`, …) are what the state machines' `Retry` and `Catch`
//! match in `ErrorEquals`, so they are part of the public contract and must never be renamed.

use std::fmt;

/// The class of a step failure; decides whether the state machine retries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// Bad input data or configuration: retrying cannot help.
    InputInvalid,
    /// A provider rate-limited us: retry with backoff.
    ProviderThrottled,
    /// A provider failed or timed out: retry with backoff.
    ProviderUnavailable,
    /// Nothing could be screened: the run must stop (fail closed).
    SafetyUnavailable,
    /// A bug or an infrastructure failure (storage, serialization).
    Internal,
}

impl ErrorKind {
    /// A provider throttled or failed: the request may succeed later, the input is not at fault.
    pub fn is_provider(self) -> bool {
        matches!(self, ErrorKind::ProviderThrottled | ErrorKind::ProviderUnavailable)
    }

    /// The error name as Step Functions sees it (`errorType` of the Lambda response).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InputInvalid => "Cpo.InputInvalid",
            ErrorKind::ProviderThrottled => "Cpo.ProviderThrottled",
            ErrorKind::ProviderUnavailable => "Cpo.ProviderUnavailable",
            ErrorKind::SafetyUnavailable => "Cpo.SafetyUnavailable",
            ErrorKind::Internal => "Cpo.Internal",
        }
    }
}

/// `head`, then the message of every error in `e`'s source chain, each after `": "` (libraries often keep the
/// useful part — an I/O or TLS failure — in a source that their own message leaves out).
pub fn with_sources(mut head: String, e: &(dyn std::error::Error + 'static)) -> String {
    let mut source = e.source();
    while let Some(s) = source {
        head.push_str(": ");
        head.push_str(&s.to_string());
        source = s.source();
    }
    head
}

/// A step failure: a kind the state machine can match and a message a human can act on
/// (it names the file, line and field where the input is at fault).
#[derive(Debug, Clone, thiserror::Error)]
pub struct StepError {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl StepError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InputInvalid, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn throttled(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ProviderThrottled, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ProviderUnavailable, message)
    }
    pub fn safety_unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::SafetyUnavailable, message)
    }
}

impl From<crate::store::StoreError> for StepError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::InvalidKey { .. } => StepError::input(e.to_string()),
            _ => StepError::internal(e.to_string()),
        }
    }
}

impl From<crate::keys::KeyError> for StepError {
    fn from(e: crate::keys::KeyError) -> Self {
        StepError::input(e.to_string())
    }
}

impl From<serde_json::Error> for StepError {
    fn from(e: serde_json::Error) -> Self {
        StepError::internal(format!("JSON: {e}"))
    }
}

/// Lambda reports the error type and message to Step Functions, which matches `ErrorEquals` on the type.
impl From<StepError> for lambda_runtime::Diagnostic {
    fn from(e: StepError) -> Self {
        lambda_runtime::Diagnostic { error_type: e.kind.name().to_string(), error_message: e.message }
    }
}

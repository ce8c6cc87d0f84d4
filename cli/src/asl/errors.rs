//! Error names of the States Language and how `ErrorEquals` matches them.

pub use super::Failure;

pub const ALL: &str = "States.ALL";
pub const TASK_FAILED: &str = "States.TaskFailed";
pub const TIMEOUT: &str = "States.Timeout";
pub const RUNTIME: &str = "States.Runtime";
pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";

/// Payload limit of Step Functions (256 KiB), applied to Task input and output.
pub const PAYLOAD_LIMIT: usize = 256 * 1024;

pub fn runtime(cause: impl Into<String>) -> Failure {
    Failure { error: RUNTIME.into(), cause: cause.into() }
}

/// Terminal errors end the execution: no Retry or Catch applies, not even one naming them
/// (`States.Runtime`: "not retriable, will always cause the execution to fail").
pub fn is_terminal(name: &str) -> bool {
    name == RUNTIME
}

/// Does a Retrier's or Catcher's `ErrorEquals` match `error`, raised by a state of type `state_type`?
/// `States.ALL` matches every error but the terminal ones and `States.DataLimitExceeded`, which only an explicit
/// name catches; `States.TaskFailed` matches any error a Task raises except `States.Timeout`.
pub fn matches(error_equals: &[String], error: &str, raised_by_task: bool) -> bool {
    if is_terminal(error) {
        return false;
    }
    error_equals.iter().any(|name| match name.as_str() {
        ALL => error != DATA_LIMIT_EXCEEDED,
        TASK_FAILED => raised_by_task && error != TIMEOUT && error != DATA_LIMIT_EXCEEDED,
        other => other == error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcards() {
        assert!(matches(&names(&[ALL]), "Cpo.Internal", true));
        assert!(matches(&names(&[ALL]), TIMEOUT, true));
        assert!(!matches(&names(&[ALL]), RUNTIME, true));
        assert!(!matches(&names(&[RUNTIME]), RUNTIME, true));
        assert!(!matches(&names(&[ALL]), DATA_LIMIT_EXCEEDED, true));
        assert!(matches(&names(&[DATA_LIMIT_EXCEEDED]), DATA_LIMIT_EXCEEDED, true));
        assert!(matches(&names(&[TASK_FAILED]), "Lambda.Unknown", true));
        assert!(!matches(&names(&[TASK_FAILED]), TIMEOUT, true));
        assert!(!matches(&names(&[TASK_FAILED]), "Cpo.Internal", false));
        assert!(matches(&names(&["A", "B"]), "B", false));
        assert!(!matches(&names(&["A"]), "a", false));
    }
}

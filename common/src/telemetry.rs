//! Structured logs with `tracing`: JSON for Lambda (CloudWatch), compact text for the CLI.

use tracing_subscriber::{fmt, EnvFilter};

/// JSON logs on stdout, level from `RUST_LOG` (default `info`). Call once in a Lambda `main`.
pub fn init_lambda() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time() // CloudWatch stamps every line
        .try_init();
}

/// Human logs on stderr for the CLI; `default` applies when `RUST_LOG` is unset. Colours only when stderr is
/// a terminal and `NO_COLOR` is unset or empty (no escape codes in a log file or pipe).
pub fn init_cli(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = cli_colours(std::io::IsTerminal::is_terminal(&std::io::stderr()), std::env::var_os("NO_COLOR"));
    let _ = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .compact()
        .try_init();
}

/// Whether CLI output may use colours: on a terminal, unless `NO_COLOR` is set to a non-empty value
/// (<https://no-color.org>).
pub fn cli_colours(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

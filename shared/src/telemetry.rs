//! Tracing set-up shared by every binary: JSON lines in Lambda, human-readable text locally.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber once. `RUST_LOG` filters (default `info`); `LOG_FORMAT=text`
/// forces text, otherwise JSON is used whenever `AWS_LAMBDA_FUNCTION_NAME` is set.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT")
        .map(|f| f == "json")
        .unwrap_or_else(|_| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some());
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.with_target(false).try_init()
    };
}

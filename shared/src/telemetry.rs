//! Tracing set-up shared by every binary: JSON lines in Lambda, human-readable text locally.
//!
//! Whatever `RUST_LOG` says, the Lambda runtime's own targets (`lambda_runtime*`, `lambda_http`)
//! log at most `info` (at `trace` they print each raw event: bearer keys, handshake tokens, SQS
//! bodies), and the AWS SDK's orchestrator at most `debug` (at `trace` it prints request bodies:
//! the secret on `PutSecretValue`, task messages on `SendMessage`).

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, FilterFn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// Targets (prefixes) that never log above a level, whatever `RUST_LOG` says.
const CAPPED: [(&str, Level); 3] =
    [("lambda_runtime", Level::INFO), ("lambda_http", Level::INFO), ("aws_smithy_runtime", Level::DEBUG)];

/// Installs the global subscriber once. `RUST_LOG` filters (default `info`); `LOG_FORMAT=text`
/// forces text, otherwise JSON is used whenever `AWS_LAMBDA_FUNCTION_NAME` is set.
pub fn init() {
    let json = std::env::var("LOG_FORMAT")
        .map(|f| f == "json")
        .unwrap_or_else(|_| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some());
    let rust_log = std::env::var("RUST_LOG").ok();
    let _ = subscriber(rust_log.as_deref(), json, std::io::stderr).try_init();
}

/// The subscriber [`init`] installs, writing to `writer` (tests capture it).
pub fn subscriber<W>(rust_log: Option<&str>, json: bool, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = rust_log.and_then(|d| EnvFilter::try_new(d).ok()).unwrap_or_else(|| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(writer);
    let layered: Box<dyn tracing::Subscriber + Send + Sync> = if json {
        Box::new(builder.json().flatten_event(true).with_current_span(true).finish().with(cap()))
    } else {
        Box::new(builder.with_target(false).finish().with(cap()))
    };
    layered
}

/// The cap on [`CAPPED`] targets, as a global filter.
fn cap() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    filter_fn(allowed as fn(&Metadata<'_>) -> bool)
}

fn allowed(meta: &Metadata<'_>) -> bool {
    CAPPED.iter().all(|(prefix, max)| !meta.target().starts_with(prefix) || meta.level() <= max)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn rust_log_trace_never_shows_the_runtimes_raw_events() {
        for json in [true, false] {
            for rust_log in ["trace", "lambda_runtime=trace,lambda_runtime::layers::api_response=trace,trace"] {
                let buffer = Buffer::default();
                let writer = buffer.clone();
                let subscriber = super::subscriber(Some(rust_log), json, move || writer.clone());
                tracing::subscriber::with_default(subscriber, || {
                    tracing::trace!(target: "lambda_runtime::layers::api_response", body = "Bearer KEY_1", "raw JSON event received from Lambda");
                    tracing::debug!(target: "lambda_runtime", "debug SECRET_2");
                    tracing::trace!(target: "lambda_http", "trace SECRET_3");
                    tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", request = "PUT SECRET_4", "transmitting request");
                    tracing::info!(target: "lambda_runtime", "runtime info kept");
                    tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "sdk debug kept");
                    tracing::trace!(target: "shared::api", "own trace kept");
                });
                let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
                for secret in ["KEY_1", "SECRET_2", "SECRET_3", "SECRET_4"] {
                    assert!(!text.contains(secret), "RUST_LOG={rust_log} json={json}: {secret} printed");
                }
                for kept in ["runtime info kept", "sdk debug kept", "own trace kept"] {
                    assert!(text.contains(kept), "RUST_LOG={rust_log} json={json}: {kept:?} missing");
                }
            }
        }
    }
}

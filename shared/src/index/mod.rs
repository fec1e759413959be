//! The search index's engine-free parts: settings and credentials, errors, the pure bulk encoder and
//! per-item decisions ([`bulk`]), and the retry policy ([`retry`]). The engine itself (client,
//! bulk sender, content store, run records, mapping) is in `crate::adapters::search`.

pub mod bulk;
pub mod retry;

use std::time::Duration;

pub use bulk::{BulkLimits, BulkReport, FailedDoc};
pub use retry::RetryPolicy;

use crate::secrets::SecretString;

/// Errors of the index layer. Item-level rejections are not errors: they are reported in
/// [`BulkReport::failed`].
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The client could not be built (bad URL, bad credentials).
    #[error("search client set-up: {0}")]
    Setup(String),
    /// The engine did not answer usefully within the retry budget (connection refused, timeouts,
    /// 429/5xx); worth retrying later (the task is redelivered).
    #[error("search engine unavailable after {attempts} attempts over {elapsed_ms} ms: {last}")]
    Unavailable { attempts: u32, elapsed_ms: u64, last: String },
    /// A final, non-retryable answer (4xx other than 429).
    #[error("search engine refused {what}: HTTP {status}: {reason}")]
    Refused { what: String, status: u16, error_type: String, reason: String },
    /// The engine answered something this layer does not understand.
    #[error("unexpected search engine response to {what}: {detail}")]
    Protocol { what: String, detail: String },
    /// Some operations of a bulk deletion failed for good (the rest were applied).
    #[error("{failed} of {total} deletions failed, first: {first}")]
    DeleteFailed { failed: usize, total: usize, first: String },
    /// `_delete_by_query` reported failures (what it could delete, it deleted).
    #[error("delete by query on {index} deleted {deleted} documents but reported failures: {first}")]
    DeleteByQuery { index: String, deleted: u64, first: String },
}

impl IndexError {
    /// Whether a later retry of the whole operation may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            IndexError::Unavailable { .. } | IndexError::DeleteByQuery { .. } | IndexError::DeleteFailed { .. }
        )
    }
}

/// Credentials for the search engine: basic auth or an API key (`id:key`, or already
/// base64-encoded). `Debug` never prints them (each is a [`SecretString`]).
#[derive(Debug, Clone, Default)]
pub struct SearchCredentials {
    pub username: Option<SecretString>,
    pub password: Option<SecretString>,
    pub api_key: Option<SecretString>,
}

/// Where and how to reach the index. `SearchSettings::new(url, index)` gives the defaults.
#[derive(Debug, Clone)]
pub struct SearchSettings {
    /// Engine URL, e.g. `http://127.0.0.1:9200`.
    pub url: String,
    /// Content index name; runs and tasks live in `{index}-runs` and `{index}-tasks`.
    pub index: String,
    pub credentials: SearchCredentials,
    pub shards: u32,
    pub replicas: u32,
    /// Timeout of one HTTP request (long-running deletions get their own, longer one).
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub bulk: BulkLimits,
}

impl SearchSettings {
    pub fn new(url: impl Into<String>, index: impl Into<String>) -> Self {
        SearchSettings {
            url: url.into(),
            index: index.into(),
            credentials: SearchCredentials::default(),
            shards: 1,
            replicas: 0,
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            bulk: BulkLimits::default(),
        }
    }
}

/// The run records index beside a content index.
pub fn runs_index(index: &str) -> String {
    format!("{index}-runs")
}

/// The task records index beside a content index.
pub fn tasks_index(index: &str) -> String {
    format!("{index}-tasks")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_in_debug() {
        let creds =
            SearchCredentials { username: Some("elastic".into()), password: Some("hunter2".into()), api_key: None };
        let shown = format!("{creds:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("elastic"), "{shown}");
        assert!(shown.contains("[redacted]") && shown.contains("None"), "{shown}");
        let settings = SearchSettings { credentials: creds, ..SearchSettings::new("http://x:9200", "i") };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}

//! Typed configuration, validated before any I/O.
//!
//! Two sources:
//! - [`Settings`]: the functions' environment variables (docs/DESIGN.md, "Environment of the functions");
//! - [`ConnectorConfig`]: the connector configuration document (the `CONNECTOR_CONFIG` variable holds its JSON, or
//!   locally a path to a JSON file), with the Elastic Notion connector's keys and sync rules. docs/CONFIGURATION.md
//!   documents every key with its default and an example.
//!
//! Secrets are not here: see [`crate::secrets`].
//!
//! Every error names the variable or the JSON path (a JSON pointer such as `/sync_rules/basic/0/rule`) and what is
//! wrong with it.

mod connector;
mod settings;
#[cfg(test)]
mod tests;

pub use connector::{ConnectorConfig, SyncRules, TitleSelection};
pub use settings::Settings;

use serde_json::Value;

use crate::rules::RulesError;

pub const DEFAULT_SECRET_ID: &str = "notion-es/secrets";
pub const DEFAULT_NOTION_BASE_URL: &str = "https://api.notion.com";
pub const DEFAULT_NOTION_RATE: f64 = 3.0;
pub const DEFAULT_WORKER_CONCURRENCY: u32 = 2;
pub const DEFAULT_SEARCH_URL: &str = "http://127.0.0.1:9200";
pub const DEFAULT_INDEX_NAME: &str = "search-notion";
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 3;
pub const DEFAULT_FINALIZE_DELAY_SECONDS: u32 = 60;
/// A planning run's lease: the planner's timeout (900 s) plus a margin.
pub const DEFAULT_PLANNING_LEASE_SECONDS: u32 = 1200;
/// A running run's lease: a finalize message that fails is retried after the finalize queue's 1,800 s visibility
/// timeout, twice before it reaches the DLQ, so only a run unchecked for longer than that (and a few finalize
/// delays) has lost its finalize chain.
pub const DEFAULT_RUN_LEASE_SECONDS: u32 = 2 * 1800 + 5 * 60;
pub const DEFAULT_CONCURRENT_DOWNLOADS: u32 = 30;
/// 10 MiB, the Elastic framework's `max_file_download_size`.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;
/// Hard cap of `max_file_size` (100 MiB): a download buffer never grows past it.
pub const MAX_FILE_SIZE_CAP: u64 = 100 * 1024 * 1024;
/// Share of the function's memory that downloads in flight (`concurrent_downloads × max_file_size`) may take; the
/// rest is for extraction, documents and the runtime.
pub const DOWNLOAD_MEMORY_PERCENT: u64 = 50;

/// An invalid setting or configuration document.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An environment variable is missing or invalid.
    #[error("environment variable {name}: {problem}")]
    Env { name: &'static str, problem: String },
    /// A key of the configuration document is unknown, of the wrong type or out of range.
    #[error("configuration {}: {problem}", if path.is_empty() { "/" } else { path })]
    Invalid { path: String, problem: String },
    /// A sync rule is invalid; its path is prefixed with `/sync_rules/basic` or `/sync_rules/advanced`.
    #[error("configuration {0}")]
    Rules(RulesError),
    /// The configuration document is not JSON.
    #[error("configuration is not valid JSON (line {line}, column {column}): {message}")]
    Json { line: usize, column: usize, message: String },
    /// The configuration file could not be read.
    #[error("configuration file {path}: {message}")]
    File { path: String, message: String },
    /// `CONNECTOR_CONFIG` holds an invalid configuration document.
    #[error("environment variable CONNECTOR_CONFIG: {0}")]
    ConnectorConfig(Box<ConfigError>),
}

fn invalid(path: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { path: path.into(), problem: problem.into() }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The content index when `INDEX_NAME` is not set: `search-notion`, or `search-notion-{stack}` under a
/// CloudFormation stack other than the documented `notion-es`, so two stacks on one cluster never
/// share run records or remove each other's documents.
pub fn default_index_name(stack: Option<&str>) -> String {
    match stack {
        Some(stack) if stack != "notion-es" => format!("{DEFAULT_INDEX_NAME}-{}", stack.to_lowercase()),
        _ => DEFAULT_INDEX_NAME.to_owned(),
    }
}

/// Elasticsearch / OpenSearch index name rules (the `-runs` and `-tasks` suffixes are added to it).
fn check_index_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 240 {
        return Err(format!("{name:?} is longer than 240 bytes"));
    }
    if name != name.to_lowercase() {
        return Err(format!("{name:?} must be lower-case"));
    }
    if name.starts_with(['-', '_', '+', '.']) {
        return Err(format!("{name:?} must not start with '-', '_', '+' or '.'"));
    }
    if let Some(c) = name.chars().find(|c| r#"\/*?"<>| ,#:"#.contains(*c)) {
        return Err(format!("{name:?} must not contain {c:?}"));
    }
    Ok(())
}

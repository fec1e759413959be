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

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};
use url::Url;

use crate::notion::ApiVersion;
use crate::rules::{AdvancedRules, BasicRules, RulesError};

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

// ---------------------------------------------------------------------------------------------------------------
// Environment

/// The functions' settings, from environment variables (see docs/DESIGN.md). Build with [`Settings::from_env`], or
/// [`Settings::from_map`] in tests. Empty variables count as unset.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `SECRET_ID`: Secrets Manager id or ARN of the secret (default `notion-es/secrets`).
    pub secret_id: String,
    /// `NOTION_BASE_URL`: Notion API base, without `/v1` (default `https://api.notion.com`).
    pub notion_base_url: Url,
    /// `NOTION_VERSION` (default `2025-09-03`); the configuration document's `notion_version` takes precedence.
    pub notion_version: ApiVersion,
    /// `NOTION_RATE`: requests per second for the whole integration, shared by all workers (default 3).
    pub notion_rate: f64,
    /// `WORKER_CONCURRENCY`: maximum concurrent worker invocations (default 2).
    pub worker_concurrency: u32,
    /// `SEARCH_URL`: the search engine (default `http://127.0.0.1:9200`); credentials belong in the secret.
    pub search_url: Url,
    /// `INDEX_NAME`: the content index (default `search-notion`); the configuration's `index_name` takes precedence.
    pub index_name: String,
    /// `WORK_QUEUE_URL` (required).
    pub work_queue_url: String,
    /// `FINALIZE_QUEUE_URL` (required).
    pub finalize_queue_url: String,
    /// `MAX_RECEIVE_COUNT`: the work queue's redrive `maxReceiveCount` (default 3).
    pub max_receive_count: u32,
    /// `FINALIZE_DELAY_SECONDS`: delay of the finalize message and its re-checks, 0..=900 (default 60).
    pub finalize_delay_seconds: u32,
    /// `PLANNING_LEASE_SECONDS`: how long a run may stay in `planning` without a sign of its planner before it
    /// counts as dead and is closed as failed when the next run starts, 1..=86400 (default 1200).
    pub planning_lease_seconds: u32,
    /// `RUN_LEASE_SECONDS`: the same for a `running` run without a finalize check, 1..=86400 (default 3900).
    pub run_lease_seconds: u32,
    /// `CONNECTOR_CONFIG`: the configuration document (default `{}`: everything, no rules).
    pub connector: ConnectorConfig,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (MB, set by Lambda): bounds the downloads in flight, see
    /// [`Settings::check_download_memory`]. `None` outside Lambda.
    pub function_memory_mb: Option<u64>,
}

fn env_err(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Env { name, problem: problem.into() }
}

/// The trimmed value, `None` when unset or empty.
fn var<'a>(vars: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn required<'a>(vars: &'a HashMap<String, String>, name: &'static str) -> Result<&'a str, ConfigError> {
    match vars.get(name) {
        None => Err(env_err(name, "is required but not set")),
        Some(_) => var(vars, name).ok_or_else(|| env_err(name, "is required but empty")),
    }
}

fn http_url(name: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| env_err(name, format!("{value:?} is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(env_err(name, format!("{value:?} must be an http:// or https:// URL")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Do not echo the value: it holds credentials.
        return Err(env_err(name, "must not contain credentials; put them in the secret"));
    }
    Ok(url)
}

fn int_in<T>(name: &'static str, value: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let n: T = value.parse().map_err(|_| env_err(name, format!("{value:?} is not a whole number")))?;
    if n < min || n > max {
        return Err(env_err(name, format!("{n} is out of range ({min}..={max})")));
    }
    Ok(n)
}

/// Elasticsearch / OpenSearch index name rules (the `-runs` and `-tasks` suffixes are added to it).
/// The content index when `INDEX_NAME` is not set: `search-notion`, or `search-notion-{stack}` under a
/// CloudFormation stack other than the documented `notion-es`, so two stacks on one cluster never
/// share run records or remove each other's documents.
pub fn default_index_name(stack: Option<&str>) -> String {
    match stack {
        Some(stack) if stack != "notion-es" => format!("{DEFAULT_INDEX_NAME}-{}", stack.to_lowercase()),
        _ => DEFAULT_INDEX_NAME.to_owned(),
    }
}

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

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> =
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
        Self::from_map(&vars)
    }

    /// Reads the given variables (tests, or any other source of environment-style settings).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let secret_id = var(vars, "SECRET_ID").unwrap_or(DEFAULT_SECRET_ID).to_owned();

        let notion_base_url =
            http_url("NOTION_BASE_URL", var(vars, "NOTION_BASE_URL").unwrap_or(DEFAULT_NOTION_BASE_URL))?;
        if notion_base_url.path().trim_end_matches('/').ends_with("/v1") {
            return Err(env_err("NOTION_BASE_URL", "must not include /v1 (the client adds it)"));
        }

        let env_version = match var(vars, "NOTION_VERSION") {
            None => ApiVersion::default(),
            Some(v) => ApiVersion::parse(v).map_err(|e| env_err("NOTION_VERSION", e.to_string()))?,
        };

        let notion_rate = match var(vars, "NOTION_RATE") {
            None => DEFAULT_NOTION_RATE,
            Some(v) => {
                let rate: f64 = v.parse().map_err(|_| env_err("NOTION_RATE", format!("{v:?} is not a number")))?;
                if !rate.is_finite() || rate <= 0.0 {
                    return Err(env_err(
                        "NOTION_RATE",
                        format!("{v:?} must be a positive number (requests per second)"),
                    ));
                }
                rate
            }
        };

        let worker_concurrency = match var(vars, "WORKER_CONCURRENCY") {
            None => DEFAULT_WORKER_CONCURRENCY,
            Some(v) => int_in("WORKER_CONCURRENCY", v, 1, 1000)?,
        };

        let search_url = http_url("SEARCH_URL", var(vars, "SEARCH_URL").unwrap_or(DEFAULT_SEARCH_URL))?;

        let env_index = match var(vars, "INDEX_NAME") {
            Some(name) => name.to_owned(),
            None => default_index_name(var(vars, "STACK_NAME")),
        };
        check_index_name(&env_index).map_err(|p| env_err("INDEX_NAME", p))?;

        let work_queue_url = http_url("WORK_QUEUE_URL", required(vars, "WORK_QUEUE_URL")?)?.to_string();
        let finalize_queue_url = http_url("FINALIZE_QUEUE_URL", required(vars, "FINALIZE_QUEUE_URL")?)?.to_string();

        let max_receive_count = match var(vars, "MAX_RECEIVE_COUNT") {
            None => DEFAULT_MAX_RECEIVE_COUNT,
            Some(v) => int_in("MAX_RECEIVE_COUNT", v, 1, 1000)?,
        };
        let finalize_delay_seconds = match var(vars, "FINALIZE_DELAY_SECONDS") {
            None => DEFAULT_FINALIZE_DELAY_SECONDS,
            Some(v) => int_in("FINALIZE_DELAY_SECONDS", v, 0, 900)?,
        };

        let planning_lease_seconds = match var(vars, "PLANNING_LEASE_SECONDS") {
            None => DEFAULT_PLANNING_LEASE_SECONDS,
            Some(v) => int_in("PLANNING_LEASE_SECONDS", v, 1, 86_400)?,
        };
        let run_lease_seconds = match var(vars, "RUN_LEASE_SECONDS") {
            None => DEFAULT_RUN_LEASE_SECONDS,
            Some(v) => int_in("RUN_LEASE_SECONDS", v, 1, 86_400)?,
        };
        if run_lease_seconds <= finalize_delay_seconds {
            return Err(env_err(
                "RUN_LEASE_SECONDS",
                format!("{run_lease_seconds} must be longer than FINALIZE_DELAY_SECONDS ({finalize_delay_seconds}): every finalize check renews the lease"),
            ));
        }

        let connector = match var(vars, "CONNECTOR_CONFIG") {
            None => Ok(ConnectorConfig::default()),
            Some(v) if v.starts_with('{') => ConnectorConfig::from_json_str(v),
            Some(path) => ConnectorConfig::from_file(Path::new(path)),
        }
        .map_err(|e| ConfigError::ConnectorConfig(Box::new(e)))?;
        let mut connector = connector;
        let function_memory_mb = match var(vars, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
            None => None,
            Some(v) => Some(int_in("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", v, 1, 1 << 20)?),
        };
        if let (Some(memory), false) = (function_memory_mb, connector.concurrent_downloads_given) {
            // Not configured: as many as fit (at most the default, at least one).
            let fit = download_memory_limit(memory) / connector.max_file_size.max(1);
            connector.concurrent_downloads = fit.clamp(1, u64::from(DEFAULT_CONCURRENT_DOWNLOADS)) as u32;
        }

        Ok(Settings {
            secret_id,
            notion_base_url,
            notion_version: connector.notion_version.unwrap_or(env_version),
            notion_rate,
            worker_concurrency,
            search_url,
            index_name: connector.index_name.clone().unwrap_or(env_index),
            work_queue_url,
            finalize_queue_url,
            max_receive_count,
            finalize_delay_seconds,
            planning_lease_seconds,
            run_lease_seconds,
            connector,
            function_memory_mb,
        })
    }

    /// For the functions that download files (the worker, at start): `concurrent_downloads × max_file_size` must
    /// stay within [`DOWNLOAD_MEMORY_PERCENT`] % of the function's memory, so many large files at once cannot run
    /// it out of memory (which kills the invocation, not the file). Without a known memory size, nothing to check.
    pub fn check_download_memory(&self) -> Result<(), ConfigError> {
        let Some(memory) = self.function_memory_mb else { return Ok(()) };
        let c = &self.connector;
        let need = u64::from(c.concurrent_downloads).saturating_mul(c.max_file_size);
        let limit = download_memory_limit(memory);
        if need > limit {
            return Err(ConfigError::ConnectorConfig(Box::new(invalid(
                "/concurrent_downloads",
                format!(
                    "concurrent_downloads ({}) × max_file_size ({} bytes) = {need} bytes is more than \
                     {DOWNLOAD_MEMORY_PERCENT} % of the function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE = {memory} \
                     MB): at most {limit} bytes; lower concurrent_downloads or max_file_size, or give the function \
                     more memory",
                    c.concurrent_downloads, c.max_file_size
                ),
            ))));
        }
        Ok(())
    }

    /// Each worker's pace: `NOTION_RATE / WORKER_CONCURRENCY` requests per second.
    pub fn worker_rate(&self) -> f64 {
        self.notion_rate / f64::from(self.worker_concurrency.max(1))
    }

    /// The run leases ([`crate::runs::Leases`]).
    pub fn leases(&self) -> crate::runs::Leases {
        crate::runs::Leases {
            planning: std::time::Duration::from_secs(u64::from(self.planning_lease_seconds)),
            running: std::time::Duration::from_secs(u64::from(self.run_lease_seconds)),
        }
    }

    /// `{index_name}-runs`.
    pub fn runs_index(&self) -> String {
        format!("{}-runs", self.index_name)
    }

    /// `{index_name}-tasks`.
    pub fn tasks_index(&self) -> String {
        format!("{}-tasks", self.index_name)
    }
}

/// Bytes that downloads in flight may take in a function of `memory_mb` MB.
fn download_memory_limit(memory_mb: u64) -> u64 {
    memory_mb.saturating_mul(1024 * 1024).saturating_mul(DOWNLOAD_MEMORY_PERCENT) / 100
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration document

/// Which pages (or databases) to sync: all (`*`) or those with these titles (exact, case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TitleSelection {
    #[default]
    All,
    Titles(Vec<String>),
}

impl TitleSelection {
    pub fn is_all(&self) -> bool {
        matches!(self, TitleSelection::All)
    }

    /// The configured titles (empty for `*`).
    pub fn titles(&self) -> &[String] {
        match self {
            TitleSelection::All => &[],
            TitleSelection::Titles(t) => t,
        }
    }

    /// Parses `"a, b"` or `["a", "b"]`: items trimmed, empty items dropped, `*` anywhere = all.
    fn from_json(value: &Value, path: &str) -> Result<Self, ConfigError> {
        let items: Vec<String> = match value {
            Value::String(s) => s.split(',').map(|i| i.trim().to_owned()).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.trim().to_owned()),
                    other => {
                        Err(invalid(format!("{path}/{i}"), format!("must be a string, found {}", json_type(other))))
                    }
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(invalid(
                    path,
                    format!("must be a comma-separated string or an array of strings, found {}", json_type(other)),
                ))
            }
        };
        let items: Vec<String> = items.into_iter().filter(|i| !i.is_empty()).collect();
        if items.is_empty() {
            return Err(invalid(path, "lists no title: give titles or \"*\" (everything)"));
        }
        if items.iter().any(|i| i == "*") {
            return Ok(TitleSelection::All);
        }
        let mut unique: Vec<String> = Vec::with_capacity(items.len());
        for item in items {
            if !unique.iter().any(|u| u.to_lowercase() == item.to_lowercase()) {
                unique.push(item);
            }
        }
        Ok(TitleSelection::Titles(unique))
    }
}

/// Basic and advanced sync rules (`sync_rules`).
#[derive(Debug, Clone, Default)]
pub struct SyncRules {
    /// `sync_rules.basic`: ordered include/exclude rules applied to every document before indexing.
    pub basic: BasicRules,
    /// `sync_rules.advanced`: `searches` / `database_query_filters`; `None` when absent, `null` or `{}`.
    pub advanced: Option<AdvancedRules>,
}

/// The connector configuration document.
///
/// ```json
/// {
///   "databases": "*",
///   "pages": "Engineering Wiki, Roadmap",
///   "index_comments": false,
///   "concurrent_downloads": 30,
///   "max_file_size": 10485760,
///   "notion_version": "2025-09-03",
///   "index_name": "search-notion",
///   "sync_rules": {
///     "basic": [{"policy": "exclude", "field": "type", "rule": "equals", "value": "divider"}],
///     "advanced": {}
///   }
/// }
/// ```
///
/// Every key is optional; unknown keys are rejected, naming the key.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// `databases`: database titles to sync, as a comma-separated string or an array; `*` = all (default).
    /// Titles match exactly, case-insensitively; a title that matches no database fails the sync before anything is
    /// indexed or deleted. Ignored when advanced rules are set.
    pub databases: TitleSelection,
    /// `pages`: page titles to sync, like `databases`; `*` = all (default). Ignored when advanced rules are set.
    pub pages: TitleSelection,
    /// `index_comments`: also index every unresolved comment on pages and blocks (default `false`; one extra API call
    /// per page and block).
    pub index_comments: bool,
    /// `concurrent_downloads`: maximum concurrent file downloads, 1..=100 (default 30; in Lambda, unless set,
    /// as many as fit in half the function's memory, see [`Settings::check_download_memory`]).
    pub concurrent_downloads: u32,
    /// True when the document sets `concurrent_downloads` (then it is checked against the memory, not fitted).
    pub concurrent_downloads_given: bool,
    /// `max_file_size`: files larger than this many bytes are indexed without their content (default 10485760 =
    /// 10 MiB, at most [`MAX_FILE_SIZE_CAP`]); `0` turns file downloads off.
    pub max_file_size: u64,
    /// `allow_http_files`: also download `http://` external file links (default `false`: https only; the
    /// address checks apply either way).
    pub allow_http_files: bool,
    /// `sync_rules`: `{"basic": [...], "advanced": {...}}`.
    pub sync_rules: SyncRules,
    /// `notion_version`: overrides `NOTION_VERSION` (`2022-06-28`, `2025-09-03` or `2026-03-11`).
    pub notion_version: Option<ApiVersion>,
    /// `index_name`: overrides `INDEX_NAME`.
    pub index_name: Option<String>,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        ConnectorConfig {
            databases: TitleSelection::All,
            pages: TitleSelection::All,
            index_comments: false,
            concurrent_downloads: DEFAULT_CONCURRENT_DOWNLOADS,
            concurrent_downloads_given: false,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            allow_http_files: false,
            sync_rules: SyncRules::default(),
            notion_version: None,
            index_name: None,
        }
    }
}

const CONFIG_KEYS: [&str; 9] = [
    "databases",
    "pages",
    "index_comments",
    "concurrent_downloads",
    "max_file_size",
    "allow_http_files",
    "sync_rules",
    "notion_version",
    "index_name",
];

fn uint(value: &Value, path: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let n = match value {
        Value::Number(n) => {
            n.as_u64().ok_or_else(|| invalid(path, format!("must be a whole number in {min}..={max}, found {n}")))?
        }
        other => return Err(invalid(path, format!("must be a whole number, found {}", json_type(other)))),
    };
    if n < min || n > max {
        return Err(invalid(path, format!("{n} is out of range ({min}..={max})")));
    }
    Ok(n)
}

impl ConnectorConfig {
    /// Parses the configuration document from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        Self::from_json(&value)
    }

    /// Reads and parses a JSON file (local runs).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File { path: path.display().to_string(), message: e.to_string() })?;
        Self::from_json_str(&text).map_err(|e| match e {
            ConfigError::Json { message, .. } => {
                ConfigError::File { path: path.display().to_string(), message: format!("not valid JSON: {message}") }
            }
            other => other,
        })
    }

    /// Parses an already decoded configuration document.
    pub fn from_json(value: &Value) -> Result<Self, ConfigError> {
        let obj = match value {
            Value::Object(obj) => obj,
            other => return Err(invalid("", format!("must be a JSON object, found {}", json_type(other)))),
        };
        if let Some(key) = obj.keys().find(|k| !CONFIG_KEYS.contains(&k.as_str())) {
            let path = crate::rules::pointer("", key);
            let hint = match key.as_str() {
                "notion_secret_key" | "notion_token" => {
                    "the Notion token is a secret: put it in the secret as notion_token, not in the configuration"
                        .to_string()
                }
                _ => format!("unknown key {key:?} (known keys: {})", CONFIG_KEYS.join(", ")),
            };
            return Err(invalid(path, hint));
        }
        let mut config = ConnectorConfig::default();
        for (key, value) in obj {
            let path = format!("/{key}");
            if value.is_null() {
                continue; // null = default
            }
            match key.as_str() {
                "databases" => config.databases = TitleSelection::from_json(value, &path)?,
                "pages" => config.pages = TitleSelection::from_json(value, &path)?,
                "index_comments" => {
                    config.index_comments = value
                        .as_bool()
                        .ok_or_else(|| invalid(&path, format!("must be true or false, found {}", json_type(value))))?
                }
                "concurrent_downloads" => {
                    // The range check bounds the value, so the conversion cannot fail.
                    config.concurrent_downloads = u32::try_from(uint(value, &path, 1, 100)?).unwrap_or(100);
                    config.concurrent_downloads_given = true;
                }
                "max_file_size" => config.max_file_size = uint(value, &path, 0, MAX_FILE_SIZE_CAP)?,
                "allow_http_files" => {
                    config.allow_http_files = value
                        .as_bool()
                        .ok_or_else(|| invalid(&path, format!("must be true or false, found {}", json_type(value))))?
                }
                "notion_version" => {
                    let v = value
                        .as_str()
                        .ok_or_else(|| invalid(&path, format!("must be a string, found {}", json_type(value))))?;
                    config.notion_version = Some(ApiVersion::parse(v).map_err(|e| invalid(&path, e.to_string()))?);
                }
                "index_name" => {
                    let v = value
                        .as_str()
                        .ok_or_else(|| invalid(&path, format!("must be a string, found {}", json_type(value))))?;
                    check_index_name(v.trim()).map_err(|p| invalid(&path, p))?;
                    config.index_name = Some(v.trim().to_owned());
                }
                "sync_rules" => config.sync_rules = parse_sync_rules(value)?,
                _ => {}
            }
        }
        Ok(config)
    }

    /// True when advanced rules are set: they replace `databases` / `pages` (as in the reference).
    pub fn has_advanced_rules(&self) -> bool {
        self.sync_rules.advanced.is_some()
    }

    /// True when the whole workspace is synced: `databases` and `pages` both `*` and no advanced rules.
    pub fn selects_everything(&self) -> bool {
        !self.has_advanced_rules() && self.databases.is_all() && self.pages.is_all()
    }
}

fn parse_sync_rules(value: &Value) -> Result<SyncRules, ConfigError> {
    let obj: &Map<String, Value> = value.as_object().ok_or_else(|| {
        invalid(
            "/sync_rules",
            format!("must be an object {{\"basic\": [...], \"advanced\": {{...}}}}, found {}", json_type(value)),
        )
    })?;
    if let Some(key) = obj.keys().find(|k| !matches!(k.as_str(), "basic" | "advanced")) {
        return Err(invalid(
            format!("/sync_rules{}", crate::rules::pointer("", key)),
            format!("unknown key {key:?} (known keys: basic, advanced)"),
        ));
    }
    let basic = match obj.get("basic") {
        None => BasicRules::default(),
        Some(v) => BasicRules::from_json(v).map_err(|e| ConfigError::Rules(e.with_prefix("/sync_rules/basic")))?,
    };
    let advanced = match obj.get("advanced") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) if o.is_empty() => None,
        Some(v) => {
            Some(AdvancedRules::from_json(v).map_err(|e| ConfigError::Rules(e.with_prefix("/sync_rules/advanced")))?)
        }
    };
    Ok(SyncRules { basic, advanced })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base_env() -> HashMap<String, String> {
        HashMap::from([
            ("WORK_QUEUE_URL".into(), "http://127.0.0.1:4566/000000000000/notion-es-work".into()),
            ("FINALIZE_QUEUE_URL".into(), "http://127.0.0.1:4566/000000000000/notion-es-finalize".into()),
        ])
    }

    fn env_with(name: &str, value: &str) -> HashMap<String, String> {
        let mut env = base_env();
        env.insert(name.into(), value.into());
        env
    }

    fn env_err_of(name: &str, value: &str) -> String {
        Settings::from_map(&env_with(name, value)).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let s = Settings::from_map(&base_env()).unwrap();
        assert_eq!(s.secret_id, "notion-es/secrets");
        assert_eq!(s.notion_base_url.as_str(), "https://api.notion.com/");
        assert_eq!(s.notion_version, ApiVersion::V2025_09_03);
        assert_eq!(s.notion_rate, 3.0);
        assert_eq!(s.worker_concurrency, 2);
        assert_eq!(s.worker_rate(), 1.5);
        assert_eq!(s.index_name, "search-notion");
        assert_eq!(s.tasks_index(), "search-notion-tasks");
        assert_eq!(s.max_receive_count, 3);
        assert_eq!(s.finalize_delay_seconds, 60);
        assert_eq!((s.planning_lease_seconds, s.run_lease_seconds), (1200, 3900));
        assert_eq!(s.leases().planning, std::time::Duration::from_secs(1200));
        assert!(s.connector.selects_everything());
        assert_eq!(s.connector.concurrent_downloads, 30);
        assert_eq!(s.connector.max_file_size, 10 * 1024 * 1024);
    }

    #[test]
    fn env_errors_name_the_variable() {
        let cases = [
            ("NOTION_RATE", "0", "environment variable NOTION_RATE: \"0\" must be a positive number"),
            ("NOTION_RATE", "-1", "environment variable NOTION_RATE: \"-1\" must be a positive number"),
            ("NOTION_RATE", "fast", "environment variable NOTION_RATE: \"fast\" is not a number"),
            ("NOTION_RATE", "NaN", "environment variable NOTION_RATE: \"NaN\" must be a positive number"),
            ("NOTION_VERSION", "2024-01-01", "environment variable NOTION_VERSION: unknown Notion API version"),
            (
                "NOTION_BASE_URL",
                "api.notion.com",
                "environment variable NOTION_BASE_URL: \"api.notion.com\" is not a valid URL",
            ),
            (
                "NOTION_BASE_URL",
                "https://api.notion.com/v1",
                "environment variable NOTION_BASE_URL: must not include /v1",
            ),
            ("SEARCH_URL", "ftp://x", "environment variable SEARCH_URL: \"ftp://x\" must be an http"),
            (
                "SEARCH_URL",
                "http://elastic:changeme@localhost:9200",
                "environment variable SEARCH_URL: must not contain credentials",
            ),
            ("WORKER_CONCURRENCY", "0", "environment variable WORKER_CONCURRENCY: 0 is out of range (1..=1000)"),
            ("WORKER_CONCURRENCY", "2.5", "environment variable WORKER_CONCURRENCY: \"2.5\" is not a whole number"),
            ("MAX_RECEIVE_COUNT", "x", "environment variable MAX_RECEIVE_COUNT: \"x\" is not a whole number"),
            (
                "FINALIZE_DELAY_SECONDS",
                "901",
                "environment variable FINALIZE_DELAY_SECONDS: 901 is out of range (0..=900)",
            ),
            (
                "PLANNING_LEASE_SECONDS",
                "0",
                "environment variable PLANNING_LEASE_SECONDS: 0 is out of range (1..=86400)",
            ),
            (
                "RUN_LEASE_SECONDS",
                "60",
                "environment variable RUN_LEASE_SECONDS: 60 must be longer than FINALIZE_DELAY_SECONDS (60)",
            ),
            ("INDEX_NAME", "Search-Notion", "environment variable INDEX_NAME: \"Search-Notion\" must be lower-case"),
            ("INDEX_NAME", "_x", "environment variable INDEX_NAME: \"_x\" must not start with"),
            ("WORK_QUEUE_URL", " ", "environment variable WORK_QUEUE_URL: is required but empty"),
            (
                "CONNECTOR_CONFIG",
                "{\"pages\": 3}",
                "environment variable CONNECTOR_CONFIG: configuration /pages: must be a comma-separated string",
            ),
            (
                "CONNECTOR_CONFIG",
                "/nonexistent/notion-es.json",
                "environment variable CONNECTOR_CONFIG: configuration file /nonexistent/notion-es.json:",
            ),
        ];
        for (name, value, expected) in cases {
            let e = env_err_of(name, value);
            assert!(e.starts_with(expected), "{name}={value}: {e}");
        }
        assert!(!env_err_of("SEARCH_URL", "http://elastic:changeme@localhost:9200").contains("changeme"));
        let mut env = base_env();
        env.remove("FINALIZE_QUEUE_URL");
        assert_eq!(
            Settings::from_map(&env).unwrap_err().to_string(),
            "environment variable FINALIZE_QUEUE_URL: is required but not set"
        );
    }

    #[test]
    fn each_stack_has_its_own_default_index() {
        let index_of = |stack: Option<&str>| {
            let mut env = base_env();
            env.remove("INDEX_NAME");
            if let Some(stack) = stack {
                env.insert("STACK_NAME".into(), stack.into());
            }
            Settings::from_map(&env).unwrap().index_name
        };
        assert_eq!(index_of(None), "search-notion");
        assert_eq!(index_of(Some("notion-es")), "search-notion");
        assert_eq!(index_of(Some("Notion-Staging")), "search-notion-notion-staging");
        assert_ne!(index_of(Some("a")), index_of(Some("b")));
    }

    #[test]
    fn document_overrides_version_and_index() {
        let s = Settings::from_map(&env_with(
            "CONNECTOR_CONFIG",
            r#"{"notion_version": "2022-06-28", "index_name": "notion-a"}"#,
        ))
        .unwrap();
        assert_eq!(s.notion_version, ApiVersion::V2022_06_28);
        assert_eq!(s.index_name, "notion-a");
        let mut env = env_with("NOTION_VERSION", "2026-03-11");
        env.insert("INDEX_NAME".into(), "other".into());
        let s = Settings::from_map(&env).unwrap();
        assert_eq!(s.notion_version, ApiVersion::V2026_03_11);
        assert_eq!(s.index_name, "other");
    }

    #[test]
    fn config_from_file() {
        let dir = std::env::temp_dir().join(format!("notion-es-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(&path, r#"{"pages": ["Roadmap"], "index_comments": true}"#).unwrap();
        let s = Settings::from_map(&env_with("CONNECTOR_CONFIG", path.to_str().unwrap())).unwrap();
        assert_eq!(s.connector.pages, TitleSelection::Titles(vec!["Roadmap".into()]));
        assert!(s.connector.index_comments);
        std::fs::write(&path, "{").unwrap();
        assert!(ConnectorConfig::from_file(&path).unwrap_err().to_string().contains("not valid JSON"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn title_lists() {
        let c = |v: Value| ConnectorConfig::from_json(&json!({ "pages": v })).map(|c| c.pages);
        assert_eq!(c(json!("*")).unwrap(), TitleSelection::All);
        assert_eq!(
            c(json!(" Roadmap , ,Team Wiki,")).unwrap(),
            TitleSelection::Titles(vec!["Roadmap".into(), "Team Wiki".into()])
        );
        assert_eq!(c(json!(["Roadmap", " roadmap "])).unwrap(), TitleSelection::Titles(vec!["Roadmap".into()]));
        assert_eq!(c(json!("Roadmap, *")).unwrap(), TitleSelection::All);
        assert_eq!(c(json!(null)).unwrap(), TitleSelection::All);
        assert_eq!(
            c(json!(" , ")).unwrap_err().to_string(),
            "configuration /pages: lists no title: give titles or \"*\" (everything)"
        );
        assert_eq!(
            c(json!(["a", 1])).unwrap_err().to_string(),
            "configuration /pages/1: must be a string, found a number"
        );
    }

    #[test]
    fn document_errors_name_the_path() {
        let e = |v: Value| ConnectorConfig::from_json(&v).unwrap_err().to_string();
        assert_eq!(e(json!([])), "configuration /: must be a JSON object, found an array");
        assert!(e(json!({"page": "*"}))
            .starts_with("configuration /page: unknown key \"page\" (known keys: databases, pages"));
        assert!(e(json!({"notion_secret_key": "x"})).contains("put it in the secret"));
        assert_eq!(
            e(json!({"index_comments": "yes"})),
            "configuration /index_comments: must be true or false, found a string"
        );
        assert_eq!(
            e(json!({"concurrent_downloads": 0})),
            "configuration /concurrent_downloads: 0 is out of range (1..=100)"
        );
        assert_eq!(
            e(json!({"concurrent_downloads": 2.5})),
            "configuration /concurrent_downloads: must be a whole number in 1..=100, found 2.5"
        );
        assert_eq!(
            e(json!({"max_file_size": -1})),
            "configuration /max_file_size: must be a whole number in 0..=104857600, found -1"
        );
        assert!(e(json!({"notion_version": "2023"}))
            .starts_with("configuration /notion_version: unknown Notion API version"));
        assert_eq!(
            e(json!({"sync_rules": []})),
            "configuration /sync_rules: must be an object {\"basic\": [...], \"advanced\": {...}}, found an array"
        );
        assert!(e(json!({"sync_rules": {"advance": {}}})).starts_with("configuration /sync_rules/advance: unknown key"));
        assert!(e(
            json!({"sync_rules": {"basic": [{"policy": "drop", "field": "a", "rule": "equals", "value": "b"}]}})
        )
        .starts_with("configuration /sync_rules/basic/0/policy: \"drop\" is not one of"));
        assert_eq!(
            e(json!({"sync_rules": {"advanced": {"searches": [{"query": "x", "filter": {"value": "block"}}]}}})),
            r#"configuration /sync_rules/advanced/searches/0/filter/value: "block" is not one of "page" or "database""#
        );
    }

    #[test]
    fn advanced_rules_empty_means_none() {
        let c = ConnectorConfig::from_json(&json!({"sync_rules": {"advanced": {}, "basic": []}})).unwrap();
        assert!(!c.has_advanced_rules());
        let c =
            ConnectorConfig::from_json(&json!({"sync_rules": {"advanced": {"searches": [{"query": ""}]}}})).unwrap();
        assert!(c.has_advanced_rules());
        assert!(!c.selects_everything());
    }
}

//! The deployment [`Settings`], from the functions' environment variables (docs/DESIGN.md, "Environment of the
//! functions").

use std::collections::HashMap;
use std::path::Path;

use url::Url;

use super::{
    check_index_name, default_index_name, invalid, ConfigError, ConnectorConfig, DEFAULT_CONCURRENT_DOWNLOADS,
    DEFAULT_FINALIZE_DELAY_SECONDS, DEFAULT_MAX_RECEIVE_COUNT, DEFAULT_NOTION_BASE_URL, DEFAULT_NOTION_RATE,
    DEFAULT_PLANNING_LEASE_SECONDS, DEFAULT_RUN_LEASE_SECONDS, DEFAULT_SEARCH_URL, DEFAULT_SECRET_ID,
    DEFAULT_WORKER_CONCURRENCY, DOWNLOAD_MEMORY_PERCENT,
};
use crate::notion::ApiVersion;

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

/// `name` as a whole number in `min..=max`, or `default` when unset or empty.
fn int_or<T>(vars: &HashMap<String, String>, name: &'static str, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    var(vars, name).map_or(Ok(default), |v| int_in(name, v, min, max))
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

        let worker_concurrency = int_or(vars, "WORKER_CONCURRENCY", DEFAULT_WORKER_CONCURRENCY, 1, 1000)?;

        let search_url = http_url("SEARCH_URL", var(vars, "SEARCH_URL").unwrap_or(DEFAULT_SEARCH_URL))?;

        let env_index = match var(vars, "INDEX_NAME") {
            Some(name) => name.to_owned(),
            None => default_index_name(var(vars, "STACK_NAME")),
        };
        check_index_name(&env_index).map_err(|p| env_err("INDEX_NAME", p))?;

        let work_queue_url = http_url("WORK_QUEUE_URL", required(vars, "WORK_QUEUE_URL")?)?.to_string();
        let finalize_queue_url = http_url("FINALIZE_QUEUE_URL", required(vars, "FINALIZE_QUEUE_URL")?)?.to_string();

        let max_receive_count = int_or(vars, "MAX_RECEIVE_COUNT", DEFAULT_MAX_RECEIVE_COUNT, 1, 1000)?;
        let finalize_delay_seconds = int_or(vars, "FINALIZE_DELAY_SECONDS", DEFAULT_FINALIZE_DELAY_SECONDS, 0, 900)?;

        let planning_lease_seconds = int_or(vars, "PLANNING_LEASE_SECONDS", DEFAULT_PLANNING_LEASE_SECONDS, 1, 86_400)?;
        let run_lease_seconds = int_or(vars, "RUN_LEASE_SECONDS", DEFAULT_RUN_LEASE_SECONDS, 1, 86_400)?;
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
        let function_memory_mb = var(vars, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .map(|v| int_in("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", v, 1, 1 << 20))
            .transpose()?;
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

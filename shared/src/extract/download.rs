//! Downloading file bytes: one streamed GET per file, stopped as soon as the body passes the size
//! limit; bounded parallelism; paced separately from the Notion API budget.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use super::{extract_in_background, file_block_info, kind_from_name, ExtractLimits, Extracted, FileHint, FileKind};

#[derive(Debug, Clone)]
pub struct DownloadConfig {
    /// Largest body accepted, in bytes. Default 10 MiB (10485760), as the reference connector.
    pub max_bytes: u64,
    /// Downloads (and their extraction) running at once. Default 10.
    pub concurrent_downloads: usize,
    /// Requests started per second towards file hosts; 0 disables pacing. Default 10.
    pub requests_per_second: f64,
    /// Time budget for one GET, headers and body. Default 60 s.
    pub timeout: Duration,
    /// Budgets for extracting text from one file.
    pub extract: ExtractLimits,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            concurrent_downloads: 10,
            requests_per_second: 10.0,
            timeout: Duration::from_secs(60),
            extract: ExtractLimits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DownloadError {
    #[error("file is larger than the {limit} byte limit")]
    TooLarge { limit: u64 },
    #[error("file URL expired or forbidden (403)")]
    Expired,
    #[error("file not found ({0})")]
    NotFound(u16),
    #[error("file host rate limited the download (429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("file host answered HTTP {0}")]
    Status(u16),
    #[error("download took longer than {0:?}")]
    Timeout(Duration),
    #[error("download failed: {0}")]
    Network(String),
    #[error("invalid file URL: {0}")]
    InvalidUrl(String),
}

impl DownloadError {
    /// Short stable code, for counting failures by reason.
    pub fn code(&self) -> &'static str {
        match self {
            DownloadError::TooLarge { .. } => "too_large",
            DownloadError::Expired => "expired",
            DownloadError::NotFound(_) => "not_found",
            DownloadError::RateLimited { .. } => "rate_limited",
            DownloadError::Status(_) => "http_status",
            DownloadError::Timeout(_) => "timeout",
            DownloadError::Network(_) => "network",
            DownloadError::InvalidUrl(_) => "invalid_url",
        }
    }
}

/// A downloaded body.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

/// What happened to one file. Never an error for the caller: failures are in `error`.
#[derive(Debug, Clone, Default)]
pub struct FileOutcome {
    /// Text (possibly empty, e.g. for `FileKind::Unsupported`) when download and extraction worked.
    pub extracted: Option<Extracted>,
    /// Why there is no text, for the run's error list.
    pub error: Option<String>,
    /// Short stable code for `error` (`too_large`, `expired`, `extract_failed`, …).
    pub error_code: Option<&'static str>,
    /// Bytes downloaded.
    pub size: Option<u64>,
    /// `Content-Type` from the file host.
    pub content_type: Option<String>,
    /// The file host answered 403: a Notion-hosted URL has expired (re-read the block and retry).
    pub expired: bool,
    /// Not downloaded because the name says it is a type we do not read (image, video, archive…).
    pub skipped: bool,
    /// The URL was refreshed by re-reading the block (see `Downloader::fetch_block`).
    pub refreshed: bool,
}

impl FileOutcome {
    fn failed(code: &'static str, error: impl ToString) -> Self {
        FileOutcome { error: Some(error.to_string()), error_code: Some(code), ..Default::default() }
    }

    /// The block document's `file` object (index mapping: `name`, `content_type`, `size`,
    /// `extracted`, `error`); absent values are left out. `extracted` is true when text was found.
    pub fn file_fields(&self, name: Option<&str>) -> Value {
        let mut fields = serde_json::Map::new();
        if let Some(name) = name {
            fields.insert("name".into(), Value::from(name));
        }
        if let Some(content_type) = &self.content_type {
            fields.insert("content_type".into(), Value::from(content_type.as_str()));
        }
        if let Some(size) = self.size {
            fields.insert("size".into(), Value::from(size));
        }
        fields.insert("extracted".into(), Value::from(!self.text().is_empty()));
        if let Some(error) = &self.error {
            fields.insert("error".into(), Value::from(error.as_str()));
        }
        Value::Object(fields)
    }

    /// The extracted text, or "" when there is none.
    pub fn text(&self) -> &str {
        self.extracted.as_ref().map_or("", |e| e.text.as_str())
    }
}

/// Downloads files with bounded parallelism and its own pacing. Cheap to clone.
#[derive(Clone)]
pub struct Downloader {
    client: reqwest::Client,
    config: Arc<DownloadConfig>,
    permits: Arc<Semaphore>,
    pacer: Arc<Pacer>,
}

impl Downloader {
    pub fn new(client: reqwest::Client, config: DownloadConfig) -> Self {
        let permits = Arc::new(Semaphore::new(config.concurrent_downloads.max(1)));
        let interval = if config.requests_per_second > 0.0 {
            Duration::from_secs_f64(1.0 / config.requests_per_second)
        } else {
            Duration::ZERO
        };
        let pacer = Arc::new(Pacer { interval, next: Mutex::new(Instant::now()) });
        Self { client, config: Arc::new(config), permits, pacer }
    }

    pub fn config(&self) -> &DownloadConfig {
        &self.config
    }

    /// One streamed GET, under the parallelism bound and pacing.
    pub async fn download(&self, url: &str) -> Result<Downloaded, DownloadError> {
        let _permit = self.permits.acquire().await.map_err(|e| DownloadError::Network(e.to_string()))?;
        self.get(url).await
    }

    /// Downloads and extracts one file. Holds one download permit for both, so parallel work (and
    /// memory: `concurrent_downloads` × (max_bytes + extraction budget)) stays bounded.
    pub async fn fetch_and_extract(&self, url: &str, hint: FileHint) -> FileOutcome {
        if hint.name.as_deref().and_then(kind_from_name) == Some(FileKind::Unsupported) {
            let extracted = Extracted { text: String::new(), kind: FileKind::Unsupported, truncated: false };
            return FileOutcome { extracted: Some(extracted), skipped: true, ..Default::default() };
        }
        let _permit = match self.permits.acquire().await {
            Ok(p) => p,
            Err(e) => return FileOutcome::failed("network", e),
        };
        let downloaded = match self.get(url).await {
            Ok(d) => d,
            Err(e) => {
                let mut outcome = FileOutcome::failed(e.code(), &e);
                outcome.expired = e == DownloadError::Expired;
                return outcome;
            }
        };
        let size = downloaded.bytes.len() as u64;
        let content_type = downloaded.content_type.clone();
        let hint = FileHint { name: hint.name, content_type: hint.content_type.or(downloaded.content_type) };
        let mut outcome = match extract_in_background(downloaded.bytes, hint, self.config.extract.clone()).await {
            Ok(extracted) => FileOutcome { extracted: Some(extracted), ..Default::default() },
            Err(e) => {
                let code =
                    if matches!(e, super::ExtractError::Timeout(_)) { "extract_timeout" } else { "extract_failed" };
                FileOutcome::failed(code, e)
            }
        };
        outcome.size = Some(size);
        outcome.content_type = content_type;
        outcome
    }

    /// Fetches a `file`/`pdf` block's file. If a Notion-hosted URL has expired (403), calls
    /// `refresh` once (the caller re-reads the block from the Notion API) and retries with the new URL.
    pub async fn fetch_block<F, Fut>(&self, block: &Value, refresh: F) -> FileOutcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<Value>>,
    {
        let Some(info) = file_block_info(block) else {
            return FileOutcome::failed("no_url", "block has no file URL");
        };
        let outcome = self.fetch_and_extract(&info.url, info.hint()).await;
        if !(outcome.expired && info.notion_hosted) {
            return outcome;
        }
        let Some(fresh) = refresh().await.as_ref().and_then(file_block_info) else {
            return outcome;
        };
        let mut retried = self.fetch_and_extract(&fresh.url, fresh.hint()).await;
        retried.refreshed = true;
        retried
    }

    async fn get(&self, url: &str) -> Result<Downloaded, DownloadError> {
        let parsed = url::Url::parse(url).map_err(|e| DownloadError::InvalidUrl(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(DownloadError::InvalidUrl(format!("scheme {}", parsed.scheme())));
        }
        self.pacer.wait().await;
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.get_body(parsed)).await {
            Ok(result) => result,
            Err(_) => Err(DownloadError::Timeout(timeout)),
        }
    }

    async fn get_body(&self, url: url::Url) -> Result<Downloaded, DownloadError> {
        let limit = self.config.max_bytes;
        let mut response = self.client.get(url).send().await.map_err(network)?;
        let status = response.status();
        if !status.is_success() {
            return Err(match status {
                StatusCode::FORBIDDEN => DownloadError::Expired,
                StatusCode::NOT_FOUND | StatusCode::GONE => DownloadError::NotFound(status.as_u16()),
                StatusCode::TOO_MANY_REQUESTS => DownloadError::RateLimited {
                    retry_after: response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs),
                },
                other => DownloadError::Status(other.as_u16()),
            });
        }
        if response.content_length().is_some_and(|len| len > limit) {
            // Dropping the response closes the connection without reading the body.
            return Err(DownloadError::TooLarge { limit });
        }
        let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let capacity = response.content_length().unwrap_or(64 * 1024).min(limit);
        let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            if bytes.len() as u64 + chunk.len() as u64 > limit {
                return Err(DownloadError::TooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Downloaded { bytes, content_type })
    }
}

fn network(e: reqwest::Error) -> DownloadError {
    if e.is_timeout() {
        DownloadError::Timeout(Duration::ZERO)
    } else if e.is_builder() {
        DownloadError::InvalidUrl(e.to_string())
    } else {
        DownloadError::Network(e.to_string())
    }
}

/// Evenly spaced request starts: each caller takes the next free slot.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    async fn wait(&self) {
        if self.interval.is_zero() {
            return;
        }
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

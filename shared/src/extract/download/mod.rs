//! Downloading file bytes: one streamed GET per file, stopped as soon as the body passes the size
//! limit; bounded parallelism; paced separately from the Notion API budget.
//!
//! File URLs come from the workspace (any editor can point an external `file`/`pdf` block anywhere), so
//! downloads must not become a way to read the connector's own network (server-side request forgery):
//! - only `https://` (and `http://` when `allow_http` is set);
//! - the host's addresses are checked by [`address_allowed`]: loopback, private, link-local (cloud metadata),
//!   CGNAT, multicast, documentation and other special ranges are refused, IPv4-mapped IPv6 forms too;
//! - the check lives in the DNS resolver of the client ([`PublicResolver`]): the client connects only to the
//!   addresses the resolver returned, so a name cannot resolve to a public address for the check and to a
//!   private one for the connection (DNS rebinding). IP literals skip resolvers, so they are checked first;
//! - redirects are followed here, at most `max_redirects`, and every hop is checked like the first URL;
//! - a refused address gives one message whatever is behind it, and nothing is sent to it, so the
//!   attachment error cannot be used to scan ports.
//!
//! `trusted_hosts` skip these checks: the Notion API's own host (bootstrap adds `NOTION_BASE_URL`, which is
//! where the emulator serves its files in tests) and test servers.

mod address;
mod fetch;

pub use address::{address_allowed, allowed_addrs, AddressRefused, PublicResolver};
pub use fetch::Downloader;

use std::time::Duration;

use serde_json::Value;
use url::{Host, Url};

use super::{ExtractLimits, Extracted};

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
    /// Also fetch `http://` URLs (the `allow_http_files` setting). Default false: Notion-hosted files are
    /// https, and plain http lets anyone on the path change what gets indexed.
    pub allow_http: bool,
    /// Hosts whose URLs skip the scheme and address checks. Default none, so nothing private is reachable;
    /// bootstrap trusts the Notion API's own host (`NOTION_BASE_URL`), tests add their servers.
    pub trusted_hosts: Vec<TrustedHost>,
    /// Redirects followed per file, each hop checked like the first URL. Default 5.
    pub max_redirects: u8,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            concurrent_downloads: 10,
            requests_per_second: 10.0,
            timeout: Duration::from_secs(60),
            extract: ExtractLimits::default(),
            allow_http: false,
            trusted_hosts: Vec::new(),
            max_redirects: 5,
        }
    }
}

/// A host, on one port or on any, whose URLs are fetched without the scheme and address checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedHost {
    host: Host<String>,
    /// `None`: any port.
    port: Option<u16>,
}

impl TrustedHost {
    /// The host and port of `url` (the scheme's default port when it has none). Trusting the port too keeps
    /// other services on the same machine (a search engine next to a local Notion emulator) out of reach.
    pub fn of_url(url: &Url) -> Option<Self> {
        Some(TrustedHost { host: url.host()?.to_owned(), port: Some(url.port_or_known_default()?) })
    }

    /// A host on any port: `127.0.0.1`, `[::1]`, `files.example.com`.
    pub fn any_port(host: &str) -> Result<Self, url::ParseError> {
        Ok(TrustedHost { host: Host::parse(host)?, port: None })
    }

    fn matches(&self, url: &Url) -> bool {
        url.host().is_some_and(|h| h.to_owned() == self.host)
            && self.port.is_none_or(|port| url.port_or_known_default() == Some(port))
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
    /// The task's deadline came first (the time left was shorter than the download's own timeout).
    #[error("download stopped: the invocation's time ran out ({0:?} left)")]
    OutOfTime(Duration),
    #[error("download failed: {0}")]
    Network(String),
    #[error("invalid file URL: {0}")]
    InvalidUrl(String),
    /// One message for every refused address, so the error says nothing about what listens there.
    #[error("refused: address not allowed")]
    AddressRefused,
    #[error("refused: http:// file URLs are not allowed (see allow_http_files)")]
    HttpRefused,
    #[error("more than {0} redirects")]
    TooManyRedirects(u8),
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
            DownloadError::OutOfTime(_) => OUT_OF_TIME,
            DownloadError::Network(_) => "network",
            DownloadError::InvalidUrl(_) => "invalid_url",
            DownloadError::AddressRefused => "address_refused",
            DownloadError::HttpRefused => "http_refused",
            DownloadError::TooManyRedirects(_) => "too_many_redirects",
        }
    }
}

/// `FileOutcome::error_code` of a download or extraction cut short by the task's deadline (rather than its own
/// timeout): the walk hands the file on to a continuation instead of indexing it without text.
pub const OUT_OF_TIME: &str = "out_of_time";

/// The time left before the task's deadline ([`crate::notion::with_deadline`]), if it has one.
fn time_left() -> Option<Duration> {
    crate::notion::current_deadline().map(|d| d.saturating_duration_since(std::time::Instant::now()))
}

/// `own` bounded by the time left: the timeout to use, and whether the deadline is what bounds it.
fn bounded(own: Duration) -> (Duration, bool) {
    match time_left() {
        Some(left) if left < own => (left, true),
        _ => (own, false),
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

    /// A failure that may well not happen next time (network, timeouts, 429, the task's time running out), as
    /// opposed to what the file or its host says (too large, not found, forbidden, unreadable).
    pub fn is_transient(&self) -> bool {
        matches!(self.error_code, Some("network" | "timeout" | "rate_limited" | "extract_timeout" | OUT_OF_TIME))
    }

    /// The extracted text, or "" when there is none.
    pub fn text(&self) -> &str {
        self.extracted.as_ref().map_or("", |e| e.text.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_hosts_match_host_and_port() {
        let url = |s: &str| Url::parse(s).unwrap();
        let notion = TrustedHost::of_url(&url("http://127.0.0.1:4010")).unwrap();
        assert!(notion.matches(&url("http://127.0.0.1:4010/files/abc?sig=1")));
        assert!(!notion.matches(&url("http://127.0.0.1:9200/_search")));
        assert!(!notion.matches(&url("http://localhost:4010/files/abc")));
        let api = TrustedHost::of_url(&url("https://api.notion.com")).unwrap();
        assert!(api.matches(&url("https://api.notion.com:443/x")));
        assert!(!api.matches(&url("http://api.notion.com/x")), "port 80 is another port");
        let any = TrustedHost::any_port("[::1]").unwrap();
        assert!(any.matches(&url("http://[::1]:1/x")) && !any.matches(&url("http://127.0.0.1:1/x")));
    }
}

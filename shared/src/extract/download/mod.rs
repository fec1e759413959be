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

use std::error::Error as StdError;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;
use url::{Host, Url};

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

/// Downloads files with bounded parallelism and its own pacing. Cheap to clone.
#[derive(Clone)]
pub struct Downloader {
    /// For every URL not on a trusted host: resolves through [`PublicResolver`], no proxy.
    checked: reqwest::Client,
    /// For trusted hosts only: the system resolver.
    trusted: reqwest::Client,
    config: Arc<DownloadConfig>,
    permits: Arc<Semaphore>,
    pacer: Arc<Pacer>,
}

impl Downloader {
    /// Builds its own HTTP clients, so no caller can hand in one that follows redirects or resolves names
    /// unchecked. Panics only if the TLS backend cannot start, as `reqwest::Client::new` does.
    pub fn new(config: DownloadConfig) -> Self {
        // Neither client follows redirects: `send` does, checking every hop. A proxy would resolve names
        // itself, past the resolver's check, so the checked client never uses one.
        let checked = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PublicResolver))
            .build()
            .expect("TLS backend cannot be initialized");
        let trusted = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("TLS backend cannot be initialized");
        let mut config = config;
        config.max_bytes = config.max_bytes.min(crate::config::MAX_FILE_SIZE_CAP);
        let permits = Arc::new(Semaphore::new(config.concurrent_downloads.max(1)));
        let interval = if config.requests_per_second > 0.0 {
            Duration::from_secs_f64(1.0 / config.requests_per_second)
        } else {
            Duration::ZERO
        };
        let pacer = Arc::new(Pacer { interval, next: Mutex::new(Instant::now()) });
        Self { checked, trusted, config: Arc::new(config), permits, pacer }
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
        // Waiting for a permit counts against the deadline too (other pages of the batch hold them).
        let (wait, _) = bounded(Duration::MAX);
        let _permit = match tokio::time::timeout(wait, self.permits.acquire()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return FileOutcome::failed("network", e),
            Err(_) => return FileOutcome::failed(OUT_OF_TIME, DownloadError::OutOfTime(Duration::ZERO)),
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
        let mut limits = self.config.extract.clone();
        let (timeout, cut) = bounded(limits.timeout);
        limits.timeout = timeout;
        let mut outcome = match extract_in_background(downloaded.bytes, hint, limits).await {
            Ok(extracted) => FileOutcome { extracted: Some(extracted), ..Default::default() },
            Err(e @ super::ExtractError::Timeout(_)) => {
                FileOutcome::failed(if cut { OUT_OF_TIME } else { "extract_timeout" }, e)
            }
            Err(e) => FileOutcome::failed("extract_failed", e),
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
        let parsed = Url::parse(url).map_err(|e| DownloadError::InvalidUrl(e.to_string()))?;
        // Refused before pacing: a refusal costs no request slot.
        self.client_for(&parsed)?;
        self.pacer.wait().await;
        // Each download's timeout is its own or the time left before the task's deadline, whichever is shorter.
        let (timeout, cut) = bounded(self.config.timeout);
        match tokio::time::timeout(timeout, self.get_body(parsed)).await {
            Ok(result) => result,
            Err(_) if cut => Err(DownloadError::OutOfTime(timeout)),
            Err(_) => Err(DownloadError::Timeout(timeout)),
        }
    }

    async fn get_body(&self, url: Url) -> Result<Downloaded, DownloadError> {
        let limit = self.config.max_bytes;
        let mut response = self.send(url).await?;
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
        // Never pre-sized from what the server announces beyond 1 MiB (nor past the limit): the buffer grows
        // with the bytes that actually arrive.
        let capacity = response.content_length().unwrap_or(64 * 1024).min(limit).min(1 << 20);
        let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            if bytes.len() as u64 + chunk.len() as u64 > limit {
                return Err(DownloadError::TooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Downloaded { bytes, content_type })
    }

    /// GETs `url`, following up to `max_redirects` redirects. Each hop is checked (scheme and address) by
    /// `client_for` before anything is sent to it.
    async fn send(&self, mut url: Url) -> Result<reqwest::Response, DownloadError> {
        let max = self.config.max_redirects;
        for _ in 0..=max {
            let client = self.client_for(&url)?;
            let response = client.get(url.clone()).send().await.map_err(network)?;
            match redirect_target(&url, &response)? {
                Some(next) => url = next,
                None => return Ok(response),
            }
        }
        Err(DownloadError::TooManyRedirects(max))
    }

    /// The client allowed to fetch `url`, or why none is. Trusted hosts get the plain client; anything else
    /// must be https (or http when allowed) and, when its host is an IP literal (which no resolver sees),
    /// an allowed address. Names are checked by the checked client's resolver.
    fn client_for(&self, url: &Url) -> Result<&reqwest::Client, DownloadError> {
        match url.scheme() {
            "https" | "http" => {}
            other => return Err(DownloadError::InvalidUrl(format!("scheme {other}"))),
        }
        if self.config.trusted_hosts.iter().any(|t| t.matches(url)) {
            return Ok(&self.trusted);
        }
        if url.scheme() == "http" && !self.config.allow_http {
            return Err(DownloadError::HttpRefused);
        }
        let literal = match url.host() {
            None => return Err(DownloadError::InvalidUrl("no host".into())),
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            // `url` already turns every IPv4 spelling into `Host::Ipv4`; this is a second guard in case the
            // connector would still read a name as an address.
            Some(Host::Domain(name)) => name.parse::<IpAddr>().ok(),
        };
        if literal.is_some_and(|ip| !address_allowed(ip)) {
            return Err(DownloadError::AddressRefused);
        }
        Ok(&self.checked)
    }
}

/// Where a redirect response points, resolved against the URL that answered; `None` when `response` is
/// not a redirect (a 3xx without `Location` is then reported as its status).
fn redirect_target(from: &Url, response: &reqwest::Response) -> Result<Option<Url>, DownloadError> {
    if !response.status().is_redirection() {
        return Ok(None);
    }
    let Some(location) = response.headers().get(LOCATION) else {
        return Ok(None);
    };
    let location = location.to_str().map_err(|_| DownloadError::InvalidUrl("redirect location".into()))?;
    from.join(location).map(Some).map_err(|e| DownloadError::InvalidUrl(format!("redirect location: {e}")))
}

/// The error of [`PublicResolver`] when a name has no allowed address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("refused: address not allowed")]
pub struct AddressRefused;

/// The checked client's DNS resolver: the system resolver, keeping only allowed addresses. reqwest
/// connects only to the addresses a resolver returns, so the address checked is the one connected to.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicResolver;

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let addrs: Addrs = Box::new(allowed_addrs(found)?.into_iter());
            Ok(addrs)
        })
    }
}

/// The allowed addresses among `addrs`; an error when none is left. Dropping the others (rather than
/// refusing the name) keeps hosts that publish a stray private record next to public ones working.
pub fn allowed_addrs(addrs: impl IntoIterator<Item = SocketAddr>) -> Result<Vec<SocketAddr>, AddressRefused> {
    let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| address_allowed(a.ip())).collect();
    if allowed.is_empty() {
        Err(AddressRefused)
    } else {
        Ok(allowed)
    }
}

/// True when downloads may connect to `ip`: a globally reachable unicast address. Refused: loopback,
/// private, link-local (cloud metadata 169.254.169.254, fd00:ec2::254), CGNAT, multicast, broadcast,
/// unspecified, documentation, benchmarking and reserved ranges; IPv4-mapped and NAT64 IPv6 addresses are
/// judged by the IPv4 address inside.
pub fn address_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => ipv4_allowed(v4),
        IpAddr::V6(v6) => ipv6_allowed(v6),
    }
}

/// IPv4 ranges that are not public unicast (IANA special-purpose registry).
const REFUSED_V4: [(Ipv4Addr, u8); 15] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", unspecified
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // CGNAT (shared address space)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, cloud metadata
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, broadcast 255.255.255.255
];

fn ipv4_allowed(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !REFUSED_V4.iter().any(|(net, len)| in_prefix(bits.into(), u32::from(*net).into(), *len, 32))
}

/// Ranges inside global unicast (2000::/3) that are not public unicast.
const REFUSED_V6: [(Ipv6Addr, u8); 4] = [
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments: Teredo, benchmarking, ORCHID
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4 (deprecated), would tunnel to any IPv4
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
];

/// Only global unicast (2000::/3) passes, so unspecified, loopback, IPv4-compatible, ULA (fc00::/7),
/// link-local, site-local, multicast, discard and NAT64 local-use are refused without a list of their own.
fn ipv6_allowed(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        return ipv4_allowed(v4);
    }
    let bits = u128::from(ip);
    in_prefix(bits, u128::from(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0)), 3, 128)
        && !REFUSED_V6.iter().any(|(net, len)| in_prefix(bits, u128::from(*net), *len, 128))
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`, which the OS connects to
/// as IPv4) and NAT64 well-known prefix (`64:ff9b::a.b.c.d`, which a NAT64 gateway forwards to IPv4).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7])));
    }
    None
}

/// True when the first `len` of `width` bits of `addr` equal those of `net`.
fn in_prefix(addr: u128, net: u128, len: u8, width: u32) -> bool {
    let shift = width.saturating_sub(u32::from(len));
    addr.checked_shr(shift) == net.checked_shr(shift)
}

/// True when `e` or one of its causes is the resolver's refusal.
fn refused_by_resolver(e: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if err.is::<AddressRefused>() {
            return true;
        }
        cause = err.source();
    }
    false
}

fn network(e: reqwest::Error) -> DownloadError {
    if refused_by_resolver(&e) {
        DownloadError::AddressRefused
    } else if e.is_timeout() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let v4 = |s: &str| u128::from(u32::from(s.parse::<Ipv4Addr>().unwrap()));
        assert!(in_prefix(v4("172.31.255.255"), v4("172.16.0.0"), 12, 32));
        assert!(!in_prefix(v4("172.32.0.0"), v4("172.16.0.0"), 12, 32));
        assert!(in_prefix(v4("8.8.8.8"), v4("0.0.0.0"), 0, 32));
        assert!(in_prefix(1, 0, 0, 128), "a zero-length prefix holds everything");
        assert!(in_prefix(5, 5, 128, 128) && !in_prefix(5, 4, 128, 128));
    }

    #[test]
    fn embedded_ipv4_forms() {
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(embedded_ipv4(v6("::ffff:10.1.2.3")), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(embedded_ipv4(v6("64:ff9b::a9fe:a9fe")), Some(Ipv4Addr::new(169, 254, 169, 254)));
        assert_eq!(embedded_ipv4(v6("2606:4700::1111")), None);
    }

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

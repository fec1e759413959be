//! [`Downloader`]: the streamed, size-bounded, paced GET of one file, its redirects checked hop by hop, and the
//! extraction after it.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Semaphore;
use url::{Host, Url};

use super::address::{address_allowed, refused_by_resolver, PublicResolver};
use super::{bounded, DownloadConfig, DownloadError, Downloaded, FileOutcome, OUT_OF_TIME};
use crate::extract::{
    extract_in_background, file_block_info, kind_from_name, ExtractError, Extracted, FileHint, FileKind,
};
use crate::notion::{Pacer, PacerConfig};

/// Downloads files with bounded parallelism and its own pacing (a [`Pacer`] of its own, apart from the Notion
/// budget). Cheap to clone.
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
        // Evenly spaced request starts (one slot, no burst), the Notion client's pacer at the full rate: file
        // hosts send no rate-limit feedback to it. 0 (or less) disables pacing.
        let rate = if config.requests_per_second > 0.0 { config.requests_per_second } else { f64::INFINITY };
        let pacing = PacerConfig { rate, headroom: 1.0, burst: 1, ..PacerConfig::default() };
        let pacer = Arc::new(Pacer::new(pacing).expect("a positive rate, full headroom and one slot are valid"));
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
            Err(e @ ExtractError::Timeout(_)) => {
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
        self.pacer.acquire().await;
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

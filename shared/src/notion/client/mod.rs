//! The HTTP core: configuration, the token, URL building, and the send loop (pacer → request → retry decision),
//! whose waits stop short of the task-local deadline ([`super::deadline`]).

mod send;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::Value;
use url::Url;

use super::error::NotionError;
use super::list::ListPage;
use super::pacer::{Pacer, PacerConfig};
use super::retry::RetryPolicy;
use super::stats::{Stats, StatsSnapshot};
use super::version::ApiVersion;
use crate::secrets::SecretString;

pub const DEFAULT_BASE_URL: &str = "https://api.notion.com";
pub const USER_AGENT: &str = concat!("notion-es/", env!("CARGO_PKG_VERSION"));
const MAX_ERROR_TEXT: usize = 500;

/// The integration token, trimmed. Its `Debug` and `Display` print nothing of it ([`SecretString`]).
#[derive(Clone, Debug)]
pub struct Token(SecretString);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Token(SecretString::new(token.into().trim()))
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// Client settings. `Default` is Notion's API at 3 requests/s, Notion-Version 2025-09-03, a 60 s timeout.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// API base without `/v1` (`NOTION_BASE_URL`).
    pub base_url: String,
    pub version: ApiVersion,
    /// Pace of this client (e.g. `NOTION_RATE / WORKER_CONCURRENCY`), burst and back-off.
    pub pacer: PacerConfig,
    /// Per-request timeout (whole request, body included).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: DEFAULT_BASE_URL.to_string(),
            version: ApiVersion::default(),
            pacer: PacerConfig::default(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

impl ClientConfig {
    /// The default settings with a base URL and a rate.
    pub fn new(base_url: impl Into<String>, version: ApiVersion, rate: f64) -> Self {
        ClientConfig { base_url: base_url.into(), version, pacer: PacerConfig::with_rate(rate), ..Self::default() }
    }
}

/// The Notion client. Cheap to clone; clones share one connection pool, pacer and set of counters.
#[derive(Clone)]
pub struct NotionClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    version: ApiVersion,
    version_header: HeaderValue,
    auth_header: HeaderValue,
    token: Token,
    pacer: Pacer,
    retry: RetryPolicy,
    stats: Stats,
}

impl fmt::Debug for NotionClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotionClient")
            .field("base", &self.inner.base.as_str())
            .field("version", &self.inner.version)
            .field("pacer", &self.inner.pacer)
            .finish_non_exhaustive()
    }
}

impl NotionClient {
    pub fn new(token: Token, config: ClientConfig) -> Result<Self, NotionError> {
        let base = Url::parse(config.base_url.trim())
            .map_err(|e| NotionError::Config(format!("base URL {:?}: {e}", config.base_url)))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(NotionError::Config(format!("base URL {:?} is not an http(s) URL", config.base_url)));
        }
        if token.expose().is_empty() {
            return Err(NotionError::Config("the Notion token is empty".into()));
        }
        let mut auth_header = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| NotionError::Config("the Notion token contains characters not allowed in a header".into()))?;
        auth_header.set_sensitive(true);
        let version_header = HeaderValue::from_static(config.version.as_str());
        let pacer = Pacer::new(config.pacer.clone()).map_err(NotionError::Config)?;
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout.min(config.timeout))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotionError::Config(format!("HTTP client: {e}")))?;
        Ok(NotionClient {
            inner: Arc::new(Inner {
                http,
                base,
                version: config.version,
                version_header,
                auth_header,
                token,
                pacer,
                retry: config.retry,
                stats: Stats::default(),
            }),
        })
    }

    pub fn version(&self) -> ApiVersion {
        self.inner.version
    }

    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The counters since the client was built.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// The pacer's current rate in requests per second (lower than configured while backed off).
    pub fn current_rate(&self) -> f64 {
        self.inner.pacer.current_rate()
    }

    /// `{base}/v1/{segments...}`, each segment percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        url
    }

    /// `url` for a list endpoint: `page_size=100` and `start_cursor` when there is one (never a null/empty cursor).
    pub(crate) fn list_url(&self, segments: &[&str], cursor: Option<&str>, extra: &[(&str, &str)]) -> Url {
        let mut url = self.url(segments);
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in extra {
                query.append_pair(k, v);
            }
            query.append_pair("page_size", &super::list::PAGE_SIZE.to_string());
            if let Some(c) = cursor.filter(|c| !c.is_empty()) {
                query.append_pair("start_cursor", c);
            }
        }
        url
    }

    pub(crate) async fn get(&self, url: Url) -> Result<Value, NotionError> {
        self.send(Method::GET, url, None).await
    }

    pub(crate) async fn post(&self, url: Url, body: &Value) -> Result<Value, NotionError> {
        self.send(Method::POST, url, Some(body)).await
    }

    /// GET of one list page fetched with `cursor`, decoded and checked ([`ListPage::check`]).
    pub(crate) async fn get_list(&self, url: Url, cursor: Option<&str>) -> Result<ListPage, NotionError> {
        let value = self.get(url.clone()).await?;
        decode_list("GET", &url, value, cursor)
    }
}

/// Decodes a 2xx list body fetched with cursor `requested`: a body that is not a list object is a
/// [`NotionError::Decode`], a page failing [`ListPage::check`] a [`NotionError::Pagination`].
pub(crate) fn decode_list(
    method: &'static str,
    url: &Url,
    value: Value,
    requested: Option<&str>,
) -> Result<ListPage, NotionError> {
    let page = ListPage::from_value(value).map_err(|e| NotionError::Decode {
        method,
        path: url.path().to_string(),
        status: 200,
        message: format!("not a list: {e}"),
    })?;
    let requested = requested.filter(|c| !c.is_empty());
    page.check(requested).map_err(|detail| NotionError::Pagination { method, path: url.path().to_string(), detail })?;
    Ok(page)
}

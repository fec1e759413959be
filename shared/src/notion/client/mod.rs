//! The HTTP core: configuration, the token, URL building, and the send loop (pacer → request → retry decision),
//! whose waits stop short of the task-local deadline ([`super::deadline`]).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::Method;
use serde_json::Value;
use tracing::Instrument;
use url::Url;

use super::deadline::{current_deadline, on_tokio_clock, would_pass};
use super::error::{NotionError, TransportKind, WaitReason};
use super::list::ListPage;
use super::pacer::{Pacer, PacerConfig};
use super::retry::{decide, parse_retry_after, Decision, Failure, RetryPolicy, RetryState};
use super::stats::{Stats, StatsSnapshot};
use super::version::ApiVersion;

pub const DEFAULT_BASE_URL: &str = "https://api.notion.com";
pub const USER_AGENT: &str = concat!("notion-es/", env!("CARGO_PKG_VERSION"));
const MAX_ERROR_TEXT: usize = 500;

/// The integration token. Its `Debug` prints nothing of it; it has no `Display`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into().trim().to_string())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
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

/// An attempt's failure: what the retry decision needs plus the error to return if it gives up.
struct AttemptError {
    failure: Option<Failure>,
    error: NotionError,
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

    /// Paced, retried request returning the decoded JSON body of a 2xx response. Inside
    /// [`super::deadline::with_deadline`], a wait that would end after the deadline is not started: the request
    /// returns [`NotionError::DeadlineWouldPass`] instead (a rate-limit pause is still recorded in the pacer first).
    pub(crate) async fn send(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Value, NotionError> {
        let inner = &*self.inner;
        let deadline = current_deadline();
        let mut state = RetryState::default();
        let mut attempt: u32 = 0;
        // The failure that made the previous round wait, for a deadline error raised by the pacer.
        let mut previous: Option<NotionError> = None;
        loop {
            attempt += 1;
            match inner.pacer.acquire_before(deadline.map(on_tokio_clock)).await {
                Ok(waited) => inner.stats.pacer_wait(waited),
                Err(past) => {
                    inner.stats.pacer_wait(past.waited);
                    return Err(self.deadline_error(&method, &url, past.wait, WaitReason::Paced, previous));
                }
            }
            inner.stats.request();
            if attempt > 1 {
                inner.stats.retry();
            }
            let sent_at = tokio::time::Instant::now();
            let span = tracing::debug_span!(
                "notion_request",
                method = %method,
                path = url.path(),
                attempt,
                status = tracing::field::Empty,
            );
            let result = self.attempt(&method, &url, body, attempt).instrument(span).await;
            let AttemptError { failure, error } = match result {
                Ok(value) => {
                    inner.pacer.on_success();
                    return Ok(value);
                }
                Err(e) => e,
            };
            let Some(failure) = failure else {
                return Err(error);
            };
            self.count_failure(failure);
            match decide(&inner.retry, failure, &state, rand::random::<f64>()) {
                Decision::GiveUp => return Err(error),
                Decision::RateLimited { wait } => {
                    // The pacer pauses every caller of this client; the next acquire() waits. Recorded even when
                    // this caller cannot wait, so that the others back off too.
                    inner.pacer.on_rate_limited(wait, sent_at);
                    if would_pass(deadline, wait) {
                        return Err(self.deadline_error(&method, &url, wait, WaitReason::RateLimited, Some(error)));
                    }
                    state.rate_limited_retries += 1;
                    state.rate_limit_waited += wait;
                    tracing::warn!(
                        method = %method,
                        path = url.path(),
                        attempt,
                        status = error.status(),
                        wait_ms = wait.as_millis() as u64,
                        request_id = error.request_id(),
                        "notion rate limited; retrying after Retry-After"
                    );
                }
                Decision::Backoff { delay } => {
                    if would_pass(deadline, delay) {
                        let reason = WaitReason::Retry { status: error.status() };
                        return Err(self.deadline_error(&method, &url, delay, reason, Some(error)));
                    }
                    state.transient_retries += 1;
                    tracing::warn!(
                        method = %method,
                        path = url.path(),
                        attempt,
                        status = error.status(),
                        error = %error,
                        delay_ms = delay.as_millis() as u64,
                        "notion request failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    inner.stats.backoff_wait(delay);
                }
            }
            previous = Some(error);
        }
    }

    fn deadline_error(
        &self,
        method: &Method,
        url: &Url,
        wait: Duration,
        reason: WaitReason,
        cause: Option<NotionError>,
    ) -> NotionError {
        tracing::warn!(
            method = %method,
            path = url.path(),
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            %reason,
            "notion wait would pass the invocation deadline; returning"
        );
        NotionError::DeadlineWouldPass {
            method: method_name(method),
            path: url.path().to_string(),
            wait,
            reason,
            cause: cause.map(Box::new),
        }
    }

    fn count_failure(&self, failure: Failure) {
        let stats = &self.inner.stats;
        match failure {
            Failure::Status { status: 429 | 529, .. } => stats.rate_limited(),
            Failure::Status { status: 500..=599, .. } => stats.server_error(),
            Failure::Status { .. } => {}
            Failure::Transport(TransportKind::Timeout) => stats.timeout(),
            Failure::Transport(TransportKind::Connect | TransportKind::Dropped) => stats.connection_error(),
            Failure::Transport(TransportKind::Other) => {}
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
        attempt: u32,
    ) -> Result<Value, AttemptError> {
        let inner = &*self.inner;
        let mut request = inner
            .http
            .request(method.clone(), url.clone())
            .header(reqwest::header::AUTHORIZATION, inner.auth_header.clone())
            .header("Notion-Version", inner.version_header.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Err(self.transport_error(method, url, &e, attempt)),
        };
        let status = response.status().as_u16();
        tracing::Span::current().record("status", status);
        let request_id = header_str(&response, "x-notion-request-id");
        let cf_ray = header_str(&response, "cf-ray");
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(self.transport_error(method, url, &e, attempt)),
        };
        tracing::debug!(status, bytes = bytes.len(), "notion response");
        if (200..300).contains(&status) {
            return match serde_json::from_slice::<Value>(&bytes) {
                Ok(value) => Ok(value),
                Err(e) => Err(AttemptError {
                    failure: None,
                    error: NotionError::Decode {
                        method: method_name(method),
                        path: url.path().to_string(),
                        status,
                        message: e.to_string(),
                    },
                }),
            };
        }
        let (code, message, body_request_id) = error_fields(&bytes);
        let notion_error = !code.is_empty();
        let failure = Some(Failure::Status { status, retry_after, notion_error });
        if status == 404 && !notion_error {
            let error = NotionError::EndpointMissing {
                method: method_name(method),
                path: url.path().to_string(),
                base_url: display_base(&inner.base),
                attempts: attempt,
            };
            return Err(AttemptError { failure, error });
        }
        // Not Notion's answer: name the edge's request id (Cloudflare's `cf-ray`) for support.
        let message = match cf_ray.filter(|_| !notion_error) {
            Some(ray) => format!("no Notion error body (cf-ray {ray}): {message}"),
            None => message,
        };
        Err(AttemptError {
            failure,
            error: NotionError::Api {
                method: method_name(method),
                path: url.path().to_string(),
                status,
                code: self.redact(&code),
                message: self.redact(&message),
                request_id: request_id.or(body_request_id),
                attempts: attempt,
            },
        })
    }

    fn transport_error(&self, method: &Method, url: &Url, e: &reqwest::Error, attempt: u32) -> AttemptError {
        let kind = transport_kind(e);
        // Walk the source chain for a useful message ("connection closed before message completed").
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        AttemptError {
            failure: Some(Failure::Transport(kind)),
            error: NotionError::Transport {
                method: method_name(method),
                path: url.path().to_string(),
                kind,
                attempts: attempt,
                message: self.redact(&message),
            },
        }
    }

    /// Removes the token from server- or library-provided text (defence in depth).
    fn redact(&self, text: &str) -> String {
        let token = self.inner.token.expose();
        if token.is_empty() {
            text.to_string()
        } else {
            text.replace(token, "<redacted>")
        }
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

/// The base URL for messages: no credentials, query or fragment (none belong there, but a URL is config text).
fn display_base(base: &Url) -> String {
    let mut shown = base.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

fn header_str(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Classifies a reqwest error: timeouts, refused connections, and connections dropped while sending or reading.
pub(crate) fn transport_kind(e: &reqwest::Error) -> TransportKind {
    if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_connect() {
        TransportKind::Connect
    } else if e.is_request() || e.is_body() || e.is_decode() {
        TransportKind::Dropped
    } else {
        TransportKind::Other
    }
}

/// `code`, `message` and `request_id` of an error body; a non-JSON body becomes the message (truncated).
fn error_fields(bytes: &[u8]) -> (String, String, Option<String>) {
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(bytes) {
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        return (text("code").unwrap_or_default(), text("message").unwrap_or_default(), text("request_id"));
    }
    let text = String::from_utf8_lossy(bytes);
    let mut end = text.len().min(MAX_ERROR_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (String::new(), text[..end].trim().to_string(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> NotionClient {
        NotionClient::new(Token::new("secret_abc"), ClientConfig { base_url: base.into(), ..Default::default() })
            .unwrap()
    }

    #[test]
    fn token_debug_prints_nothing() {
        let t = Token::new("secret_abc");
        assert!(!format!("{t:?}").contains("secret"));
        let c = client("http://127.0.0.1:1");
        assert!(!format!("{c:?}").contains("secret_abc"));
    }

    #[test]
    fn builds_urls_with_and_without_trailing_slash_or_prefix() {
        let c = client("http://127.0.0.1:8787");
        assert_eq!(c.url(&["pages", "a b/c"]).as_str(), "http://127.0.0.1:8787/v1/pages/a%20b%2Fc");
        let c = client("http://127.0.0.1:8787/");
        assert_eq!(c.url(&["users", "me"]).as_str(), "http://127.0.0.1:8787/v1/users/me");
        let c = client("http://host/notion/");
        assert_eq!(c.url(&["search"]).as_str(), "http://host/notion/v1/search");
        let c = client("https://api.notion.com");
        assert_eq!(
            c.list_url(&["blocks", "b1", "children"], Some("cur sor"), &[]).as_str(),
            "https://api.notion.com/v1/blocks/b1/children?page_size=100&start_cursor=cur+sor"
        );
        assert_eq!(c.list_url(&["users"], Some(""), &[]).as_str(), "https://api.notion.com/v1/users?page_size=100");
        assert_eq!(
            c.list_url(&["comments"], None, &[("block_id", "b1")]).as_str(),
            "https://api.notion.com/v1/comments?block_id=b1&page_size=100"
        );
    }

    #[test]
    fn rejects_bad_config() {
        let cfg = |base: &str| ClientConfig { base_url: base.into(), ..Default::default() };
        assert!(NotionClient::new(Token::new("t"), cfg("not a url")).is_err());
        assert!(NotionClient::new(Token::new("t"), cfg("ftp://x")).is_err());
        assert!(NotionClient::new(Token::new(" "), cfg("http://x")).is_err());
        let err = NotionClient::new(Token::new("bad\ntoken"), cfg("http://x")).unwrap_err();
        assert!(!err.to_string().contains("bad"), "{err}");
        let mut bad_rate = cfg("http://x");
        bad_rate.pacer.rate = 0.0;
        assert!(NotionClient::new(Token::new("t"), bad_rate).is_err());
    }

    #[test]
    fn error_fields_are_lenient() {
        let (code, msg, rid) = error_fields(
            br#"{"object":"error","status":404,"code":"object_not_found","message":"gone","request_id":"r"}"#,
        );
        assert_eq!((code.as_str(), msg.as_str(), rid.as_deref()), ("object_not_found", "gone", Some("r")));
        let (code, msg, rid) = error_fields(b"<html>bad gateway</html>");
        assert_eq!((code.as_str(), msg.as_str(), rid), ("", "<html>bad gateway</html>", None));
        let long = "é".repeat(600);
        let (_, msg, _) = error_fields(long.as_bytes());
        assert!(msg.len() <= MAX_ERROR_TEXT);
    }

    #[test]
    fn base_urls_are_shown_without_credentials() {
        let base = Url::parse("https://user:pw@x.example/notion/?k=v#f").unwrap();
        assert_eq!(display_base(&base), "https://x.example/notion/");
        assert_eq!(display_base(&Url::parse("https://x.example").unwrap()), "https://x.example/");
    }

    #[test]
    fn list_pages_are_checked_with_the_requested_cursor() {
        let url = Url::parse("https://x.example/v1/users").unwrap();
        let page = serde_json::json!({ "results": [], "has_more": true, "next_cursor": "c1" });
        assert!(decode_list("GET", &url, page.clone(), None).is_ok());
        assert!(decode_list("GET", &url, page.clone(), Some("")).is_ok());
        let err = decode_list("GET", &url, page, Some("c1")).unwrap_err();
        assert!(matches!(err, NotionError::Pagination { .. }), "{err:?}");
        assert!(err.to_string().starts_with("Notion GET /v1/users: broken pagination"), "{err}");
    }

    #[test]
    fn redacts_the_token() {
        let c = client("http://127.0.0.1:1");
        assert_eq!(c.redact("token secret_abc leaked"), "token <redacted> leaked");
    }
}

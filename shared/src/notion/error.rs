//! The Notion client's error type. Messages carry the method, path, status, Notion `code`, message and request id;
//! never the token (the client redacts it from any server-provided text as well).

use std::fmt;
use std::time::Duration;

use super::version::UnknownVersion;

/// What went wrong below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The per-request timeout elapsed.
    Timeout,
    /// The connection could not be established.
    Connect,
    /// The connection dropped while sending the request or reading the response.
    Dropped,
    /// Anything else (building the request, redirects...): not retried.
    Other,
}

impl TransportKind {
    pub fn is_retryable(self) -> bool {
        !matches!(self, TransportKind::Other)
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Timeout => "timeout",
            TransportKind::Connect => "connection failed",
            TransportKind::Dropped => "connection dropped",
            TransportKind::Other => "transport error",
        })
    }
}

/// Why the client would have waited, in a [`NotionError::DeadlineWouldPass`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// This request got a 429/529 whose `Retry-After` (or rate-limit backoff) ends after the deadline.
    RateLimited,
    /// This request failed transiently (5xx, 409, Cloudflare page, timeout...) and its backoff ends after the
    /// deadline. `status` is the HTTP status, `None` for a transport failure.
    Retry { status: Option<u16> },
    /// The client is paused (another request's 429 set a `Retry-After`) or paced slowly, and the next free slot
    /// lies after the deadline.
    Paced,
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::RateLimited => f.write_str("rate limited"),
            WaitReason::Retry { status: Some(status) } => write!(f, "before retrying after HTTP {status}"),
            WaitReason::Retry { status: None } => f.write_str("before retrying after a transport error"),
            WaitReason::Paced => f.write_str("client paused by a rate limit or paced"),
        }
    }
}

/// `60 s`, `1.5 s`: a wait as people read it.
fn wait_text(wait: &Duration) -> String {
    if wait.subsec_millis() == 0 {
        format!("{} s", wait.as_secs())
    } else {
        format!("{:.1} s", wait.as_secs_f64())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotionError {
    /// Notion answered with a non-2xx status (its `object:"error"` body decoded leniently).
    #[error("Notion {method} {path} failed: HTTP {status} {code}: {message} (request id {})", request_id.as_deref().unwrap_or("none"))]
    Api {
        method: &'static str,
        path: String,
        status: u16,
        /// Notion's error `code` (`object_not_found`, `rate_limited`...); empty when the body had none.
        code: String,
        message: String,
        request_id: Option<String>,
        /// Attempts made, retries included.
        attempts: u32,
    },
    /// A 404 without a Notion error body: nothing answers this path at the configured base URL, which says
    /// nothing about the object asked for. A wrong `NOTION_BASE_URL` (a missing or extra prefix) or an endpoint
    /// that does not exist on this API version; every call will fail the same way. Not [`NotionError::is_not_found`].
    #[error("Notion {method} {path}: endpoint not found at {base_url} (HTTP 404 without a Notion error body: check NOTION_BASE_URL and NOTION_VERSION)")]
    EndpointMissing {
        method: &'static str,
        path: String,
        /// The configured base URL (without credentials or query).
        base_url: String,
        attempts: u32,
    },
    /// Inside [`super::deadline::with_deadline`]: the client would have waited (`Retry-After`, a retry backoff, or
    /// the pacer) past the deadline, so it returned at once instead. Nothing is lost: the pacer still holds any
    /// rate-limit pause for the client's other callers. Retry after [`NotionError::retry_after_hint`].
    #[error("Notion {method} {path}: waiting {} ({reason}) would pass the invocation deadline", wait_text(wait))]
    DeadlineWouldPass {
        method: &'static str,
        path: String,
        /// How long the client would have waited from the moment it gave up.
        wait: Duration,
        reason: WaitReason,
        /// The failed attempt that caused the wait (the 429, the 503...), when there was one.
        #[source]
        cause: Option<Box<NotionError>>,
    },
    /// A 2xx list response that would make a cursor loop spin: `has_more` without a cursor, the cursor just
    /// requested handed back again, or more results than a page may hold. A Notion bug or a misbehaving proxy;
    /// refusing it stops callers that loop on `(has_more, next_cursor)` from running until their timeout.
    #[error("Notion {method} {path}: broken pagination: {detail}")]
    Pagination { method: &'static str, path: String, detail: String },
    /// No HTTP response (timeout, connection refused or dropped).
    #[error("Notion {method} {path}: {kind} after {attempts} attempt(s): {message}")]
    Transport { method: &'static str, path: String, kind: TransportKind, attempts: u32, message: String },
    /// A 2xx response whose body is not the JSON object expected.
    #[error("Notion {method} {path}: unreadable response body (HTTP {status}): {message}")]
    Decode { method: &'static str, path: String, status: u16, message: String },
    /// The endpoint does not exist on the configured API version.
    #[error("{what} is not available with Notion-Version {version}")]
    Unsupported { what: &'static str, version: &'static str },
    /// Invalid client configuration (base URL, rate, token characters...).
    #[error("invalid Notion client configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Version(#[from] UnknownVersion),
}

impl NotionError {
    /// The HTTP status, when the server answered (an [`NotionError::EndpointMissing`] is a 404).
    pub fn status(&self) -> Option<u16> {
        match self {
            NotionError::Api { status, .. } | NotionError::Decode { status, .. } => Some(*status),
            NotionError::EndpointMissing { .. } => Some(404),
            _ => None,
        }
    }

    /// Notion's error `code`, when Notion answered with an error body.
    pub fn code(&self) -> Option<&str> {
        match self {
            NotionError::Api { code, .. } if !code.is_empty() => Some(code),
            _ => None,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            NotionError::Api { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Notion says the object does not exist or is not shared with the integration: a 404 with a Notion error
    /// body (`object_not_found`, or any other code). A 404 without one is [`NotionError::is_endpoint_missing`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, NotionError::Api { status: 404, code, .. } if !code.is_empty())
    }

    /// A 404 without a Notion error body: the endpoint does not exist at the configured base URL (wrong
    /// `NOTION_BASE_URL` or API version). A configuration problem, not a missing object.
    pub fn is_endpoint_missing(&self) -> bool {
        matches!(self, NotionError::EndpointMissing { .. })
    }

    /// 401: the token is bad or revoked. (A 403 is not: see [`NotionError::is_restricted`].)
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, NotionError::Api { status: 401, .. })
    }

    /// 403 `restricted_resource`: the token works but lacks a capability (user information, read comments) or
    /// access to this object. A 403 without a Notion body (a Cloudflare block page) is not this; it is retried.
    pub fn is_restricted(&self) -> bool {
        matches!(self, NotionError::Api { status: 403, code, .. } if code == "restricted_resource")
    }

    /// 429 `rate_limited` or 529 `service_overload`.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self.status(), Some(429) | Some(529))
    }

    /// The client returned early rather than wait past the deadline of [`super::deadline::with_deadline`].
    pub fn is_deadline(&self) -> bool {
        matches!(self, NotionError::DeadlineWouldPass { .. })
    }

    /// How long to wait before trying again, when the client knows: the wait it declined in a
    /// [`NotionError::DeadlineWouldPass`] (measured from when it returned).
    pub fn retry_after_hint(&self) -> Option<Duration> {
        match self {
            NotionError::DeadlineWouldPass { wait, .. } => Some(*wait),
            _ => None,
        }
    }

    /// Whether trying the same request again later may succeed (the client already retried it within its policy).
    pub fn is_retryable(&self) -> bool {
        match self {
            NotionError::Api { status, code, .. } => super::retry::is_retryable_answer(*status, !code.is_empty()),
            NotionError::Transport { kind, .. } => kind.is_retryable(),
            NotionError::DeadlineWouldPass { .. } => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> NotionError {
        NotionError::Api {
            method: "GET",
            path: "/v1/pages/x".into(),
            status,
            code: code.into(),
            message: "m".into(),
            request_id: Some("r-1".into()),
            attempts: 1,
        }
    }

    #[test]
    fn stays_small() {
        // Callers embed it in their own error enums (clippy's result_large_err starts at 128 bytes).
        assert!(std::mem::size_of::<NotionError>() <= 120, "{}", std::mem::size_of::<NotionError>());
    }

    #[test]
    fn helpers() {
        assert!(api(404, "object_not_found").is_not_found());
        assert!(api(404, "some_future_code").is_not_found());
        assert!(!api(404, "").is_not_found(), "no Notion body: not Notion's answer about the object");
        assert!(!api(404, "object_not_found").is_endpoint_missing());
        assert!(api(401, "unauthorized").is_unauthorized());
        assert!(api(401, "").is_unauthorized());
        assert!(!api(403, "restricted_resource").is_unauthorized(), "a missing capability is not a bad token");
        assert!(api(403, "restricted_resource").is_restricted());
        assert!(!api(403, "restricted_resource").is_retryable());
        assert!(!api(403, "").is_restricted());
        assert!(api(403, "").is_retryable(), "a Cloudflare block page is transient");
        assert!(!api(401, "unauthorized").is_restricted());
        assert!(api(524, "").is_retryable());
        assert!(api(530, "").is_retryable());
        assert!(!api(501, "").is_retryable());
        assert!(!api(404, "object_not_found").is_unauthorized());
        assert!(api(429, "rate_limited").is_retryable());
        assert!(api(409, "conflict_error").is_retryable());
        assert!(api(503, "service_unavailable").is_retryable());
        assert!(!api(400, "validation_error").is_retryable());
        assert!(!api(401, "unauthorized").is_retryable());
        assert_eq!(api(400, "validation_error").code(), Some("validation_error"));
        assert_eq!(api(400, "").code(), None);
        let msg = api(404, "object_not_found").to_string();
        assert!(msg.contains("404") && msg.contains("object_not_found") && msg.contains("r-1"), "{msg}");
        let t = NotionError::Transport {
            method: "GET",
            path: "/v1/users".into(),
            kind: TransportKind::Timeout,
            attempts: 3,
            message: "x".into(),
        };
        assert!(t.is_retryable());
        assert_eq!(t.status(), None);
        assert_eq!(t.retry_after_hint(), None);
    }

    #[test]
    fn endpoint_missing_says_what_to_check() {
        let e = NotionError::EndpointMissing {
            method: "GET",
            path: "/v1/search".into(),
            base_url: "https://x.example/".into(),
            attempts: 1,
        };
        assert_eq!(
            e.to_string(),
            "Notion GET /v1/search: endpoint not found at https://x.example/ (HTTP 404 without a Notion error body: \
             check NOTION_BASE_URL and NOTION_VERSION)"
        );
        assert!(e.is_endpoint_missing() && !e.is_not_found() && !e.is_retryable() && !e.is_unauthorized());
        assert_eq!(e.status(), Some(404));
    }

    #[test]
    fn deadline_would_pass() {
        let e = NotionError::DeadlineWouldPass {
            method: "GET",
            path: "/v1/blocks/x/children".into(),
            wait: Duration::from_secs(60),
            reason: WaitReason::RateLimited,
            cause: Some(Box::new(api(429, "rate_limited"))),
        };
        assert_eq!(
            e.to_string(),
            "Notion GET /v1/blocks/x/children: waiting 60 s (rate limited) would pass the invocation deadline"
        );
        assert!(e.is_retryable() && e.is_deadline() && !e.is_rate_limited());
        assert_eq!(e.retry_after_hint(), Some(Duration::from_secs(60)));
        let source = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
        assert!(source.contains("429"), "{source}");
        let e = NotionError::DeadlineWouldPass {
            method: "POST",
            path: "/v1/search".into(),
            wait: Duration::from_millis(1500),
            reason: WaitReason::Retry { status: Some(503) },
            cause: None,
        };
        assert!(e.to_string().contains("waiting 1.5 s (before retrying after HTTP 503)"), "{e}");
        assert_eq!(WaitReason::Retry { status: None }.to_string(), "before retrying after a transport error");
        assert!(WaitReason::Paced.to_string().contains("paused"));
    }

    #[test]
    fn pagination_names_the_endpoint() {
        let e = NotionError::Pagination {
            method: "POST",
            path: "/v1/search".into(),
            detail: "has_more is true but next_cursor is empty".into(),
        };
        assert_eq!(
            e.to_string(),
            "Notion POST /v1/search: broken pagination: has_more is true but next_cursor is empty"
        );
        assert!(!e.is_retryable() && !e.is_not_found());
    }
}

//! The Notion client's error type. Messages carry the method, path, status, Notion `code`, message and request id;
//! never the token (the client redacts it from any server-provided text as well).

use std::fmt;

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
    /// The HTTP status, when Notion answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            NotionError::Api { status, .. } | NotionError::Decode { status, .. } => Some(*status),
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

    /// 404: the object does not exist or is not shared with the integration.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// 401 (bad or revoked token) or 403 (`restricted_resource`: missing capability or permission).
    /// Whether a 403 concerns the token or one object is the caller's call (it knows what it asked for).
    pub fn is_auth(&self) -> bool {
        matches!(self.status(), Some(401) | Some(403))
    }

    /// 429 `rate_limited` or 529 `service_overload`.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self.status(), Some(429) | Some(529))
    }

    /// Whether trying the same request again later may succeed (the client already retried it within its policy).
    pub fn is_retryable(&self) -> bool {
        match self {
            NotionError::Api { status, .. } => super::retry::is_retryable_status(*status),
            NotionError::Transport { kind, .. } => kind.is_retryable(),
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
        assert!(api(401, "unauthorized").is_auth());
        assert!(api(403, "restricted_resource").is_auth());
        assert!(!api(404, "object_not_found").is_auth());
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
    }
}

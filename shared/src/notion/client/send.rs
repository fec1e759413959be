//! The send loop of [`NotionClient`]: pacer → request → retry decision, its waits stopping short of the task-local
//! deadline, and the classification of what came back.

use std::time::{Duration, SystemTime};

use reqwest::header::RETRY_AFTER;
use reqwest::Method;
use serde_json::Value;
use tracing::Instrument;
use url::Url;

use super::{NotionClient, MAX_ERROR_TEXT};
use crate::notion::deadline::{current_deadline, on_tokio_clock, would_pass};
use crate::notion::error::{NotionError, TransportKind, WaitReason};
use crate::notion::retry::{decide, parse_retry_after, Decision, Failure, RetryState};

/// An attempt's failure: what the retry decision needs plus the error to return if it gives up.
struct AttemptError {
    failure: Option<Failure>,
    error: NotionError,
}
impl NotionClient {
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
    pub(super) fn redact(&self, text: &str) -> String {
        let token = self.inner.token.expose();
        if token.is_empty() {
            text.to_string()
        } else {
            text.replace(token, "<redacted>")
        }
    }
}
/// The base URL for messages: no credentials, query or fragment (none belong there, but a URL is config text).
pub(super) fn display_base(base: &Url) -> String {
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
pub(super) fn error_fields(bytes: &[u8]) -> (String, String, Option<String>) {
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

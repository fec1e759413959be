//! The transport: one `elasticsearch` crate client, JSON in and out, whole-request failures
//! (connection refused, timeouts, 429/5xx, an engine restarting) retried with capped backoff for a
//! bounded time.

use std::time::{Duration, Instant};

use elasticsearch::auth::Credentials;
use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{Method, Url};
use elasticsearch::Elasticsearch;
use serde_json::Value;

use crate::index::bulk::error_reason;
use crate::index::retry::{jitter, retryable_status, RetryPolicy};
use crate::index::{IndexError, SearchCredentials, SearchSettings};

/// A request body.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    Json(&'a Value),
    /// Newline-delimited JSON (`_bulk`), already encoded.
    NdJson(&'a [u8]),
}

/// An answer that was not retried away: its status and JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The engine's error type (`resource_already_exists_exception`, ...), if any.
    pub fn error_type(&self) -> Option<&str> {
        self.body.pointer("/error/type").and_then(Value::as_str)
    }

    /// The body of a 2xx answer, or `Refused` naming `what` was asked.
    pub fn ok(self, what: &str) -> Result<Value, IndexError> {
        if self.is_success() {
            Ok(self.body)
        } else {
            Err(self.refused(what))
        }
    }

    pub fn refused(&self, what: &str) -> IndexError {
        let error = self.body.get("error").unwrap_or(&self.body);
        IndexError::Refused {
            what: what.to_string(),
            status: self.status,
            error_type: self.error_type().unwrap_or("error").to_string(),
            reason: error_reason(error),
        }
    }
}

/// A cloneable handle on the engine, shared by the content store and the run store.
#[derive(Clone)]
pub struct SearchClient {
    es: Elasticsearch,
    retry: RetryPolicy,
}

impl std::fmt::Debug for SearchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchClient").field("retry", &self.retry).finish_non_exhaustive()
    }
}

fn credentials(creds: &SearchCredentials) -> Result<Option<Credentials>, IndexError> {
    if let Some(key) = creds.api_key.as_ref().map(|k| k.expose().trim()).filter(|k| !k.is_empty()) {
        // The crate builds the header with an unwrap: refuse what cannot be a header value.
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IndexError::Setup("search_api_key contains characters that cannot be sent in a header".into()));
        }
        return Ok(Some(match key.split_once(':') {
            Some((id, secret)) => Credentials::ApiKey(id.to_string(), secret.to_string()),
            None => Credentials::EncodedApiKey(key.to_string()),
        }));
    }
    match (&creds.username, &creds.password) {
        (Some(user), Some(password)) => {
            Ok(Some(Credentials::Basic(user.expose().to_string(), password.expose().to_string())))
        }
        (Some(_), None) => Err(IndexError::Setup("search_username is set but search_password is not".into())),
        (None, Some(_)) => Err(IndexError::Setup("search_password is set but search_username is not".into())),
        (None, None) => Ok(None),
    }
}

impl SearchClient {
    pub fn new(settings: &SearchSettings) -> Result<Self, IndexError> {
        let url = Url::parse(&settings.url)
            .map_err(|e| IndexError::Setup(format!("search URL {:?} is not a URL: {e}", settings.url)))?;
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .timeout(settings.request_timeout)
            .enable_meta_header(false);
        if let Some(creds) = credentials(&settings.credentials)? {
            builder = builder.auth(creds);
        }
        let transport = builder.build().map_err(|e| IndexError::Setup(e.to_string()))?;
        Ok(SearchClient { es: Elasticsearch::new(transport), retry: settings.retry.clone() })
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Sends one request, retrying transport errors and 408/429/5xx answers until the policy's
    /// time budget is spent. Any other answer (2xx or final 4xx) is returned as a [`Reply`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        payload: Option<Payload<'_>>,
        timeout: Option<Duration>,
    ) -> Result<Reply, IndexError> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            let last = match self.send_once(method, path, query, payload, timeout).await {
                Ok(reply) if !retryable_status(reply.status) => return Ok(reply),
                Ok(reply) => {
                    format!("HTTP {}: {}", reply.status, error_reason(reply.body.get("error").unwrap_or(&reply.body)))
                }
                Err(err) => err,
            };
            match self.retry.next_delay(attempt, started.elapsed(), jitter()) {
                Some(delay) => {
                    tracing::warn!(path, attempt = attempt + 1, delay_ms = delay.as_millis() as u64, error = %last, "search request failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                None => {
                    return Err(IndexError::Unavailable {
                        attempts: attempt + 1,
                        elapsed_ms: started.elapsed().as_millis() as u64,
                        last,
                    })
                }
            }
        }
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        payload: Option<Payload<'_>>,
        timeout: Option<Duration>,
    ) -> Result<Reply, String> {
        let mut headers = HeaderMap::new();
        let body: Option<Vec<u8>> = match payload {
            None => None,
            Some(Payload::Json(value)) => Some(serde_json::to_vec(value).map_err(|e| e.to_string())?),
            Some(Payload::NdJson(bytes)) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
                Some(bytes.to_vec())
            }
        };
        let query = (!query.is_empty()).then_some(query);
        let response = self.es.send(method, path, headers, query, body, timeout).await.map_err(|e| format!("{e}"))?;
        let status = response.status_code().as_u16();
        let bytes = response.bytes().await.map_err(|e| format!("reading the response: {e}"))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(value) => value,
                // Proxies and a starting engine may answer HTML or text: keep it for the message.
                Err(_) => Value::String(String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned()),
            }
        };
        Ok(Reply { status, body })
    }

    /// Shorthand for a JSON request.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Reply, IndexError> {
        self.send(method, path, query, body.map(Payload::Json), None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_choice() {
        let none = SearchCredentials::default();
        assert!(credentials(&none).unwrap().is_none());
        let basic = SearchCredentials { username: Some("u".into()), password: Some("p".into()), api_key: None };
        assert!(matches!(credentials(&basic).unwrap(), Some(Credentials::Basic(u, p)) if u == "u" && p == "p"));
        let key = SearchCredentials { api_key: Some("id:secret".into()), ..basic.clone() };
        assert!(matches!(credentials(&key).unwrap(), Some(Credentials::ApiKey(i, s)) if i == "id" && s == "secret"));
        let encoded = SearchCredentials { api_key: Some("aWQ6c2VjcmV0".into()), ..Default::default() };
        assert!(matches!(credentials(&encoded).unwrap(), Some(Credentials::EncodedApiKey(_))));
        let newline = SearchCredentials { api_key: Some("aWQ6c2VjcmV0\n".into()), ..Default::default() };
        assert!(matches!(credentials(&newline).unwrap(), Some(Credentials::EncodedApiKey(k)) if k == "aWQ6c2VjcmV0"));
        let control = SearchCredentials { api_key: Some("a\u{7}b".into()), ..Default::default() };
        assert!(credentials(&control).unwrap_err().to_string().contains("search_api_key"));
        let half = SearchCredentials { username: Some("u".into()), ..Default::default() };
        assert!(credentials(&half).unwrap_err().to_string().contains("search_password"));
    }

    #[test]
    fn bad_url_is_a_setup_error() {
        let err = SearchClient::new(&SearchSettings::new("not a url", "i")).unwrap_err();
        assert!(matches!(err, IndexError::Setup(_)), "{err}");
    }

    #[test]
    fn refused_reply_names_the_cause() {
        let reply = Reply {
            status: 400,
            body: serde_json::json!({"error": {"type": "resource_already_exists_exception", "reason": "index [x] already exists"}, "status": 400}),
        };
        assert_eq!(reply.error_type(), Some("resource_already_exists_exception"));
        let err = reply.ok("create index x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "search engine refused create index x: HTTP 400: resource_already_exists_exception: index [x] already exists"
        );
    }
}

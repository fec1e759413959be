//! The HTTP API of `functions/api`, as a plain async handler over small traits.
//!
//! Routes (every error body is `{"error": "..."}`):
//!
//! | route | answers |
//! |---|---|
//! | `POST /webhooks/notion` | handshake: 200 `{"status":"received"}` (recorded as *pending*, whatever the state); event: 202 `{run_id}` (tasks queued), 200 `{"status":"duplicate"}` (event id seen before), 200 `{"status":"ignored"}` (no task for this type), 401 [`webhook::SIGNATURE_REFUSED`](crate::webhook::SIGNATURE_REFUSED) (unsigned, wrongly signed, or no confirmed token: one text for all), 400 (signed but not an event), 503 (the stores or queue failed: Notion retries) |
//! | `GET /webhooks/notion/pending` (authenticated) | 200 `{"pending": [{id, received_at, expires_at, verification_token}]}`, newest first |
//! | `POST /webhooks/notion/confirm` `{"id"}` (authenticated) | 200 (that token is now the confirmed `webhook_verification_token`), 404 (no such pending handshake, or expired), 400, 503 |
//! | `POST /syncs` `{"kind":"full"\|"incremental"}` | 202 `{run_id, kind, state}`, 400 (bad JSON, unknown kind), 409 (a full sync is running), 401 (bearer key), 502/503 |
//! | `GET /syncs/{id}` | 200 the run (state, counts), 404 unknown id, 400 non-numeric id |
//! | `GET /syncs` | 200 `{"runs": [...]}` (the [`RECENT_RUNS`] newest) |
//! | anything else | 404 unknown route, 405 wrong method (with `allow`) |
//!
//! Authentication of `/syncs*` and `/webhooks/notion/{pending,confirm}`: in AWS the routes are
//! IAM-protected by API Gateway ([`ApiRequest::iam_authenticated`] is set by the adapter when the
//! request context carries an IAM identity). Otherwise, when the secret has an `api_key`,
//! `Authorization: Bearer <api_key>` is required (compared in constant time); without an `api_key`
//! the routes are open (local use).
//!
//! Webhook handshake policy: Notion's handshake is not authenticated (it is signed with the very
//! token it carries), so anyone can send one. A handshake is therefore only recorded as *pending*
//! ([`HandshakeStore`]: at most [`MAX_PENDING_HANDSHAKES`], newest first, each expiring after
//! [`HANDSHAKE_TTL`]); the operator lists them and confirms the one Notion's Verify dialog accepts
//! through the authenticated routes, which writes it to the secret. Only a confirmed token verifies
//! events. The handshake route never reads or writes the secret and answers the same 200 whatever
//! the state; refused events all get the same 401, so a stranger learns nothing.
//!
//! Cost of unauthenticated traffic: a request without `X-Notion-Signature` reads no secret, and an
//! unsigned body over [`UNSIGNED_BODY_LIMIT`] is refused unparsed; a signed one is verified before
//! it is parsed, and the secret is re-read at most once per [`TOKEN_REFRESH_INTERVAL`] (also when
//! no token is confirmed).
//!
//! Secrets never appear in logs or in unauthenticated responses (`Debug` of [`ApiRequest`] shows
//! neither header values nor the body); only `GET /webhooks/notion/pending` shows pending tokens,
//! to the operator who must paste one into Notion.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::queue::TaskQueue;
use crate::secrets::SecretString;

pub mod ports;
mod syncs;
mod webhooks;

pub use ports::{
    EdgeError, EventLog, HandshakeStore, MemorySecretStore, PendingHandshake, PlannerTrigger, RunBook, RunStart,
    SecretStore, TokenCache,
};
pub use syncs::decode_sync_request;

/// How many runs `GET /syncs` lists.
pub const RECENT_RUNS: usize = 20;

/// After a signature mismatch (or while no token is confirmed), the stored token is re-read at
/// most this often (another container may have confirmed a new one); bounds Secrets Manager calls
/// under a flood of bad requests.
pub const TOKEN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// How many pending handshakes are kept (the newest).
pub const MAX_PENDING_HANDSHAKES: usize = 5;

/// How long a pending handshake can be confirmed.
pub const HANDSHAKE_TTL: chrono::Duration = chrono::Duration::hours(1);

/// Unsigned webhook bodies larger than this are refused without being parsed (a handshake is
/// well under 100 bytes).
pub const UNSIGNED_BODY_LIMIT: usize = 4096;

/// Everything the handler needs, built once per container.
pub struct ApiContext {
    pub runs: Arc<dyn RunBook>,
    pub queue: Arc<dyn TaskQueue>,
    pub planner: Arc<dyn PlannerTrigger>,
    pub secrets: Arc<dyn SecretStore>,
    pub events: Arc<dyn EventLog>,
    pub handshakes: Arc<dyn HandshakeStore>,
    /// The bearer key of `/syncs*` when not IAM-authenticated (`None`: open).
    pub api_key: Option<SecretString>,
    pub webhook_token: TokenCache,
    /// Delay of a webhook run's finalize message.
    pub finalize_delay_seconds: u32,
}

/// One HTTP request. Header names lower-case; `body` is the raw bytes as received. `Debug` shows
/// header names and the body's length only (they carry bearer keys and handshake tokens).
#[derive(Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// Set by the adapter when API Gateway authorized the caller with IAM.
    pub iam_authenticated: bool,
}

impl ApiRequest {
    pub fn new(method: &str, path: &str) -> Self {
        ApiRequest { method: method.to_string(), path: path.to_string(), ..Default::default() }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_ascii_lowercase(), value.to_string());
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn get_header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.headers.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.path.split(['?', '#']).next().unwrap_or_default())
            .field("header_names", &names)
            .field("body_bytes", &self.body.len())
            .field("iam_authenticated", &self.iam_authenticated)
            .finish()
    }
}

/// One HTTP answer: status, JSON body, extra headers (`content-type: application/json` is implied).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl ApiResponse {
    pub fn json(status: u16, body: Value) -> Self {
        ApiResponse { status, body, headers: vec![] }
    }

    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, json!({"error": message.into()}))
    }

    fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A route, decoded from method and path (pure; never panics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Webhook,
    PendingHandshakes,
    ConfirmHandshake,
    StartSync,
    ListSyncs,
    GetSync(String),
    MethodNotAllowed(&'static str),
    NotFound,
}

pub fn route(method: &str, path: &str) -> Route {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = method.to_ascii_uppercase();
    match (segments.as_slice(), method.as_str()) {
        (["webhooks", "notion"], "POST") => Route::Webhook,
        (["webhooks", "notion"], _) => Route::MethodNotAllowed("POST"),
        (["webhooks", "notion", "pending"], "GET") => Route::PendingHandshakes,
        (["webhooks", "notion", "pending"], _) => Route::MethodNotAllowed("GET"),
        (["webhooks", "notion", "confirm"], "POST") => Route::ConfirmHandshake,
        (["webhooks", "notion", "confirm"], _) => Route::MethodNotAllowed("POST"),
        (["syncs"], "POST") => Route::StartSync,
        (["syncs"], "GET") => Route::ListSyncs,
        (["syncs"], _) => Route::MethodNotAllowed("GET, POST"),
        (["syncs", id], "GET") => Route::GetSync((*id).to_string()),
        (["syncs", _], _) => Route::MethodNotAllowed("GET"),
        _ => Route::NotFound,
    }
}

/// The handler: one request in, one answer out. Never panics on outside input.
pub async fn handle(ctx: &ApiContext, req: ApiRequest) -> ApiResponse {
    match route(&req.method, &req.path) {
        Route::Webhook => webhooks::handle_webhook(ctx, &req).await,
        Route::NotFound => ApiResponse::error(404, "no such route"),
        Route::MethodNotAllowed(allow) => {
            ApiResponse::error(405, format!("method not allowed; use {allow}")).with_header("allow", allow)
        }
        other => {
            if let Err(refused) = authorize(ctx, &req) {
                return refused;
            }
            match other {
                Route::StartSync => syncs::start_sync(ctx, &req.body).await,
                Route::ListSyncs => syncs::list_syncs(ctx).await,
                Route::GetSync(id) => syncs::get_sync(ctx, &id).await,
                Route::PendingHandshakes => webhooks::list_handshakes(ctx).await,
                Route::ConfirmHandshake => webhooks::confirm_handshake(ctx, &req.body).await,
                _ => ApiResponse::error(404, "no such route"),
            }
        }
    }
}

fn authorize(ctx: &ApiContext, req: &ApiRequest) -> Result<(), ApiResponse> {
    let Some(key) = &ctx.api_key else {
        return Ok(());
    };
    if req.iam_authenticated {
        return Ok(());
    }
    let given = req.get_header("authorization").and_then(|h| {
        let (scheme, value) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| value.trim())
    });
    let ok = given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(key.expose().as_bytes())));
    if ok {
        Ok(())
    } else {
        tracing::warn!(header_present = given.is_some(), "API request refused: missing or wrong bearer key");
        Err(ApiResponse::error(401, "missing or invalid bearer key (Authorization: Bearer <api_key>)")
            .with_header("www-authenticate", "Bearer"))
    }
}

fn unavailable(what: &str, err: &EdgeError) -> ApiResponse {
    tracing::error!(edge = what, error = %err, "API request failed");
    ApiResponse::error(503, format!("{what} unavailable; retry later"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("POST", "/webhooks/notion"), Route::Webhook);
        assert_eq!(route("post", "/webhooks/notion/"), Route::Webhook);
        assert_eq!(route("GET", "/webhooks/notion"), Route::MethodNotAllowed("POST"));
        assert_eq!(route("GET", "/webhooks/notion/pending"), Route::PendingHandshakes);
        assert_eq!(route("POST", "/webhooks/notion/pending"), Route::MethodNotAllowed("GET"));
        assert_eq!(route("POST", "/webhooks/notion/confirm/"), Route::ConfirmHandshake);
        assert_eq!(route("GET", "/webhooks/notion/confirm"), Route::MethodNotAllowed("POST"));
        assert_eq!(route("POST", "/webhooks/notion/other"), Route::NotFound);
        assert_eq!(route("POST", "/syncs"), Route::StartSync);
        assert_eq!(route("GET", "/syncs?x=1"), Route::ListSyncs);
        assert_eq!(route("DELETE", "/syncs"), Route::MethodNotAllowed("GET, POST"));
        assert_eq!(route("GET", "/syncs/42"), Route::GetSync("42".into()));
        assert_eq!(route("PUT", "/syncs/42"), Route::MethodNotAllowed("GET"));
        assert_eq!(route("GET", "/syncs/42/x"), Route::NotFound);
        assert_eq!(route("GET", "/"), Route::NotFound);
        assert_eq!(route("", ""), Route::NotFound);
    }
}

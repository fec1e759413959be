//! The HTTP API of `functions/api`, as a plain async handler over small traits.
//!
//! Routes (every error body is `{"error": "..."}`):
//!
//! | route | answers |
//! |---|---|
//! | `POST /webhooks/notion` | handshake: 200 `{"status":"received"}` (recorded as *pending*, whatever the state); event: 202 `{run_id}` (tasks queued), 200 `{"status":"duplicate"}` (event id seen before), 200 `{"status":"ignored"}` (no task for this type), 401 [`webhook::SIGNATURE_REFUSED`] (unsigned, wrongly signed, or no confirmed token: one text for all), 400 (signed but not an event), 503 (the stores or queue failed: Notion retries) |
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::index::{IndexError, SearchClient};
use crate::queue::{BoxFuture, TaskQueue};
use crate::runs::{FullStart, RunError, RunRecord, RunState, RunStatus, RunStore};
use crate::secrets::SecretString;
use crate::task::{FinalizeMessage, RunKind, TaskMessage};
use crate::webhook::{self, SignatureError, WebhookBody, WebhookEvent};

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

/// A failure of one of the edges (run store, queue, planner, secret store, event log). Its text is
/// logged, never sent back (it may name internal hosts).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct EdgeError(pub String);

impl EdgeError {
    pub fn new(err: impl std::fmt::Display) -> Self {
        EdgeError(err.to_string())
    }
}

/// The sync-run bookkeeping the API needs (implemented over `runs::RunStore`).
pub trait RunBook: Send + Sync {
    /// Creates a run record in state `planning`; returns its id.
    fn create_run(&self, kind: RunKind) -> BoxFuture<'_, Result<u64, EdgeError>>;
    /// Records tasks as `queued` (before they are sent).
    fn tasks_queued<'a>(&'a self, run_id: u64, tasks: &'a [TaskMessage]) -> BoxFuture<'a, Result<(), EdgeError>>;
    fn planning_done(&self, run_id: u64, planned: u64) -> BoxFuture<'_, Result<(), EdgeError>>;
    /// Closes a run that could not be started, naming why.
    fn fail_run<'a>(&'a self, run_id: u64, reason: &'a str) -> BoxFuture<'a, Result<(), EdgeError>>;
    /// The run as JSON (state, counts, timestamps), or `None` for an unknown id.
    fn run(&self, run_id: u64) -> BoxFuture<'_, Result<Option<Value>, EdgeError>>;
    /// The newest runs, newest first.
    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<Value>, EdgeError>>;
    /// Starts a run for `POST /syncs` (state `planning`). Runs whose lease ran out (a planner killed
    /// mid-planning, a lost finalize chain) are closed as failed first. A full run takes the
    /// full-run lock atomically; any run is refused while a live full run holds it.
    fn start_run(&self, kind: RunKind) -> BoxFuture<'_, Result<RunStart, EdgeError>>;
}

/// What [`RunBook::start_run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStart {
    /// The run is recorded; a full run holds the full-run lock.
    Started(u64),
    /// Refused, nothing recorded: this full run holds the lock.
    FullRunning(u64),
}

/// Starts the planner asynchronously for a run already recorded (`{"kind", "run_id"}`).
pub trait PlannerTrigger: Send + Sync {
    fn start(&self, kind: RunKind, run_id: u64) -> BoxFuture<'_, Result<(), EdgeError>>;
}

/// Where the confirmed webhook verification token is kept (Secrets Manager in AWS). Written only by
/// the operator's `POST /webhooks/notion/confirm`.
pub trait SecretStore: Send + Sync {
    /// Stores the token (merged into the secret, other keys untouched).
    fn store_verification_token<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<(), EdgeError>>;
    /// Reads the currently stored token afresh.
    fn verification_token(&self) -> BoxFuture<'_, Result<Option<SecretString>, EdgeError>>;
}

/// Webhook event ids whose tasks were queued, for de-duplication.
pub trait EventLog: Send + Sync {
    /// Whether the id was recorded before.
    fn seen<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<bool, EdgeError>>;
    /// Records the id, once its tasks are queued (a failure before leaves Notion's retry free to
    /// get through). Recording an id twice is no error.
    fn record<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>>;
}

/// A handshake token received but not confirmed by the operator.
#[derive(Clone)]
pub struct PendingHandshake {
    /// Derived from the token (the same token twice is one entry).
    pub id: String,
    pub token: SecretString,
    pub received_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl PendingHandshake {
    pub fn new(token: &SecretString, now: DateTime<Utc>) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("notion-es handshake {}", token.expose()).as_bytes());
        PendingHandshake {
            id: format!("hs-{}", &hex::encode(digest)[..24]),
            token: token.clone(),
            received_at: now,
            expires_at: now + HANDSHAKE_TTL,
        }
    }

    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

impl std::fmt::Debug for PendingHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingHandshake")
            .field("id", &self.id)
            .field("received_at", &self.received_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where pending handshakes are kept (a small index on the search engine). Storage only: bounding
/// and expiry are the handler's.
pub trait HandshakeStore: Send + Sync {
    /// Stores the entry under its id (replacing one with the same id).
    fn put<'a>(&'a self, entry: &'a PendingHandshake) -> BoxFuture<'a, Result<(), EdgeError>>;
    /// Every stored entry, expired ones included, in any order.
    fn all(&self) -> BoxFuture<'_, Result<Vec<PendingHandshake>, EdgeError>>;
    /// Removes an entry; a missing one is no error.
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>>;
}

/// The confirmed webhook verification token as this container knows it (`None`: none confirmed,
/// a negative answer cached like a positive one), re-read at most once per
/// [`TOKEN_REFRESH_INTERVAL`].
pub struct TokenCache {
    token: RwLock<Option<SecretString>>,
    last_refresh: Mutex<Option<Instant>>,
}

impl TokenCache {
    pub fn new(token: Option<SecretString>) -> Self {
        TokenCache { token: RwLock::new(token), last_refresh: Mutex::new(None) }
    }

    fn get(&self) -> Option<SecretString> {
        self.token.read().map(|t| t.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    fn set(&self, token: Option<SecretString>) {
        match self.token.write() {
            Ok(mut t) => *t = token,
            Err(p) => *p.into_inner() = token,
        }
    }

    /// Whether a refresh is allowed now (at most once per interval); marks it done.
    fn may_refresh(&self) -> bool {
        let mut last = self.last_refresh.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(at) if at.elapsed() < TOKEN_REFRESH_INTERVAL => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }
}

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

/// `POST /syncs` body, decoded. Errors name the problem (never the body's content).
pub fn decode_sync_request(body: &[u8]) -> Result<RunKind, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(r#"request body must be JSON: {"kind": "full" | "incremental"}"#.into());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("request body is not valid JSON (line {}, column {})", e.line(), e.column()))?;
    let Value::Object(map) = value else {
        return Err(r#"request body must be a JSON object: {"kind": "full" | "incremental"}"#.into());
    };
    match map.get("kind") {
        None => Err(r#"`kind` is required: "full" or "incremental""#.into()),
        Some(Value::String(k)) if k == "full" => Ok(RunKind::Full),
        Some(Value::String(k)) if k == "incremental" => Ok(RunKind::Incremental),
        Some(Value::String(k)) => {
            let shown: String = k.chars().take(40).collect();
            Err(format!(r#"unknown kind {shown:?}: expected "full" or "incremental""#))
        }
        Some(_) => Err(r#"`kind` must be a string: "full" or "incremental""#.into()),
    }
}

/// The handler: one request in, one answer out. Never panics on outside input.
pub async fn handle(ctx: &ApiContext, req: ApiRequest) -> ApiResponse {
    match route(&req.method, &req.path) {
        Route::Webhook => handle_webhook(ctx, &req).await,
        Route::NotFound => ApiResponse::error(404, "no such route"),
        Route::MethodNotAllowed(allow) => {
            ApiResponse::error(405, format!("method not allowed; use {allow}")).with_header("allow", allow)
        }
        other => {
            if let Err(refused) = authorize(ctx, &req) {
                return refused;
            }
            match other {
                Route::StartSync => start_sync(ctx, &req.body).await,
                Route::ListSyncs => list_syncs(ctx).await,
                Route::GetSync(id) => get_sync(ctx, &id).await,
                Route::PendingHandshakes => list_handshakes(ctx).await,
                Route::ConfirmHandshake => confirm_handshake(ctx, &req.body).await,
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

async fn start_sync(ctx: &ApiContext, body: &[u8]) -> ApiResponse {
    let kind = match decode_sync_request(body) {
        Ok(kind) => kind,
        Err(problem) => return ApiResponse::error(400, problem),
    };
    let run_id = match ctx.runs.start_run(kind).await {
        Ok(RunStart::Started(id)) => id,
        Ok(RunStart::FullRunning(running)) => {
            tracing::info!(kind = kind.as_str(), running, "sync refused: a full sync is running");
            return ApiResponse::json(409, json!({"error": "a full sync is running", "run_id": running}));
        }
        Err(err) => return unavailable("run store", &err),
    };
    if let Err(err) = ctx.planner.start(kind, run_id).await {
        tracing::error!(run_id, kind = kind.as_str(), error = %err, "could not start the planner");
        if let Err(e) = ctx.runs.fail_run(run_id, &format!("could not start the planner: {err}")).await {
            tracing::error!(run_id, error = %e, "could not close the run");
        }
        return ApiResponse::error(502, "could not start the planner");
    }
    tracing::info!(run_id, kind = kind.as_str(), "sync started");
    ApiResponse::json(202, json!({"run_id": run_id, "kind": kind.as_str(), "state": "planning"}))
}

async fn get_sync(ctx: &ApiContext, id: &str) -> ApiResponse {
    let Ok(run_id) = id.parse::<u64>() else {
        return ApiResponse::error(400, "run id must be a number");
    };
    match ctx.runs.run(run_id).await {
        Ok(Some(run)) => ApiResponse::json(200, run),
        Ok(None) => ApiResponse::error(404, format!("no sync run {run_id}")),
        Err(err) => unavailable("run store", &err),
    }
}

async fn list_syncs(ctx: &ApiContext) -> ApiResponse {
    match ctx.runs.recent(RECENT_RUNS).await {
        Ok(runs) => ApiResponse::json(200, json!({"runs": runs})),
        Err(err) => unavailable("run store", &err),
    }
}

fn unavailable(what: &str, err: &EdgeError) -> ApiResponse {
    tracing::error!(edge = what, error = %err, "API request failed");
    ApiResponse::error(503, format!("{what} unavailable; retry later"))
}

async fn handle_webhook(ctx: &ApiContext, req: &ApiRequest) -> ApiResponse {
    let signed = req.get_header(webhook::SIGNATURE_HEADER).is_some();
    let refusal = if signed {
        // Verified before anything in the body is looked at.
        match check_signature(ctx, req).await {
            Ok(()) => {
                return match webhook::decode_body(&req.body) {
                    Ok(WebhookBody::Event(event)) => accept_event(ctx, &event).await,
                    Ok(WebhookBody::Handshake { verification_token }) => handshake(ctx, &verification_token).await,
                    Err(err) => ApiResponse::error(400, err.to_string()),
                };
            }
            Err(err) => err,
        }
    } else {
        SignatureError::Missing
    };
    // Not signed with the confirmed token: only a small handshake is looked at (Notion signs its
    // handshake with the token it carries, which no one can check yet).
    if req.body.len() <= UNSIGNED_BODY_LIMIT {
        if let Ok(WebhookBody::Handshake { verification_token }) = webhook::decode_body(&req.body) {
            return handshake(ctx, &verification_token).await;
        }
    }
    tracing::warn!(reason = ?refusal, body_bytes = req.body.len(), "webhook refused");
    refused()
}

/// The one answer to every unsigned or wrongly signed request.
fn refused() -> ApiResponse {
    ApiResponse::error(401, webhook::SIGNATURE_REFUSED)
}

/// Records a handshake as pending (never as the verification token) and keeps the pending list
/// bounded: expired entries and all but the [`MAX_PENDING_HANDSHAKES`] newest are removed. The
/// same token again changes nothing. The answer does not depend on the state.
async fn handshake(ctx: &ApiContext, token: &SecretString) -> ApiResponse {
    let now = Utc::now();
    let entry = PendingHandshake::new(token, now);
    let result: Result<bool, EdgeError> = async {
        let mut entries = ctx.handshakes.all().await?;
        let known = entries.iter().any(|e| e.id == entry.id && e.is_live(now));
        if !known {
            ctx.handshakes.put(&entry).await?;
            entries.retain(|e| e.id != entry.id);
            entries.push(entry.clone());
        }
        entries.sort_by(|a, b| b.received_at.cmp(&a.received_at).then_with(|| a.id.cmp(&b.id)));
        let mut kept = 0;
        for e in &entries {
            if e.is_live(now) && kept < MAX_PENDING_HANDSHAKES {
                kept += 1;
            } else if let Err(err) = ctx.handshakes.remove(&e.id).await {
                tracing::warn!(id = %e.id, error = %err, "could not remove a pending handshake");
            }
        }
        Ok(!known)
    }
    .await;
    match result {
        Ok(new) => {
            tracing::info!(
                token_received = true,
                pending_id = %entry.id,
                new,
                "webhook handshake recorded as pending: confirm it with POST /webhooks/notion/confirm"
            );
            ApiResponse::json(200, json!({"status": "received"}))
        }
        Err(err) => unavailable("handshake store", &err),
    }
}

/// The unexpired pending handshakes, newest first, at most [`MAX_PENDING_HANDSHAKES`].
async fn live_handshakes(ctx: &ApiContext) -> Result<Vec<PendingHandshake>, EdgeError> {
    let now = Utc::now();
    let mut entries: Vec<PendingHandshake> =
        ctx.handshakes.all().await?.into_iter().filter(|e| e.is_live(now)).collect();
    entries.sort_by(|a, b| b.received_at.cmp(&a.received_at).then_with(|| a.id.cmp(&b.id)));
    entries.truncate(MAX_PENDING_HANDSHAKES);
    Ok(entries)
}

/// `GET /webhooks/notion/pending` (authenticated): the operator pastes one token into Notion.
async fn list_handshakes(ctx: &ApiContext) -> ApiResponse {
    match live_handshakes(ctx).await {
        Ok(entries) => {
            let pending: Vec<Value> = entries
                .iter()
                .map(|e| {
                    json!({
                        "id": e.id,
                        "received_at": e.received_at.to_rfc3339(),
                        "expires_at": e.expires_at.to_rfc3339(),
                        "verification_token": e.token.expose(),
                    })
                })
                .collect();
            ApiResponse::json(200, json!({"pending": pending}))
        }
        Err(err) => unavailable("handshake store", &err),
    }
}

/// `POST /webhooks/notion/confirm` `{"id"}` (authenticated): that pending token becomes the
/// confirmed one (replacing any earlier), then the pending entry is removed.
async fn confirm_handshake(ctx: &ApiContext, body: &[u8]) -> ApiResponse {
    let id = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v.get("id").and_then(Value::as_str).map(str::to_string),
        Err(_) => None,
    };
    let Some(id) = id.filter(|i| !i.is_empty()) else {
        return ApiResponse::error(400, r#"request body must be {"id": "<id from GET /webhooks/notion/pending>"}"#);
    };
    let entry = match live_handshakes(ctx).await {
        Ok(entries) => entries.into_iter().find(|e| e.id == id),
        Err(err) => return unavailable("handshake store", &err),
    };
    let Some(entry) = entry else {
        return ApiResponse::error(404, "no pending handshake with this id (unknown or expired)");
    };
    if let Err(err) = ctx.secrets.store_verification_token(entry.token.expose()).await {
        return unavailable("secret store", &err);
    }
    ctx.webhook_token.set(Some(entry.token.clone()));
    if let Err(err) = ctx.handshakes.remove(&entry.id).await {
        tracing::warn!(id = %entry.id, error = %err, "confirmed, but could not remove the pending handshake");
    }
    tracing::info!(id = %entry.id, "webhook verification token confirmed by the operator");
    ApiResponse::json(200, json!({"status": "confirmed", "id": entry.id}))
}

/// Checks the signature against the confirmed token as cached. When it does not match (or none is
/// cached), the secret is re-read, at most once per [`TOKEN_REFRESH_INTERVAL`] (another container
/// may have confirmed a token); a malformed header costs no read.
async fn check_signature(ctx: &ApiContext, req: &ApiRequest) -> Result<(), SignatureError> {
    let header = req.get_header(webhook::SIGNATURE_HEADER);
    let cached = ctx.webhook_token.get();
    let first = webhook::verify_signature(&req.body, header, cached.as_ref().map_or("", |t| t.expose()));
    if !matches!(first, Err(SignatureError::Mismatch | SignatureError::NoToken)) || !ctx.webhook_token.may_refresh() {
        return first;
    }
    match ctx.secrets.verification_token().await {
        Ok(fresh) => {
            ctx.webhook_token.set(fresh.clone());
            match fresh {
                Some(fresh) if cached.as_ref().map(SecretString::expose) != Some(fresh.expose()) => {
                    webhook::verify_signature(&req.body, header, fresh.expose())
                }
                Some(_) => first,
                None => Err(SignatureError::NoToken),
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "could not read the webhook verification token");
            first
        }
    }
}

async fn accept_event(ctx: &ApiContext, event: &WebhookEvent) -> ApiResponse {
    let tasks = webhook::tasks_for_event(event);
    if tasks.is_empty() {
        tracing::info!(event_id = %event.id, event_type = %event.kind, entity_type = %event.entity.kind, "webhook event ignored");
        return ApiResponse::json(200, json!({"status": "ignored", "event_id": event.id}));
    }
    match ctx.events.seen(&event.id).await {
        Ok(false) => {}
        Ok(true) => {
            tracing::info!(event_id = %event.id, event_type = %event.kind, "duplicate webhook event ignored");
            return ApiResponse::json(200, json!({"status": "duplicate", "event_id": event.id}));
        }
        Err(err) => return unavailable("event log", &err),
    }
    let mut run_id = None;
    let result: Result<(u64, usize), EdgeError> = async {
        let id = ctx.runs.create_run(RunKind::Webhook).await?;
        run_id = Some(id);
        let messages: Vec<TaskMessage> =
            tasks.into_iter().map(|(task_id, task)| TaskMessage::new(id, RunKind::Webhook, task_id, task)).collect();
        ctx.runs.tasks_queued(id, &messages).await?;
        ctx.queue.send_tasks(&messages).await.map_err(EdgeError::new)?;
        ctx.runs.planning_done(id, messages.len() as u64).await?;
        ctx.queue.send_finalize(&FinalizeMessage::new(id), ctx.finalize_delay_seconds).await.map_err(EdgeError::new)?;
        Ok((id, messages.len()))
    }
    .await;
    match result {
        Ok((id, tasks)) => {
            // Recorded only now: a failure above leaves the id free for Notion's retry. A retry racing
            // this write queues the tasks twice, which is harmless (tasks are idempotent).
            if let Err(err) = ctx.events.record(&event.id).await {
                tracing::error!(event_id = %event.id, error = %err, "tasks queued, but the event id was not recorded");
            }
            tracing::info!(event_id = %event.id, event_type = %event.kind, run_id = id, tasks, "webhook event queued");
            ApiResponse::json(202, json!({"status": "accepted", "event_id": event.id, "run_id": id, "tasks": tasks}))
        }
        Err(err) => {
            if let Some(id) = run_id {
                if let Err(e) = ctx.runs.fail_run(id, &format!("webhook event {} not queued: {err}", event.id)).await {
                    tracing::error!(run_id = id, error = %e, "could not close the run");
                }
            }
            unavailable("task queue or run store", &err)
        }
    }
}

/// A document `_id` for an outside id: kept when short and plain, else hashed.
fn safe_doc_id(raw: &str) -> String {
    if !raw.is_empty() && raw.len() <= 128 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        raw.to_string()
    } else {
        use sha2::Digest;
        format!("sha256-{}", hex::encode(sha2::Sha256::digest(raw.as_bytes())))
    }
}

/// Creates a small companion index with explicit (strict) mappings, once per container; an
/// existing index is fine.
async fn ensure_small_index(
    client: &SearchClient,
    index: &str,
    properties: Value,
    ready: &AtomicBool,
) -> Result<(), EdgeError> {
    if ready.load(Ordering::Relaxed) {
        return Ok(());
    }
    let body = json!({
        "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
        "mappings": {"dynamic": "strict", "properties": properties},
    });
    let path = format!("/{}", crate::index::path_segment(index));
    let reply = client.json(elasticsearch::http::Method::Put, &path, &[], Some(&body)).await.map_err(EdgeError::new)?;
    if !reply.is_success() && reply.error_type() != Some("resource_already_exists_exception") {
        return Err(EdgeError::new(reply.refused(&format!("create index {index}"))));
    }
    ready.store(true, Ordering::Relaxed);
    Ok(())
}

/// The de-duplication log on the search engine: one document per event id in
/// `{index}-webhook-events` (strict mappings), written once the event's tasks are queued.
pub struct SearchEventLog {
    client: SearchClient,
    index: String,
    ready: AtomicBool,
}

impl SearchEventLog {
    /// `content_index` is the content index name; the log is `{content_index}-webhook-events`.
    pub fn new(client: SearchClient, content_index: &str) -> Self {
        SearchEventLog { client, index: events_index(content_index), ready: AtomicBool::new(false) }
    }

    fn doc_path(&self, op: &str, event_id: &str) -> String {
        // Notion event ids are UUIDs; anything long or odd is hashed to a safe `_id`.
        format!("/{}/{op}/{}", self.index, safe_doc_id(event_id))
    }
}

/// The event log index beside a content index.
pub fn events_index(content_index: &str) -> String {
    format!("{content_index}-webhook-events")
}

/// The pending-handshake index beside a content index.
pub fn handshakes_index(content_index: &str) -> String {
    format!("{content_index}-webhook-handshakes")
}

impl EventLog for SearchEventLog {
    fn seen<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<bool, EdgeError>> {
        Box::pin(async move {
            let path = self.doc_path("_doc", event_id);
            let query = [("_source", "false".to_string())];
            let reply = self
                .client
                .json(elasticsearch::http::Method::Get, &path, &query, None)
                .await
                .map_err(EdgeError::new)?;
            match reply.status {
                200 => Ok(reply.body.get("found").and_then(Value::as_bool).unwrap_or(true)),
                404 => Ok(false),
                _ => Err(EdgeError::new(reply.refused("look up webhook event id"))),
            }
        })
    }

    fn record<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            let properties =
                json!({"event_id": {"type": "keyword", "ignore_above": 512}, "received_at": {"type": "date"}});
            ensure_small_index(&self.client, &self.index, properties, &self.ready).await?;
            let body = json!({"event_id": event_id, "received_at": Utc::now().to_rfc3339()});
            let path = self.doc_path("_create", event_id);
            let reply = self
                .client
                .json(elasticsearch::http::Method::Put, &path, &[], Some(&body))
                .await
                .map_err(EdgeError::new)?;
            match reply.status {
                200 | 201 | 409 => Ok(()),
                _ => Err(EdgeError::new(reply.refused("record webhook event id"))),
            }
        })
    }
}

/// Pending handshakes on the search engine: one document per entry in
/// `{index}-webhook-handshakes` (strict mappings; the token is kept in `_source` only, not indexed).
/// Writes refresh, so the next listing sees them.
pub struct SearchHandshakeStore {
    client: SearchClient,
    index: String,
    ready: AtomicBool,
}

impl SearchHandshakeStore {
    pub fn new(client: SearchClient, content_index: &str) -> Self {
        SearchHandshakeStore { client, index: handshakes_index(content_index), ready: AtomicBool::new(false) }
    }

    fn doc_path(&self, id: &str) -> String {
        format!("/{}/_doc/{}", self.index, safe_doc_id(id))
    }
}

impl HandshakeStore for SearchHandshakeStore {
    fn put<'a>(&'a self, entry: &'a PendingHandshake) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            let properties = json!({
                "verification_token": {"type": "keyword", "index": false, "doc_values": false},
                "received_at": {"type": "date"},
                "expires_at": {"type": "date"},
            });
            ensure_small_index(&self.client, &self.index, properties, &self.ready).await?;
            let body = json!({
                "verification_token": entry.token.expose(),
                "received_at": entry.received_at.to_rfc3339(),
                "expires_at": entry.expires_at.to_rfc3339(),
            });
            let reply = self
                .client
                .json(
                    elasticsearch::http::Method::Put,
                    &self.doc_path(&entry.id),
                    &[("refresh", "true".to_string())],
                    Some(&body),
                )
                .await
                .map_err(EdgeError::new)?;
            reply.ok("store a pending handshake").map(|_| ()).map_err(EdgeError::new)
        })
    }

    fn all(&self) -> BoxFuture<'_, Result<Vec<PendingHandshake>, EdgeError>> {
        Box::pin(async move {
            let body = json!({"size": 100, "sort": [{"received_at": "desc"}]});
            let path = format!("/{}/_search", self.index);
            let reply = self
                .client
                .json(elasticsearch::http::Method::Post, &path, &[], Some(&body))
                .await
                .map_err(EdgeError::new)?;
            if reply.status == 404 {
                return Ok(vec![]);
            }
            let response = reply.ok("list pending handshakes").map_err(EdgeError::new)?;
            let hits = response.pointer("/hits/hits").and_then(Value::as_array).cloned().unwrap_or_default();
            let date = |hit: &Value, field: &str| {
                hit.pointer(&format!("/_source/{field}"))
                    .and_then(Value::as_str)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
            };
            Ok(hits
                .iter()
                .filter_map(|hit| {
                    Some(PendingHandshake {
                        id: hit.get("_id")?.as_str()?.to_string(),
                        token: SecretString::new(hit.pointer("/_source/verification_token")?.as_str()?.to_string()),
                        received_at: date(hit, "received_at")?,
                        expires_at: date(hit, "expires_at")?,
                    })
                })
                .collect())
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            let reply = self
                .client
                .json(elasticsearch::http::Method::Delete, &self.doc_path(id), &[("refresh", "true".to_string())], None)
                .await
                .map_err(EdgeError::new)?;
            match reply.status {
                200 | 404 => Ok(()),
                _ => Err(EdgeError::new(reply.refused("remove a pending handshake"))),
            }
        })
    }
}

/// [`RunBook`] over the run records on the search engine (`runs::RunStore`), with its full-run
/// lock and leases.
pub struct SearchRunBook {
    runs: RunStore,
}

impl SearchRunBook {
    /// The run book of content index `content_index` (`{content_index}-runs`).
    pub fn new(client: SearchClient, content_index: &str) -> Self {
        SearchRunBook { runs: RunStore::new(client, content_index) }
    }

    /// The same run book with other leases (the settings').
    pub fn with_leases(self, leases: crate::runs::Leases) -> Self {
        SearchRunBook { runs: self.runs.with_leases(leases) }
    }
}

/// A run as the API shows it: the record, with live counts while it is open.
fn run_view(run: &RunRecord, live: Option<&RunStatus>) -> Value {
    let mut view = serde_json::to_value(run).unwrap_or_else(|_| json!({"id": run.id}));
    if let Some(s) = live {
        view["counts"] = json!({
            "queued": s.queued, "done": s.done, "failed": s.failed, "indexed": s.indexed, "skipped": s.skipped,
            "deleted": s.deleted, "errors": s.errors, "api_calls": s.api_calls, "retries": s.retries,
        });
    }
    view
}

impl RunBook for SearchRunBook {
    fn create_run(&self, kind: RunKind) -> BoxFuture<'_, Result<u64, EdgeError>> {
        Box::pin(async move { self.runs.create_run(kind).await.map(|r| r.id).map_err(EdgeError::new) })
    }

    fn tasks_queued<'a>(&'a self, run_id: u64, tasks: &'a [TaskMessage]) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move { self.runs.tasks_queued(run_id, tasks).await.map_err(EdgeError::new) })
    }

    fn planning_done(&self, run_id: u64, planned: u64) -> BoxFuture<'_, Result<(), EdgeError>> {
        Box::pin(async move { self.runs.planning_done(run_id, planned).await.map_err(EdgeError::new) })
    }

    fn fail_run<'a>(&'a self, run_id: u64, reason: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            self.runs.abort(run_id, reason).await.map_err(EdgeError::new)?;
            self.runs.close(run_id, RunState::Failed, 0).await.map(|_| ()).map_err(EdgeError::new)
        })
    }

    fn run(&self, run_id: u64) -> BoxFuture<'_, Result<Option<Value>, EdgeError>> {
        Box::pin(async move {
            let Some(run) = self.runs.get(run_id).await.map_err(EdgeError::new)? else {
                return Ok(None);
            };
            if run.state.is_closed() {
                return Ok(Some(run_view(&run, None)));
            }
            let status = self.runs.status(run_id).await.map_err(EdgeError::new)?;
            Ok(Some(run_view(&run, Some(&status))))
        })
    }

    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<Value>, EdgeError>> {
        Box::pin(async move {
            match self.runs.recent(limit).await {
                Ok(runs) => Ok(runs.iter().map(|r| run_view(r, None)).collect()),
                Err(RunError::Index(IndexError::Refused { status: 404, .. })) => Ok(vec![]),
                Err(err) => Err(EdgeError::new(err)),
            }
        })
    }

    fn start_run(&self, kind: RunKind) -> BoxFuture<'_, Result<RunStart, EdgeError>> {
        Box::pin(async move {
            let closed = self.runs.close_zombies().await.map_err(EdgeError::new)?;
            if !closed.is_empty() {
                tracing::warn!(?closed, "runs whose lease ran out closed as failed");
            }
            if kind == RunKind::Full {
                return match self.runs.start_full_run().await.map_err(EdgeError::new)? {
                    FullStart::Started(run) => Ok(RunStart::Started(run.id)),
                    FullStart::Running(holder) => Ok(RunStart::FullRunning(holder)),
                };
            }
            if let Some(holder) = self.runs.full_lock_holder().await.map_err(EdgeError::new)? {
                return Ok(RunStart::FullRunning(holder));
            }
            Ok(RunStart::Started(self.runs.create_run(kind).await.map_err(EdgeError::new)?.id))
        })
    }
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

    #[test]
    fn sync_requests_decode_or_name_the_problem() {
        assert_eq!(decode_sync_request(br#"{"kind":"full"}"#), Ok(RunKind::Full));
        assert_eq!(decode_sync_request(br#" {"kind":"incremental","x":1} "#), Ok(RunKind::Incremental));
        let cases: [(&[u8], &str); 7] = [
            (b"", "must be JSON"),
            (b"{", "not valid JSON (line 1, column 1)"),
            (b"[1]", "must be a JSON object"),
            (br#"{}"#, "`kind` is required"),
            (br#"{"kind":"weekly"}"#, r#"unknown kind "weekly""#),
            (br#"{"kind":"webhook"}"#, r#"unknown kind "webhook""#),
            (br#"{"kind":1}"#, "`kind` must be a string"),
        ];
        for (body, expected) in cases {
            let err = decode_sync_request(body).unwrap_err();
            assert!(err.contains(expected), "{}: {err}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn event_log_ids_are_safe() {
        let log = SearchEventLog::new(
            SearchClient::new(&crate::index::SearchSettings::new("http://127.0.0.1:9", "i")).unwrap(),
            "i",
        );
        assert_eq!(log.doc_path("_create", "4a1b-c2"), "/i-webhook-events/_create/4a1b-c2");
        assert!(log.doc_path("_create", "../x y").starts_with("/i-webhook-events/_create/sha256-"));
    }
}

//! The HTTP API of `functions/api`, as a plain async handler over small traits.
//!
//! Routes (every error body is `{"error": "..."}`):
//!
//! | route | answers |
//! |---|---|
//! | `POST /webhooks/notion` | handshake: 200 (token stored), 409 (another token is already stored); event: 202 `{run_id}` (tasks queued), 200 `{"status":"duplicate"}` (event id seen before), 200 `{"status":"ignored"}` (no task for this type), 401 (unsigned / wrongly signed / no token stored yet), 400 (signed but not an event), 503 (the stores or queue failed: Notion retries) |
//! | `POST /syncs` `{"kind":"full"\|"incremental"}` | 202 `{run_id, kind, state}`, 400 (bad JSON, unknown kind), 409 (a full sync is running), 401 (bearer key), 502/503 |
//! | `GET /syncs/{id}` | 200 the run (state, counts), 404 unknown id, 400 non-numeric id |
//! | `GET /syncs` | 200 `{"runs": [...]}` (the [`RECENT_RUNS`] newest) |
//! | anything else | 404 unknown route, 405 wrong method (with `allow`) |
//!
//! Authentication of `/syncs*`: in AWS the routes are IAM-protected by API Gateway
//! ([`ApiRequest::iam_authenticated`] is set by the adapter when the request context carries an IAM
//! identity). Otherwise, when the secret has an `api_key`, `Authorization: Bearer <api_key>` is
//! required (compared in constant time); without an `api_key` the routes are open (local use).
//!
//! Webhook handshake policy: Notion's handshake is not authenticated (it is signed with the very
//! token it carries), so a token is stored only when none is stored yet; the same token again is
//! a no-op; a different one is refused with 409 until the operator removes
//! `webhook_verification_token` from the secret (re-creating a subscription). Without this, anyone
//! could replace the token and then sign their own events.
//!
//! Secrets never appear in responses or logs: the handshake is logged with `token_received = true`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::index::{IndexError, SearchClient};
use crate::queue::{BoxFuture, TaskQueue};
use crate::runs::{RunError, RunRecord, RunState, RunStatus, RunStore};
use crate::secrets::SecretString;
use crate::task::{FinalizeMessage, RunKind, TaskMessage};
use crate::webhook::{self, SignatureError, WebhookBody, WebhookEvent};

/// How many runs `GET /syncs` lists.
pub const RECENT_RUNS: usize = 20;

/// After a signature mismatch, the stored token is re-read at most this often (another container
/// may have stored a new one); bounds Secrets Manager calls under a flood of bad requests.
const TOKEN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

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
    /// The id of a full run in state `planning` or `running`, if any.
    fn active_full_run(&self) -> BoxFuture<'_, Result<Option<u64>, EdgeError>>;
}

/// Starts the planner asynchronously for a run already recorded (`{"kind", "run_id"}`).
pub trait PlannerTrigger: Send + Sync {
    fn start(&self, kind: RunKind, run_id: u64) -> BoxFuture<'_, Result<(), EdgeError>>;
}

/// Where the webhook verification token is kept (Secrets Manager in AWS).
pub trait SecretStore: Send + Sync {
    /// Stores the token (merged into the secret, other keys untouched).
    fn store_verification_token<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<(), EdgeError>>;
    /// Reads the currently stored token afresh.
    fn verification_token(&self) -> BoxFuture<'_, Result<Option<SecretString>, EdgeError>>;
}

/// Webhook event ids already accepted, for de-duplication.
pub trait EventLog: Send + Sync {
    /// Records the id; `true` the first time, `false` when it was recorded before.
    fn first_time<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<bool, EdgeError>>;
    /// Removes the id again (its tasks could not be queued: Notion's retry must get through).
    fn forget<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>>;
}

/// The webhook verification token as this container knows it, re-read when needed.
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
    /// The bearer key of `/syncs*` when not IAM-authenticated (`None`: open).
    pub api_key: Option<SecretString>,
    pub webhook_token: TokenCache,
    /// Delay of a webhook run's finalize message.
    pub finalize_delay_seconds: u32,
}

/// One HTTP request. Header names lower-case; `body` is the raw bytes as received.
#[derive(Debug, Clone, Default)]
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
    match ctx.runs.active_full_run().await {
        Ok(Some(running)) => {
            return ApiResponse::json(409, json!({"error": "a full sync is running", "run_id": running}));
        }
        Ok(None) => {}
        Err(err) => return unavailable("run store", &err),
    }
    let run_id = match ctx.runs.create_run(kind).await {
        Ok(id) => id,
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
    let decoded = webhook::decode_body(&req.body);
    if let Ok(WebhookBody::Handshake { verification_token }) = &decoded {
        return handshake(ctx, verification_token).await;
    }
    // Everything else must be signed before its content is looked at.
    if let Err(err) = check_signature(ctx, req).await {
        tracing::warn!(reason = %err, "webhook refused");
        return ApiResponse::error(401, err.to_string());
    }
    let event = match decoded {
        Ok(WebhookBody::Event(event)) => event,
        Ok(WebhookBody::Handshake { .. }) => return ApiResponse::error(400, "unexpected handshake"),
        Err(err) => return ApiResponse::error(400, err.to_string()),
    };
    accept_event(ctx, &event).await
}

async fn handshake(ctx: &ApiContext, token: &SecretString) -> ApiResponse {
    let stored = match current_token(ctx).await {
        Ok(stored) => stored,
        Err(err) => return unavailable("secret store", &err),
    };
    match stored {
        Some(stored) if bool::from(stored.expose().as_bytes().ct_eq(token.expose().as_bytes())) => {
            tracing::info!(token_received = true, already_stored = true, "webhook verification token received again");
            ApiResponse::json(200, json!({"status": "verification token already stored"}))
        }
        Some(_) => {
            tracing::warn!(
                token_received = true,
                stored = false,
                "webhook verification token refused: another token is already stored"
            );
            ApiResponse::error(
                409,
                "a different webhook verification token is already stored; remove webhook_verification_token \
                 from the secret to verify a new subscription",
            )
        }
        None => match ctx.secrets.store_verification_token(token.expose()).await {
            Ok(()) => {
                ctx.webhook_token.set(Some(token.clone()));
                tracing::info!(token_received = true, stored = true, "webhook verification token received and stored");
                ApiResponse::json(200, json!({"status": "verification token stored"}))
            }
            Err(err) => unavailable("secret store", &err),
        },
    }
}

/// The cached token, or a fresh read when none is cached.
async fn current_token(ctx: &ApiContext) -> Result<Option<SecretString>, EdgeError> {
    if let Some(token) = ctx.webhook_token.get() {
        return Ok(Some(token));
    }
    let token = ctx.secrets.verification_token().await?;
    if token.is_some() {
        ctx.webhook_token.set(token.clone());
    }
    Ok(token)
}

async fn check_signature(ctx: &ApiContext, req: &ApiRequest) -> Result<(), SignatureError> {
    let header = req.get_header(webhook::SIGNATURE_HEADER);
    let token = match current_token(ctx).await {
        Ok(Some(token)) => token,
        Ok(None) => return Err(SignatureError::NoToken),
        Err(err) => {
            tracing::error!(error = %err, "could not read the webhook verification token");
            return Err(SignatureError::NoToken);
        }
    };
    match webhook::verify_signature(&req.body, header, token.expose()) {
        // The token may have been replaced by another container: re-read it, at most once a minute.
        Err(SignatureError::Mismatch) if ctx.webhook_token.may_refresh() => {
            match ctx.secrets.verification_token().await {
                Ok(Some(fresh)) if fresh.expose() != token.expose() => {
                    ctx.webhook_token.set(Some(fresh.clone()));
                    webhook::verify_signature(&req.body, header, fresh.expose())
                }
                _ => Err(SignatureError::Mismatch),
            }
        }
        other => other,
    }
}

async fn accept_event(ctx: &ApiContext, event: &WebhookEvent) -> ApiResponse {
    let tasks = webhook::tasks_for_event(event);
    if tasks.is_empty() {
        tracing::info!(event_id = %event.id, event_type = %event.kind, entity_type = %event.entity.kind, "webhook event ignored");
        return ApiResponse::json(200, json!({"status": "ignored", "event_id": event.id}));
    }
    match ctx.events.first_time(&event.id).await {
        Ok(true) => {}
        Ok(false) => {
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
            tracing::info!(event_id = %event.id, event_type = %event.kind, run_id = id, tasks, "webhook event queued");
            ApiResponse::json(202, json!({"status": "accepted", "event_id": event.id, "run_id": id, "tasks": tasks}))
        }
        Err(err) => {
            // Let Notion's retry through: forget the id; close the run if one was made.
            if let Err(e) = ctx.events.forget(&event.id).await {
                tracing::error!(event_id = %event.id, error = %e, "could not forget the event id");
            }
            if let Some(id) = run_id {
                if let Err(e) = ctx.runs.fail_run(id, &format!("webhook event {} not queued: {err}", event.id)).await {
                    tracing::error!(run_id = id, error = %e, "could not close the run");
                }
            }
            unavailable("task queue or run store", &err)
        }
    }
}

/// The de-duplication log on the search engine: one document per event id in
/// `{index}-webhook-events`, written with `op_type=create`; a 409 means already seen.
pub struct SearchEventLog {
    client: SearchClient,
    index: String,
}

impl SearchEventLog {
    /// `content_index` is the content index name; the log is `{content_index}-webhook-events`.
    pub fn new(client: SearchClient, content_index: &str) -> Self {
        SearchEventLog { client, index: events_index(content_index) }
    }

    fn doc_path(&self, op: &str, event_id: &str) -> String {
        // Notion event ids are UUIDs; anything long or odd is hashed to a safe `_id`.
        let id = if !event_id.is_empty()
            && event_id.len() <= 128
            && event_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            event_id.to_string()
        } else {
            use sha2::Digest;
            format!("sha256-{}", hex::encode(sha2::Sha256::digest(event_id.as_bytes())))
        };
        format!("/{}/{op}/{id}", self.index)
    }
}

/// The event log index beside a content index.
pub fn events_index(content_index: &str) -> String {
    format!("{content_index}-webhook-events")
}

impl EventLog for SearchEventLog {
    fn first_time<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<bool, EdgeError>> {
        Box::pin(async move {
            let body = json!({"event_id": event_id, "received_at": chrono::Utc::now().to_rfc3339()});
            let path = self.doc_path("_create", event_id);
            let reply = self
                .client
                .json(elasticsearch::http::Method::Put, &path, &[], Some(&body))
                .await
                .map_err(EdgeError::new)?;
            match reply.status {
                200 | 201 => Ok(true),
                409 => Ok(false),
                _ => Err(EdgeError::new(reply.refused("record webhook event id"))),
            }
        })
    }

    fn forget<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            let path = self.doc_path("_doc", event_id);
            let reply = self
                .client
                .json(elasticsearch::http::Method::Delete, &path, &[], None)
                .await
                .map_err(EdgeError::new)?;
            match reply.status {
                200 | 404 => Ok(()),
                _ => Err(EdgeError::new(reply.refused("forget webhook event id"))),
            }
        })
    }
}

/// [`RunBook`] over the run records on the search engine (`runs::RunStore`), plus the one query
/// the store does not offer: is a full run open?
pub struct SearchRunBook {
    runs: RunStore,
    client: SearchClient,
    runs_index: String,
}

impl SearchRunBook {
    /// The run book of content index `content_index` (`{content_index}-runs`).
    pub fn new(client: SearchClient, content_index: &str) -> Self {
        SearchRunBook {
            runs: RunStore::new(client.clone(), content_index),
            client,
            runs_index: crate::index::runs_index(content_index),
        }
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

    fn active_full_run(&self) -> BoxFuture<'_, Result<Option<u64>, EdgeError>> {
        Box::pin(async move {
            use elasticsearch::http::Method;
            let index = crate::index::path_segment(&self.runs_index);
            let refresh = self.client.json(Method::Post, &format!("/{index}/_refresh"), &[], None).await;
            if let Ok(reply) = &refresh {
                if reply.status == 404 {
                    return Ok(None); // no run was ever recorded
                }
            }
            let body = json!({
                "query": {"bool": {"filter": [
                    {"term": {"kind": RunKind::Full.as_str()}},
                    {"terms": {"state": [RunState::Planning.as_str(), RunState::Running.as_str()]}},
                ]}},
                "sort": [{"id": "desc"}],
                "size": 1,
                "_source": ["id"],
            });
            let reply = self
                .client
                .json(Method::Post, &format!("/{index}/_search"), &[], Some(&body))
                .await
                .map_err(EdgeError::new)?;
            if reply.status == 404 {
                return Ok(None);
            }
            let response = reply.ok("search for open full runs").map_err(EdgeError::new)?;
            Ok(response.pointer("/hits/hits/0/_source/id").and_then(Value::as_u64))
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
        let log = SearchEventLog {
            client: SearchClient::new(&crate::index::SearchSettings::new("http://127.0.0.1:9", "i")).unwrap(),
            index: events_index("i"),
        };
        assert_eq!(log.doc_path("_create", "4a1b-c2"), "/i-webhook-events/_create/4a1b-c2");
        assert!(log.doc_path("_create", "../x y").starts_with("/i-webhook-events/_create/sha256-"));
    }
}

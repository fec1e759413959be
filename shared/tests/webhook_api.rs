//! The API handler (`shared::api`) and webhook decoding (`shared::webhook`): in-memory fakes for the
//! edges, plus the real search engine (SEARCH_URL, default http://127.0.0.1:9200; `make up`) for the
//! event-id de-duplication log and the pending-handshake store.

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use serde_json::{json, Value};
use shared::adapters::search::{SearchEventLog, SearchHandshakeStore};
use shared::api::{
    self, ApiContext, ApiRequest, ApiResponse, EdgeError, EventLog, HandshakeStore, MemorySecretStore,
    PendingHandshake, PlannerTrigger, RunBook, TokenCache,
};
use shared::queue::{BoxFuture, MemoryQueue, QueueError, TaskQueue};
use shared::secrets::SecretString;
use shared::task::{FinalizeMessage, RunKind, Task, TaskMessage};
use shared::webhook::{self, sign};

const TOKEN: &str = "secret_webhook_TOKEN_123";
const API_KEY: &str = "local_api_KEY_456";

// ---------------------------------------------------------------------------------------------
// Fakes
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct FakeRun {
    id: u64,
    kind: RunKind,
    state: &'static str,
    planned: Option<u64>,
    queued: Vec<TaskMessage>,
    reason: Option<String>,
}

#[derive(Default)]
struct MemRuns {
    runs: Mutex<Vec<FakeRun>>,
    next: AtomicU64,
}

impl MemRuns {
    fn all(&self) -> Vec<FakeRun> {
        self.runs.lock().unwrap().clone()
    }
    fn set_state(&self, id: u64, state: &'static str) {
        for run in self.runs.lock().unwrap().iter_mut().filter(|r| r.id == id) {
            run.state = state;
        }
    }
}

fn view(run: &FakeRun) -> Value {
    json!({"id": run.id, "kind": run.kind.as_str(), "state": run.state, "planned": run.planned, "done": 0, "failed": 0})
}

impl RunBook for MemRuns {
    fn create_run(&self, kind: RunKind) -> BoxFuture<'_, Result<u64, EdgeError>> {
        Box::pin(async move {
            let id = 1_000 + self.next.fetch_add(1, Ordering::SeqCst);
            self.runs.lock().unwrap().push(FakeRun {
                id,
                kind,
                state: "planning",
                planned: None,
                queued: vec![],
                reason: None,
            });
            Ok(id)
        })
    }
    fn tasks_queued<'a>(&'a self, run_id: u64, tasks: &'a [TaskMessage]) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            for run in self.runs.lock().unwrap().iter_mut().filter(|r| r.id == run_id) {
                run.queued.extend_from_slice(tasks);
            }
            Ok(())
        })
    }
    fn planning_done(&self, run_id: u64, planned: u64) -> BoxFuture<'_, Result<(), EdgeError>> {
        Box::pin(async move {
            for run in self.runs.lock().unwrap().iter_mut().filter(|r| r.id == run_id) {
                run.planned = Some(planned);
                run.state = "running";
            }
            Ok(())
        })
    }
    fn fail_run<'a>(&'a self, run_id: u64, reason: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            for run in self.runs.lock().unwrap().iter_mut().filter(|r| r.id == run_id) {
                run.state = "failed";
                run.reason = Some(reason.to_string());
            }
            Ok(())
        })
    }
    fn run(&self, run_id: u64) -> BoxFuture<'_, Result<Option<Value>, EdgeError>> {
        Box::pin(async move { Ok(self.runs.lock().unwrap().iter().find(|r| r.id == run_id).map(view)) })
    }
    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<Value>, EdgeError>> {
        Box::pin(async move { Ok(self.runs.lock().unwrap().iter().rev().take(limit).map(view).collect()) })
    }
    fn start_run(&self, kind: RunKind) -> BoxFuture<'_, Result<api::RunStart, EdgeError>> {
        Box::pin(async move {
            let running = self
                .runs
                .lock()
                .unwrap()
                .iter()
                .find(|r| r.kind == RunKind::Full && matches!(r.state, "planning" | "running"))
                .map(|r| r.id);
            match running {
                Some(id) => Ok(api::RunStart::FullRunning(id)),
                None => Ok(api::RunStart::Started(self.create_run(kind).await?)),
            }
        })
    }
}

#[derive(Default)]
struct FakePlanner {
    started: Mutex<Vec<(RunKind, u64)>>,
    fail: AtomicBool,
}

impl PlannerTrigger for FakePlanner {
    fn start(&self, kind: RunKind, run_id: u64) -> BoxFuture<'_, Result<(), EdgeError>> {
        Box::pin(async move {
            if self.fail.load(Ordering::SeqCst) {
                return Err(EdgeError("lambda invoke refused".into()));
            }
            self.started.lock().unwrap().push((kind, run_id));
            Ok(())
        })
    }
}

#[derive(Default)]
struct MemEvents(Mutex<HashSet<String>>);

impl EventLog for MemEvents {
    fn seen<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<bool, EdgeError>> {
        Box::pin(async move { Ok(self.0.lock().unwrap().contains(event_id)) })
    }
    fn record<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            self.0.lock().unwrap().insert(event_id.to_string());
            Ok(())
        })
    }
}

/// Pending handshakes in memory; `puts` counts writes.
#[derive(Default)]
struct MemHandshakes {
    entries: Mutex<Vec<PendingHandshake>>,
    puts: AtomicU64,
}

impl MemHandshakes {
    fn tokens(&self) -> Vec<String> {
        self.entries.lock().unwrap().iter().map(|e| e.token.expose().to_string()).collect()
    }
    /// Moves every entry `by` into the past (as if it had been received that long ago).
    fn age(&self, by: chrono::Duration) {
        for e in self.entries.lock().unwrap().iter_mut() {
            e.received_at -= by;
            e.expires_at -= by;
        }
    }
}

impl HandshakeStore for MemHandshakes {
    fn put<'a>(&'a self, entry: &'a PendingHandshake) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            self.puts.fetch_add(1, Ordering::SeqCst);
            let mut entries = self.entries.lock().unwrap();
            entries.retain(|e| e.id != entry.id);
            entries.push(entry.clone());
            Ok(())
        })
    }
    fn all(&self) -> BoxFuture<'_, Result<Vec<PendingHandshake>, EdgeError>> {
        Box::pin(async move { Ok(self.entries.lock().unwrap().clone()) })
    }
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            self.entries.lock().unwrap().retain(|e| e.id != id);
            Ok(())
        })
    }
}

/// A queue whose next `send_tasks` fails once when armed (SQS down for one request).
struct FlakyQueue {
    inner: Arc<MemoryQueue>,
    fail_next: AtomicBool,
}

impl TaskQueue for FlakyQueue {
    fn send_tasks_after<'a>(&'a self, tasks: &'a [TaskMessage], delay: u32) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            if self.fail_next.swap(false, Ordering::SeqCst) {
                return Err(QueueError("SendMessageBatch: service unavailable".into()));
            }
            self.inner.send_tasks_after(tasks, delay).await
        })
    }
    fn send_finalize<'a>(&'a self, msg: &'a FinalizeMessage, delay: u32) -> BoxFuture<'a, Result<(), QueueError>> {
        self.inner.send_finalize(msg, delay)
    }
}

struct Harness {
    ctx: ApiContext,
    runs: Arc<MemRuns>,
    queue: Arc<MemoryQueue>,
    planner: Arc<FakePlanner>,
    secrets: Arc<MemorySecretStore>,
    handshakes: Arc<MemHandshakes>,
}

fn harness_with(stored_token: Option<&str>, api_key: Option<&str>, events: Arc<dyn EventLog>) -> Harness {
    let runs = Arc::new(MemRuns::default());
    let queue = Arc::new(MemoryQueue::default());
    let planner = Arc::new(FakePlanner::default());
    let secrets = Arc::new(MemorySecretStore::new(stored_token.map(SecretString::new)));
    let handshakes = Arc::new(MemHandshakes::default());
    let ctx = ApiContext {
        runs: runs.clone(),
        queue: queue.clone(),
        planner: planner.clone(),
        secrets: secrets.clone(),
        events,
        handshakes: handshakes.clone(),
        api_key: api_key.map(SecretString::new),
        webhook_token: TokenCache::new(stored_token.map(SecretString::new)),
        finalize_delay_seconds: 5,
    };
    Harness { ctx, runs, queue, planner, secrets, handshakes }
}

fn harness(stored_token: Option<&str>, api_key: Option<&str>) -> Harness {
    harness_with(stored_token, api_key, Arc::new(MemEvents::default()))
}

fn event_body(event_id: &str, kind: &str, entity_id: &str, entity_type: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": event_id,
        "timestamp": "2026-11-25T10:30:45.123Z",
        "workspace_id": "w", "subscription_id": "s", "integration_id": "i",
        "type": kind,
        "authors": [{"id": "u1", "type": "person"}],
        "attempt_number": 1,
        "api_version": "2025-09-03",
        "entity": {"id": entity_id, "type": entity_type},
        "data": {"parent": {"id": "parent-1", "type": "page"}, "page_id": "page-of-comment"}
    }))
    .unwrap()
}

fn handshake_request(token: &str) -> ApiRequest {
    ApiRequest::new("POST", "/webhooks/notion").body(format!(r#"{{"verification_token":"{token}"}}"#).into_bytes())
}

/// Status, body text and headers: what a caller can observe of an answer.
fn observed(resp: &ApiResponse) -> (u16, String, Vec<(String, String)>) {
    (resp.status, resp.body.to_string(), resp.headers.clone())
}

fn signed(body: Vec<u8>, token: &str) -> ApiRequest {
    let signature = sign(&body, token);
    ApiRequest::new("POST", "/webhooks/notion").header("X-Notion-Signature", &signature).body(body)
}

/// Captures everything logged (JSON lines) while the guard lives.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_strangers_handshake_is_only_pending_and_verifies_nothing() {
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let stranger = "secret_STRANGER_handshake_token";
    for confirmed in [None, Some(TOKEN)] {
        let h = harness(confirmed, Some(API_KEY));
        let resp = api::handle(&h.ctx, handshake_request(stranger)).await;
        assert_eq!((resp.status, resp.body.clone()), (200, json!({"status": "received"})), "{resp:?}");
        // Never stored as the token, and the handshake route touches no secret at all.
        assert_eq!(h.secrets.token().as_ref().map(SecretString::expose), confirmed);
        assert_eq!(h.secrets.stores(), 0);
        assert_eq!(h.secrets.reads(), 0);
        assert_eq!(h.handshakes.tokens(), vec![stranger.to_string()], "recorded as pending");
        // Events signed with the stranger's token do not verify, now or after a refresh.
        for n in 0..3 {
            let resp =
                api::handle(&h.ctx, signed(event_body(&format!("e{n}"), "page.created", "p", "page"), stranger)).await;
            assert_eq!(resp.status, 401, "{resp:?}");
        }
        assert!(h.runs.all().is_empty());
        // A confirmed token keeps working.
        if let Some(token) = confirmed {
            assert_eq!(
                api::handle(&h.ctx, signed(event_body("ok", "page.created", "p", "page"), token)).await.status,
                202
            );
        }
    }
    let text = logs.text();
    assert!(text.contains("token_received"), "arrival not logged: {text}");
    assert!(!text.contains(stranger), "token logged: {text}");
}

#[tokio::test]
async fn confirming_a_pending_handshake_needs_authentication_then_its_events_verify() {
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let notion = "secret_NOTION_real_handshake";
    let h = harness(Some("old-confirmed-token"), Some(API_KEY));
    assert_eq!(api::handle(&h.ctx, handshake_request("secret_other_stranger")).await.status, 200);
    assert_eq!(api::handle(&h.ctx, handshake_request(notion)).await.status, 200);

    // Listing and confirming are for the operator only.
    let pending = || ApiRequest::new("GET", "/webhooks/notion/pending");
    let confirm = |id: &str| ApiRequest::new("POST", "/webhooks/notion/confirm").body(json!({"id": id}).to_string());
    let anonymous = api::handle(&h.ctx, pending()).await;
    assert_eq!(anonymous.status, 401);
    assert!(!anonymous.body.to_string().contains(notion));
    let listed = api::handle(&h.ctx, authed(pending())).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    let entries = listed.body["pending"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2, "{listed:?}");
    assert_eq!(entries[0]["verification_token"], notion, "newest first");
    for field in ["id", "received_at", "expires_at"] {
        assert!(entries[0][field].as_str().is_some_and(|v| !v.is_empty()), "{field}: {listed:?}");
    }
    let id = entries[0]["id"].as_str().unwrap().to_string();
    let refused = api::handle(&h.ctx, confirm(&id)).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    let wrong_key = api::handle(&h.ctx, confirm(&id).header("authorization", "Bearer not-the-key")).await;
    assert_eq!(wrong_key.status, 401);
    assert_eq!(h.secrets.stores(), 0, "nothing confirmed without authentication");
    assert_eq!(api::handle(&h.ctx, authed(confirm("hs-unknown"))).await.status, 404);
    assert_eq!(
        api::handle(&h.ctx, authed(ApiRequest::new("POST", "/webhooks/notion/confirm").body("{}"))).await.status,
        400
    );
    assert_eq!(api::handle(&h.ctx, signed(event_body("e0", "page.created", "p", "page"), notion)).await.status, 401);

    // IAM-authenticated (as in AWS): confirmed, replacing the old token; the entry is gone.
    let mut iam = confirm(&id);
    iam.iam_authenticated = true;
    let confirmed = api::handle(&h.ctx, iam).await;
    assert_eq!((confirmed.status, confirmed.body["status"].as_str()), (200, Some("confirmed")), "{confirmed:?}");
    assert!(!confirmed.body.to_string().contains(notion));
    assert_eq!(h.secrets.token().as_ref().map(SecretString::expose), Some(notion));
    assert_eq!(h.secrets.stores(), 1);
    assert_eq!(h.handshakes.tokens(), vec!["secret_other_stranger".to_string()]);
    assert_eq!(api::handle(&h.ctx, authed(confirm(&id))).await.status, 404, "confirmed once");
    let resp = api::handle(&h.ctx, signed(event_body("e1", "page.created", "p1", "page"), notion)).await;
    assert_eq!(resp.status, 202, "{resp:?}");
    let old = api::handle(&h.ctx, signed(event_body("e2", "page.created", "p1", "page"), "old-confirmed-token")).await;
    assert_eq!(old.status, 401, "the replaced token no longer verifies");
    assert!(!logs.text().contains(notion), "token logged");
}

/// `GET /webhooks/notion/pending` with the bearer key: the listed entries.
async fn listed(h: &Harness) -> Vec<Value> {
    let resp = api::handle(&h.ctx, authed(ApiRequest::new("GET", "/webhooks/notion/pending"))).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    resp.body["pending"].as_array().unwrap().clone()
}

#[tokio::test]
async fn pending_handshakes_are_bounded_idempotent_and_expire() {
    let h = harness(None, Some(API_KEY));
    // Seven strangers: only the five newest are kept and listed, newest first.
    for n in 0..7 {
        assert_eq!(api::handle(&h.ctx, handshake_request(&format!("tok-{n}"))).await.status, 200);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(h.handshakes.entries.lock().unwrap().len(), api::MAX_PENDING_HANDSHAKES);
    let tokens: Vec<String> =
        listed(&h).await.iter().map(|e| e["verification_token"].as_str().unwrap().to_string()).collect();
    assert_eq!(tokens, ["tok-6", "tok-5", "tok-4", "tok-3", "tok-2"]);
    // The same token again changes nothing.
    let puts = h.handshakes.puts.load(Ordering::SeqCst);
    let before = listed(&h).await;
    assert_eq!(api::handle(&h.ctx, handshake_request("tok-6")).await.status, 200);
    assert_eq!(h.handshakes.puts.load(Ordering::SeqCst), puts, "duplicate handshake written again");
    assert_eq!(listed(&h).await, before);

    // An hour later they have expired: not listed, not confirmable, pruned by the next handshake.
    let old_id = before[0]["id"].as_str().unwrap().to_string();
    h.handshakes.age(api::HANDSHAKE_TTL + chrono::Duration::seconds(1));
    assert!(listed(&h).await.is_empty());
    let confirm = ApiRequest::new("POST", "/webhooks/notion/confirm").body(json!({"id": old_id}).to_string());
    assert_eq!(api::handle(&h.ctx, authed(confirm)).await.status, 404);
    assert_eq!(h.secrets.stores(), 0);
    assert_eq!(api::handle(&h.ctx, handshake_request("tok-new")).await.status, 200);
    assert_eq!(h.handshakes.tokens(), vec!["tok-new".to_string()], "expired entries pruned");
    // An expired token sent again is a new pending entry.
    assert_eq!(api::handle(&h.ctx, handshake_request("tok-6")).await.status, 200);
    assert_eq!(listed(&h).await.len(), 2);
}

#[tokio::test]
async fn notions_signed_handshake_is_pending_too() {
    // Notion signs the handshake with the token it carries; no one can check that yet.
    let h = harness(None, None);
    let body = br#"{"verification_token":"secret_signed_handshake"}"#.to_vec();
    let resp = api::handle(&h.ctx, signed(body, "secret_signed_handshake")).await;
    assert_eq!((resp.status, resp.body.clone()), (200, json!({"status": "received"})), "{resp:?}");
    assert_eq!(h.handshakes.tokens(), vec!["secret_signed_handshake".to_string()]);
    assert_eq!(h.secrets.stores(), 0);
}

#[tokio::test]
async fn refusals_are_identical_whatever_the_state() {
    let body = event_body("evt-x", "page.created", "page-x", "page");
    let good = sign(&body, TOKEN);
    let big_handshake =
        format!(r#"{{"verification_token":"secret_BIG","pad":"{}"}}"#, "x".repeat(api::UNSIGNED_BODY_LIMIT));
    let requests = || -> Vec<(&str, ApiRequest)> {
        vec![
            ("unsigned event", ApiRequest::new("POST", "/webhooks/notion").body(body.clone())),
            ("unsigned garbage", ApiRequest::new("POST", "/webhooks/notion").body(b"not json".to_vec())),
            ("wrong key", signed(body.clone(), "not-the-token")),
            (
                "malformed",
                ApiRequest::new("POST", "/webhooks/notion")
                    .header("x-notion-signature", "sha256=zz")
                    .body(body.clone()),
            ),
            (
                "bare hex",
                ApiRequest::new("POST", "/webhooks/notion").header("x-notion-signature", &good[7..]).body(body.clone()),
            ),
            ("oversized unsigned handshake", ApiRequest::new("POST", "/webhooks/notion").body(big_handshake.clone())),
        ]
    };
    let mut answers = Vec::new();
    for (state, confirmed, pending) in
        [("none", None, false), ("pending only", None, true), ("confirmed", Some(TOKEN), false)]
    {
        let h = harness(confirmed, None);
        if pending {
            api::handle(&h.ctx, handshake_request(TOKEN)).await;
        }
        for (what, req) in requests() {
            let resp = api::handle(&h.ctx, req).await;
            answers.push((format!("{state}/{what}"), observed(&resp)));
        }
        assert!(h.runs.all().is_empty(), "{state}");
        assert_eq!(h.handshakes.tokens().len(), usize::from(pending), "{state}: oversized handshake recorded");
    }
    let expected = (401, json!({"error": "missing or invalid signature"}).to_string(), vec![]);
    for (what, answer) in &answers {
        assert_eq!(answer, &expected, "{what}");
    }
}

#[tokio::test]
async fn unsigned_requests_read_no_secret_and_signed_ones_at_most_once_per_interval() {
    for confirmed in [None, Some(TOKEN)] {
        let h = harness(confirmed, None);
        for n in 0..20 {
            let body = event_body(&format!("u{n}"), "page.created", "p", "page");
            assert_eq!(api::handle(&h.ctx, ApiRequest::new("POST", "/webhooks/notion").body(body)).await.status, 401);
            assert_eq!(api::handle(&h.ctx, handshake_request(&format!("hs{n}"))).await.status, 200);
            let malformed = ApiRequest::new("POST", "/webhooks/notion").header("x-notion-signature", "sha256=00");
            assert_eq!(api::handle(&h.ctx, malformed.body(b"{}".to_vec())).await.status, 401);
        }
        assert_eq!(h.secrets.reads(), 0, "confirmed={confirmed:?}: unsigned requests read the secret");
        for n in 0..20 {
            let resp =
                api::handle(&h.ctx, signed(event_body(&format!("s{n}"), "page.created", "p", "page"), "forged")).await;
            assert_eq!(resp.status, 401);
        }
        assert_eq!(h.secrets.reads(), 1, "confirmed={confirmed:?}: one read per interval");
    }
}

#[tokio::test]
async fn an_event_is_recorded_as_seen_only_after_its_tasks_are_queued() {
    let events = Arc::new(MemEvents::default());
    let mut h = harness_with(Some(TOKEN), None, events.clone());
    let flaky = Arc::new(FlakyQueue { inner: h.queue.clone(), fail_next: AtomicBool::new(true) });
    h.ctx.queue = flaky;
    let body = event_body("evt-retried", "page.created", "page-r", "page");
    let failed = api::handle(&h.ctx, signed(body.clone(), TOKEN)).await;
    assert_eq!(failed.status, 503, "{failed:?}");
    assert!(!events.0.lock().unwrap().contains("evt-retried"), "recorded although nothing was queued");
    assert_eq!(h.runs.all()[0].state, "failed");
    // Notion's retry is accepted, not dropped as a duplicate; a replay after that is.
    let retry = api::handle(&h.ctx, signed(body.clone(), TOKEN)).await;
    assert_eq!((retry.status, retry.body["status"].as_str()), (202, Some("accepted")), "{retry:?}");
    assert_eq!(h.queue.take_tasks().len(), 1);
    assert!(events.0.lock().unwrap().contains("evt-retried"));
    let replay = api::handle(&h.ctx, signed(body, TOKEN)).await;
    assert_eq!(replay.body["status"], "duplicate");
}

#[test]
fn api_request_debug_shows_no_header_value_or_body() {
    let req = ApiRequest::new("POST", "/webhooks/notion?x=secret_QUERY")
        .header("authorization", &format!("Bearer {API_KEY}"))
        .header("x-notion-signature", "sha256=abc123")
        .body(br#"{"verification_token":"secret_DEBUG_token"}"#.to_vec());
    let shown = format!("{req:?}");
    for secret in [API_KEY, "secret_DEBUG_token", "abc123", "secret_QUERY"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("authorization") && shown.contains("body_bytes"), "{shown}");
}

#[tokio::test]
async fn signed_event_becomes_a_webhook_run() {
    let h = harness(Some(TOKEN), None);
    let resp = api::handle(&h.ctx, signed(event_body("evt-1", "page.content_updated", "page-1", "page"), TOKEN)).await;
    assert_eq!(resp.status, 202, "{resp:?}");
    let run_id = resp.body["run_id"].as_u64().expect("run id");
    let runs = h.runs.all();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].id, runs[0].kind, runs[0].state, runs[0].planned),
        (run_id, RunKind::Webhook, "running", Some(1))
    );
    let sent = h.queue.take_tasks();
    assert_eq!(sent, runs[0].queued, "recorded and sent the same tasks");
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].run_id, sent[0].run_kind, sent[0].task_id.as_str()), (run_id, RunKind::Webhook, "p:page-1"));
    assert_eq!(sent[0].task, Task::Page { page_id: "page-1".into(), page: None, path: vec![] });
    let finalizes = h.queue.finalizes.lock().unwrap().clone();
    assert_eq!(finalizes.len(), 1);
    assert_eq!((finalizes[0].0.run_id, finalizes[0].1), (run_id, 5));
}

#[tokio::test]
async fn deleted_page_and_comment_events() {
    let h = harness(Some(TOKEN), None);
    assert_eq!(
        api::handle(&h.ctx, signed(event_body("d1", "page.deleted", "page-9", "page"), TOKEN)).await.status,
        202
    );
    assert_eq!(
        api::handle(&h.ctx, signed(event_body("c1", "comment.deleted", "cm-1", "comment"), TOKEN)).await.status,
        202
    );
    let tasks: Vec<Task> = h.queue.take_tasks().into_iter().map(|m| m.task).collect();
    assert_eq!(
        tasks,
        vec![
            Task::DeletePage { page_id: "page-9".into() },
            Task::Comment { comment_id: "cm-1".into(), page_id: "page-of-comment".into() },
        ]
    );
}

#[tokio::test]
async fn bad_signatures_are_refused_and_change_nothing() {
    let h = harness(Some(TOKEN), None);
    let body = event_body("evt-2", "page.created", "page-2", "page");
    let good = sign(&body, TOKEN);
    let mut tampered = body.clone();
    let at = tampered.iter().position(|&b| b == b'2').unwrap();
    tampered[at] = b'3';
    let cases: Vec<(&str, ApiRequest)> = vec![
        ("missing header", ApiRequest::new("POST", "/webhooks/notion").body(body.clone())),
        ("wrong key", signed(body.clone(), "not-the-token")),
        (
            "tampered body",
            ApiRequest::new("POST", "/webhooks/notion").header("x-notion-signature", &good).body(tampered),
        ),
        (
            "bad hex",
            ApiRequest::new("POST", "/webhooks/notion").header("x-notion-signature", "sha256=zz").body(body.clone()),
        ),
        (
            "no prefix",
            ApiRequest::new("POST", "/webhooks/notion").header("x-notion-signature", &good[7..]).body(body.clone()),
        ),
        ("unsigned garbage", ApiRequest::new("POST", "/webhooks/notion").body(b"not json".to_vec())),
    ];
    for (name, req) in cases {
        let resp = api::handle(&h.ctx, req).await;
        assert_eq!(resp.status, 401, "{name}: {resp:?}");
        assert!(resp.body["error"].is_string(), "{name}");
        assert!(!resp.body.to_string().contains(TOKEN), "{name}");
    }
    assert!(h.runs.all().is_empty());
    assert!(h.queue.take_tasks().is_empty());
    assert!(h.queue.finalizes.lock().unwrap().is_empty());
    // The same body, correctly signed, is accepted (the refusals did not mark its id as seen).
    assert_eq!(api::handle(&h.ctx, signed(body, TOKEN)).await.status, 202);
}

#[tokio::test]
async fn events_before_any_handshake_are_refused() {
    let h = harness(None, None);
    let resp = api::handle(&h.ctx, signed(event_body("e", "page.created", "p", "page"), TOKEN)).await;
    assert_eq!(resp.status, 401);
    assert!(h.runs.all().is_empty());
}

#[tokio::test]
async fn a_token_stored_by_another_container_is_picked_up() {
    let h = harness(Some("old-token"), None);
    h.secrets.set_token(Some(SecretString::new(TOKEN)));
    let resp = api::handle(&h.ctx, signed(event_body("e", "page.created", "p", "page"), TOKEN)).await;
    assert_eq!(resp.status, 202, "{resp:?}");
}

#[tokio::test]
async fn replayed_event_id_is_ignored_in_memory() {
    let h = harness(Some(TOKEN), None);
    let body = event_body("evt-replay", "page.created", "page-3", "page");
    assert_eq!(api::handle(&h.ctx, signed(body.clone(), TOKEN)).await.status, 202);
    let resp = api::handle(&h.ctx, signed(body, TOKEN)).await;
    assert_eq!((resp.status, resp.body["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(h.runs.all().len(), 1);
    assert_eq!(h.queue.take_tasks().len(), 1);
}

#[tokio::test]
async fn ignored_and_malformed_signed_events() {
    let h = harness(Some(TOKEN), None);
    let resp = api::handle(&h.ctx, signed(event_body("v1", "view.updated", "view-1", "view"), TOKEN)).await;
    assert_eq!((resp.status, resp.body["status"].as_str()), (200, Some("ignored")));
    let resp = api::handle(&h.ctx, signed(b"[1,2]".to_vec(), TOKEN)).await;
    assert_eq!(resp.status, 400);
    let resp = api::handle(&h.ctx, signed(br#"{"type":"page.created"}"#.to_vec(), TOKEN)).await;
    assert_eq!(resp.status, 400);
    assert!(resp.body["error"].as_str().unwrap().contains("`id`"));
    assert!(h.runs.all().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Sync API
// ---------------------------------------------------------------------------------------------

fn authed(req: ApiRequest) -> ApiRequest {
    req.header("Authorization", &format!("Bearer {API_KEY}"))
}

#[tokio::test]
async fn start_sync_records_the_run_then_triggers_the_planner() {
    let h = harness(None, Some(API_KEY));
    let resp =
        api::handle(&h.ctx, authed(ApiRequest::new("POST", "/syncs").body(br#"{"kind":"incremental"}"#.to_vec())))
            .await;
    assert_eq!(resp.status, 202, "{resp:?}");
    let run_id = resp.body["run_id"].as_u64().unwrap();
    assert_eq!(h.planner.started.lock().unwrap().clone(), vec![(RunKind::Incremental, run_id)]);
    assert_eq!(h.runs.all()[0].state, "planning");

    let resp = api::handle(&h.ctx, authed(ApiRequest::new("GET", &format!("/syncs/{run_id}")))).await;
    assert_eq!((resp.status, resp.body["state"].as_str()), (200, Some("planning")));
    let resp = api::handle(&h.ctx, authed(ApiRequest::new("GET", "/syncs"))).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body["runs"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn second_full_sync_while_one_runs_is_409() {
    let h = harness(None, Some(API_KEY));
    let start = || authed(ApiRequest::new("POST", "/syncs").body(br#"{"kind":"full"}"#.to_vec()));
    let first = api::handle(&h.ctx, start()).await;
    assert_eq!(first.status, 202);
    let first_id = first.body["run_id"].as_u64().unwrap();
    let second = api::handle(&h.ctx, start()).await;
    assert_eq!(second.status, 409, "{second:?}");
    assert_eq!(second.body["run_id"].as_u64(), Some(first_id));
    assert!(second.body["error"].as_str().unwrap().contains("full sync is running"));
    let incremental =
        api::handle(&h.ctx, authed(ApiRequest::new("POST", "/syncs").body(br#"{"kind":"incremental"}"#.to_vec())))
            .await;
    assert_eq!(incremental.status, 409);
    assert_eq!(h.planner.started.lock().unwrap().len(), 1);
    // Once it completes, a new one may start.
    h.runs.set_state(first_id, "completed");
    assert_eq!(api::handle(&h.ctx, start()).await.status, 202);
}

#[tokio::test]
async fn planner_failure_closes_the_run() {
    let h = harness(None, None);
    h.planner.fail.store(true, Ordering::SeqCst);
    let resp = api::handle(&h.ctx, ApiRequest::new("POST", "/syncs").body(br#"{"kind":"full"}"#.to_vec())).await;
    assert_eq!(resp.status, 502);
    assert!(!resp.body.to_string().contains("lambda invoke refused"), "internal error leaked: {resp:?}");
    let runs = h.runs.all();
    assert_eq!(runs[0].state, "failed");
    // A failed full run does not block the next one.
    h.planner.fail.store(false, Ordering::SeqCst);
    let resp = api::handle(&h.ctx, ApiRequest::new("POST", "/syncs").body(br#"{"kind":"full"}"#.to_vec())).await;
    assert_eq!(resp.status, 202);
}

#[tokio::test]
async fn clear_4xx_answers() {
    let h = harness(None, Some(API_KEY));
    let post = |body: &[u8]| authed(ApiRequest::new("POST", "/syncs").body(body.to_vec()));
    let cases: Vec<(&str, ApiRequest, u16, &str)> = vec![
        ("bad JSON", post(b"{kind: full"), 400, "not valid JSON"),
        ("empty body", post(b""), 400, "must be JSON"),
        ("unknown kind", post(br#"{"kind":"weekly"}"#), 400, "unknown kind \"weekly\""),
        ("missing kind", post(br#"{"full":true}"#), 400, "`kind` is required"),
        ("unknown run id", authed(ApiRequest::new("GET", "/syncs/12345")), 404, "no sync run 12345"),
        ("non-numeric id", authed(ApiRequest::new("GET", "/syncs/abc")), 400, "must be a number"),
        ("missing key", ApiRequest::new("GET", "/syncs"), 401, "bearer key"),
        ("wrong key", ApiRequest::new("GET", "/syncs").header("authorization", "Bearer nope"), 401, "bearer key"),
        (
            "wrong scheme",
            ApiRequest::new("POST", "/syncs")
                .header("authorization", &format!("Basic {API_KEY}"))
                .body(br#"{"kind":"full"}"#.to_vec()),
            401,
            "bearer key",
        ),
        ("unknown route", ApiRequest::new("GET", "/nope"), 404, "no such route"),
        ("wrong method", ApiRequest::new("DELETE", "/syncs/1"), 405, "method not allowed"),
        ("webhook GET", ApiRequest::new("GET", "/webhooks/notion"), 405, "method not allowed"),
    ];
    for (name, req, status, message) in cases {
        let resp = api::handle(&h.ctx, req).await;
        assert_eq!(resp.status, status, "{name}: {resp:?}");
        let error = resp.body["error"].as_str().unwrap_or_else(|| panic!("{name}: no error field"));
        assert!(error.contains(message), "{name}: {error}");
        assert!(!resp.body.to_string().contains(API_KEY), "{name}: key echoed");
    }
    assert!(h.runs.all().is_empty());
    assert!(h.planner.started.lock().unwrap().is_empty());
    // 405 tells what is allowed.
    let resp = api::handle(&h.ctx, ApiRequest::new("PUT", "/syncs")).await;
    assert!(resp.headers.contains(&("allow".into(), "GET, POST".into())));
}

#[tokio::test]
async fn iam_authenticated_requests_need_no_bearer_key() {
    let h = harness(None, Some(API_KEY));
    let mut req = ApiRequest::new("GET", "/syncs");
    req.iam_authenticated = true;
    assert_eq!(api::handle(&h.ctx, req).await.status, 200);
    // Without an api_key in the secret the routes are open (local use).
    let open = harness(None, None);
    assert_eq!(api::handle(&open.ctx, ApiRequest::new("GET", "/syncs")).await.status, 200);
}

// ---------------------------------------------------------------------------------------------
// The real search engine: event-id de-duplication
// ---------------------------------------------------------------------------------------------

fn search_url() -> String {
    std::env::var("SEARCH_URL").unwrap_or_else(|_| "http://127.0.0.1:9200".into())
}

fn unique_index(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("test-{prefix}-{nanos}")
}

async fn search_event_log(index: &str) -> (SearchEventLog, shared::adapters::search::SearchClient) {
    let settings = shared::index::SearchSettings::new(search_url(), index);
    let client = shared::adapters::search::SearchClient::new(&settings).expect("search client");
    (SearchEventLog::new(client.clone(), index), client)
}

async fn drop_index(client: &shared::adapters::search::SearchClient, index: &str) {
    let _ = client.json(elasticsearch::http::Method::Delete, &format!("/{index}"), &[], None).await;
}

#[tokio::test]
async fn search_engine_event_log_records_and_dedups() {
    let index = unique_index("evlog");
    let (log, client) = search_event_log(&index).await;
    let id = "0f6c1c9e-aaaa-4bbb-8ccc-000000000001";
    assert!(!log.seen(id).await.expect("search engine at SEARCH_URL (make up)"), "no index yet");
    log.record(id).await.unwrap();
    log.record(id).await.unwrap();
    assert!(log.seen(id).await.unwrap());
    assert!(!log.seen("0f6c1c9e-aaaa-4bbb-8ccc-000000000002").await.unwrap());
    log.record("weird id/with ../ slashes").await.unwrap();
    assert!(log.seen("weird id/with ../ slashes").await.unwrap());
    let events = shared::adapters::search::events_index(&index);
    let mapping =
        client.json(elasticsearch::http::Method::Get, &format!("/{events}/_mapping"), &[], None).await.unwrap();
    assert_eq!(mapping.body[&events]["mappings"]["dynamic"], "strict", "{:?}", mapping.body);
    drop_index(&client, &events).await;
}

#[tokio::test]
async fn search_engine_handshake_store_round_trip() {
    let index = unique_index("hshake");
    let settings = shared::index::SearchSettings::new(search_url(), &index);
    let client = shared::adapters::search::SearchClient::new(&settings).unwrap();
    let store = SearchHandshakeStore::new(client.clone(), &index);
    assert!(store.all().await.expect("search engine at SEARCH_URL (make up)").is_empty(), "no index yet");
    let now = chrono::Utc::now();
    let a = PendingHandshake::new(&SecretString::new("secret_store_A"), now - chrono::Duration::minutes(2));
    let b = PendingHandshake::new(&SecretString::new("secret_store_B"), now);
    store.put(&a).await.unwrap();
    store.put(&b).await.unwrap();
    store.put(&b).await.unwrap();
    let all = store.all().await.unwrap();
    let shown: Vec<(String, String)> = all.iter().map(|e| (e.id.clone(), e.token.expose().to_string())).collect();
    assert_eq!(shown, [(b.id.clone(), "secret_store_B".into()), (a.id.clone(), "secret_store_A".into())]);
    assert_eq!(all[0].expires_at.timestamp(), b.expires_at.timestamp());
    store.remove(&a.id).await.unwrap();
    store.remove("hs-never-stored").await.unwrap();
    assert_eq!(store.all().await.unwrap().len(), 1);
    // Explicit mappings: the token is not searchable, unknown fields are refused.
    let hs = shared::adapters::search::handshakes_index(&index);
    let mapping = client.json(elasticsearch::http::Method::Get, &format!("/{hs}/_mapping"), &[], None).await.unwrap();
    let mappings = &mapping.body[&hs]["mappings"];
    assert_eq!(mappings["dynamic"], "strict", "{mappings}");
    assert_eq!(mappings["properties"]["verification_token"]["index"], false, "{mappings}");
    let query = json!({"query": {"term": {"verification_token": "secret_store_B"}}});
    let search =
        client.json(elasticsearch::http::Method::Post, &format!("/{hs}/_search"), &[], Some(&query)).await.unwrap();
    assert!(search.body["hits"]["hits"].as_array().is_none_or(|h| h.is_empty()), "token searchable: {:?}", search.body);
    drop_index(&client, &hs).await;
}

#[tokio::test]
async fn handshake_flow_with_the_search_engine_store() {
    let index = unique_index("hsflow");
    let settings = shared::index::SearchSettings::new(search_url(), &index);
    let client = shared::adapters::search::SearchClient::new(&settings).unwrap();
    let mut h = harness(None, Some(API_KEY));
    h.ctx.handshakes = Arc::new(SearchHandshakeStore::new(client.clone(), &index));
    for n in 0..7 {
        assert_eq!(api::handle(&h.ctx, handshake_request(&format!("secret_flow_{n}"))).await.status, 200);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(api::handle(&h.ctx, handshake_request("secret_flow_6")).await.status, 200);
    let listed = api::handle(&h.ctx, authed(ApiRequest::new("GET", "/webhooks/notion/pending"))).await;
    let pending = listed.body["pending"].as_array().unwrap().clone();
    let tokens: Vec<&str> = pending.iter().map(|e| e["verification_token"].as_str().unwrap()).collect();
    assert_eq!(
        tokens,
        ["secret_flow_6", "secret_flow_5", "secret_flow_4", "secret_flow_3", "secret_flow_2"],
        "{listed:?}"
    );
    let confirm = ApiRequest::new("POST", "/webhooks/notion/confirm").body(json!({"id": pending[1]["id"]}).to_string());
    assert_eq!(api::handle(&h.ctx, authed(confirm)).await.status, 200);
    assert_eq!(h.secrets.token().as_ref().map(SecretString::expose), Some("secret_flow_5"));
    let resp = api::handle(&h.ctx, signed(event_body("e", "page.created", "p", "page"), "secret_flow_5")).await;
    assert_eq!(resp.status, 202, "{resp:?}");
    let after = api::handle(&h.ctx, authed(ApiRequest::new("GET", "/webhooks/notion/pending"))).await;
    assert_eq!(after.body["pending"].as_array().unwrap().len(), 4);
    drop_index(&client, &shared::adapters::search::handshakes_index(&index)).await;
}

#[tokio::test]
async fn replayed_event_is_ignored_with_the_search_engine_log() {
    let index = unique_index("replay");
    let (log, client) = search_event_log(&index).await;
    let h = harness_with(Some(TOKEN), None, Arc::new(log));
    let body = event_body("5d2a0f7e-1111-4222-8333-444455556666", "page.properties_updated", "page-7", "page");
    let first = api::handle(&h.ctx, signed(body.clone(), TOKEN)).await;
    assert_eq!(first.status, 202, "{first:?}");
    for _ in 0..2 {
        let again = api::handle(&h.ctx, signed(body.clone(), TOKEN)).await;
        assert_eq!((again.status, again.body["status"].as_str()), (200, Some("duplicate")), "{again:?}");
    }
    assert_eq!(h.runs.all().len(), 1);
    assert_eq!(h.queue.take_tasks().len(), 1);
    drop_index(&client, &shared::adapters::search::events_index(&index)).await;
}

// ---------------------------------------------------------------------------------------------
// The real search engine: run records (SearchRunBook over runs::RunStore)
// ---------------------------------------------------------------------------------------------

/// A harness whose run book and event log are on the search engine, in fresh indices.
async fn search_harness(prefix: &str) -> (Harness, shared::adapters::search::SearchStore) {
    let index = unique_index(prefix);
    let store =
        shared::adapters::search::SearchStore::connect(&shared::index::SearchSettings::new(search_url(), &index))
            .unwrap();
    store.ensure_indices().await.expect("search engine at SEARCH_URL (make up)");
    let (log, _) = search_event_log(&index).await;
    let mut h = harness_with(Some(TOKEN), Some(API_KEY), Arc::new(log));
    h.ctx.runs = Arc::new(shared::adapters::search::SearchRunBook::new(store.client().clone(), &index));
    (h, store)
}

async fn drop_search_harness(store: &shared::adapters::search::SearchStore) {
    store.delete_indices().await.unwrap();
    drop_index(store.client(), &shared::adapters::search::events_index(store.index())).await;
}

#[tokio::test]
async fn webhook_run_is_recorded_in_the_search_engine() {
    let (h, store) = search_harness("wrun").await;
    let body = event_body("7e1f0c2a-0000-4000-8000-00000000000a", "page.created", "page-42", "page");
    let resp = api::handle(&h.ctx, signed(body.clone(), TOKEN)).await;
    assert_eq!(resp.status, 202, "{resp:?}");
    let run_id = resp.body["run_id"].as_u64().unwrap();
    let again = api::handle(&h.ctx, signed(body, TOKEN)).await;
    assert_eq!(again.body["status"], "duplicate");

    let run = api::handle(&h.ctx, authed(ApiRequest::new("GET", &format!("/syncs/{run_id}")))).await;
    assert_eq!(run.status, 200, "{run:?}");
    assert_eq!((run.body["kind"].as_str(), run.body["state"].as_str()), (Some("webhook"), Some("running")), "{run:?}");
    assert_eq!((run.body["planned"].as_u64(), run.body["counts"]["queued"].as_u64()), (Some(1), Some(1)), "{run:?}");
    let list = api::handle(&h.ctx, authed(ApiRequest::new("GET", "/syncs"))).await;
    assert_eq!(list.body["runs"].as_array().map(Vec::len), Some(1), "{list:?}");
    assert_eq!(list.body["runs"][0]["id"].as_u64(), Some(run_id));
    let missing = api::handle(&h.ctx, authed(ApiRequest::new("GET", &format!("/syncs/{}", run_id + 1)))).await;
    assert_eq!(missing.status, 404);
    drop_search_harness(&store).await;
}

#[tokio::test]
async fn second_full_sync_is_409_with_the_search_engine() {
    let (h, store) = search_harness("full409").await;
    let start =
        |kind: &str| authed(ApiRequest::new("POST", "/syncs").body(format!(r#"{{"kind":"{kind}"}}"#).into_bytes()));
    let first = api::handle(&h.ctx, start("full")).await;
    assert_eq!(first.status, 202, "{first:?}");
    let first_id = first.body["run_id"].as_u64().unwrap();
    let state = api::handle(&h.ctx, authed(ApiRequest::new("GET", &format!("/syncs/{first_id}")))).await;
    assert_eq!(state.body["state"], "planning", "{state:?}");
    let second = api::handle(&h.ctx, start("full")).await;
    assert_eq!((second.status, second.body["run_id"].as_u64()), (409, Some(first_id)), "{second:?}");
    assert_eq!(api::handle(&h.ctx, start("incremental")).await.status, 409);
    // Closed (here: failed), it no longer blocks.
    h.ctx.runs.fail_run(first_id, "test over").await.unwrap();
    let third = api::handle(&h.ctx, start("full")).await;
    assert_eq!(third.status, 202, "{third:?}");
    assert!(third.body["run_id"].as_u64().unwrap() > first_id);
    assert_eq!(h.planner.started.lock().unwrap().len(), 2);
    drop_search_harness(&store).await;
}

// ---------------------------------------------------------------------------------------------
// Decoders never panic
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn webhook_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(webhook::WebhookBody::Event(event)) = webhook::decode_body(&bytes) {
            let _ = webhook::tasks_for_event(&event);
        }
        let _ = webhook::verify_signature(&bytes, std::str::from_utf8(&bytes).ok(), "k");
    }

    #[test]
    fn json_shaped_webhooks_never_panic(
        id in ".{0,8}", kind in "(page|database|data_source|comment|view)\\.[a-z_]{0,16}",
        entity in prop_oneof![Just(json!(null)), Just(json!({"id": 5})), ".{0,8}".prop_map(|s| json!({"id": s, "type": "page"}))],
        data in prop_oneof![Just(json!(null)), Just(json!([])), Just(json!({"parent": 3, "page_id": {}})), Just(json!({"parent": {"id": "x", "type": "database"}}))],
        timestamp in prop_oneof![Just(json!(null)), Just(json!("2026-01-01T00:00:00Z")), ".{0,12}".prop_map(Value::from)],
    ) {
        let body = serde_json::to_vec(&json!({"id": id, "type": kind, "entity": entity, "data": data, "timestamp": timestamp})).unwrap();
        if let Ok(webhook::WebhookBody::Event(event)) = webhook::decode_body(&body) {
            let _ = webhook::tasks_for_event(&event);
        }
    }

    #[test]
    fn api_request_decoders_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        method in "[A-Za-z]{0,7}",
        path in "(/[a-z0-9%?.]{0,10}){0,4}",
    ) {
        let _ = api::decode_sync_request(&bytes);
        let _ = api::route(&method, &path);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let h = harness(Some(TOKEN), Some(API_KEY));
        for (m, p) in [(method.as_str(), path.as_str()), ("POST", "/webhooks/notion"), ("POST", "/syncs")] {
            let req = authed(ApiRequest::new(m, p).body(bytes.clone()));
            let resp = runtime.block_on(api::handle(&h.ctx, req));
            prop_assert!((200..600).contains(&resp.status));
        }
    }
}

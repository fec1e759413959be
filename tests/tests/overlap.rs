//! Overlapping runs (issue 12, item 4): ordered writes, one full run per index, block removal
//! that spares a newer walk, and zombie runs closed after a bounded time. Needs `make up`
//! (search engine and LocalStack).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::notion_emulator::WorkspaceKind;
use e2e::Stack;
use reqwest::Method;
use serde_json::{json, Map, Value};
use shared::adapters::search::{SearchEventLog, SearchRunBook};
use shared::api::{
    ApiContext, ApiRequest, EdgeError, HandshakeStore, MemorySecretStore, PendingHandshake, PlannerTrigger,
};
use shared::document::Document;
use shared::queue::BoxFuture;
use shared::runs::RunState;
use shared::sync::worker::{handle_batch, IncomingMessage};
use shared::sync::SyncContext;
use shared::task::{RunKind, Task, TaskMessage};

/// No pending handshakes either.
struct NoHandshakes;

impl HandshakeStore for NoHandshakes {
    fn put<'a>(&'a self, _entry: &'a PendingHandshake) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async { Ok(()) })
    }
    fn all(&self) -> BoxFuture<'_, Result<Vec<PendingHandshake>, EdgeError>> {
        Box::pin(async { Ok(vec![]) })
    }
    fn remove<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The planner invoked asynchronously, in process; while `killed`, the invocation is accepted and
/// never runs (a planner that dies before it finishes planning).
struct Planner {
    ctx: Arc<SyncContext>,
    killed: AtomicBool,
}

impl PlannerTrigger for Planner {
    fn start(&self, kind: RunKind, run_id: u64) -> BoxFuture<'_, Result<(), EdgeError>> {
        let ctx = self.ctx.clone();
        let killed = self.killed.load(Ordering::SeqCst);
        Box::pin(async move {
            if killed {
                return Ok(());
            }
            tokio::spawn(async move {
                let event = json!({"kind": kind.as_str(), "run_id": run_id});
                if let Err(err) = shared::sync::planner::handle_event(&ctx, &event).await {
                    eprintln!("planner failed for run {run_id}: {err}");
                }
            });
            Ok(())
        })
    }
}

/// The API function's context over the stack's run records, with an in-process planner.
fn api(stack: &Stack, planner: Arc<Planner>) -> ApiContext {
    let client = stack.search.client().clone();
    let index = stack.settings.index_name.clone();
    ApiContext {
        runs: Arc::new(SearchRunBook::new(client.clone(), &index).with_leases(stack.ctx.runs.leases().clone())),
        queue: stack.ctx.queue.clone(),
        planner,
        // No webhook token anywhere: these tests only use `/syncs`.
        secrets: Arc::new(MemorySecretStore::default()),
        events: Arc::new(SearchEventLog::new(client, &index)),
        handshakes: Arc::new(NoHandshakes),
        api_key: None,
        webhook_token: shared::api::TokenCache::new(None),
        finalize_delay_seconds: stack.settings.finalize_delay_seconds,
    }
}

fn planner(stack: &Stack) -> Arc<Planner> {
    Arc::new(Planner { ctx: stack.ctx.clone(), killed: AtomicBool::new(false) })
}

async fn post_sync(api: &ApiContext, kind: &str) -> (u16, Value) {
    let request = ApiRequest::new("POST", "/syncs").body(format!(r#"{{"kind":"{kind}"}}"#).into_bytes());
    let response = shared::api::handle(api, request).await;
    (response.status, response.body)
}

fn text(doc: &Map<String, Value>, field: &str) -> String {
    doc.get(field).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// A page (not a row) with block documents of its own.
fn page_with_blocks(docs: &HashMap<String, Map<String, Value>>) -> String {
    let mut pages: Vec<&String> = docs
        .iter()
        .filter(|(_, d)| {
            text(d, "object") == "page"
                && d.get("parent").and_then(|p| p.get("data_source_id").or(p.get("database_id"))).is_none()
        })
        .filter(|(id, _)| docs.values().any(|b| text(b, "object") == "block" && &text(b, "page_id") == *id))
        .map(|(id, _)| id)
        .collect();
    pages.sort();
    pages.first().map(|p| p.to_string()).expect("a page with blocks")
}

/// Takes the messages off a queue, deleting them: until one receive finds nothing after some were
/// taken (delayed messages are waited for up to `wait`).
async fn drain(stack: &Stack, queue_url: &str, wait: Duration) -> Vec<String> {
    let mut bodies = Vec::new();
    let until = Instant::now() + wait;
    while Instant::now() < until {
        let out = stack.sqs.receive_message().queue_url(queue_url).max_number_of_messages(10).wait_time_seconds(1);
        let out = out.send().await.unwrap();
        if out.messages().is_empty() && !bodies.is_empty() {
            break;
        }
        for m in out.messages() {
            bodies.extend(m.body().map(str::to_string));
            stack
                .sqs
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    bodies
}

/// Runs work-queue messages only (no finalize check) until every task of `run_id` has ended.
async fn pump_work_until_done(stack: &Stack, run_id: u64) {
    let pump = stack.manual_pump();
    let started = Instant::now();
    loop {
        pump.pump_once(&stack.options.work_queue_url, "worker", 1).await.unwrap();
        let status = stack.ctx.runs.status(run_id).await.unwrap();
        if shared::runs::is_complete(&status) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "run {run_id} did not finish its tasks: {status:?}");
    }
}

/// Delivers task message bodies to the worker handler, as one SQS batch.
async fn deliver(stack: &Stack, bodies: &[String]) {
    let messages = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| IncomingMessage { message_id: format!("held-{i}"), body: body.clone(), receive_count: 1 })
        .collect();
    let failed = handle_batch(&stack.ctx, messages, None, 4).await;
    assert!(failed.is_empty(), "held messages failed: {failed:?}");
}

/// Pumps the finalize queue (and the work queue) until `run_id` is closed.
async fn finalize(stack: &Stack, run_id: u64) -> shared::runs::RunRecord {
    stack.pump(run_id).await.unwrap()
}

// ---------------------------------------------------------------------------------------------

/// H4: incremental I is planned, then full F; one of I's page tasks is delivered only after F's
/// tasks. The page keeps F's run id, so F's stale removal (and its verification) keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_older_runs_late_write_never_makes_the_newer_full_run_delete_it() {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack (is `make up` running?)");
    let first = stack.sync("full").await.unwrap();
    assert_eq!(first.state, RunState::Completed, "{first:?}");
    let page = page_with_blocks(&stack.documents().await.unwrap());
    stack
        .control(Method::PATCH, &format!("pages/{page}"), Some(json!({"text": "edited overlapmarker"})))
        .await
        .unwrap();

    // I is planned; its tasks are held back (a delivery that fails and comes back 30 min later).
    let planned = stack.invoker().invoke("planner", json!({"kind": "incremental"})).await.unwrap();
    let inc = planned["id"].as_u64().unwrap();
    assert_eq!(planned["kind"], "incremental", "{planned}");
    let held: Vec<String> = drain(&stack, &stack.options.work_queue_url, Duration::from_secs(2))
        .await
        .into_iter()
        .filter(|b| TaskMessage::decode(b).is_ok_and(|m| m.task_id == format!("p:{page}")))
        .collect();
    assert_eq!(held.len(), 1, "the incremental run queued the edited page");

    // F is planned and runs all of its tasks.
    let planned = stack.invoker().invoke("planner", json!({"kind": "full"})).await.unwrap();
    let full = planned["id"].as_u64().unwrap();
    assert!(full > inc);
    pump_work_until_done(&stack, full).await;
    assert_eq!(stack.ctx.store.get(&page).await.unwrap().unwrap()["sync_run"], full);

    // I's late write of the page, then F's finalize (stale removal).
    deliver(&stack, &held).await;
    let after_late = stack.ctx.store.get(&page).await.unwrap().unwrap();
    assert_eq!(after_late["sync_run"], full, "an older run's write must not replace a newer run's document");
    let closed = finalize(&stack, full).await;
    assert_eq!(closed.state, RunState::Completed, "{closed:?}");
    let docs = stack.documents().await.unwrap();
    let kept = docs.get(&page).unwrap_or_else(|| panic!("page {page} deleted by the full run after a late write"));
    assert_eq!(kept["sync_run"], full);
    assert!(text(kept, "body").contains("overlapmarker"));
    let blocks = docs.values().filter(|d| text(d, "object") == "block" && text(d, "page_id") == page).count();
    assert!(blocks > 0, "the page's blocks were deleted");
    assert!(docs.values().all(|d| d["sync_run"].as_u64() >= Some(full)), "documents older than F are left");

    // The next full run keeps it too.
    let next = stack.sync("full").await.unwrap();
    assert_eq!(next.state, RunState::Completed);
    assert!(stack.documents().await.unwrap().contains_key(&page));
    stack.cleanup().await;
}

/// Two full syncs at once, through the API and through the schedule: one runs, the others are
/// refused (409 with the running run's id; a schedule is skipped and names it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_full_syncs_started_at_once_one_runs_the_other_is_refused() {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack (is `make up` running?)");
    let api = api(&stack, planner(&stack));
    let answers = futures::future::join_all((0..6).map(|_| post_sync(&api, "full"))).await;
    let started: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 202).map(|(_, b)| b).collect();
    assert_eq!(started.len(), 1, "exactly one of six concurrent starts runs: {answers:?}");
    let run_id = started[0]["run_id"].as_u64().unwrap();
    for (status, body) in answers.iter().filter(|(s, _)| *s != 202) {
        assert_eq!((*status, body["run_id"].as_u64()), (409, Some(run_id)), "{body}");
    }
    // A scheduled full run meanwhile is skipped: it names the running one, records nothing.
    let scheduled = stack.invoker().invoke("planner", json!({"kind": "full"})).await.unwrap();
    assert_eq!(scheduled["id"].as_u64(), Some(run_id), "{scheduled}");
    assert_eq!(post_sync(&api, "incremental").await.0, 409, "no incremental run beside a full one");
    let fulls = stack.ctx.runs.recent(50).await.unwrap().into_iter().filter(|r| r.kind == RunKind::Full).count();
    assert_eq!(fulls, 1, "one full run record");
    assert_eq!(finalize(&stack, run_id).await.state, RunState::Completed);

    // Two schedules at once (a run that outlasts the interval): one run.
    let invoker = stack.invoker();
    let (a, b) = tokio::join!(
        invoker.invoke("planner", json!({"kind": "full"})),
        invoker.invoke("planner", json!({"kind": "full"}))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a["id"], b["id"], "{a} / {b}");
    let closed = finalize(&stack, a["id"].as_u64().unwrap()).await;
    assert_eq!(closed.state, RunState::Completed);
    let fulls = stack.ctx.runs.recent(50).await.unwrap().into_iter().filter(|r| r.kind == RunKind::Full).count();
    assert_eq!(fulls, 2);
    // Closed, the lock is free again.
    let (status, body) = post_sync(&api, "full").await;
    assert_eq!(status, 202, "{body}");
    finalize(&stack, body["run_id"].as_u64().unwrap()).await;
    stack.cleanup().await;
}

/// M3: a planner killed mid-planning, and a finalize chain lost to its DLQ, leave runs that are
/// closed as failed once their lease has run out; a new full sync then starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zombie_runs_are_closed_as_failed_and_never_block_syncs() {
    let overrides = [("PLANNING_LEASE_SECONDS", "2"), ("RUN_LEASE_SECONDS", "6")];
    let stack = Stack::start(WorkspaceKind::Small, &overrides).await.expect("stack (is `make up` running?)");
    let planner = planner(&stack);
    let api = api(&stack, planner.clone());

    // The planner dies: the run (and its lock) are recorded, planning never finishes.
    planner.killed.store(true, Ordering::SeqCst);
    let (status, body) = post_sync(&api, "full").await;
    assert_eq!(status, 202, "{body}");
    let zombie = body["run_id"].as_u64().unwrap();
    let (status, body) = post_sync(&api, "full").await;
    assert_eq!((status, body["run_id"].as_u64()), (409, Some(zombie)), "within its lease the run holds the lock");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    planner.killed.store(false, Ordering::SeqCst);
    let (status, body) = post_sync(&api, "full").await;
    assert_eq!(status, 202, "a dead planner must not block syncs: {body}");
    let next = body["run_id"].as_u64().unwrap();
    let dead = stack.ctx.runs.get(zombie).await.unwrap().unwrap();
    assert_eq!(dead.state, RunState::Failed, "{dead:?}");
    let reason = dead.abort_reason.clone().unwrap_or_default();
    assert!(reason.contains("planner stopped before planning finished"), "{reason}");
    assert_eq!(finalize(&stack, next).await.state, RunState::Completed);

    // A run whose finalize chain is lost (its message in the DLQ): running, never checked again.
    let planned = stack.invoker().invoke("planner", json!({"kind": "full"})).await.unwrap();
    let lost = planned["id"].as_u64().unwrap();
    let finalize_messages = drain(&stack, &stack.options.finalize_queue_url, Duration::from_secs(3)).await;
    assert!(!finalize_messages.is_empty(), "the planner queued a finalize message");
    assert_eq!(post_sync(&api, "full").await.0, 409, "within its lease the run holds the lock");
    // Its tasks end; no finalize check ever comes.
    pump_work_until_done(&stack, lost).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (status, body) = post_sync(&api, "full").await;
    assert_eq!(status, 202, "a lost finalize chain must not block syncs: {body}");
    let dead = stack.ctx.runs.get(lost).await.unwrap().unwrap();
    assert_eq!(dead.state, RunState::Failed, "{dead:?}");
    let reason = dead.abort_reason.clone().unwrap_or_default();
    assert!(reason.contains("no finalize check for"), "{reason}");
    assert_eq!(finalize(&stack, body["run_id"].as_u64().unwrap()).await.state, RunState::Completed);
    stack.cleanup().await;
}

/// A newer walk's blocks survive an older walk's block removal: webhook run W (newer id) walks a
/// page while full run F (older id, still running) has written a block of it that W's walk did
/// not see. W removes the page's blocks of closed older runs, never F's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn block_removal_spares_blocks_written_by_a_running_run() {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack (is `make up` running?)");
    let first = stack.sync("full").await.unwrap();
    let page = page_with_blocks(&stack.documents().await.unwrap());
    let full = stack.ctx.runs.create_run(RunKind::Full).await.unwrap().id;
    let webhook = stack.ctx.runs.create_run(RunKind::Webhook).await.unwrap().id;
    assert!(webhook > full);
    let block = |id: &str, run: u64| Document {
        id: id.to_string(),
        source: json!({"id": id, "object": "block", "page_id": page, "sync_run": run}).as_object().cloned().unwrap(),
    };
    let report = stack
        .ctx
        .store
        .bulk_index(vec![block("overlap-newer-walk-block", full), block("overlap-removed-block", first.id)])
        .await
        .unwrap();
    assert_eq!(report.indexed, 2);

    let task = Task::Page { page_id: page.clone(), page: None, path: vec![] };
    let msg = TaskMessage::new(webhook, RunKind::Webhook, format!("p:{page}"), task);
    stack.ctx.runs.tasks_queued(webhook, std::slice::from_ref(&msg)).await.unwrap();
    deliver(&stack, &[msg.encode()]).await;

    let docs = stack.documents().await.unwrap();
    assert!(docs.contains_key("overlap-newer-walk-block"), "a running run's block was deleted by another walk");
    assert!(!docs.contains_key("overlap-removed-block"), "a block of a closed older run is removed");
    assert_eq!(docs[&page]["sync_run"], webhook);
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_of_closed_or_aborted_runs_spend_no_notion_calls() {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack (is `make up` running?)");
    let page = stack
        .control(
            Method::POST,
            "pages",
            Some(json!({"title": "Late task", "blocks": [
        {"type": "paragraph", "text": "latetaskmarker"}]})),
        )
        .await
        .unwrap();
    let page_id = page["id"].as_str().unwrap().to_string();

    // A run closed (a zombie closed, a run failed) while its task was still in the queue.
    let closed = stack.plan_page_run(&page_id).await.unwrap();
    stack.ctx.runs.abort(closed, "closed for the test").await.unwrap();
    stack.ctx.runs.close(closed, RunState::Failed, 0).await.unwrap();
    stack.reset_api_calls().await.unwrap();
    stack.manual_pump().pump_once(&stack.options.work_queue_url, "worker", 10).await.unwrap();
    assert_eq!(stack.api_calls().await.unwrap(), 0, "a closed run's task calls nothing");
    assert!(!stack.documents().await.unwrap().contains_key(&page_id), "and indexes nothing");

    // A run aborted (a revoked token) but not closed yet: its tasks are recorded failed without a call, so it
    // closes at once instead of spending the budget.
    let aborted = stack.plan_page_run(&page_id).await.unwrap();
    stack.ctx.runs.abort(aborted, "Notion rejected the token").await.unwrap();
    stack.reset_api_calls().await.unwrap();
    let run = stack.pump(aborted).await.unwrap();
    assert_eq!(stack.api_calls().await.unwrap(), 0, "an aborted run's task calls nothing");
    assert_eq!(run.state, RunState::Failed, "{run:?}");
    assert_eq!(run.counts.failed, 1, "{run:?}");
    stack.cleanup().await;
}

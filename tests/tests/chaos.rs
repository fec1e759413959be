//! The chaos suite (issue 8): Notion's and the search engine's bad days, killed workers and
//! duplicate deliveries, runs that must fail without deleting anything, secrets in logs, and ten
//! workers sharing one rate. Needs `make up` (search engine and LocalStack).
//!
//! Bounded in time (a few minutes in all): the fault runs use the `small` workspace (56 pages and
//! rows, ~490 blocks, ~120 API calls), because an injected 429 pauses a client for its whole
//! `Retry-After` (1 s): `medium` (17,000 calls) at 20 % 429s would take the better part of an hour.
//! Every test prints a `RELIABILITY` line with its figures.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use base64::Engine as _;
use e2e::fault_proxy::{Faults, SearchProxy};
use e2e::notion_emulator::{self, WorkspaceKind};
use e2e::Stack;
use reqwest::Method;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use shared::runs::{RunRecord, RunState};

// ---------------------------------------------------------------------------------------------
// Helpers: fingerprints of an index, the engine, SQS events
// ---------------------------------------------------------------------------------------------

/// The search engine itself (not a test's proxy).
fn engine_url() -> String {
    std::env::var("SEARCH_URL").unwrap_or_else(|_| "http://127.0.0.1:9200".into()).trim_end_matches('/').to_string()
}

/// A document's content without what legitimately differs between two runs of the same workspace:
/// `sync_run`, and the expiry of signed file URLs (`?expires=…&sig=…`, `expiry_time`). Keys sorted.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, Value> = map
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "sync_run" | "expiry_time"))
                .map(|(k, v)| (k, canonical(v)))
                .collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::String(s) if s.contains("expires=") => {
            Value::String(s.split('?').next().unwrap_or_default().to_string())
        }
        other => other.clone(),
    }
}

/// `_id` → SHA-256 of the canonical `_source`.
fn fingerprints(docs: &HashMap<String, Map<String, Value>>) -> BTreeMap<String, String> {
    docs.iter()
        .map(|(id, source)| {
            let text = canonical(&Value::Object(source.clone())).to_string();
            (id.clone(), hex::encode(Sha256::digest(text.as_bytes())))
        })
        .collect()
}

/// Panics naming the first differences between two fingerprint sets.
fn assert_identical(label: &str, reference: &BTreeMap<String, String>, actual: &BTreeMap<String, String>) {
    let missing: Vec<&String> = reference.keys().filter(|id| !actual.contains_key(*id)).collect();
    let extra: Vec<&String> = actual.keys().filter(|id| !reference.contains_key(*id)).collect();
    let changed: Vec<&String> =
        reference.iter().filter(|(id, h)| actual.get(*id).is_some_and(|a| a != *h)).map(|(id, _)| id).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && changed.is_empty(),
        "{label}: {} missing (first {:?}), {} extra (first {:?}), {} changed (first {:?}) of {} documents",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(5).collect::<Vec<_>>(),
        changed.len(),
        changed.iter().take(5).collect::<Vec<_>>(),
        reference.len()
    );
}

/// Deletes the content index behind the stack's back and creates it again empty (with the
/// connector's mapping), so a second run starts from nothing and must rebuild everything.
async fn wipe_content_index(stack: &Stack) {
    let url = format!("{}/{}", engine_url(), stack.settings.index_name);
    let status = reqwest::Client::new().delete(&url).send().await.unwrap().status();
    assert!(status.is_success(), "deleting {url}: {status}");
    stack.search.ensure_indices().await.unwrap();
}

/// The task records of a run, straight from the engine.
async fn task_records(stack: &Stack, run_id: u64) -> Vec<Value> {
    let url = format!("{}/{}-tasks/_search", engine_url(), stack.settings.index_name);
    let http = reqwest::Client::new();
    http.post(format!("{}/{}-tasks/_refresh", engine_url(), stack.settings.index_name)).send().await.unwrap();
    let body = json!({"size": 10000, "query": {"term": {"run_id": run_id}}});
    let response: Value = http.post(&url).json(&body).send().await.unwrap().json().await.unwrap();
    response["hits"]["hits"].as_array().cloned().unwrap_or_default().into_iter().map(|h| h["_source"].clone()).collect()
}

/// Emulator fault settings back to none.
fn no_faults() -> Value {
    json!({"fault_429": 0.0, "fault_500": 0.0, "fault_502": 0.0, "fault_503": 0.0, "fault_529": 0.0, "drop_connection": 0.0,
        "latency_ms": 0, "jitter_ms": 0})
}

/// Plans a full run through the planner function, without pumping.
async fn plan_full(stack: &Stack) -> u64 {
    let planned = stack.invoker().invoke("planner", json!({"kind": "full"})).await.unwrap();
    planned["id"].as_u64().unwrap()
}

/// An SQS event for the worker function, as the event source mapping builds it.
fn text(doc: &Map<String, Value>, field: &str) -> String {
    doc.get(field).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Pages (not rows) with block documents of their own, sorted by id.
fn pages_with_blocks(docs: &HashMap<String, Map<String, Value>>) -> Vec<String> {
    let mut pages: Vec<String> = docs
        .iter()
        .filter(|(_, d)| {
            text(d, "object") == "page"
                && d.get("parent").and_then(|p| p.get("data_source_id").or(p.get("database_id"))).is_none()
        })
        .filter(|(id, _)| docs.values().any(|b| text(b, "object") == "block" && &text(b, "page_id") == *id))
        .map(|(id, _)| id.clone())
        .collect();
    pages.sort();
    pages
}

// ---------------------------------------------------------------------------------------------
// Notion's bad day
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notion_faults_leave_the_index_identical_to_a_fault_free_run() {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack (is `make up` running?)");
    let clean = stack.sync("full").await.unwrap();
    assert_eq!(clean.state, RunState::Completed, "{clean:?}");
    let reference = fingerprints(&stack.documents().await.unwrap());

    wipe_content_index(&stack).await;
    stack.reset_api_calls().await.unwrap();
    let client_before = stack.ctx.notion.stats();
    let faults = json!({"fault_429": 0.20, "fault_500": 0.0125, "fault_502": 0.0125, "fault_503": 0.0125, "fault_529": 0.0125,
        "drop_connection": 0.02, "retry_after_429": 1, "latency_ms": 20, "jitter_ms": 60});
    stack.control(Method::POST, "config", Some(faults)).await.unwrap();
    let started = Instant::now();
    let run = stack.sync("full").await.unwrap();
    let wall = started.elapsed();
    let stats = stack.control(Method::GET, "stats", None).await.unwrap();
    stack.control(Method::POST, "config", Some(no_faults())).await.unwrap();
    let client = stack.ctx.notion.stats().since(&client_before);

    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert_eq!(run.counts.failed, 0, "no failed task: {run:?}");
    let docs = fingerprints(&stack.documents().await.unwrap());
    assert_identical("faulty run vs fault-free run", &reference, &docs);

    let f = &stats["faults"];
    let injected_429 = f["status_429"].as_u64().unwrap_or(0);
    let injected_5xx: u64 =
        ["status_500", "status_502", "status_503", "status_529"].iter().map(|k| f[*k].as_u64().unwrap_or(0)).sum();
    let dropped = f["dropped"].as_u64().unwrap_or(0);
    let total = stats["total"].as_u64().unwrap_or(0);
    assert!(injected_429 > 0 && injected_5xx + dropped > 0, "faults were injected: {stats}");
    assert!(run.counts.retries > 0, "the run record shows the retries: {:?}", run.counts);
    // Each task counts its own retries: together no more than the client made (the planner's are not a task's).
    assert!(
        run.counts.retries <= client.retries,
        "{} task retries > {} client retries",
        run.counts.retries,
        client.retries
    );
    let tasks = task_records(&stack, run.id).await;
    let with_retries = tasks.iter().filter(|t| t["retries"].as_u64().unwrap_or(0) > 0).count();
    assert!(with_retries > 0, "task records carry their retries");
    println!(
        "RELIABILITY notion-faults: workspace small, {total} Notion requests, injected {injected_429} x 429 (Retry-After 1 s), \
         {injected_5xx} x 500/502/503/529, {dropped} dropped connections, {} delayed 20-80 ms; client retries {} \
         (rate limited {}, 5xx {}, connection {}); run record retries {} (the tasks' own; the rest were the planner's) over {} tasks ({with_retries} tasks retried); \
         failed tasks {}; {} documents compared, identical to the fault-free run; faulty run {:.1} s",
        stats["delayed"],
        client.retries,
        client.rate_limited,
        client.server_errors,
        client.connection_errors,
        run.counts.retries,
        run.counts.done,
        run.counts.failed,
        docs.len(),
        wall.as_secs_f64()
    );
    stack.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// The search engine's bad day, through a proxy (the engine is shared: it is never restarted)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_engine_faults_are_retried_or_isolated() {
    let proxy = SearchProxy::start(engine_url()).await;
    let stack = Stack::start(WorkspaceKind::Small, &[("SEARCH_URL", proxy.url.as_str())]).await.expect("stack");
    proxy.set_index(&stack.settings.index_name);
    let clean = stack.sync("full").await.unwrap();
    assert_eq!(clean.state, RunState::Completed, "{clean:?}");
    let reference_docs = stack.documents().await.unwrap();
    let mut reference = fingerprints(&reference_docs);

    // One block document the engine will refuse; 1 in 4 items rejected with 429 (up to 200);
    // the engine "restarts" (connections cut, then refused for 3 s) on the 3rd content bulk.
    let mut blocks: Vec<&String> =
        reference_docs.iter().filter(|(_, d)| text(d, "object") == "block").map(|(id, _)| id).collect();
    blocks.sort();
    let bad = blocks[blocks.len() / 2].clone();
    wipe_content_index(&stack).await;
    proxy.set_faults(Faults {
        reject_every: 4,
        reject_budget: 200,
        bad_doc: Some(bad.clone()),
        restart_at: Some((3, Duration::from_secs(3))),
    });
    let started = Instant::now();
    let run = stack.sync("full").await.unwrap();
    let wall = started.elapsed();
    let content_bulks = proxy.counters().content_bulks.load(Ordering::Relaxed);
    proxy.set_faults(Faults::default());

    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert_eq!(run.counts.failed, 0, "one bad document never fails its task: {run:?}");
    assert!(run.counts.errors >= 1, "the rejected document is counted: {:?}", run.counts);
    let docs = fingerprints(&stack.documents().await.unwrap());
    assert!(!docs.contains_key(&bad), "the poisoned document was refused");
    reference.remove(&bad);
    assert_identical("search faults run vs fault-free run (less the refused document)", &reference, &docs);
    let tasks = task_records(&stack, run.id).await;
    let sample = tasks
        .iter()
        .flat_map(|t| t["error_samples"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .find(|e| e.contains(bad.as_str()))
        .expect("the task names the refused document");
    assert!(sample.contains("mapper_parsing_exception") || sample.contains("sync_run"), "{sample}");

    let c = proxy.counters();
    let rejected = c.items_rejected.load(Ordering::Relaxed);
    assert!(rejected > 0, "items were rejected");
    assert_eq!(c.restarts.load(Ordering::Relaxed), 1, "the engine restarted once");
    println!(
        "RELIABILITY search-faults: workspace small, {} content _bulk requests, {rejected} items rejected with 429 and \
         retried, 1 engine restart mid-sync (connections cut, refused for 3 s), 1 document refused by its mapping \
         ({} sends, isolated: {sample:?}); run completed with 0 failed tasks and {} document error(s); {} documents \
         compared, identical to the fault-free run less the refused one; {:.1} s",
        content_bulks,
        c.bad_doc_sends.load(Ordering::Relaxed),
        run.counts.errors,
        docs.len(),
        wall.as_secs_f64()
    );
    stack.cleanup().await;
    proxy.stop();
}

// ---------------------------------------------------------------------------------------------
// Killed workers and duplicate deliveries
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_workers_and_duplicate_deliveries_leave_the_index_identical() {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack");
    let clean = stack.sync("full").await.unwrap();
    assert_eq!(clean.state, RunState::Completed, "{clean:?}");
    let reference = fingerprints(&stack.documents().await.unwrap());
    wipe_content_index(&stack).await;

    // Slow Notion down so a kill lands mid-task; messages of a killed invocation come back after 2 s.
    let work = stack.options.work_queue_url.clone();
    stack
        .sqs
        .set_queue_attributes()
        .queue_url(&work)
        .attributes(QueueAttributeName::VisibilityTimeout, "2")
        .send()
        .await
        .unwrap();
    stack.control(Method::POST, "config", Some(json!({"latency_ms": 30, "jitter_ms": 30}))).await.unwrap();
    let run_id = plan_full(&stack).await;

    let invoker = stack.invoker();
    let (mut kills, mut killed_messages, mut duplicates, mut finished_before_kill) = (0, 0, 0, 0);
    for round in 0..3 {
        let out = stack
            .sqs
            .receive_message()
            .queue_url(&work)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        // The same task delivered twice: a copy of each message of the first two batches.
        if round < 2 {
            for m in &messages {
                stack
                    .sqs
                    .send_message()
                    .queue_url(&work)
                    .message_body(m.body().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
                duplicates += 1;
            }
        }
        // The worker process dies 100 ms into the batch: its messages are neither deleted nor failed.
        let event = local_runner::sqs_event_json(&messages, &work);
        if tokio::time::timeout(Duration::from_millis(100), invoker.invoke("worker", event)).await.is_err() {
            kills += 1;
            killed_messages += messages.len();
        }
        for m in &messages {
            let task: Value = serde_json::from_str(m.body().unwrap_or_default()).unwrap();
            let record = stack.ctx.runs.task(run_id, task["task_id"].as_str().unwrap()).await.unwrap();
            if record.is_some_and(|r| r.state == shared::runs::TaskState::Done) {
                finished_before_kill += 1;
            }
        }
    }
    assert!(kills > 0, "at least one invocation was killed mid-batch");
    assert!(
        finished_before_kill < killed_messages,
        "the kill landed mid-batch ({finished_before_kill} of {killed_messages} done)"
    );

    let started = Instant::now();
    let run = stack.pump(run_id).await.unwrap();
    stack.control(Method::POST, "config", Some(no_faults())).await.unwrap();
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert_eq!(run.counts.failed, 0, "{run:?}");
    let docs = fingerprints(&stack.documents().await.unwrap());
    assert_identical("killed/duplicated run vs clean run", &reference, &docs);
    assert_eq!(run.counts.done, clean.counts.done, "every task counted once");
    assert_eq!(run.counts.indexed, clean.counts.indexed, "no document counted twice");
    assert!(stack.dlq_bodies().await.unwrap().is_empty(), "nothing reached the DLQ");
    println!(
        "RELIABILITY killed-workers: workspace small, {kills} worker invocations killed mid-batch ({killed_messages} messages \
         in flight, {finished_before_kill} of them finished before the kill), {duplicates} duplicate deliveries; run completed \
         ({} tasks, 0 failed, {} documents indexed as in the clean run); {} documents compared, identical, no duplicates; \
         {:.1} s after the kills",
        run.counts.done,
        run.counts.indexed,
        docs.len(),
        started.elapsed().as_secs_f64()
    );
    stack.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Runs that must fail, deleting nothing
// ---------------------------------------------------------------------------------------------

enum MidSync {
    RevokeToken,
    UnsharePage,
    DeleteIndex,
}

/// A first full run, then a page deleted in Notion (a successful full run would now remove its
/// documents), a second run planned and partly worked, the fault, and the rest of the run.
async fn fail_mid_sync(
    what: MidSync,
) -> (Stack, RunRecord, HashMap<String, Map<String, Value>>, String, Option<String>) {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack");
    assert_eq!(stack.sync("full").await.unwrap().state, RunState::Completed);
    let before = stack.documents().await.unwrap();
    let pages = pages_with_blocks(&before);
    let deleted = pages[0].clone();
    stack.control(Method::DELETE, &format!("pages/{deleted}"), None).await.unwrap();

    let run_id = plan_full(&stack).await;
    let worked = stack.manual_pump().pump_once(&stack.options.work_queue_url, "worker", 1).await.unwrap();
    assert!(worked > 0);
    let mut unshared = None;
    match what {
        MidSync::RevokeToken => {
            stack
                .control(Method::POST, "revoke", Some(json!({"token": notion_emulator::DEFAULT_TOKEN})))
                .await
                .unwrap();
        }
        MidSync::UnsharePage => {
            // A page whose task has not run yet.
            let mut target = None;
            for page in &pages[1..] {
                let record = stack.ctx.runs.task(run_id, &format!("p:{page}")).await.unwrap();
                if record.is_some_and(|r| r.state == shared::runs::TaskState::Queued) {
                    target = Some(page.clone());
                    break;
                }
            }
            let page = target.expect("a page task still queued");
            stack.control(Method::POST, &format!("pages/{page}/unshare"), None).await.unwrap();
            unshared = Some(page);
        }
        MidSync::DeleteIndex => {
            let url = format!("{}/{}", engine_url(), stack.settings.index_name);
            assert!(reqwest::Client::new().delete(&url).send().await.unwrap().status().is_success());
        }
    }
    let run = stack.pump(run_id).await.unwrap();
    (stack, run, before, deleted, unshared)
}

fn assert_nothing_deleted(
    before: &HashMap<String, Map<String, Value>>,
    after: &HashMap<String, Map<String, Value>>,
    deleted_page: &str,
) {
    let gone: Vec<&String> = before.keys().filter(|id| !after.contains_key(*id)).collect();
    assert!(
        gone.is_empty(),
        "{} documents deleted by a failed run, e.g. {:?}",
        gone.len(),
        gone.iter().take(3).collect::<Vec<_>>()
    );
    assert!(after.contains_key(deleted_page), "the page deleted in Notion is still indexed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_revoked_mid_sync_fails_the_run_and_deletes_nothing() {
    let (stack, run, before, deleted, _) = fail_mid_sync(MidSync::RevokeToken).await;
    assert_eq!(run.state, RunState::Failed, "{run:?}");
    let reason = run.abort_reason.clone().unwrap_or_default();
    assert!(reason.contains("Notion rejected the token") && reason.contains("401"), "{reason}");
    assert_eq!(run.counts.deleted, 0);
    assert_nothing_deleted(&before, &stack.documents().await.unwrap(), &deleted);
    println!("RELIABILITY revoked-token: run failed ({} tasks done, {} failed), reason {reason:?}, 0 documents deleted of {}", run.counts.done, run.counts.failed, before.len());
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_unshared_mid_sync_is_removed_and_the_run_completes() {
    let (stack, run, before, deleted, unshared) = fail_mid_sync(MidSync::UnsharePage).await;
    let unshared = unshared.unwrap();
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert_eq!(run.counts.failed, 0);
    let warning = run.warnings.iter().find(|e| e.contains(unshared.as_str())).cloned().unwrap_or_default();
    assert!(warning.contains("404"), "the run names the vanished page: {:?}", run.warnings);
    let after = stack.documents().await.unwrap();
    assert!(!after.contains_key(&unshared), "the unshared page is removed");
    assert!(!after.contains_key(&deleted), "the page deleted in Notion is removed (verified: 404)");
    // Everything removed lies under one of the two pages (following `parent_id`).
    let under = |id: &str| {
        let mut current = Some(id.to_string());
        for _ in 0..100 {
            match current {
                Some(c) if c == unshared || c == deleted => return true,
                Some(c) => {
                    current =
                        before.get(&c).and_then(|d| d.get("parent_id")).and_then(Value::as_str).map(str::to_string)
                }
                None => return false,
            }
        }
        false
    };
    for id in before.keys().filter(|id| !after.contains_key(*id)) {
        assert!(under(id), "{id} was removed but lies under neither page");
    }
    println!("RELIABILITY unshared-page: run completed ({} tasks done, 0 failed), warning {warning:?}, {} documents deleted of {}", run.counts.done, run.counts.deleted, before.len());
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_index_deleted_mid_sync_fails_the_run_and_deletes_nothing() {
    let (stack, run, _, _, _) = fail_mid_sync(MidSync::DeleteIndex).await;
    assert_eq!(run.state, RunState::Failed, "{run:?}");
    let reason = run.abort_reason.clone().unwrap_or_default();
    assert!(reason.contains("deleted or recreated during the run"), "{reason}");
    assert_eq!(run.counts.deleted, 0);
    // What the workers wrote after the deletion (into an index `_bulk` auto-created) is all still there.
    let written = stack.search.count(None).await.unwrap_or(0);
    let this_run = stack.search.count(Some(&json!({"term": {"sync_run": run.id}}))).await.unwrap_or(0);
    assert_eq!(written, this_run);
    println!("RELIABILITY deleted-index: run failed ({} tasks done), reason {reason:?}, 0 documents deleted ({written} written after the deletion kept)", run.counts.done);
    stack.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Secrets never reach the logs
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Current-thread runtime: every task of the test (emulator, pumps, handlers, SDK clients) runs on
/// this thread, under the capturing subscriber, and no other test's logs mix in.
#[tokio::test]
async fn no_secret_appears_in_the_logs_of_a_full_run() {
    const NOTION_TOKEN: &str = "ntn_chaosSECRET7Hq2Zp9Lw4";
    const SEARCH_USER: &str = "chaosUserSECRETk3J8";
    const SEARCH_PASSWORD: &str = "chaosPwSECRETv9Q1";
    const WEBHOOK_KEY: &str = "chaosWebhookSECRETx5R7";
    const API_KEY: &str = "chaosApiSECRETm2T6";
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        // Everything at debug, but the emulated Notion's own logs: they are Notion's side (its
        // control API logs the token it accepts), not the connector's.
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug,notion_emulator=off"))
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // With a single registered dispatcher, tracing computes a new callsite's interest from the
    // default of whichever thread hits it first: a callsite first reached by another test (no
    // subscriber on its thread) would be cached as disabled here too. A second live dispatcher
    // makes tracing ask every registered one.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _ = tracing_log::LogTracer::init(); // `log` records (reqwest, ...) too

    let mut stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack");
    stack.control(Method::POST, "config", Some(json!({"token": NOTION_TOKEN}))).await.unwrap();
    let secrets = shared::secrets::Secrets::from_json(
        &json!({"notion_token": NOTION_TOKEN, "search_username": SEARCH_USER, "search_password": SEARCH_PASSWORD,
            "webhook_verification_token": WEBHOOK_KEY, "api_key": API_KEY})
        .to_string(),
    )
    .unwrap();
    let aws = shared::adapters::aws::sdk_config().await;
    let queue = shared::adapters::aws::SqsQueues::new(
        &aws,
        stack.options.work_queue_url.clone(),
        stack.options.finalize_queue_url.clone(),
    );
    let ctx = shared::bootstrap::build(&stack.settings, &secrets, Arc::new(queue), shared::bootstrap::Share::Whole)
        .await
        .unwrap();
    stack.ctx = Arc::new(ctx);

    // A full run; then a run whose token is revoked mid-sync; then one whose planning gets 401.
    let full = stack.sync("full").await.unwrap();
    assert_eq!(full.state, RunState::Completed, "{full:?}");
    let run_id = plan_full(&stack).await;
    stack.manual_pump().pump_once(&stack.options.work_queue_url, "worker", 1).await.unwrap();
    stack.control(Method::POST, "revoke", Some(json!({"token": NOTION_TOKEN}))).await.unwrap();
    let revoked = stack.pump(run_id).await.unwrap();
    assert_eq!(revoked.state, RunState::Failed);
    let planning_error = stack.sync("full").await.expect_err("planning with a revoked token fails");

    let mut texts: Vec<(String, String)> = vec![
        ("planning error".into(), format!("{planning_error:#} {planning_error:?}")),
        ("secrets Debug".into(), format!("{secrets:?}")),
        ("settings Debug".into(), format!("{:?}", stack.settings)),
        ("clients Debug".into(), format!("{:?} {:?} {:?}", stack.ctx.notion, stack.ctx.store, stack.ctx.runs)),
    ];
    for run in stack.ctx.runs.recent(10).await.unwrap() {
        texts.push((format!("run record {}", run.id), serde_json::to_string(&run).unwrap()));
        for task in task_records(&stack, run.id).await {
            texts.push((format!("task record of run {}", run.id), task.to_string()));
        }
    }
    let captured = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        captured.contains("run_closed") && captured.contains("notion_request"),
        "the logs were captured: {} bytes: {}",
        captured.len(),
        &captured[..captured.len().min(3000)]
    );
    assert!(captured.contains("Notion rejected the token") || captured.contains("401"), "the failures were logged");
    texts.push(("logs".into(), captured.clone()));

    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SEARCH_USER}:{SEARCH_PASSWORD}"));
    let secrets_list = [NOTION_TOKEN, SEARCH_USER, SEARCH_PASSWORD, WEBHOOK_KEY, API_KEY, basic.as_str()];
    for (what, text) in &texts {
        for secret in secrets_list {
            if let Some(line) = text.lines().find(|l| l.contains(secret)) {
                eprintln!("LEAK in {what}: {}", &line[..line.len().min(1500)]);
            }
            assert!(!text.contains(secret), "{what} contains a secret ({}…)", &secret[..6]);
        }
    }
    println!(
        "RELIABILITY secrets: {} bytes / {} lines of debug logs of 3 runs (one completed, one with the token revoked mid-sync, \
         one failing planning) and {} error strings, records and Debug outputs checked for {} secrets (Notion token, search \
         user, password and their basic-auth encoding, webhook key, API key): none found",
        captured.len(),
        captured.lines().count(),
        texts.len() - 1,
        secrets_list.len()
    );
    stack.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Load: ten workers share one rate
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_workers_share_the_rate_without_429s() {
    const RATE: f64 = 50.0;
    const BURST: f64 = 10.0;
    const WORKERS: usize = 10;
    const IN_FLIGHT: usize = 4;
    const SECONDS: u64 = 20;
    let emulator =
        notion_emulator::serve(notion_emulator::ServerConfig::for_tests(WorkspaceKind::Small)).await.unwrap();
    let base = emulator.base_url();
    let http = reqwest::Client::new();
    let control = |path: &str| format!("{base}/__control/{path}");
    http.post(control("config"))
        .json(&json!({"rate": RATE, "burst": BURST}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    http.post(control("stats/reset")).send().await.unwrap();

    // Ten Lambda containers: a client each, paced at RATE / WORKERS, several requests in flight.
    let clients: Vec<shared::notion::NotionClient> = (0..WORKERS)
        .map(|_| {
            let config = shared::notion::ClientConfig::new(
                base.as_str(),
                shared::notion::ApiVersion::default(),
                RATE / WORKERS as f64,
            );
            shared::notion::NotionClient::new(shared::notion::Token::new(notion_emulator::DEFAULT_TOKEN), config)
                .unwrap()
        })
        .collect();
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(SECONDS);
    let loops = clients.iter().flat_map(|client| {
        (0..IN_FLIGHT).map({
            let (ok, failed) = (ok.clone(), failed.clone());
            move |_| {
                let (client, ok, failed) = (client.clone(), ok.clone(), failed.clone());
                async move {
                    while Instant::now() < deadline {
                        match client.list_users(None).await {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                }
            }
        })
    });
    futures::future::join_all(loops).await;
    let elapsed = started.elapsed().as_secs_f64();
    let stats: Value = http.get(control("stats")).send().await.unwrap().json().await.unwrap();
    emulator.shutdown().await;

    let calls = stats["total"].as_u64().unwrap();
    let limited = stats["rate_limited"].as_u64().unwrap();
    let ok = ok.load(Ordering::Relaxed);
    let throughput = ok as f64 / elapsed;
    let limited_share = limited as f64 / calls.max(1) as f64;
    let retries: u64 = clients.iter().map(|c| c.stats().retries).sum();
    println!(
        "RELIABILITY load: {WORKERS} workers x {IN_FLIGHT} requests in flight, each client at {:.1}/s, against one emulated \
         Notion at {RATE}/s (burst {BURST}) for {elapsed:.1} s: {calls} calls, {limited} x 429 ({:.2} %), {retries} retries, \
         {} failed; throughput {throughput:.1}/s = {:.1} % of the rate",
        RATE / WORKERS as f64,
        limited_share * 100.0,
        failed.load(Ordering::Relaxed),
        throughput / RATE * 100.0
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(limited_share <= 0.01, "429s are {:.2} % of calls", limited_share * 100.0);
    assert!(throughput >= 0.9 * RATE, "throughput {throughput:.1}/s < 90 % of {RATE}/s");
}

//! Webhooks and the on-demand sync API end to end (issue 6): the emulator signs and POSTs webhooks
//! to an HTTP receiver that calls the API function's handler (`api::handler`), the tasks go
//! through SQS (LocalStack) to in-process workers pumped in the background, into the search index.
//! The webhook token is confirmed only by the operator: a handshake is recorded as pending
//! (`<index>-webhook-handshakes`), listed and confirmed through the authenticated routes.
//! Needs `make up` (search engine and LocalStack).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::notion_emulator::WorkspaceKind;
use e2e::Stack;
use reqwest::Method;
use serde_json::{json, Value};
use shared::adapters::search::{SearchEventLog, SearchHandshakeStore, SearchRunBook};
use shared::api::{ApiContext, EdgeError, MemorySecretStore, PlannerTrigger, TokenCache};
use shared::queue::BoxFuture;
use shared::runs::RunState;
use shared::secrets::SecretString;
use shared::sync::SyncContext;
use shared::task::RunKind;

const TOKEN: &str = "secret_e2e_webhook_verification_token";
const API_KEY: &str = "e2e-api-key";

/// The planner invoked asynchronously, in process (Lambda `InvocationType::Event` in AWS).
struct InProcessPlanner(Arc<SyncContext>);

impl PlannerTrigger for InProcessPlanner {
    fn start(&self, kind: RunKind, run_id: u64) -> BoxFuture<'_, Result<(), EdgeError>> {
        let ctx = self.0.clone();
        Box::pin(async move {
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

/// The API function's context, built as `functions/api` builds it, with test edges; `TOKEN` is
/// the confirmed webhook token.
fn api_context(stack: &Stack) -> ApiContext {
    api_context_with(stack, Arc::new(MemorySecretStore::new(Some(SecretString::new(TOKEN)))))
}

fn api_context_with(stack: &Stack, secrets: Arc<MemorySecretStore>) -> ApiContext {
    let client = stack.search.client().clone();
    let index = stack.settings.index_name.clone();
    let confirmed = secrets.token();
    ApiContext {
        runs: Arc::new(SearchRunBook::new(client.clone(), &index)),
        queue: stack.ctx.queue.clone(),
        planner: Arc::new(InProcessPlanner(stack.ctx.clone())),
        secrets,
        events: Arc::new(SearchEventLog::new(client.clone(), &index)),
        handshakes: Arc::new(SearchHandshakeStore::new(client, &index)),
        api_key: Some(SecretString::new(API_KEY.to_string())),
        webhook_token: TokenCache::new(confirmed),
        finalize_delay_seconds: stack.settings.finalize_delay_seconds,
    }
}

/// An HTTP server in front of the API function's handler (`api::handler`, the code that ships),
/// each request handed to it as a `lambda_http::Request`; returns its base URL.
async fn serve_api(api: ApiContext) -> String {
    let api = Arc::new(api);
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let api = api.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            let request = lambda_http::Request::from_parts(parts, lambda_http::Body::from(body.to_vec()));
            let (parts, body) = api::handler(&api, request).await.unwrap().into_parts();
            axum::http::Response::from_parts(parts, axum::body::Body::from(body.as_ref().to_vec()))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// A full sync of a fresh small workspace, the API served, the queues pumped.
async fn setup(overrides: e2e::Overrides<'_>) -> (Stack, String, e2e::BackgroundPump, Value) {
    let stack = Stack::start(WorkspaceKind::Small, overrides).await.expect("stack (is `make up` running?)");
    let expected = stack.control(Method::GET, "expected", None).await.unwrap();
    let full = stack.sync("full").await.unwrap();
    assert_eq!(full.state, RunState::Completed, "{full:?}");
    let base = serve_api(api_context(&stack)).await;
    let pump = stack.background_pump();
    (stack, base, pump, expected)
}

async fn cleanup(stack: Stack, pump: e2e::BackgroundPump) {
    pump.stop().await;
    let search = std::env::var("SEARCH_URL").unwrap_or_else(|_| "http://127.0.0.1:9200".into());
    for index in [
        shared::adapters::search::events_index(&stack.settings.index_name),
        shared::adapters::search::handshakes_index(&stack.settings.index_name),
    ] {
        let _ = reqwest::Client::new().delete(format!("{}/{index}", search.trim_end_matches('/'))).send().await;
    }
    stack.cleanup().await;
}

/// `POST /__control/webhooks/emit`: the emulator signs the event and POSTs it to the receiver.
async fn emit(stack: &Stack, base: &str, token: &str, kind: &str, entity: Value) -> (u16, Value, Value) {
    let out = stack
        .control(Method::POST, "webhooks/emit", Some(json!({"url": format!("{base}/webhooks/notion"), "verification_token": token, "type": kind, "entity": entity})))
        .await
        .unwrap();
    let response = out["response"].as_str().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
    (out["status"].as_u64().unwrap_or(0) as u16, response, out)
}

/// POSTs raw bytes to the webhook route with these headers.
async fn post_raw(base: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{base}/webhooks/notion")).body(body.to_vec());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn call(base: &str, method: Method, path: &str, key: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Whether `id`'s document matches `token` in `body`, as a search client sees it (no forced refresh).
async fn searchable(stack: &Stack, id: &str, token: &str) -> bool {
    let query =
        json!({"size": 1, "query": {"bool": {"filter": [{"ids": {"values": [id]}}, {"match": {"body": token}}]}}});
    stack
        .search
        .search(&query)
        .await
        .map(|r| r["hits"]["hits"].as_array().is_some_and(|h| !h.is_empty()))
        .unwrap_or(false)
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < timeout, "{what}: not after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn text(doc: &serde_json::Map<String, Value>, field: &str) -> String {
    doc.get(field).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Pages (not rows) of the small workspace with some text blocks and no sub-pages.
fn leaf_pages(expected: &Value) -> Vec<String> {
    expected["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["is_row"].as_bool().unwrap_or(false))
        .filter(|p| {
            let blocks = p["blocks"].as_array().unwrap();
            blocks.len() >= 2 && blocks.iter().all(|b| b["type"] != "child_page" && b["type"] != "child_database")
        })
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_webhooks_make_edits_searchable_and_remove_deleted_pages() {
    let (stack, base, pump, expected) = setup(&[]).await;
    let pages = leaf_pages(&expected);
    assert!(pages.len() >= 6, "{} leaf pages", pages.len());

    let paths_before: HashMap<String, Value> =
        stack.documents().await.unwrap().into_iter().map(|(id, d)| (id, d["path"].clone())).collect();
    let mut latencies = Vec::new();
    for n in 0..20 {
        let id = &pages[n % (pages.len() - 1)];
        let token = format!("webhooklatency{n}x");
        stack
            .control(Method::PATCH, &format!("pages/{id}"), Some(json!({"text": format!("edited {token}")})))
            .await
            .unwrap();
        assert!(!searchable(&stack, id, &token).await);
        let started = Instant::now();
        let (status, response, _) =
            emit(&stack, &base, TOKEN, "page.content_updated", json!({"id": id, "type": "page"})).await;
        assert_eq!(status, 202, "{response}");
        wait_for("edited text searchable", Duration::from_secs(30), async || searchable(&stack, id, &token).await)
            .await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let (p50, p95) = (percentile(&latencies, 50.0), percentile(&latencies, 95.0));
    eprintln!(
        "BENCH webhook-to-searchable over {} edits: p50 {} ms, p95 {} ms, max {} ms",
        latencies.len(),
        p50.as_millis(),
        p95.as_millis(),
        latencies.last().unwrap().as_millis()
    );
    assert!(p95 < Duration::from_secs(5), "p95 webhook-to-searchable {p95:?}");
    let docs = stack.documents().await.unwrap();
    for id in &pages[..pages.len() - 1] {
        assert_eq!(docs[id]["path"], paths_before[id], "breadcrumb of {id} kept by the webhook re-index");
    }

    // page.deleted: the page and its block documents go.
    let victim = pages.last().unwrap().clone();
    let docs = stack.documents().await.unwrap();
    let owned: Vec<&String> = docs.iter().filter(|(_, d)| text(d, "page_id") == victim).map(|(id, _)| id).collect();
    assert!(owned.len() >= 3, "the page and its blocks are indexed ({})", owned.len());
    stack.control(Method::DELETE, &format!("pages/{victim}"), None).await.unwrap();
    let (status, response, _) = emit(&stack, &base, TOKEN, "page.deleted", json!({"id": victim, "type": "page"})).await;
    assert_eq!(status, 202, "{response}");
    let page_query = json!({"bool": {"should": [{"ids": {"values": [victim]}}, {"term": {"page_id": victim}}], "minimum_should_match": 1}});
    wait_for("deleted page gone", Duration::from_secs(15), async || {
        stack.search.refresh().await.unwrap();
        stack.search.count(Some(&page_query)).await.unwrap() == 0
    })
    .await;
    let after = stack.documents().await.unwrap();
    assert_eq!(after.len(), docs.len() - owned.len(), "only the deleted page's documents went");
    cleanup(stack, pump).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unsigned_tampered_and_replayed_webhooks_change_nothing() {
    let (stack, base, pump, expected) = setup(&[]).await;
    let page = leaf_pages(&expected)[0].clone();
    stack
        .control(Method::PATCH, &format!("pages/{page}"), Some(json!({"text": "edited refusedmarker"})))
        .await
        .unwrap();
    let before = stack.documents().await.unwrap();

    // Signed with another key: the emulator's POST gets 401.
    let (status, response, _) =
        emit(&stack, &base, "not_the_token", "page.content_updated", json!({"id": page, "type": "page"})).await;
    assert_eq!(status, 401, "{response}");
    // A correctly signed event, then altered in transit, unsigned, or wrongly signed.
    let event = json!({"id": "0b9d7b8e-1111-4c3a-9f00-000000000001", "timestamp": "2026-01-01T00:00:00.000Z", "type": "page.content_updated",
        "entity": {"id": page, "type": "page"}, "data": {"updated_blocks": []}, "attempt_number": 1});
    let body = serde_json::to_vec(&event).unwrap();
    let signature = shared::webhook::sign(&body, TOKEN);
    let tampered = String::from_utf8(body.clone()).unwrap().replace("\"attempt_number\":1", "\"attempt_number\":2");
    assert_ne!(tampered.as_bytes(), body.as_slice());
    let wrong_key = shared::webhook::sign(&body, "another_token");
    // (what is wrong, body, headers)
    type Case<'a> = (&'a str, &'a [u8], Vec<(&'a str, &'a str)>);
    let cases: [Case; 5] = [
        ("tampered body", tampered.as_bytes(), vec![("x-notion-signature", &signature)]),
        ("missing header", &body, vec![]),
        ("wrong key", &body, vec![("x-notion-signature", &wrong_key)]),
        ("malformed header", &body, vec![("x-notion-signature", "sha256=nothex")]),
        ("bare hex", &body, vec![("x-notion-signature", signature.trim_start_matches("sha256="))]),
    ];
    for (what, raw, headers) in cases {
        let (status, answer) = post_raw(&base, raw, &headers).await;
        assert_eq!((status, answer.clone()), (401, json!({"error": "missing or invalid signature"})), "{what}");
    }
    // A stranger's handshake is only pending: the confirmed token stays, the intruder's signs nothing.
    let (status, answer) = post_raw(&base, br#"{"verification_token":"secret_intruder"}"#, &[]).await;
    assert_eq!((status, answer), (200, json!({"status": "received"})));
    let (status, response, _) =
        emit(&stack, &base, "secret_intruder", "page.deleted", json!({"id": page, "type": "page"})).await;
    assert_eq!(status, 401, "{response}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, runs) = call(&base, Method::GET, "/syncs", Some(API_KEY), None).await;
    assert_eq!(status, 200);
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "only the full run: {runs}");
    assert_eq!(stack.documents().await.unwrap(), before, "refused webhooks changed the index");

    // The genuine event is accepted once; its replay is a duplicate that changes nothing.
    let (status, answer) =
        post_raw(&base, &body, &[("x-notion-signature", &signature), ("content-type", "application/json")]).await;
    assert_eq!(status, 202, "{answer}");
    wait_for("accepted event indexed", Duration::from_secs(15), async || {
        searchable(&stack, &page, "refusedmarker").await
    })
    .await;
    stack.control(Method::PATCH, &format!("pages/{page}"), Some(json!({"text": "edited replaymarker"}))).await.unwrap();
    let (status, answer) = post_raw(&base, &body, &[("x-notion-signature", &signature)]).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("duplicate")), "{answer}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.search.refresh().await.unwrap();
    assert!(!searchable(&stack, &page, "replaymarker").await, "a replayed event was processed again");
    let (_, runs) = call(&base, Method::GET, "/syncs", Some(API_KEY), None).await;
    assert_eq!(runs["runs"].as_array().unwrap().iter().filter(|r| r["kind"] == "webhook").count(), 1, "{runs}");
    cleanup(stack, pump).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handshake_is_confirmed_only_by_the_operator_then_events_verify() {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack (is `make up` running?)");
    let full = stack.sync("full").await.unwrap();
    assert_eq!(full.state, RunState::Completed, "{full:?}");
    let secrets = Arc::new(MemorySecretStore::default());
    let base = serve_api(api_context_with(&stack, secrets.clone())).await;
    let pump = stack.background_pump();
    let notion_token = "secret_e2e_notion_handshake_token";
    let page = leaf_pages(&stack.control(Method::GET, "expected", None).await.unwrap())[0].clone();

    // Notion's (signed) handshake and a stranger's (unsigned): both only pending, same answer.
    let out = stack
        .control(
            Method::POST,
            "webhooks/emit",
            Some(json!({"url": format!("{base}/webhooks/notion"), "verification_token": notion_token, "verification": true})),
        )
        .await
        .unwrap();
    assert_eq!(out["status"], 200, "{out}");
    let stranger = post_raw(&base, br#"{"verification_token":"secret_e2e_stranger"}"#, &[]).await;
    assert_eq!(stranger, (200, json!({"status": "received"})));
    assert_eq!(out["response"].as_str().and_then(|r| serde_json::from_str::<Value>(r).ok()), Some(stranger.1));
    assert!(secrets.token().is_none(), "a handshake was stored as the token");
    // Nothing verifies yet; the refusal is the one every bad signature gets.
    for token in [notion_token, "secret_e2e_stranger"] {
        let (status, response, _) =
            emit(&stack, &base, token, "page.deleted", json!({"id": page, "type": "page"})).await;
        assert_eq!((status, response), (401, json!({"error": "missing or invalid signature"})), "{token}");
    }

    // The operator lists (authenticated only) and confirms Notion's token.
    let (status, _) = call(&base, Method::GET, "/webhooks/notion/pending", None, None).await;
    assert_eq!(status, 401);
    let (status, listed) = call(&base, Method::GET, "/webhooks/notion/pending", Some(API_KEY), None).await;
    assert_eq!(status, 200, "{listed}");
    let pending = listed["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 2, "{listed}");
    assert_eq!(pending[0]["verification_token"], "secret_e2e_stranger", "newest first: {listed}");
    let id = pending.iter().find(|e| e["verification_token"] == notion_token).unwrap()["id"].as_str().unwrap();
    let body = json!({"id": id}).to_string();
    let (status, _) = call(&base, Method::POST, "/webhooks/notion/confirm", None, Some(&body)).await;
    assert_eq!(status, 401);
    assert!(secrets.token().is_none());
    let (status, confirmed) = call(&base, Method::POST, "/webhooks/notion/confirm", Some(API_KEY), Some(&body)).await;
    assert_eq!((status, confirmed["status"].as_str()), (200, Some("confirmed")), "{confirmed}");
    assert_eq!(secrets.token().as_ref().map(SecretString::expose), Some(notion_token));
    let (_, listed) = call(&base, Method::GET, "/webhooks/notion/pending", Some(API_KEY), None).await;
    assert_eq!(listed["pending"].as_array().unwrap().len(), 1, "{listed}");

    // Now Notion's events verify and are indexed; the stranger's still do not.
    stack
        .control(Method::PATCH, &format!("pages/{page}"), Some(json!({"text": "edited confirmedmarker"})))
        .await
        .unwrap();
    let (status, response, _) =
        emit(&stack, &base, notion_token, "page.content_updated", json!({"id": page, "type": "page"})).await;
    assert_eq!(status, 202, "{response}");
    wait_for("edit searchable after confirmation", Duration::from_secs(30), async || {
        searchable(&stack, &page, "confirmedmarker").await
    })
    .await;
    let (status, _, _) =
        emit(&stack, &base, "secret_e2e_stranger", "page.deleted", json!({"id": page, "type": "page"})).await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(stack.ctx.store.get(&page).await.unwrap().is_some(), "a stranger's event deleted the page");
    cleanup(stack, pump).await;
}

/// Waits until run `run_id` is closed, through `GET /syncs/{id}`; returns it.
async fn wait_closed(base: &str, run_id: u64, timeout: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (status, run) = call(base, Method::GET, &format!("/syncs/{run_id}"), Some(API_KEY), None).await;
        assert_eq!(status, 200, "{run}");
        if matches!(run["state"].as_str(), Some("completed" | "failed")) {
            return run;
        }
        assert!(started.elapsed() < timeout, "run {run_id} not closed after {timeout:?}: {run}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn comment_webhooks_index_comments_only_when_configured() {
    for index_comments in [true, false] {
        let config = json!({"index_comments": index_comments}).to_string();
        let (stack, base, pump, expected) = setup(&[("CONNECTOR_CONFIG", &config)]).await;
        let comment = expected["comments"].as_array().unwrap()[0].clone();
        let id = comment["id"].as_str().unwrap().to_string();
        let docs = stack.documents().await.unwrap();
        assert_eq!(docs.contains_key(&id), index_comments, "full sync and index_comments={index_comments}");
        stack.search.delete_ids(std::slice::from_ref(&id)).await.unwrap();

        let (status, response, sent) =
            emit(&stack, &base, TOKEN, "comment.created", json!({"id": id, "type": "comment"})).await;
        assert_eq!(status, 202, "{response} {sent}");
        let run = wait_closed(&base, response["run_id"].as_u64().unwrap(), Duration::from_secs(30)).await;
        assert_eq!(run["state"], "completed", "{run}");
        let doc = stack.ctx.store.get(&id).await.unwrap();
        if index_comments {
            let doc = doc.expect("comment indexed from its webhook");
            assert_eq!(text(&doc, "object"), "comment");
            assert_eq!(text(&doc, "body"), comment["text"].as_str().unwrap());
            assert_eq!(text(&doc, "page_id"), sent["payload"]["data"]["page_id"].as_str().unwrap());
        } else {
            assert!(doc.is_none(), "index_comments is off: a comment webhook indexes nothing");
        }
        cleanup(stack, pump).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_api_starts_runs_through_the_planner() {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack (is `make up` running?)");
    let base = serve_api(api_context(&stack)).await;
    let pump = stack.background_pump();

    // (method, path, bearer key, body, status, what the error names)
    type Refusal<'a> = (Method, &'a str, Option<&'a str>, Option<&'a str>, u16, &'a str);
    let refusals: [Refusal; 8] = [
        (Method::POST, "/syncs", None, Some(r#"{"kind":"full"}"#), 401, "bearer key"),
        (Method::POST, "/syncs", Some("wrong"), Some(r#"{"kind":"full"}"#), 401, "bearer key"),
        (Method::GET, "/syncs", None, None, 401, "bearer key"),
        (Method::POST, "/syncs", Some(API_KEY), Some(r#"{"kind":"#), 400, "not valid JSON"),
        (Method::POST, "/syncs", Some(API_KEY), Some(r#"{"kind":"hourly"}"#), 400, "unknown kind"),
        (Method::GET, "/syncs/12345", Some(API_KEY), None, 404, "no sync run 12345"),
        (Method::GET, "/syncs/abc", Some(API_KEY), None, 400, "must be a number"),
        (Method::DELETE, "/syncs/1", Some(API_KEY), None, 405, "method not allowed"),
    ];
    for (method, path, key, body, expected, says) in refusals {
        let (status, answer) = call(&base, method.clone(), path, key, body).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| e.contains(says)), "{method} {path}: {answer}");
    }

    let (status, started) = call(&base, Method::POST, "/syncs", Some(API_KEY), Some(r#"{"kind":"full"}"#)).await;
    assert_eq!(status, 202, "{started}");
    let full_id = started["run_id"].as_u64().unwrap();
    let (status, busy) = call(&base, Method::POST, "/syncs", Some(API_KEY), Some(r#"{"kind":"full"}"#)).await;
    assert_eq!((status, busy["run_id"].as_u64()), (409, Some(full_id)), "{busy}");
    let (status, running) = call(&base, Method::GET, &format!("/syncs/{full_id}"), Some(API_KEY), None).await;
    assert_eq!(status, 200);
    assert_eq!(running["kind"], "full", "{running}");
    let full = wait_closed(&base, full_id, Duration::from_secs(180)).await;
    assert_eq!(full["state"], "completed", "{full}");
    let docs = stack.documents().await.unwrap();
    assert!(docs.len() > 400, "{} documents after the API's full run", docs.len());

    // Now an incremental run through the API sees an edit.
    let page = leaf_pages(&stack.control(Method::GET, "expected", None).await.unwrap())[0].clone();
    stack
        .control(Method::PATCH, &format!("pages/{page}"), Some(json!({"text": "edited apiincrementalmarker"})))
        .await
        .unwrap();
    let (status, started) = call(&base, Method::POST, "/syncs", Some(API_KEY), Some(r#"{"kind":"incremental"}"#)).await;
    assert_eq!(status, 202, "{started}");
    let inc = wait_closed(&base, started["run_id"].as_u64().unwrap(), Duration::from_secs(120)).await;
    assert_eq!((inc["state"].as_str(), inc["kind"].as_str()), (Some("completed"), Some("incremental")), "{inc}");
    stack.search.refresh().await.unwrap();
    assert!(searchable(&stack, &page, "apiincrementalmarker").await);
    let (status, list) = call(&base, Method::GET, "/syncs", Some(API_KEY), None).await;
    assert_eq!(status, 200);
    let ids: Vec<u64> = list["runs"].as_array().unwrap().iter().filter_map(|r| r["id"].as_u64()).collect();
    assert!(ids.contains(&full_id) && ids.contains(&inc["id"].as_u64().unwrap()), "{list}");
    let closed: HashMap<u64, Value> =
        list["runs"].as_array().unwrap().iter().map(|r| (r["id"].as_u64().unwrap(), r["state"].clone())).collect();
    assert_eq!(closed[&full_id], "completed");
    cleanup(stack, pump).await;
}

//! Content index against the real engine (SEARCH_URL, default http://127.0.0.1:9200; `make test`
//! starts it). These tests fail, not skip, when the engine is absent.

use std::time::{Duration, Instant};

use elasticsearch::http::Method;
use serde_json::{json, Map, Value};
use shared::adapters::search::SearchStore;
use shared::document::{to_document, Document, Placement};
use shared::index::{BulkLimits, IndexError, RetryPolicy, SearchSettings};

fn settings(name: &str) -> SearchSettings {
    let url = std::env::var("SEARCH_URL").unwrap_or_else(|_| "http://127.0.0.1:9200".into());
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let index = format!("test-{name}-{}-{nanos}", std::process::id());
    let retry = RetryPolicy {
        initial: Duration::from_millis(50),
        max_delay: Duration::from_secs(1),
        max_elapsed: Duration::from_secs(20),
        item_attempts: 6,
    };
    SearchSettings { retry, ..SearchSettings::new(url, index) }
}

async fn store(name: &str) -> SearchStore {
    let store = SearchStore::connect(&settings(name)).expect("client");
    store.ensure_indices().await.expect("engine reachable at SEARCH_URL (run `make up`)");
    store
}

fn doc(id: &str, source: Value) -> Document {
    Document { id: id.to_string(), source: source.as_object().cloned().unwrap_or_default() }
}

/// Every document's `_source`, by id, as the engine holds them.
async fn all_docs(store: &SearchStore) -> Vec<(String, Value)> {
    store.refresh().await.unwrap();
    let response =
        store.search(&json!({"size": 10000, "sort": [{"id": "asc"}], "query": {"match_all": {}}})).await.unwrap();
    response["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["_id"].as_str().unwrap().to_string(), h["_source"].clone()))
        .collect()
}

#[tokio::test]
async fn indices_are_created_with_the_explicit_mapping_idempotently() {
    let store = store("mapping").await;
    // Again, and concurrently: creation races are tolerated.
    let (a, b, c) = tokio::join!(store.ensure_indices(), store.ensure_indices(), store.ensure_indices());
    a.unwrap();
    b.unwrap();
    c.unwrap();
    let index = store.index().to_string();
    let reply = store.client().json(Method::Get, &format!("{index}/_mapping"), &[], None).await.unwrap();
    let mapping = &reply.ok("mapping").unwrap()[&index]["mappings"];
    assert_eq!(mapping["dynamic"], "false");
    assert_eq!(mapping["properties"]["sync_run"]["type"], "long");
    assert_eq!(mapping["properties"]["title"]["fields"]["keyword"]["type"], "keyword");
    assert_eq!(mapping["properties"]["_timestamp"]["type"], "date");
    assert_eq!(mapping["properties"]["attachment"]["properties"]["extracted"]["type"], "boolean");
    let reply = store.client().json(Method::Get, &format!("{index}/_settings"), &[], None).await.unwrap();
    let settings = &reply.ok("settings").unwrap()[&index]["settings"]["index"];
    assert_eq!(settings["number_of_shards"], "1");
    assert_eq!(settings["number_of_replicas"], "0");
    for companion in [format!("{index}-runs"), format!("{index}-tasks")] {
        let reply = store.client().json(Method::Head, &companion, &[], None).await.unwrap();
        assert_eq!(reply.status, 200, "{companion} exists");
    }
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn inconsistent_notion_shapes_are_never_rejected() {
    let store = store("shapes").await;
    let rich = |t: &str| json!([{"type": "text", "plain_text": t, "text": {"content": t}}]);
    let shapes = [
        json!({"Name": {"type": "title", "title": rich("One")}, "Value": {"type": "number", "number": 3}}),
        json!({"Name": {"type": "title", "title": rich("Two")}, "Value": {"type": "rich_text", "rich_text": rich("three")}}),
        json!({"Name": {"type": "title", "title": rich("Three")}, "Value": {"type": "date", "date": {"start": "not a date"}}}),
        json!({"Name": {"type": "title", "title": rich("Four")}, "Value": {"type": "formula", "formula": {"type": "boolean", "boolean": true}}}),
        json!({"Name": {"type": "title", "title": rich("Five")}, "Value": [1, "two", {"three": 3}], "Odd": null}),
    ];
    let mut docs = Vec::new();
    for (i, properties) in shapes.iter().enumerate() {
        let page = json!({
            "object": "page", "id": format!("page-{i}"), "properties": properties,
            "created_time": if i == 2 { json!("yesterday") } else { json!("2024-01-01T00:00:00.000Z") },
            "last_edited_time": "2024-02-01T00:00:00.000Z",
            "url": format!("https://www.notion.so/page-{i}"),
            // Raw fields outside the mapping with clashing shapes across documents.
            "icon": if i % 2 == 0 { json!({"type": "emoji", "emoji": "x"}) } else { json!("plain") },
            "cover": if i == 1 { json!([1, 2]) } else { json!(null) },
            "parent": {"type": "workspace", "workspace": true}
        });
        docs.push(to_document(&page, &Placement::default(), format!("body {i}"), 1).unwrap());
    }
    // A block with a raw `file` payload, and an enormous title (beyond a keyword's term limit).
    let file_block = json!({"object": "block", "id": "blk-file", "type": "file", "created_time": "2024-01-01T00:00:00.000Z",
        "file": {"caption": rich("cap"), "type": "file", "file": {"url": "https://x/f.pdf", "expiry_time": "2024-01-01T01:00:00.000Z"}, "name": "f.pdf"}});
    docs.push(
        to_document(&file_block, &Placement { page_id: Some("page-0"), ..Default::default() }, "f.pdf".into(), 1)
            .unwrap(),
    );
    let mut huge = docs[0].clone();
    huge.id = "huge".into();
    huge.source.insert("id".into(), json!("huge"));
    huge.source.insert("title".into(), json!("x".repeat(40_000)));
    huge.source.insert("path".into(), json!(["y".repeat(40_000)]));
    docs.push(huge);
    let total = docs.len() as u64;
    let report = store.bulk_index(docs).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.indexed, total);
    store.refresh().await.unwrap();
    assert_eq!(store.count(None).await.unwrap(), total);
    // `details` is searchable text, never parsed as an object.
    assert_eq!(store.count(Some(&json!({"match": {"details": "three"}}))).await.unwrap(), 3);
    assert_eq!(store.count(Some(&json!({"term": {"title.keyword": "Four"}}))).await.unwrap(), 1);
    let page = store.get("page-4").await.unwrap().expect("page-4");
    assert!(page["details"].is_string());
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn one_bad_document_never_fails_its_batch() {
    let store = store("isolation").await;
    let mut docs: Vec<Document> =
        (0..5).map(|i| doc(&format!("d{i}"), json!({"id": format!("d{i}"), "title": "ok", "sync_run": 7}))).collect();
    docs[2].source.insert("sync_run".into(), json!("not a number"));
    let report = store.bulk_index(docs).await.unwrap();
    assert_eq!(report.indexed, 4);
    assert_eq!(report.failed.len(), 1);
    let failed = &report.failed[0];
    assert_eq!((failed.id.as_str(), failed.status), ("d2", 400));
    assert!(failed.reason.contains("sync_run"), "{}", failed.reason);
    assert_eq!(report.retried_items, 0);
    store.refresh().await.unwrap();
    assert_eq!(store.count(None).await.unwrap(), 4);
    assert!(store.get("d2").await.unwrap().is_none());
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn the_same_bulk_twice_leaves_the_index_identical() {
    let store = store("duplicate").await;
    let docs: Vec<Document> = (0..30)
        .map(|i| doc(&format!("id-{i:02}"), json!({"id": format!("id-{i:02}"), "title": format!("T {i}"), "body": "b", "sync_run": 3, "page_id": "p"})))
        .collect();
    store.bulk_index(docs.clone()).await.unwrap();
    let first = all_docs(&store).await;
    let report = store.bulk_index(docs).await.unwrap();
    assert_eq!(report.indexed, 30);
    let second = all_docs(&store).await;
    assert_eq!(first.len(), 30);
    assert_eq!(first, second);
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn batches_respect_count_and_bytes_and_last_duplicate_wins() {
    let mut s = settings("batches");
    s.bulk = BulkLimits { max_docs: 7, max_bytes: 5 * 1024 * 1024, concurrency: 3 };
    let store = SearchStore::connect(&s).unwrap();
    store.ensure_indices().await.unwrap();
    let mut docs: Vec<Document> =
        (0..50).map(|i| doc(&format!("n{i}"), json!({"id": format!("n{i}"), "sync_run": 1}))).collect();
    docs.push(doc("n0", json!({"id": "n0", "sync_run": 2})));
    let report = store.bulk_index(docs).await.unwrap();
    assert_eq!((report.indexed, report.requests), (50, 8));
    assert_eq!(store.get("n0").await.unwrap().unwrap()["sync_run"], 2);

    let mut s = settings("bytes");
    s.bulk = BulkLimits { max_docs: 500, max_bytes: 10_000, concurrency: 2 };
    let store2 = SearchStore::connect(&s).unwrap();
    store2.ensure_indices().await.unwrap();
    let docs: Vec<Document> =
        (0..20).map(|i| doc(&format!("b{i}"), json!({"id": format!("b{i}"), "body": "z".repeat(3000)}))).collect();
    let report = store2.bulk_index(docs).await.unwrap();
    assert_eq!(report.indexed, 20);
    assert_eq!(report.requests, 7, "3 documents of ~3 KB per 10 KB request");
    store.delete_indices().await.unwrap();
    store2.delete_indices().await.unwrap();
}

#[tokio::test]
async fn delete_stale_removes_exactly_the_older_runs() {
    let store = store("stale").await;
    let mut docs = Vec::new();
    for (run, n) in [(1u64, 5), (2, 4), (3, 6)] {
        for i in 0..n {
            let id = format!("r{run}-{i}");
            docs.push(doc(&id, json!({"id": id, "sync_run": run})));
        }
    }
    store.bulk_index(docs).await.unwrap();
    assert_eq!(store.delete_stale(3).await.unwrap(), 9);
    let left = all_docs(&store).await;
    assert_eq!(left.len(), 6);
    assert!(left.iter().all(|(_, s)| s["sync_run"] == 3));
    assert_eq!(store.delete_stale(3).await.unwrap(), 0);
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn delete_page_and_ids() {
    let store = store("deletes").await;
    let docs = vec![
        doc("p1", json!({"id": "p1", "object": "page", "page_id": "p1"})),
        doc("b1", json!({"id": "b1", "object": "block", "page_id": "p1"})),
        doc("b2", json!({"id": "b2", "object": "block", "page_id": "p1"})),
        doc("p2", json!({"id": "p2", "object": "page", "page_id": "p2"})),
        doc("b3", json!({"id": "b3", "object": "block", "page_id": "p2"})),
        doc("c:1", json!({"id": "c:1", "object": "comment", "page_id": "p2"})),
    ];
    store.bulk_index(docs).await.unwrap();
    assert_eq!(shared::ports::DocumentStore::delete_page(&store, "p1").await.unwrap(), 3);
    assert_eq!(store.delete_ids(&["c:1".to_string(), "missing".to_string()]).await.unwrap(), 1);
    let left: Vec<String> = all_docs(&store).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(left, vec!["b3", "p2"]);
    assert!(store.get("c:1").await.unwrap().is_none());
    store.delete_indices().await.unwrap();
}

/// The port's reads and scoped removal: `sources` gives the asked fields of the ids that exist, and
/// `delete_own` removes objects with their blocks and comments but not a database or page below them.
#[tokio::test]
async fn sources_and_own_documents() {
    let store = store("own").await;
    let docs = vec![
        doc("p1", json!({"id": "p1", "object": "page", "page_id": "p1", "title": "One", "parent_id": "w"})),
        doc("b1", json!({"id": "b1", "object": "block", "page_id": "p1"})),
        doc("c:1", json!({"id": "c:1", "object": "comment", "page_id": "p1"})),
        doc("d1", json!({"id": "d1", "object": "database", "page_id": "p1", "title": "Below"})),
        doc("p2", json!({"id": "p2", "object": "page", "page_id": "p2", "title": "Two"})),
    ];
    store.bulk_index(docs).await.unwrap();
    store.refresh().await.unwrap();
    let ids = ["p1".to_string(), "d1".to_string(), "missing".to_string()];
    let mut sources = store.sources(&ids, &["title", "parent_id"]).await.unwrap();
    sources.sort_by(|a, b| a.0.cmp(&b.0));
    let shown: Vec<(String, Value)> = sources.into_iter().map(|(id, s)| (id, Value::Object(s))).collect();
    assert_eq!(
        shown,
        vec![("d1".into(), json!({"title": "Below"})), ("p1".into(), json!({"title": "One", "parent_id": "w"}))]
    );
    assert_eq!(store.delete_own(&["p1".to_string()]).await.unwrap(), 3);
    let left: Vec<String> = all_docs(&store).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(left, vec!["d1", "p2"]);
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn an_absent_engine_is_unavailable_after_a_bounded_time() {
    let mut s = settings("absent");
    s.url = "http://127.0.0.1:9".into();
    s.retry = RetryPolicy::fast();
    let store = SearchStore::connect(&s).unwrap();
    let started = Instant::now();
    let err = store.bulk_index(vec![doc("a", json!({}))]).await.unwrap_err();
    assert!(matches!(err, IndexError::Unavailable { attempts, .. } if attempts > 1), "{err}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Throughput of `bulk_index` with the default limits (printed; not a timed assertion).
#[tokio::test]
async fn bulk_throughput() {
    let mut s = settings("throughput");
    if let Some(n) = std::env::var("BULK_CONCURRENCY").ok().and_then(|v| v.parse().ok()) {
        s.bulk.concurrency = n;
    }
    if let Some(n) = std::env::var("BULK_MAX_DOCS").ok().and_then(|v| v.parse().ok()) {
        s.bulk.max_docs = n;
    }
    let store = SearchStore::connect(&s).unwrap();
    store.ensure_indices().await.unwrap();
    let n = 20_000;
    let docs: Vec<Document> = (0..n)
        .map(|i| {
            let mut source = Map::new();
            source.insert("id".into(), json!(format!("t{i}")));
            source.insert("object".into(), json!("block"));
            source.insert("type".into(), json!("paragraph"));
            source.insert("title".into(), json!(""));
            source.insert("body".into(), json!(format!("paragraph {i} lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod")));
            source.insert("page_id".into(), json!(format!("p{}", i / 100)));
            source.insert("url".into(), json!(format!("https://www.notion.so/p#{i}")));
            source.insert("path".into(), json!(["Home", "Projects"]));
            source.insert("last_edited_time".into(), json!("2024-01-01T00:00:00.000Z"));
            source.insert("paragraph".into(), json!({"rich_text": [{"plain_text": "lorem ipsum", "annotations": {"bold": false}}], "color": "default"}));
            source.insert("sync_run".into(), json!(1));
            Document { id: format!("t{i}"), source }
        })
        .collect();
    let started = Instant::now();
    let report = store.bulk_index(docs).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(report.indexed, n as u64);
    println!(
        "bulk throughput: {n} docs in {:.2} s = {:.0} docs/s ({} requests)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        report.requests
    );
    store.delete_indices().await.unwrap();
}

/// A scripted HTTP server standing in for the engine: answers the n-th request with the n-th
/// `(status, body)` and records the request bodies. Each connection serves one request.
mod scripted {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    pub type Bodies = Arc<Mutex<Vec<String>>>;

    pub async fn serve(listener: TcpListener, script: Vec<(u16, String)>) -> Bodies {
        let bodies: Bodies = Arc::default();
        let seen = bodies.clone();
        tokio::spawn(async move {
            for (status, body) in script {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let request = read_request(&mut stream).await;
                seen.lock().unwrap().push(request);
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        bodies
    }

    async fn read_request(stream: &mut TcpStream) -> String {
        let mut data = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if data.len() >= end + 4 + length {
                    return String::from_utf8_lossy(&data[end + 4..end + 4 + length]).to_string();
                }
            }
        }
        String::new()
    }
}

#[tokio::test]
async fn whole_request_failures_and_item_429s_are_retried_bad_items_are_not() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let items = |items: Value| json!({"errors": true, "items": items}).to_string();
    let script = vec![
        (
            503,
            json!({"error": {"type": "unavailable_shards_exception", "reason": "restarting"}, "status": 503})
                .to_string(),
        ),
        (
            200,
            items(json!([
                {"index": {"_id": "a", "status": 201, "result": "created"}},
                {"index": {"_id": "b", "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
                {"index": {"_id": "c", "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad"}}}
            ])),
        ),
        (200, items(json!([{"index": {"_id": "b", "status": 201, "result": "created"}}]))),
    ];
    let bodies = scripted::serve(listener, script).await;
    let mut s = settings("scripted");
    s.url = format!("http://127.0.0.1:{port}");
    s.retry = RetryPolicy::fast();
    let store = SearchStore::connect(&s).unwrap();
    let docs = vec![doc("a", json!({"n": 1})), doc("b", json!({"n": 2})), doc("c", json!({"n": 3}))];
    let report = store.bulk_index(docs).await.unwrap();
    assert_eq!(report.indexed, 2);
    assert_eq!(report.requests, 2, "the 503 is retried underneath and not counted");
    assert_eq!(report.retried_items, 1);
    assert_eq!(report.failed.len(), 1);
    assert_eq!((report.failed[0].id.as_str(), report.failed[0].status), ("c", 400));
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 3);
    assert_eq!(bodies[0], bodies[1], "the same request is sent again after a 503");
    assert_eq!(bodies[2], "{\"index\":{\"_id\":\"b\"}}\n{\"n\":2}\n", "only the 429 item is sent again");
}

#[tokio::test]
async fn an_engine_that_comes_back_mid_bulk_is_waited_for() {
    // Reserve a port, free it (connection refused), and bring the "engine" up a bit later.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut s = settings("restart");
    s.url = format!("http://127.0.0.1:{port}");
    s.retry = RetryPolicy { max_elapsed: Duration::from_secs(10), ..RetryPolicy::fast() };
    let store = SearchStore::connect(&s).unwrap();
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let ok = json!({"errors": false, "items": [{"index": {"_id": "a", "status": 201, "result": "created"}}]})
            .to_string();
        scripted::serve(listener, vec![(200, ok)]).await
    });
    let started = Instant::now();
    let report = store.bulk_index(vec![doc("a", json!({}))]).await.unwrap();
    assert_eq!(report.indexed, 1);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let bodies = server.await.unwrap();
    assert_eq!(bodies.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn items_that_stay_overloaded_are_reported_after_the_last_attempt() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let busy = json!({"errors": true, "items": [{"index": {"_id": "a", "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}}]}).to_string();
    let attempts = RetryPolicy::fast().item_attempts as usize;
    let _bodies = scripted::serve(listener, vec![(200, busy); attempts]).await;
    let mut s = settings("overloaded");
    s.url = format!("http://127.0.0.1:{port}");
    s.retry = RetryPolicy::fast();
    let report = SearchStore::connect(&s).unwrap().bulk_index(vec![doc("a", json!({}))]).await.unwrap();
    assert_eq!(report.indexed, 0);
    assert_eq!(report.requests, attempts as u64);
    assert_eq!(report.failed[0].status, 429);
    assert!(
        report.failed[0].reason.starts_with(&format!("gave up after {attempts} attempts")),
        "{}",
        report.failed[0].reason
    );
}

// ---------------------------------------------------------------------------------------------
// Overlapping runs (issue 12): writes ordered by run id
// ---------------------------------------------------------------------------------------------

/// Run ids are millisecond timestamps.
const RUN_A: u64 = 1_764_000_000_000;
const RUN_B: u64 = RUN_A + 60_000;

#[tokio::test]
async fn an_older_runs_write_never_replaces_a_newer_runs_document() {
    let store = store("versions").await;
    let page = |run: u64, title: &str| doc("p", json!({"id": "p", "object": "page", "title": title, "sync_run": run}));
    store.bulk_index(vec![page(RUN_B, "newer")]).await.unwrap();
    // A late write of the older run: skipped, neither failed nor retried.
    let report =
        store.bulk_index(vec![page(RUN_A, "older"), doc("q", json!({"id": "q", "sync_run": RUN_A}))]).await.unwrap();
    assert_eq!((report.indexed, report.skipped, report.failed.len(), report.retried_items), (1, 1, 0, 0), "{report:?}");
    let kept = store.get("p").await.unwrap().unwrap();
    assert_eq!((kept["sync_run"].as_u64(), kept["title"].as_str()), (Some(RUN_B), Some("newer")));
    // The same run again (a redelivery, a continuation rewriting its page) and a newer run both write.
    let report = store.bulk_index(vec![page(RUN_B, "newer again")]).await.unwrap();
    assert_eq!((report.indexed, report.skipped), (1, 0));
    store.bulk_index(vec![page(RUN_B + 1, "newest")]).await.unwrap();
    assert_eq!(store.get("p").await.unwrap().unwrap()["title"], "newest");
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn documents_of_older_connector_versions_are_overwritten_without_migration() {
    let store = store("legacy").await;
    // Written by an older connector: plain index operations, internal versions 1, 2, 3.
    for n in 1..=3 {
        let path = format!("{}/_doc/legacy", store.index());
        let body = json!({"id": "legacy", "object": "page", "sync_run": n});
        store.client().json(Method::Put, &path, &[], Some(&body)).await.unwrap().ok("legacy write").unwrap();
    }
    let report = store
        .bulk_index(vec![doc("legacy", json!({"id": "legacy", "object": "page", "sync_run": RUN_A}))])
        .await
        .unwrap();
    assert_eq!((report.indexed, report.skipped, report.failed.len()), (1, 0, 0), "{report:?}");
    assert_eq!(store.get("legacy").await.unwrap().unwrap()["sync_run"].as_u64(), Some(RUN_A));
    // Its stale removal by an older run id no longer applies; a newer full run's does.
    assert_eq!(store.delete_stale(RUN_A).await.unwrap(), 0);
    assert_eq!(store.delete_stale(RUN_B).await.unwrap(), 1);
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn a_runs_deletion_by_id_spares_a_newer_runs_document() {
    let store = store("versioned-deletes").await;
    store
        .bulk_index(vec![
            doc("new", json!({"id": "new", "sync_run": RUN_B})),
            doc("old", json!({"id": "old", "sync_run": RUN_A})),
        ])
        .await
        .unwrap();
    let ids = ["new".to_string(), "old".to_string(), "absent".to_string()];
    // A verification of run A (between the two) deletes what it judged gone, but not run B's write.
    assert_eq!(store.delete_ids_of_run(&ids, RUN_A + 1).await.unwrap(), 1);
    let left: Vec<String> = all_docs(&store).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(left, vec!["new"]);
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn block_removal_spares_blocks_of_runs_still_running() {
    let store = store("removed-blocks").await;
    let block = |id: &str, page: &str, run: u64| {
        doc(id, json!({"id": id, "object": "block", "page_id": page, "sync_run": run}))
    };
    let (closed, running, walk) = (RUN_A, RUN_A + 10, RUN_B);
    store
        .bulk_index(vec![
            block("gone", "p", closed),
            block("newer-walk", "p", running),
            block("seen", "p", walk),
            block("other-page", "q", closed),
            doc("p", json!({"id": "p", "object": "page", "page_id": "p", "sync_run": closed})),
        ])
        .await
        .unwrap();
    // Walk `walk` of page p ends while run `running` (older id, newer walk of p) is still open.
    assert_eq!(store.delete_removed_blocks("p", walk, &[running, walk]).await.unwrap(), 1);
    let left: Vec<String> = all_docs(&store).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(left, vec!["newer-walk", "other-page", "p", "seen"]);
    // Once that run is closed, its blocks a newer walk did not see go too.
    assert_eq!(store.delete_removed_blocks("p", walk, &[]).await.unwrap(), 1);
    store.delete_indices().await.unwrap();
}

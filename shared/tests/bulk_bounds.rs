//! Oversize documents on the bulk path, against a fake `_bulk` endpoint on loopback that refuses
//! requests over a byte limit with HTTP 413 (as an engine's `http.max_content_length` or a proxy
//! does): such a document fails alone, the documents batched with it are indexed, and a 20 MB
//! Notion title is bounded and noted without failing anything.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use shared::adapters::search::RunStore;
use shared::adapters::search::SearchStore;
use shared::config::ConnectorConfig;
use shared::document::{to_document, Document, Placement, MAX_DOCUMENT_BYTES, MAX_TITLE_CHARS, WARNINGS_FIELD};
use shared::extract::{DownloadConfig, Downloader};
use shared::index::{BulkLimits, RetryPolicy, SearchSettings};
use shared::notion::{ClientConfig, NotionClient, Token};
use shared::queue::MemoryQueue;
use shared::sync::{DocBuffer, Limits, SyncContext};

/// One `_bulk` request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    bytes: usize,
    refused: bool,
    docs: Vec<(String, Value)>,
}

struct Fake {
    limit: usize,
    seen: Mutex<Vec<Seen>>,
}

async fn bulk(State(fake): State<Arc<Fake>>, body: Bytes) -> Response {
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let docs: Vec<(String, Value)> = lines
        .chunks(2)
        .map(|pair| {
            let action: Value = serde_json::from_slice(pair[0]).unwrap_or_default();
            let id = action["index"]["_id"].as_str().unwrap_or_default().to_string();
            (id, pair.get(1).and_then(|s| serde_json::from_slice(s).ok()).unwrap_or_default())
        })
        .collect();
    let refused = body.len() > fake.limit;
    let items: Vec<Value> =
        docs.iter().map(|(id, _)| json!({"index": {"_id": id, "status": 201, "result": "created"}})).collect();
    fake.seen.lock().unwrap().push(Seen { bytes: body.len(), refused, docs });
    if refused {
        let error =
            json!({"error": {"type": "content_too_long_exception", "reason": "request too large"}, "status": 413});
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(error)).into_response();
    }
    Json(json!({"errors": false, "items": items})).into_response()
}

/// Starts the fake and returns it with a store on it.
async fn fake_engine(limit: usize, bulk_limits: BulkLimits) -> (Arc<Fake>, SearchStore) {
    let fake = Arc::new(Fake { limit, seen: Mutex::new(Vec::new()) });
    let app =
        Router::new().route("/{index}/_bulk", post(bulk)).layer(DefaultBodyLimit::disable()).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let settings =
        SearchSettings { retry: RetryPolicy::fast(), bulk: bulk_limits, ..SearchSettings::new(url, "content") };
    (fake, SearchStore::connect(&settings).unwrap())
}

fn doc(id: &str, text_bytes: usize) -> Document {
    let mut source = Map::new();
    source.insert("id".into(), json!(id));
    source.insert("body".into(), json!("b".repeat(text_bytes)));
    Document { id: id.into(), source }
}

#[tokio::test]
async fn a_request_refused_as_too_large_is_split_and_only_the_oversize_document_fails() {
    // The engine takes 20 kB per request; our budget is larger, so batches of small documents
    // are refused too until they are split.
    let limits = BulkLimits { max_docs: 500, max_bytes: 1024 * 1024, concurrency: 1 };
    let (fake, store) = fake_engine(20_000, limits).await;
    let mut docs: Vec<Document> = (0..10).map(|i| doc(&format!("small-{i}"), 3_000)).collect();
    docs.insert(4, doc("huge", 50_000));
    let report = store.bulk_index(docs).await.expect("no whole-call error");
    assert_eq!(report.indexed, 10, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!((report.failed[0].id.as_str(), report.failed[0].status), ("huge", 413));
    let seen = fake.seen.lock().unwrap().clone();
    for request in seen.iter().filter(|r| !r.refused) {
        assert!(request.bytes <= 20_000);
        assert!(request.docs.iter().all(|(id, _)| id != "huge"));
    }
    let last_huge = seen.iter().rev().find(|r| r.docs.iter().any(|(id, _)| id == "huge")).unwrap();
    assert_eq!(last_huge.docs.len(), 1, "the oversize document was finally sent alone");
}

#[tokio::test]
async fn a_document_over_the_byte_budget_is_sent_alone() {
    let limits = BulkLimits { max_docs: 500, max_bytes: 10_000, concurrency: 2 };
    let (fake, store) = fake_engine(usize::MAX, limits).await;
    let docs = vec![doc("a", 100), doc("big", 30_000), doc("b", 100), doc("c", 100)];
    let report = store.bulk_index(docs).await.unwrap();
    assert_eq!((report.indexed, report.failed.len()), (4, 0));
    let seen = fake.seen.lock().unwrap().clone();
    let with_big = seen.iter().find(|r| r.docs.iter().any(|(id, _)| id == "big")).unwrap();
    assert_eq!(with_big.docs.len(), 1);
    assert_eq!(seen.len(), 3);
}

fn context(store: SearchStore) -> SyncContext {
    let notion = NotionClient::new(
        Token::new("secret_test"),
        ClientConfig { base_url: "http://127.0.0.1:9".into(), ..ClientConfig::default() },
    )
    .unwrap();
    SyncContext {
        notion,
        runs: Arc::new(RunStore::beside(&store)),
        parts: Arc::new(RunStore::beside(&store)),
        store: Arc::new(store),
        queue: Arc::new(MemoryQueue::default()),
        config: ConnectorConfig::default(),
        downloader: Downloader::new(DownloadConfig::default()),
        limits: Limits::default(),
    }
}

fn page(id: &str, title: &str) -> Value {
    json!({
        "object": "page", "id": id, "last_edited_time": "2024-01-31T08:15:00.000Z",
        "url": format!("https://www.notion.so/{id}"), "parent": {"type": "workspace", "workspace": true},
        "properties": {"Name": {"id": "title", "type": "title",
            "title": [{"type": "text", "plain_text": title, "text": {"content": title}}]}}
    })
}

#[tokio::test]
async fn a_twenty_megabyte_title_is_bounded_noted_and_indexed() {
    // 10 MiB: the request limit of the smallest Amazon OpenSearch instance types.
    let (fake, store) = fake_engine(10 * 1024 * 1024, BulkLimits::default()).await;
    let ctx = context(store);
    let mut buffer = DocBuffer::new(&ctx);
    let huge_title = "T".repeat(20_000_000);
    let big = to_document(&page("p-big", &huge_title), &Placement::default(), huge_title.clone(), 5).unwrap();
    buffer.push(big).await.unwrap();
    let normal = to_document(&page("p-normal", "Roadmap"), &Placement::default(), "Roadmap\nbody".into(), 5).unwrap();
    buffer.push(normal).await.unwrap();
    // A field added after `to_document` (as the walk adds `attachment`) is bounded by `push`.
    let block = json!({"object": "block", "id": "b-1", "type": "paragraph", "paragraph": {"rich_text": []}});
    let mut with_extra = to_document(&block, &Placement::default(), "text".into(), 5).unwrap();
    with_extra.source.insert("attachment".into(), json!({"error": "e".repeat(300_000)}));
    buffer.push(with_extra).await.unwrap();
    buffer.flush().await.unwrap();

    assert_eq!((buffer.indexed, buffer.failed), (3, 0), "{:?}", buffer.errors);
    assert!(buffer.warnings >= 3, "{} warnings: {:?}", buffer.warnings, buffer.errors);
    assert!(
        buffer.errors.iter().any(|e| e == "document p-big: title truncated from 20000000 to 200000 characters"),
        "{:?}",
        buffer.errors
    );
    assert!(buffer.errors.iter().any(|e| e.starts_with("document b-1: field `attachment`")), "{:?}", buffer.errors);

    let seen = fake.seen.lock().unwrap().clone();
    assert!(seen.iter().all(|r| !r.refused));
    let sources: Map<String, Value> = seen.into_iter().flat_map(|r| r.docs).collect();
    let big = &sources["p-big"];
    assert_eq!(big["title"].as_str().unwrap().chars().count(), MAX_TITLE_CHARS);
    assert!(serde_json::to_vec(big).unwrap().len() <= MAX_DOCUMENT_BYTES);
    assert!(big[WARNINGS_FIELD].as_array().is_some_and(|w| !w.is_empty()));
    let normal = &sources["p-normal"];
    assert_eq!(normal["title"], "Roadmap");
    assert_eq!(normal["body"], "Roadmap\nbody");
    assert!(normal.get(WARNINGS_FIELD).is_none());
}

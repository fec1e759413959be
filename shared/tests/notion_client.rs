//! The Notion client against real HTTP servers on loopback: a scripted raw-TCP server (exact control over status
//! codes, headers, dropped connections and delays) and a token-bucket server standing in for Notion's rate limit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde_json::{json, Value};
use shared::notion::{
    with_deadline, ApiVersion, ClientConfig, NotionClient, NotionError, PacerConfig, RetryPolicy, Token, WaitReason,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "secret_test_token_123";

/// One scripted reaction to a request.
#[derive(Clone, Debug)]
enum Reply {
    Json {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Value,
    },
    /// A non-JSON answer (an edge page such as Cloudflare's HTML).
    Text {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Close the connection without answering.
    Drop,
    /// Send headers announcing a longer body, a part of it, then close.
    DropMidBody,
    /// Wait, then reply.
    Delay(Duration, Box<Reply>),
}

fn ok(body: Value) -> Reply {
    Reply::Json { status: 200, headers: vec![], body }
}

fn error(status: u16, code: &str) -> Reply {
    Reply::Json {
        status,
        headers: vec![("x-notion-request-id", format!("req-{status}"))],
        body: json!({ "object": "error", "status": status, "code": code, "message": format!("scripted {code}") }),
    }
}

/// What Cloudflare sends in front of Notion: an HTML page with a `cf-ray`, no Notion error body.
fn cloudflare(status: u16) -> Reply {
    Reply::Text {
        status,
        headers: vec![("cf-ray", format!("8c0ffee{status}-IAD"))],
        body: format!(
            "<!DOCTYPE html><html><head><title>notion.so | {status}</title></head><body>cloudflare</body></html>"
        ),
    }
}

fn rate_limited(retry_after: &str) -> Reply {
    let mut reply = error(429, "rate_limited");
    if let Reply::Json { headers, .. } = &mut reply {
        headers.push(("retry-after", retry_after.to_string()));
    }
    reply
}

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    /// Reply used once the script is exhausted.
    fallback: Option<Reply>,
    requests: Vec<Recorded>,
}

struct Server {
    base: String,
    script: Arc<Mutex<Script>>,
}

impl Server {
    async fn start(replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script { replies: replies.into(), ..Script::default() }));
        let shared = Arc::clone(&script);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(handle(socket, Arc::clone(&shared)));
            }
        });
        Server { base, script }
    }

    fn with_fallback(self, reply: Reply) -> Self {
        self.script.lock().unwrap().fallback = Some(reply);
        self
    }

    fn requests(&self) -> Vec<Recorded> {
        self.script.lock().unwrap().requests.clone()
    }
}

async fn read_request(socket: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Recorded { method, target, headers, body: String::from_utf8_lossy(&body).to_string() })
}

async fn handle(mut socket: TcpStream, script: Arc<Mutex<Script>>) {
    // One request per connection (`connection: close`), so a dropped connection is never a pooled one.
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let reply = {
        let mut s = script.lock().unwrap();
        s.requests.push(request);
        s.replies.pop_front().or_else(|| s.fallback.clone()).unwrap_or_else(|| error(500, "script_exhausted"))
    };
    respond(socket, reply).await;
}

async fn respond(mut socket: TcpStream, reply: Reply) {
    let mut reply = reply;
    while let Reply::Delay(d, next) = reply {
        tokio::time::sleep(d).await;
        reply = *next;
    }
    match reply {
        Reply::Json { status, headers, body } => {
            let body = body.to_string();
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
        Reply::Text { status, headers, body } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
        Reply::Drop => drop(socket),
        Reply::DropMidBody => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"object\":";
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.flush().await;
            drop(socket);
        }
        Reply::Delay(..) => unreachable!(),
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_transient_retries: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        rate_limit_budget: Duration::from_secs(30),
        min_rate_limit_wait: Duration::from_millis(50),
    }
}

fn config(base: &str, version: ApiVersion) -> ClientConfig {
    ClientConfig {
        base_url: base.to_string(),
        version,
        pacer: PacerConfig { rate: 1000.0, burst: 10, ..PacerConfig::default() },
        timeout: Duration::from_secs(5),
        retry: fast_retry(),
        ..ClientConfig::default()
    }
}

fn client(server: &Server) -> NotionClient {
    NotionClient::new(Token::new(TOKEN), config(&server.base, ApiVersion::V2025_09_03)).unwrap()
}

#[tokio::test]
async fn sends_the_expected_headers_and_bodies() {
    let server = Server::start(vec![
        ok(json!({ "object": "user", "id": "bot", "type": "bot" })),
        ok(json!({ "object": "list", "results": [], "next_cursor": null, "has_more": false })),
    ])
    .await;
    let c = client(&server);
    let me = c.users_me().await.unwrap();
    assert_eq!(me["id"], "bot");
    c.search(&json!({ "query": "x", "start_cursor": null })).await.unwrap();

    let reqs = server.requests();
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].target, "/v1/users/me");
    assert_eq!(reqs[0].header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(reqs[0].header("notion-version"), Some("2025-09-03"));
    assert!(reqs[0].header("user-agent").is_some_and(|ua| ua.starts_with("notion-es/")));
    assert_eq!(reqs[1].method, "POST");
    assert_eq!(reqs[1].target, "/v1/search");
    assert_eq!(reqs[1].header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&reqs[1].body).unwrap();
    assert_eq!(body, json!({ "query": "x", "page_size": 100 }), "no null start_cursor, page_size 100");
    assert_eq!(c.stats().requests, 2);
}

#[tokio::test]
async fn obeys_retry_after_on_429_and_529() {
    let server = Server::start(vec![
        rate_limited("1"),
        Reply::Json {
            status: 529,
            headers: vec![("retry-after", "0".into())],
            body: json!({ "code": "service_overload" }),
        },
        ok(json!({ "object": "page", "id": "p1", "some_new_field": { "kept": true } })),
    ])
    .await;
    let c = client(&server);
    let start = Instant::now();
    let page = c.get_page("p1").await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(1), "waited {:?}", start.elapsed());
    assert_eq!(page["some_new_field"]["kept"], true);
    let stats = c.stats();
    assert_eq!((stats.requests, stats.retries, stats.rate_limited), (3, 2, 2));
    assert!(stats.pacer_wait_ms >= 900, "{stats:?}");
    assert!(c.current_rate() < 1000.0, "the pace backed off");
    assert!(server.requests().iter().all(|r| r.target == "/v1/pages/p1"));
}

#[tokio::test]
async fn a_rate_limit_pauses_every_clone_of_the_client() {
    let server = Server::start(vec![rate_limited("1")]).await.with_fallback(ok(json!({ "object": "block" })));
    let c = client(&server);
    let other = c.clone();
    let leader = tokio::spawn(async move { c.get_block("a").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    other.get_block("b").await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(700), "the clone waited for the pause: {:?}", start.elapsed());
    leader.await.unwrap().unwrap();
    assert_eq!(other.stats().rate_limited, 1);
}

#[tokio::test]
async fn retries_5xx_then_succeeds() {
    let server = Server::start(vec![
        error(500, "internal_server_error"),
        error(502, "bad_gateway"),
        error(503, "service_unavailable"),
        error(504, "gateway_timeout"),
        ok(json!({ "object": "block", "id": "b" })),
    ])
    .await;
    let c = client(&server);
    c.get_block("b").await.unwrap();
    let stats = c.stats();
    assert_eq!((stats.requests, stats.retries, stats.server_errors), (5, 4, 4));
}

#[tokio::test]
async fn retries_409_conflict() {
    let server = Server::start(vec![error(409, "conflict_error"), ok(json!({ "object": "page" }))]).await;
    let c = client(&server);
    c.get_page("p").await.unwrap();
    assert_eq!(c.stats().retries, 1);
}

#[tokio::test]
async fn gives_up_after_the_transient_retry_cap() {
    let server = Server::start(vec![]).await.with_fallback(error(500, "internal_server_error"));
    let c = client(&server);
    let err = c.get_block("b").await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert!(err.is_retryable());
    assert_eq!(server.requests().len(), 5, "1 + max_transient_retries");
}

#[tokio::test]
async fn retries_dropped_connections_and_truncated_bodies() {
    let server =
        Server::start(vec![Reply::Drop, Reply::DropMidBody, ok(json!({ "object": "block", "id": "b" }))]).await;
    let c = client(&server);
    let block = c.get_block("b").await.unwrap();
    assert_eq!(block["id"], "b");
    let stats = c.stats();
    assert_eq!((stats.requests, stats.connection_errors), (3, 2), "{stats:?}");
}

#[tokio::test]
async fn retries_connection_refused() {
    // A port with nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let c = NotionClient::new(Token::new(TOKEN), config(&base, ApiVersion::V2025_09_03)).unwrap();
    let err = c.users_me().await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!err.to_string().contains(TOKEN));
    assert_eq!(c.stats().connection_errors, 5);
}

#[tokio::test]
async fn retries_timeouts() {
    let server = Server::start(vec![
        Reply::Delay(Duration::from_millis(800), Box::new(ok(json!({ "slow": true })))),
        ok(json!({ "object": "user" })),
    ])
    .await;
    let mut cfg = config(&server.base, ApiVersion::V2025_09_03);
    cfg.timeout = Duration::from_millis(300);
    let c = NotionClient::new(Token::new(TOKEN), cfg).unwrap();
    let user = c.get_user("u").await.unwrap();
    assert_eq!(user["object"], "user");
    assert_eq!(c.stats().timeouts, 1);
}

#[tokio::test]
async fn never_retries_401_403_404_400() {
    for (status, code) in
        [(401, "unauthorized"), (403, "restricted_resource"), (404, "object_not_found"), (400, "validation_error")]
    {
        let server = Server::start(vec![error(status, code)]).await.with_fallback(ok(json!({})));
        let c = client(&server);
        let err = c.get_page("p").await.unwrap_err();
        assert_eq!(server.requests().len(), 1, "{status} must not be retried");
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.code(), Some(code));
        assert_eq!(err.request_id(), Some(format!("req-{status}").as_str()));
        assert_eq!(err.is_unauthorized(), status == 401, "only a 401 is a token problem");
        assert_eq!(err.is_restricted(), status == 403);
        assert_eq!(err.is_not_found(), status == 404);
        assert!(!err.is_endpoint_missing());
        assert!(!err.is_retryable());
        let text = format!("{err} {err:?}");
        assert!(!text.contains(TOKEN), "{text}");
        assert!(text.contains(code), "{text}");
    }
}

#[tokio::test]
async fn the_token_never_appears_in_errors_even_if_echoed() {
    let server = Server::start(vec![Reply::Json {
        status: 400,
        headers: vec![],
        body: json!({ "object": "error", "code": "invalid_request", "message": format!("bad token {TOKEN}") }),
    }])
    .await;
    let c = client(&server);
    let err = c.get_page("p").await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains(TOKEN), "{err}");
}

#[tokio::test]
async fn rate_limit_budget_bounds_the_wait() {
    let server = Server::start(vec![]).await.with_fallback(rate_limited("1"));
    let mut cfg = config(&server.base, ApiVersion::V2025_09_03);
    cfg.retry.rate_limit_budget = Duration::from_millis(1500);
    let c = NotionClient::new(Token::new(TOKEN), cfg).unwrap();
    let err = c.users_me().await.unwrap_err();
    assert!(err.is_rate_limited());
    assert_eq!(server.requests().len(), 2, "one wait of 1 s fits the budget, the second does not");
}

#[tokio::test]
async fn http_date_retry_after() {
    let soon = chrono::Utc::now() + chrono::Duration::seconds(2);
    let date = soon.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let server = Server::start(vec![rate_limited(&date), ok(json!({ "object": "user" }))]).await;
    let c = client(&server);
    let start = Instant::now();
    c.users_me().await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(900), "{:?}", start.elapsed());
}

#[tokio::test]
async fn undecodable_success_body_is_a_decode_error() {
    let server = Server::start(vec![ok(json!([1, 2]))]).await;
    let c = client(&server);
    let err = c.list_children("b", None).await.unwrap_err();
    assert!(matches!(err, shared::notion::NotionError::Decode { .. }), "{err:?}");
}

// --- Edge (Cloudflare) answers --------------------------------------------------------------------------------------

#[tokio::test]
async fn retries_cloudflare_52x_and_other_html_5xx() {
    let server = Server::start(vec![
        cloudflare(520),
        cloudflare(521),
        cloudflare(522),
        cloudflare(523),
        ok(json!({ "object": "block", "id": "b" })),
    ])
    .await;
    let c = client(&server);
    c.get_block("b").await.unwrap();
    let stats = c.stats();
    assert_eq!((stats.requests, stats.retries, stats.server_errors), (5, 4, 4));

    let server =
        Server::start(vec![cloudflare(524), cloudflare(530), error(524, "gateway_timeout"), ok(json!({}))]).await;
    let c = client(&server);
    c.get_page("p").await.unwrap();
    assert_eq!(server.requests().len(), 4);

    // ... within the transient cap; the last error names the edge's ray id.
    let server = Server::start(vec![]).await.with_fallback(cloudflare(524));
    let c = client(&server);
    let err = c.get_block("b").await.unwrap_err();
    assert_eq!(server.requests().len(), 5, "1 + max_transient_retries");
    assert!(err.is_retryable() && err.status() == Some(524) && err.code().is_none(), "{err:?}");
    assert!(err.to_string().contains("cf-ray 8c0ffee524-IAD"), "{err}");
}

#[tokio::test]
async fn never_retries_501_nor_a_notion_json_5xx_it_does_not_know() {
    for reply in [cloudflare(501), error(501, "not_implemented"), error(507, "insufficient_storage")] {
        let server = Server::start(vec![reply.clone()]).await.with_fallback(ok(json!({})));
        let c = client(&server);
        let err = c.get_page("p").await.unwrap_err();
        assert_eq!(server.requests().len(), 1, "{reply:?}");
        assert!(!err.is_retryable(), "{err}");
    }
}

#[tokio::test]
async fn an_html_403_is_retried_a_json_403_is_a_missing_capability() {
    let server =
        Server::start(vec![cloudflare(403), ok(json!({ "object": "list", "results": [], "has_more": false }))]).await;
    let c = client(&server);
    c.list_users(None).await.unwrap();
    assert_eq!(server.requests().len(), 2, "the Cloudflare block page was retried");

    let server = Server::start(vec![]).await.with_fallback(cloudflare(403));
    let c = client(&server);
    let err = c.list_users(None).await.unwrap_err();
    assert_eq!(server.requests().len(), 5, "bounded: 1 + max_transient_retries");
    assert!(err.is_retryable() && !err.is_unauthorized() && !err.is_restricted(), "{err:?}");

    let server = Server::start(vec![error(403, "restricted_resource")]).await.with_fallback(ok(json!({})));
    let c = client(&server);
    let err = c.list_users(None).await.unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert!(err.is_restricted() && !err.is_unauthorized() && !err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn an_html_404_is_a_missing_endpoint_not_a_missing_object() {
    let server = Server::start(vec![Reply::Text { status: 404, headers: vec![], body: "not found".into() }])
        .await
        .with_fallback(ok(json!({})));
    let c = client(&server);
    let err = c.search(&json!({})).await.unwrap_err();
    assert_eq!(server.requests().len(), 1, "not retried");
    assert!(err.is_endpoint_missing() && !err.is_not_found() && !err.is_retryable(), "{err:?}");
    assert_eq!(err.status(), Some(404));
    assert_eq!(
        err.to_string(),
        format!(
            "Notion POST /v1/search: endpoint not found at {}/ (HTTP 404 without a Notion error body: check \
             NOTION_BASE_URL and NOTION_VERSION)",
            server.base
        )
    );

    let server = Server::start(vec![error(404, "object_not_found")]).await;
    let err = client(&server).get_page("p").await.unwrap_err();
    assert!(err.is_not_found() && !err.is_endpoint_missing(), "{err:?}");
}

#[tokio::test]
async fn retry_after_on_503_is_honoured() {
    let mut reply = error(503, "service_unavailable");
    if let Reply::Json { headers, .. } = &mut reply {
        headers.push(("retry-after", "1".into()));
    }
    let server = Server::start(vec![reply, ok(json!({ "object": "page" }))]).await;
    let mut cfg = config(&server.base, ApiVersion::V2025_09_03);
    cfg.retry.max_delay = Duration::from_secs(3);
    let c = NotionClient::new(Token::new(TOKEN), cfg).unwrap();
    let start = Instant::now();
    c.get_page("p").await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(950), "{:?}", start.elapsed());
}

// --- Deadline-aware waiting ----------------------------------------------------------------------------------------

/// A client whose rate-limit budget allows a 60 s `Retry-After` (the default 15 min), otherwise fast.
fn patient_client(server: &Server) -> NotionClient {
    let mut cfg = config(&server.base, ApiVersion::V2025_09_03);
    cfg.retry.rate_limit_budget = Duration::from_secs(15 * 60);
    NotionClient::new(Token::new(TOKEN), cfg).unwrap()
}

#[tokio::test]
async fn a_long_retry_after_under_a_deadline_returns_at_once_and_still_pauses_the_client() {
    let server = Server::start(vec![rate_limited("60")]).await.with_fallback(ok(json!({ "object": "block" })));
    let c = patient_client(&server);
    let start = Instant::now();
    let deadline = Some(start + Duration::from_secs(2));
    let err = with_deadline(deadline, c.list_children("x", None)).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(1000), "{:?}", start.elapsed());
    assert!(matches!(err, NotionError::DeadlineWouldPass { reason: WaitReason::RateLimited, .. }), "{err:?}");
    assert_eq!(err.retry_after_hint(), Some(Duration::from_secs(60)));
    assert!(err.is_retryable() && err.is_deadline());
    assert_eq!(
        err.to_string(),
        "Notion GET /v1/blocks/x/children: waiting 60 s (rate limited) would pass the invocation deadline"
    );
    let cause = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
    assert!(cause.contains("429") && cause.contains("req-429"), "{cause}");
    assert_eq!(c.stats().rate_limited, 1);

    // The pause stays in force: another caller of the client, also under a deadline, does not reach the server.
    let other = c.clone();
    let start = Instant::now();
    let err = with_deadline(Some(start + Duration::from_secs(2)), other.get_block("b")).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(1000), "{:?}", start.elapsed());
    assert!(matches!(err, NotionError::DeadlineWouldPass { reason: WaitReason::Paced, .. }), "{err:?}");
    let hint = err.retry_after_hint().unwrap();
    assert!(hint > Duration::from_secs(55) && hint <= Duration::from_secs(60), "{hint:?}");
    assert_eq!(server.requests().len(), 1, "nothing sent during the pause");
    assert!(c.current_rate() < 1000.0, "the pace backed off");
}

#[tokio::test]
async fn without_a_deadline_or_with_a_far_one_a_rate_limit_is_waited_out() {
    let server = Server::start(vec![rate_limited("1"), ok(json!({ "object": "user" })), rate_limited("1")])
        .await
        .with_fallback(ok(json!({ "object": "user" })));
    let c = patient_client(&server);
    let start = Instant::now();
    with_deadline(None, c.users_me()).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(950), "{:?}", start.elapsed());
    let start = Instant::now();
    with_deadline(Some(start + Duration::from_secs(30)), c.users_me()).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(950), "{:?}", start.elapsed());
    assert_eq!((c.stats().requests, c.stats().rate_limited), (4, 2));
}

#[tokio::test]
async fn a_retry_backoff_past_the_deadline_returns_at_once() {
    let mut reply = error(503, "service_unavailable");
    if let Reply::Json { headers, .. } = &mut reply {
        headers.push(("retry-after", "5".into()));
    }
    let server = Server::start(vec![reply]).await.with_fallback(ok(json!({})));
    let mut cfg = config(&server.base, ApiVersion::V2025_09_03);
    cfg.retry.max_delay = Duration::from_secs(10);
    let c = NotionClient::new(Token::new(TOKEN), cfg).unwrap();
    let start = Instant::now();
    let err = with_deadline(Some(start + Duration::from_secs(2)), c.get_page("p")).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(1000), "{:?}", start.elapsed());
    assert!(
        matches!(err, NotionError::DeadlineWouldPass { reason: WaitReason::Retry { status: Some(503) }, .. }),
        "{err:?}"
    );
    assert!(err.retry_after_hint().is_some_and(|w| w >= Duration::from_secs(5)));
    assert_eq!(server.requests().len(), 1);
}

// --- Pagination guards ---------------------------------------------------------------------------------------------

fn list(results: usize, has_more: bool, next: Option<&str>) -> Reply {
    let results: Vec<Value> = (0..results).map(|i| json!({ "object": "page", "id": format!("r{i}") })).collect();
    ok(json!({ "object": "list", "results": results, "next_cursor": next, "has_more": has_more }))
}

/// Calls one list method with `cursor`, the way callers in `sync` do.
async fn call_list(
    c: &NotionClient,
    which: &str,
    cursor: Option<&str>,
) -> Result<shared::notion::ListPage, NotionError> {
    let body = json!({ "start_cursor": cursor });
    match which {
        "children" => c.list_children("b", cursor).await,
        "users" => c.list_users(cursor).await,
        "comments" => c.list_comments("b", cursor).await,
        "search" => c.search(&body).await,
        "rows" => c.query_rows("src", &body).await,
        other => unreachable!("{other}"),
    }
}

#[tokio::test]
async fn list_methods_refuse_pages_that_would_make_callers_loop() {
    for which in ["children", "users", "comments", "search", "rows"] {
        let server = Server::start(vec![
            list(3, true, None),
            list(3, true, Some("")),
            list(3, true, Some("c1")),
            list(101, false, None),
            list(100, true, Some("c2")),
            list(3, false, Some("c1")),
        ])
        .await;
        let c = client(&server);
        for (cursor, wanted) in [
            (None, "has_more is true but next_cursor is empty"),
            (Some("c0"), "has_more is true but next_cursor is empty"),
            (Some("c1"), "\"c1\" repeats the cursor just requested"),
            (None, "101 results in one page"),
        ] {
            let err = call_list(&c, which, cursor).await.unwrap_err();
            assert!(matches!(err, NotionError::Pagination { .. }), "{which}: {err:?}");
            let text = err.to_string();
            assert!(text.contains(wanted) && text.contains("broken pagination"), "{which}: {text}");
            assert!(!err.is_retryable());
        }
        let page = call_list(&c, which, Some("c1")).await.unwrap();
        assert_eq!((page.has_more, page.next_cursor.as_deref()), (true, Some("c2")));
        let last = call_list(&c, which, Some("c1")).await.unwrap();
        assert!(!last.has_more, "has_more false ends the list whatever the cursor says");
        assert_eq!(server.requests().len(), 6, "{which}: nothing retried");
        assert_eq!(c.stats().retries, 0);
    }
}

#[tokio::test]
async fn a_stream_ends_with_an_error_when_the_cursor_repeats() {
    let server = Server::start(vec![children_page(0..100, Some("c1")), children_page(100..200, Some("c1"))])
        .await
        .with_fallback(children_page(0..1, None));
    let c = client(&server);
    let err = c.children("page-1").try_collect::<Vec<Value>>().await.unwrap_err();
    assert!(matches!(err, NotionError::Pagination { .. }), "{err:?}");
    assert!(err.to_string().contains("GET /v1/blocks/page-1/children"), "{err}");
    assert_eq!(server.requests().len(), 2);
}

fn children_page(range: std::ops::Range<usize>, next: Option<&str>) -> Reply {
    let results: Vec<Value> = range
        .map(|i| json!({ "object": "block", "id": format!("b{i}"), "type": if i == 7 { "future_block_type" } else { "paragraph" } }))
        .collect();
    ok(
        json!({ "object": "list", "results": results, "next_cursor": next, "has_more": next.is_some(), "type": "block", "block": {} }),
    )
}

#[tokio::test]
async fn paginates_children_lazily_as_a_stream() {
    let server = Server::start(vec![
        children_page(0..100, Some("c1")),
        children_page(100..200, Some("c2")),
        children_page(200..250, None),
    ])
    .await;
    let c = client(&server);
    let all: Vec<Value> = c.children("page-1").try_collect().await.unwrap();
    assert_eq!(all.len(), 250);
    assert_eq!(all[7]["type"], "future_block_type", "unknown block types are kept");
    let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [
            "/v1/blocks/page-1/children?page_size=100",
            "/v1/blocks/page-1/children?page_size=100&start_cursor=c1",
            "/v1/blocks/page-1/children?page_size=100&start_cursor=c2",
        ]
    );
}

#[tokio::test]
async fn query_rows_path_depends_on_the_version() {
    let list = json!({
        "object": "list", "results": [{ "id": "r1" }], "next_cursor": null, "has_more": false,
        "request_status": { "type": "incomplete", "incomplete_reason": "query_result_limit_reached" }
    });
    for (version, path) in [
        (ApiVersion::V2022_06_28, "/v1/databases/src/query"),
        (ApiVersion::V2025_09_03, "/v1/data_sources/src/query"),
        (ApiVersion::V2026_03_11, "/v1/data_sources/src/query"),
    ] {
        let server = Server::start(vec![ok(list.clone())]).await;
        let c = NotionClient::new(Token::new(TOKEN), config(&server.base, version)).unwrap();
        let page = c.query_rows("src", &json!({ "start_cursor": null, "sorts": [] })).await.unwrap();
        assert!(page.hit_result_limit());
        let req = &server.requests()[0];
        assert_eq!(req.target, path);
        assert_eq!(req.header("notion-version"), Some(version.as_str()));
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(body, json!({ "sorts": [], "page_size": 100 }));
    }
    let c = NotionClient::new(Token::new(TOKEN), config("http://127.0.0.1:9", ApiVersion::V2022_06_28)).unwrap();
    assert!(c.get_data_source("x").await.is_err());
}

#[tokio::test]
async fn comment_and_user_lists_use_query_parameters() {
    let empty = json!({ "object": "list", "results": [], "next_cursor": null, "has_more": false });
    let server = Server::start(vec![ok(empty.clone()), ok(empty.clone()), ok(empty.clone()), ok(empty)]).await;
    let c = client(&server);
    c.list_comments("blk", Some("cur")).await.unwrap();
    c.list_users(None).await.unwrap();
    c.get_page_property("pg", "title", Some("c9")).await.unwrap();
    c.get_comment("cm").await.unwrap();
    let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [
            "/v1/comments?block_id=blk&page_size=100&start_cursor=cur",
            "/v1/users?page_size=100",
            "/v1/pages/pg/properties/title?page_size=100&start_cursor=c9",
            "/v1/comments/cm",
        ]
    );
}

// --- Shared budget: several clients pacing against one token-bucket server -----------------------------------------

struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    served: u64,
    limited: u64,
}

async fn start_bucket_server(rate: f64, burst: f64) -> (String, Arc<Mutex<Bucket>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let bucket =
        Arc::new(Mutex::new(Bucket { rate, burst, tokens: burst, last: Instant::now(), served: 0, limited: 0 }));
    let shared = Arc::clone(&bucket);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let bucket = Arc::clone(&shared);
            tokio::spawn(async move {
                if read_request(&mut socket).await.is_none() {
                    return;
                }
                let allowed = {
                    let mut b = bucket.lock().unwrap();
                    let now = Instant::now();
                    b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * b.rate).min(b.burst);
                    b.last = now;
                    if b.tokens >= 1.0 {
                        b.tokens -= 1.0;
                        b.served += 1;
                        true
                    } else {
                        b.limited += 1;
                        false
                    }
                };
                let reply = if allowed { ok(json!({ "object": "block" })) } else { rate_limited("1") };
                respond(socket, reply).await;
            });
        }
    });
    (base, bucket)
}

#[tokio::test]
async fn clients_sharing_one_budget_stay_under_it() {
    // Notion-like budget of 20 req/s (burst 4); 2 "workers" pace at 20 / 2 each, 4 tasks per worker.
    let (base, bucket) = start_bucket_server(20.0, 4.0).await;
    let mut handles = Vec::new();
    for _ in 0..2 {
        let mut cfg = config(&base, ApiVersion::V2025_09_03);
        cfg.pacer = PacerConfig::with_rate(10.0);
        cfg.retry = RetryPolicy::default();
        let c = NotionClient::new(Token::new(TOKEN), cfg).unwrap();
        for _ in 0..4 {
            let c = c.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..15 {
                    c.get_block(format!("b{i}")).await.unwrap();
                }
            }));
        }
    }
    let start = Instant::now();
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = start.elapsed();
    let b = bucket.lock().unwrap();
    assert_eq!(b.served, 120);
    assert!(b.limited * 100 < b.served, "429s stay under 1%: {} of {}", b.limited, b.served);
    // 120 calls at 2 × 10 × 0.97 (headroom) = 19.4/s ≈ 6.2 s.
    assert!(elapsed >= Duration::from_millis(5800) && elapsed <= Duration::from_millis(6800), "{elapsed:?}");
}

// --- Against the emulated Notion (infra/notion-emulator) -----------------------------------------------------------

mod emulator {
    use super::*;
    use futures::StreamExt;
    use notion_emulator::{ServerConfig, WorkspaceKind, DEFAULT_TOKEN};
    use shared::notion::{SearchFilter, SearchQuery};

    async fn start() -> notion_emulator::Server {
        notion_emulator::serve(ServerConfig::for_tests(WorkspaceKind::Small)).await.unwrap()
    }

    async fn control(server: &notion_emulator::Server, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/__control/{path}", server.base_url());
        let resp = reqwest::Client::new().request(method, url).json(&body).send().await.unwrap();
        assert!(resp.status().is_success(), "control {path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    async fn set_config(server: &notion_emulator::Server, patch: Value) {
        control(server, reqwest::Method::POST, "config", patch).await;
    }

    async fn reset_stats(server: &notion_emulator::Server) {
        control(server, reqwest::Method::POST, "stats/reset", json!({})).await;
    }

    async fn stats(server: &notion_emulator::Server) -> Value {
        control(server, reqwest::Method::GET, "stats", Value::Null).await
    }

    fn emulator_client(server: &notion_emulator::Server, version: ApiVersion, rate: f64) -> NotionClient {
        let mut cfg = config(&server.base_url(), version);
        cfg.pacer = PacerConfig::with_rate(rate);
        NotionClient::new(Token::new(DEFAULT_TOKEN), cfg).unwrap()
    }

    async fn first_page_id(client: &NotionClient) -> String {
        let body = SearchQuery::new().filter(SearchFilter::Page).to_body();
        let page = client.search(&body).await.unwrap();
        page.results[0]["id"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn every_endpoint_answers_on_every_version() {
        let server = start().await;
        for version in ApiVersion::ALL {
            let c = emulator_client(&server, version, 1000.0);
            let me = c.users_me().await.unwrap();
            assert_eq!(me["object"], "user");
            let users: Vec<Value> = c.users().try_collect().await.unwrap();
            assert!(!users.is_empty());
            c.get_user(users[0]["id"].as_str().unwrap()).await.unwrap();

            let all: Vec<Value> = c.search_all(SearchQuery::new().to_body()).try_collect().await.unwrap();
            assert!(all.len() > 40, "{version}: {} search results", all.len());
            let page_id = first_page_id(&c).await;
            let page = c.get_page(&page_id).await.unwrap();
            assert_eq!(page["object"], "page");
            let children = c.list_children(&page_id, None).await.unwrap();
            if let Some(block) = children.results.first() {
                c.get_block(block["id"].as_str().unwrap()).await.unwrap();
            }
            let title_id = page["properties"]
                .as_object()
                .and_then(|props| props.values().find(|p| p["type"] == "title"))
                .and_then(|p| p["id"].as_str())
                .unwrap()
                .to_string();
            c.get_page_property(&page_id, &title_id, None).await.unwrap();
            // (GET /v1/comments/{id} is not emulated yet; the scripted-server test covers its path.)
            c.list_comments(&page_id, None).await.unwrap();

            let tables = SearchQuery::new().filter(SearchFilter::tables(version)).to_body();
            let table = c.search(&tables).await.unwrap().results.into_iter().next().unwrap();
            let source_id = table["id"].as_str().unwrap().to_string();
            if version.has_data_sources() {
                let ds = c.get_data_source(&source_id).await.unwrap();
                assert_eq!(ds["object"], "data_source");
                let db_id = ds["parent"]["database_id"].as_str().unwrap();
                let db = c.get_database(db_id).await.unwrap();
                assert!(db["data_sources"].is_array(), "{db}");
            } else {
                assert_eq!(table["object"], "database");
                c.get_database(&source_id).await.unwrap();
            }
            let rows: Vec<Value> = c.rows(&source_id, json!({})).try_collect().await.unwrap();
            assert!(!rows.is_empty(), "{version}: rows of {source_id}");
            assert_eq!(c.stats().retries, 0);
        }
    }

    #[tokio::test]
    async fn paginates_more_than_100_children() {
        let server = start().await;
        let c = emulator_client(&server, ApiVersion::V2025_09_03, 1000.0);
        let page_id = first_page_id(&c).await;
        let before = c.list_children(&page_id, None).await.unwrap();
        assert!(!before.has_more);
        let added: Vec<Value> = (0..230).map(|i| json!({ "type": "paragraph", "text": format!("line {i}") })).collect();
        control(&server, reqwest::Method::POST, &format!("blocks/{page_id}/children"), json!({ "children": added }))
            .await;

        reset_stats(&server).await;
        let all: Vec<Value> = c.children(&page_id).try_collect().await.unwrap();
        assert_eq!(all.len(), before.results.len() + 230);
        let mut ids: Vec<&str> = all.iter().filter_map(|b| b["id"].as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "each child once");
        let s = stats(&server).await;
        let calls = s["by_endpoint"]["GET /v1/blocks/{block_id}/children"].as_u64().or_else(|| s["total"].as_u64());
        assert_eq!(calls, Some(all.len().div_ceil(100) as u64), "{s}");

        // Laziness: taking 5 children costs one call.
        reset_stats(&server).await;
        let few: Vec<_> = c.children(&page_id).take(5).collect().await;
        assert_eq!(few.len(), 5);
        assert_eq!(stats(&server).await["total"], 1);
    }

    #[tokio::test]
    async fn pacing_keeps_shared_budget_429s_under_one_percent() {
        let server = start().await;
        let c0 = emulator_client(&server, ApiVersion::V2025_09_03, 1000.0);
        let page_id = first_page_id(&c0).await;
        // Notion budget of 10 req/s shared by 2 workers pacing at 10 / 2, each running 3 tasks at once.
        set_config(&server, json!({ "rate": 10.0 })).await;
        reset_stats(&server).await;
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..2 {
            let c = emulator_client(&server, ApiVersion::V2025_09_03, 5.0);
            for _ in 0..3 {
                let c = c.clone();
                let page_id = page_id.clone();
                handles.push(tokio::spawn(async move {
                    for _ in 0..10 {
                        c.get_page(&page_id).await.unwrap();
                    }
                    c.stats()
                }));
            }
        }
        for h in handles {
            h.await.unwrap();
        }
        let elapsed = start.elapsed();
        let s = stats(&server).await;
        let total = s["total"].as_u64().unwrap();
        let limited = s["rate_limited"].as_u64().unwrap();
        assert!(limited * 100 <= total, "{limited} 429s in {total} calls");
        // 60 calls at 2 × 5 × 0.97 per second ≈ 6.2 s (the first call of each worker is free).
        assert!(elapsed >= Duration::from_millis(5500) && elapsed <= Duration::from_millis(7000), "{elapsed:?}");
    }

    #[tokio::test]
    async fn a_client_faster_than_the_budget_backs_off_and_never_fails() {
        let server = start().await;
        let c0 = emulator_client(&server, ApiVersion::V2025_09_03, 1000.0);
        let page_id = first_page_id(&c0).await;
        set_config(&server, json!({ "rate": 5.0, "burst": 2.0 })).await;
        reset_stats(&server).await;
        // Configured 4× too fast (20/s against 5/s).
        let c = emulator_client(&server, ApiVersion::V2025_09_03, 20.0);
        for _ in 0..30 {
            c.get_page(&page_id).await.unwrap();
        }
        let s = stats(&server).await;
        let limited = s["rate_limited"].as_u64().unwrap();
        assert!(limited >= 1, "the budget was exceeded at first");
        assert!(limited <= 5, "the pace backed off quickly: {limited} 429s");
        assert_eq!(c.stats().rate_limited, limited);
        assert!(c.current_rate() < 20.0 * 0.97);
    }

    #[tokio::test]
    async fn injected_faults_are_retried_to_success() {
        let server = start().await;
        let c = emulator_client(&server, ApiVersion::V2025_09_03, 1000.0);
        let page_id = first_page_id(&c).await;
        set_config(
            &server,
            json!({
                "fault_500": 0.08, "fault_502": 0.05, "fault_503": 0.05, "fault_529": 0.02,
                "drop_connection": 0.05, "latency_ms": 2, "jitter_ms": 5
            }),
        )
        .await;
        reset_stats(&server).await;
        let mut cfg = config(&server.base_url(), ApiVersion::V2025_09_03);
        cfg.retry.max_transient_retries = 8;
        let c = NotionClient::new(Token::new(DEFAULT_TOKEN), cfg).unwrap();
        for _ in 0..80 {
            let page = c.get_page(&page_id).await.unwrap();
            assert_eq!(page["id"], page_id.as_str());
        }
        let s = stats(&server).await;
        let faults = &s["faults"];
        let injected: u64 = ["status_500", "status_502", "status_503", "status_529", "dropped"]
            .iter()
            .filter_map(|k| faults[k].as_u64())
            .sum();
        let client = c.stats();
        assert!(injected > 0, "{s}");
        assert_eq!(client.retries, injected, "every fault retried once: {client:?} {s}");
        assert_eq!(client.requests, 80 + injected);
    }

    #[tokio::test]
    async fn revoked_token_is_an_auth_error_not_retried() {
        let server = start().await;
        let c =
            NotionClient::new(Token::new("ntn_wrong"), config(&server.base_url(), ApiVersion::V2025_09_03)).unwrap();
        let err = c.users_me().await.unwrap_err();
        assert!(err.is_unauthorized(), "{err}");
        assert_eq!(err.code(), Some("unauthorized"));
        assert_eq!(c.stats().requests, 1);
        assert!(!err.to_string().contains("ntn_wrong"));
        let good = emulator_client(&server, ApiVersion::V2025_09_03, 1000.0);
        let err = good.get_page("00000000-0000-0000-0000-000000000000").await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }
}

//! A fault-injecting HTTP proxy in front of the search engine, for the chaos suite: the engine is shared by every
//! test and never restarted, so its bad days are played here. For one content index's `_bulk` requests it can
//! answer every n-th successful item 429 (`es_rejected_execution_exception`), give one document a value its mapping
//! refuses, and "restart" (cut every connection, then refuse them for a while); everything else passes through.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinSet};

/// What the proxy does to the content index's `_bulk` requests.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Every n-th successful item is answered 429 `es_rejected_execution_exception` (0 = never)...
    pub reject_every: u64,
    /// ...until this many were rejected.
    pub reject_budget: u64,
    /// This document is sent with `sync_run: "not-a-number"`: the engine itself rejects it
    /// (`mapper_parsing_exception`), every time.
    pub bad_doc: Option<String>,
    /// On this content `_bulk` request (1-based) the "engine restarts": every connection is cut
    /// and connections are refused for the duration.
    pub restart_at: Option<(u64, Duration)>,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub content_bulks: AtomicU64,
    pub items_seen: AtomicU64,
    pub items_rejected: AtomicU64,
    pub bad_doc_sends: AtomicU64,
    pub restarts: AtomicU64,
}

struct State {
    addr: SocketAddr,
    upstream: String,
    http: reqwest::Client,
    index: Mutex<String>,
    faults: Mutex<Faults>,
    counters: Counters,
    server: Mutex<Option<AbortHandle>>,
}

/// A small HTTP proxy in front of the search engine.
pub struct SearchProxy {
    pub url: String,
    state: Arc<State>,
}

impl SearchProxy {
    pub async fn start(upstream: String) -> SearchProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            addr,
            upstream,
            http: reqwest::Client::new(),
            index: Mutex::new(String::new()),
            faults: Mutex::new(Faults::default()),
            counters: Counters::default(),
            server: Mutex::new(None),
        });
        let handle = tokio::spawn(accept_loop(listener, state.clone())).abort_handle();
        *state.server.lock().unwrap() = Some(handle);
        SearchProxy { url: format!("http://{addr}"), state }
    }

    /// The content index whose `_bulk` requests get the faults.
    pub fn set_index(&self, index: &str) {
        *self.state.index.lock().unwrap() = index.to_string();
    }

    /// New faults; `restart_at` counts content `_bulk` requests from now.
    pub fn set_faults(&self, faults: Faults) {
        self.state.counters.content_bulks.store(0, Ordering::Relaxed);
        *self.state.faults.lock().unwrap() = faults;
    }

    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }

    pub fn stop(&self) {
        if let Some(h) = self.state.server.lock().unwrap().take() {
            h.abort();
        }
    }
}

/// Accepts connections; aborting this task drops the listener and (with the `JoinSet`) every
/// open connection, as a restarting engine does.
async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn restart(state: Arc<State>, down: Duration) {
    tokio::spawn(async move {
        if let Some(h) = state.server.lock().unwrap().take() {
            h.abort();
        }
        state.counters.restarts.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(down).await;
        let listener = loop {
            match TcpListener::bind(state.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let handle = tokio::spawn(accept_loop(listener, state.clone())).abort_handle();
        *state.server.lock().unwrap() = Some(handle);
    });
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let mut body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let index = state.index.lock().unwrap().clone();
    let content_bulk = !index.is_empty() && parts.uri.path() == format!("/{index}/_bulk");
    let faults = state.faults.lock().unwrap().clone();
    if content_bulk {
        let n = state.counters.content_bulks.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some((at, down)) = faults.restart_at {
            if n == at {
                // This request dies with the connection, as on a real restart.
                restart(state.clone(), down);
            }
        }
        if let Some(bad) = &faults.bad_doc {
            body = poison(&state, body, bad);
        }
    }
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request =
        state.http.request(parts.method.clone(), format!("{}{}", state.upstream, path_and_query)).body(body);
    for (name, value) in parts.headers.iter() {
        if name != hyper::header::HOST && name != hyper::header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    let (status, content_type, mut bytes) = match request.send().await {
        Ok(response) => {
            let status = response.status();
            let content_type = response.headers().get(hyper::header::CONTENT_TYPE).cloned();
            (status, content_type, response.bytes().await.unwrap_or_default())
        }
        Err(e) => (hyper::StatusCode::BAD_GATEWAY, None, Bytes::from(format!("proxy: {e}"))),
    };
    if content_bulk && status.is_success() && faults.reject_every > 0 {
        bytes = reject_items(&state, &faults, bytes);
    }
    let mut response = Response::builder().status(status);
    if let Some(ct) = content_type {
        response = response.header(hyper::header::CONTENT_TYPE, ct);
    }
    Ok(response.body(Full::new(bytes)).unwrap())
}

/// Gives the bad document a value its mapping refuses.
fn poison(state: &State, body: Bytes, bad: &str) -> Bytes {
    let text = String::from_utf8_lossy(&body);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len() + 64);
    let mut i = 0;
    while i < lines.len() {
        out.push_str(lines[i]);
        out.push('\n');
        let action: Value = serde_json::from_str(lines[i]).unwrap_or(Value::Null);
        let is_index = action.get("index").is_some();
        if is_index && i + 1 < lines.len() {
            let mut source: Value = serde_json::from_str(lines[i + 1]).unwrap_or(Value::Null);
            if action["index"]["_id"] == bad {
                source["sync_run"] = json!("not-a-number");
                state.counters.bad_doc_sends.fetch_add(1, Ordering::Relaxed);
                out.push_str(&source.to_string());
            } else {
                out.push_str(lines[i + 1]);
            }
            out.push('\n');
            i += 2;
        } else {
            i += 1;
        }
    }
    Bytes::from(out)
}

/// Turns every n-th successful item of a `_bulk` response into a 429 rejection (the document
/// was in fact written: a retry rewrites it, which is harmless by design).
fn reject_items(state: &State, faults: &Faults, bytes: Bytes) -> Bytes {
    let Ok(mut response) = serde_json::from_slice::<Value>(&bytes) else { return bytes };
    let mut rejected_any = false;
    if let Some(items) = response.get_mut("items").and_then(Value::as_array_mut) {
        for item in items.iter_mut() {
            let Some(inner) = item.as_object_mut().and_then(|o| o.values_mut().next()) else { continue };
            if !inner["status"].as_u64().is_some_and(|s| (200..300).contains(&s)) {
                continue;
            }
            let seen = state.counters.items_seen.fetch_add(1, Ordering::Relaxed) + 1;
            if !seen.is_multiple_of(faults.reject_every)
                || state.counters.items_rejected.load(Ordering::Relaxed) >= faults.reject_budget
            {
                continue;
            }
            state.counters.items_rejected.fetch_add(1, Ordering::Relaxed);
            inner["status"] = json!(429);
            inner["error"] = json!({"type": "es_rejected_execution_exception",
                "reason": "rejected execution of coordinating operation [chaos proxy]"});
            if let Some(o) = inner.as_object_mut() {
                o.remove("result");
            }
            rejected_any = true;
        }
    }
    if rejected_any {
        response["errors"] = json!(true);
    }
    Bytes::from(response.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine stand-in: answers every request with a `_bulk` response of `items` successful items, and keeps
    /// the last request body.
    async fn upstream(items: usize) -> (String, Arc<Mutex<Bytes>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let last = Arc::new(Mutex::new(Bytes::new()));
        let seen = last.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let seen = seen.clone();
                        async move {
                            *seen.lock().unwrap() = req.into_body().collect().await.unwrap().to_bytes();
                            let items: Vec<Value> =
                                (0..items).map(|i| json!({"index": {"_id": format!("d{i}"), "status": 201}})).collect();
                            let body = json!({"errors": false, "items": items}).to_string();
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (url, last)
    }

    async fn post(url: &str, body: &str) -> Value {
        reqwest::Client::new().post(url).body(body.to_string()).send().await.unwrap().json().await.unwrap()
    }

    #[tokio::test]
    async fn rejects_items_poisons_one_document_and_passes_the_rest_through() {
        let (engine, last) = upstream(4).await;
        let proxy = SearchProxy::start(engine).await;
        proxy.set_index("content");
        proxy.set_faults(Faults { reject_every: 2, reject_budget: 1, bad_doc: Some("d1".into()), restart_at: None });
        let bulk = "{\"index\":{\"_id\":\"d0\"}}\n{\"sync_run\":7}\n{\"index\":{\"_id\":\"d1\"}}\n{\"sync_run\":7}\n";

        let out = post(&format!("{}/content/_bulk", proxy.url), bulk).await;
        let statuses: Vec<u64> =
            out["items"].as_array().unwrap().iter().map(|i| i["index"]["status"].as_u64().unwrap()).collect();
        assert_eq!(statuses, [201, 429, 201, 201], "the 2nd item only: the budget is 1");
        assert_eq!(out["errors"], json!(true));
        assert_eq!(out["items"][1]["index"]["error"]["type"], "es_rejected_execution_exception");
        let sent = String::from_utf8(last.lock().unwrap().to_vec()).unwrap();
        let sources: Vec<Value> = sent.lines().skip(1).step_by(2).map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(sources, [json!({"sync_run": 7}), json!({"sync_run": "not-a-number"})]);

        // Another index's bulk, and any other path, pass through untouched.
        let other = post(&format!("{}/other/_bulk", proxy.url), bulk).await;
        assert_eq!(other["errors"], json!(false));
        assert_eq!(last.lock().unwrap().as_ref(), bulk.as_bytes());

        let c = proxy.counters();
        assert_eq!(c.requests.load(Ordering::Relaxed), 2);
        assert_eq!(c.content_bulks.load(Ordering::Relaxed), 1);
        assert_eq!(c.items_rejected.load(Ordering::Relaxed), 1);
        assert_eq!(c.bad_doc_sends.load(Ordering::Relaxed), 1);
        proxy.stop();
    }

    #[tokio::test]
    async fn a_restart_cuts_the_request_then_serves_again() {
        let (engine, _) = upstream(1).await;
        let proxy = SearchProxy::start(engine).await;
        proxy.set_index("content");
        proxy.set_faults(Faults { restart_at: Some((1, Duration::from_millis(300))), ..Faults::default() });
        let http = reqwest::Client::new();
        let url = format!("{}/content/_bulk", proxy.url);
        assert!(http.post(&url).body("{}\n").send().await.is_err(), "the request dies with its connection");
        let mut served = false;
        for _ in 0..50 {
            if let Ok(r) = http.post(&url).body("{}\n").send().await {
                served = r.status().is_success();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(served, "the proxy listens again after the restart");
        assert_eq!(proxy.counters().restarts.load(Ordering::Relaxed), 1);
        proxy.stop();
    }
}

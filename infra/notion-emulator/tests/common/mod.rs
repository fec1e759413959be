//! Helpers shared by the emulator's HTTP tests: start a server in-process on port 0 and call it.
#![allow(dead_code)]

use notion_emulator::{serve, Server, ServerConfig, WorkspaceKind, DEFAULT_TOKEN};
use serde_json::Value;

pub const V2022: &str = "2022-06-28";
pub const V2025: &str = "2025-09-03";
pub const V2026: &str = "2026-03-11";

pub struct Emu {
    pub server: Server,
    pub http: reqwest::Client,
    pub base: String,
}

impl Emu {
    pub async fn start(kind: WorkspaceKind) -> Emu {
        Emu::start_with(ServerConfig::for_tests(kind)).await
    }

    pub async fn start_with(cfg: ServerConfig) -> Emu {
        let server = serve(cfg).await.expect("emulator starts");
        let base = server.base_url();
        let http = reqwest::Client::builder().build().expect("client");
        Emu { server, http, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn req(&self, method: reqwest::Method, path: &str, version: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(DEFAULT_TOKEN).header("Notion-Version", version)
    }

    pub async fn get(&self, path: &str, version: &str) -> (u16, Value) {
        let r = self.req(reqwest::Method::GET, path, version).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, version: &str, body: Value) -> (u16, Value) {
        let r = self.req(reqwest::Method::POST, path, version).json(&body).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self.http.request(method, self.url(&format!("/__control/{path}")));
        if let Some(b) = body.filter(|b| !b.is_null()) {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("control request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn control_get(&self, path: &str) -> Value {
        self.control(reqwest::Method::GET, path, None).await.1
    }

    pub async fn control_post(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.control(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 200, "control {path}: {v}");
        v
    }

    /// Every result of a paginated GET list.
    pub async fn get_all(&self, path: &str, version: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let p = match &cursor {
                Some(c) => format!("{path}{sep}start_cursor={c}"),
                None => path.to_string(),
            };
            let (status, v) = self.get(&p, version).await;
            assert_eq!(status, 200, "{p}: {v}");
            out.extend(v["results"].as_array().cloned().unwrap_or_default());
            match v["next_cursor"].as_str() {
                Some(c) if v["has_more"] == true => cursor = Some(c.to_string()),
                _ => return out,
            }
        }
    }

    /// Every result of a paginated POST list (search, queries).
    pub async fn post_all(&self, path: &str, version: &str, body: Value) -> Vec<Value> {
        let mut out = Vec::new();
        let mut body = body;
        loop {
            let (status, v) = self.post(path, version, body.clone()).await;
            assert_eq!(status, 200, "{path}: {v}");
            out.extend(v["results"].as_array().cloned().unwrap_or_default());
            match v["next_cursor"].as_str() {
                Some(c) if v["has_more"] == true => body["start_cursor"] = Value::from(c),
                _ => return out,
            }
        }
    }

    pub async fn stats_total(&self) -> u64 {
        self.control_get("stats").await["total"].as_u64().unwrap_or(0)
    }

    pub async fn reset_stats(&self) {
        self.control_post("stats/reset", Value::Null).await;
    }
}

pub fn title_of(v: &Value) -> String {
    let props = &v["properties"];
    let arr = props
        .as_object()
        .and_then(|m| m.values().find(|p| p["type"] == "title"))
        .and_then(|p| p["title"].as_array().cloned())
        .or_else(|| v["title"].as_array().cloned())
        .unwrap_or_default();
    arr.iter().filter_map(|t| t["plain_text"].as_str()).collect()
}

pub fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["object"], "error", "{body}");
    assert_eq!(body["status"], want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["request_id"].as_str().is_some(), "{body}");
}

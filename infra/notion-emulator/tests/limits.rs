//! Rate limiting and fault injection.

mod common;

use std::time::{Duration, Instant};

use common::*;
use notion_emulator::{RuntimeConfig, ServerConfig, WorkspaceKind};
use serde_json::json;

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let mut cfg = ServerConfig::for_tests(WorkspaceKind::Small);
    cfg.runtime = RuntimeConfig { rate: Some(2.0), burst: Some(3.0), ..RuntimeConfig::default() };
    let emu = Emu::start_with(cfg).await;
    let mut ok = 0;
    let mut limited = None;
    for _ in 0..10 {
        let r = emu.req(reqwest::Method::GET, "/v1/users", V2025).send().await.unwrap();
        if r.status().as_u16() == 429 {
            let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            limited = Some((retry, r.json::<serde_json::Value>().await.unwrap()));
            break;
        }
        ok += 1;
    }
    // The burst passes (a slow machine may refill a token between calls, never more than a few).
    assert!((3..=5).contains(&ok), "burst of 3, got {ok}");
    let (retry, body) = limited.expect("a 429");
    assert!(retry >= 1);
    assert_error(429, &body, 429, "rate_limited");
    assert!(body["additional_data"]["rate_limit_reason"].is_string());
    // After waiting, calls pass again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, _) = emu.get("/v1/users", V2025).await;
    assert_eq!(status, 200);
    let stats = emu.control_get("stats").await;
    assert_eq!(stats["rate_limited"], 1);
    assert_eq!(stats["by_status"]["429"], 1);
    // Control endpoints are never limited.
    for _ in 0..20 {
        assert_eq!(emu.control(reqwest::Method::GET, "counts", None).await.0, 200);
    }
    // The rate can be changed at runtime: unlimited again.
    emu.control_post("config", json!({ "rate": null })).await;
    for _ in 0..20 {
        assert_eq!(emu.get("/v1/users", V2025).await.0, 200);
    }
}

#[tokio::test]
async fn sustained_rate_is_honoured() {
    let mut cfg = ServerConfig::for_tests(WorkspaceKind::Small);
    cfg.runtime = RuntimeConfig { rate: Some(20.0), burst: Some(1.0), ..RuntimeConfig::default() };
    let emu = Emu::start_with(cfg).await;
    let start = Instant::now();
    let mut ok = 0;
    while start.elapsed() < Duration::from_millis(1000) {
        if emu.get("/v1/users", V2025).await.0 == 200 {
            ok += 1;
        }
    }
    // Never more than rate × time + burst; a loaded machine may send fewer.
    assert!((5..=22).contains(&ok), "about 20 per second, got {ok}");
}

async fn with_fault(field: &str) -> Emu {
    let emu = Emu::start(WorkspaceKind::Small).await;
    emu.control_post("config", json!({ field: 1.0 })).await;
    emu
}

#[tokio::test]
async fn injected_5xx_faults() {
    for (field, status, code) in [
        ("fault_500", 500, "internal_server_error"),
        ("fault_503", 503, "service_unavailable"),
        ("fault_529", 529, "service_overload"),
    ] {
        let emu = with_fault(field).await;
        let r = emu.req(reqwest::Method::GET, "/v1/users", V2025).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status);
        if status == 529 {
            let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry >= 1);
        }
        let body: serde_json::Value = r.json().await.unwrap();
        assert_error(status, &body, status, code);
        let stats = emu.control_get("stats").await;
        assert_eq!(stats["faults"][format!("status_{status}")], 1, "{stats}");
        // Faults never touch the control API.
        assert_eq!(emu.control(reqwest::Method::GET, "stats", None).await.0, 200);
    }
    // 502 comes from the proxy: HTML, cf-ray, no Notion request id.
    let emu = with_fault("fault_502").await;
    let r = emu.req(reqwest::Method::GET, "/v1/users", V2025).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 502);
    assert!(r.headers().contains_key("cf-ray"));
    assert!(r.text().await.unwrap().contains("502 Bad Gateway"));
}

#[tokio::test]
async fn partial_fault_probability_mixes_responses() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    emu.control_post("config", json!({ "fault_500": 0.5 })).await;
    let mut codes = std::collections::HashSet::new();
    for _ in 0..60 {
        codes.insert(emu.get("/v1/users", V2025).await.0);
    }
    assert!(codes.contains(&200) && codes.contains(&500), "{codes:?}");
}

#[tokio::test]
async fn latency_is_added() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    emu.control_post("config", json!({ "latency_ms": 200, "jitter_ms": 50 })).await;
    let start = Instant::now();
    assert_eq!(emu.get("/v1/users", V2025).await.0, 200);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_millis(2000), "{took:?}");
    let start = Instant::now();
    emu.control_get("stats").await;
    assert!(start.elapsed() < Duration::from_millis(150), "control calls are not delayed");
}

#[tokio::test]
async fn dropped_connections_are_connection_errors() {
    let emu = with_fault("drop_connection").await;
    let err = emu
        .req(reqwest::Method::GET, "/v1/users", V2025)
        .send()
        .await
        .expect_err("connection closed without a response");
    assert!(err.is_request() || err.is_connect() || err.to_string().contains("connection"), "{err:?}");
    assert!(!err.is_status());
    // The server keeps serving.
    emu.control_post("config", json!({ "drop_connection": 0.0 })).await;
    assert_eq!(emu.get("/v1/users", V2025).await.0, 200);
    assert_eq!(emu.control_get("stats").await["faults"]["dropped"], 1);
}

#[tokio::test]
async fn revoked_token_gets_401_everywhere() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    assert_eq!(emu.get("/v1/users/me", V2025).await.0, 200);
    emu.control_post("revoke", json!({})).await;
    for path in ["/v1/users/me", "/v1/users"] {
        let (status, body) = emu.get(path, V2025).await;
        assert_error(status, &body, 401, "unauthorized");
    }
    let (status, body) = emu.post("/v1/search", V2025, json!({})).await;
    assert_error(status, &body, 401, "unauthorized");
    emu.control_post("revoke", json!({ "restore": true })).await;
    assert_eq!(emu.get("/v1/users/me", V2025).await.0, 200);
    // Bad config is refused.
    let (status, _) = emu.control(reqwest::Method::POST, "config", Some(json!({ "fault_500": 2.0 }))).await;
    assert_eq!(status, 400);
    let (status, _) = emu.control(reqwest::Method::POST, "config", Some(json!({ "no_such_field": 1 }))).await;
    assert_eq!(status, 400);
}

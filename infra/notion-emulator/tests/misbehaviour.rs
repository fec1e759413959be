//! Real-Notion misbehaviour switches: incomplete and lagging search, missing capabilities, edge (Cloudflare)
//! errors, long and one-shot rate limits, Notion's filter nesting, repeated and reordered webhooks, and the
//! `limits` workspace. Every switch is off by default.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use hmac::{Hmac, Mac};
use notion_emulator::WorkspaceKind;
use serde_json::{json, Value};
use sha2::Sha256;

fn ids(results: &[Value]) -> HashSet<String> {
    results.iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect()
}

/// Whether a 2025-09-03 search result is directly shared (under the workspace).
fn top_level(r: &Value) -> bool {
    match r["object"].as_str() {
        Some("data_source") => r["database_parent"]["type"] == "workspace",
        _ => r["parent"]["type"] == "workspace",
    }
}

async fn search_all(emu: &Emu) -> Vec<Value> {
    emu.post_all("/v1/search", V2025, json!({})).await
}

#[tokio::test]
async fn search_drop_rate_hides_the_same_non_top_level_objects_every_time() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    let all = search_all(&emu).await;
    let expected_before = emu.control_get("expected").await;
    emu.control_post("config", json!({ "search_drop_rate": 0.5 })).await;
    let first = search_all(&emu).await;
    let second = search_all(&emu).await;
    assert_eq!(ids(&first), ids(&second), "the same objects are missing on every call");
    let (all_ids, kept) = (ids(&all), ids(&first));
    assert!(kept.is_subset(&all_ids));
    let missing: Vec<&Value> = all.iter().filter(|r| !kept.contains(r["id"].as_str().unwrap_or(""))).collect();
    assert!(!missing.is_empty(), "half of the sub-pages, rows and inline data sources go missing");
    assert!(missing.iter().all(|r| !top_level(r)), "directly shared objects are always returned");
    for r in all.iter().filter(|r| top_level(r)) {
        assert!(kept.contains(r["id"].as_str().unwrap()), "top-level {} kept", r["id"]);
    }
    let kinds: HashSet<&str> = missing
        .iter()
        .map(|r| match (r["object"].as_str(), r["parent"]["type"].as_str()) {
            (Some("data_source"), _) => "data_source",
            (_, Some("data_source_id")) => "row",
            _ => "sub-page",
        })
        .collect();
    assert!(kinds.contains("row") && kinds.contains("sub-page"), "{kinds:?}");
    // The missing objects still exist and are readable.
    for r in &missing {
        let path = match r["object"].as_str() {
            Some("data_source") => format!("/v1/data_sources/{}", r["id"].as_str().unwrap()),
            _ => format!("/v1/pages/{}", r["id"].as_str().unwrap()),
        };
        assert_eq!(emu.get(&path, V2025).await.0, 200, "{path}");
    }
    // `expected` describes what exists, not what search shows.
    assert_eq!(emu.control_get("expected").await["pages"], expected_before["pages"]);
    // A rate of 1 keeps only the top-level objects; 0 restores everything.
    emu.control_post("config", json!({ "search_drop_rate": 1.0 })).await;
    let only_top = search_all(&emu).await;
    assert!(only_top.iter().all(top_level) && !only_top.is_empty());
    emu.control_post("config", json!({ "search_drop_rate": 0.0 })).await;
    assert_eq!(ids(&search_all(&emu).await), all_ids);
    let (status, _) = emu.control(reqwest::Method::POST, "config", Some(json!({ "search_drop_rate": 1.5 }))).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn search_drop_ids_forget_one_page_that_stays_readable() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    let all = search_all(&emu).await;
    let page = all.iter().find(|r| r["object"] == "page" && top_level(r)).unwrap()["id"].as_str().unwrap().to_string();
    let ds = all.iter().find(|r| r["object"] == "data_source").unwrap();
    let db = ds["parent"]["database_id"].as_str().unwrap().to_string();
    emu.control_post("config", json!({ "search_drop_ids": [page, db] })).await;
    let now = ids(&search_all(&emu).await);
    assert!(!now.contains(&page), "even a top-level page can be named");
    assert!(!now.contains(ds["id"].as_str().unwrap()), "a database id hides its data sources");
    assert_eq!(now.len(), all.len() - 2, "nothing else is missing");
    assert_eq!(emu.get(&format!("/v1/pages/{page}"), V2025).await.0, 200);
    assert_eq!(emu.get(&format!("/v1/blocks/{page}/children"), V2025).await.0, 200);
    let (status, _) = emu.control(reqwest::Method::POST, "config", Some(json!({ "search_drop_ids": ["nope"] }))).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn search_index_lag_hides_new_objects_for_a_while() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    let before = search_all(&emu).await.len();
    emu.control_post("config", json!({ "search_index_lag_secs": 2 })).await;
    assert_eq!(search_all(&emu).await.len(), before, "generated objects are old: all indexed");
    let page = emu.control_post("pages", json!({ "title": "Freshly made lagmarker page" })).await;
    let id = page["id"].as_str().unwrap().to_string();
    let db = emu.control_post("databases", json!({ "title": "Fresh lagmarker database" })).await;
    let query = json!({ "query": "lagmarker" });
    assert!(emu.post_all("/v1/search", V2025, query.clone()).await.is_empty(), "not indexed yet");
    assert_eq!(emu.get(&format!("/v1/pages/{id}"), V2025).await.0, 200, "but it exists");
    let ds = db["data_source_id"].as_str().unwrap();
    assert_eq!(emu.get(&format!("/v1/data_sources/{ds}"), V2025).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let found = ids(&emu.post_all("/v1/search", V2025, query.clone()).await);
    assert!(found.contains(&id) && found.contains(ds), "{found:?}");
    // Without the switch new objects are found at once.
    emu.control_post("config", json!({ "search_index_lag_secs": 0 })).await;
    let p2 = emu.control_post("pages", json!({ "title": "Second lagmarker page" })).await;
    assert!(ids(&emu.post_all("/v1/search", V2025, query).await).contains(p2["id"].as_str().unwrap()));
}

#[tokio::test]
async fn capabilities_answer_403_restricted_resource() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    let cfg = emu.control_get("config").await;
    assert_eq!(cfg["capabilities"], json!({ "users": "email", "comments": true }));
    let users = emu.get_all("/v1/users", V2025).await;
    let person = users.iter().find(|u| u["type"] == "person").unwrap().clone();
    assert!(person["person"]["email"].is_string());
    let pid = person["id"].as_str().unwrap().to_string();

    emu.control_post("config", json!({ "capabilities": { "users": "no_email" } })).await;
    for u in emu.get_all("/v1/users", V2025).await.iter().filter(|u| u["type"] == "person") {
        assert_eq!(u["person"], json!({}), "{u}");
        assert!(u["name"].is_string());
    }
    let (status, one) = emu.get(&format!("/v1/users/{pid}"), V2025).await;
    assert_eq!(status, 200);
    assert!(one["person"].get("email").is_none());

    emu.control_post("config", json!({ "capabilities": { "users": "none", "comments": true } })).await;
    for path in ["/v1/users".to_string(), format!("/v1/users/{pid}")] {
        let (status, body) = emu.get(&path, V2025).await;
        assert_error(status, &body, 403, "restricted_resource");
        assert_eq!(body["message"], "Insufficient permissions for this endpoint.");
    }
    assert_eq!(emu.get("/v1/users/me", V2025).await.0, 200, "the bot itself is always readable");

    let expected = emu.control_get("expected").await;
    let comment = &expected["comments"][0];
    let list = format!("/v1/comments?block_id={}", comment["parent_id"].as_str().unwrap());
    let one = format!("/v1/comments/{}", comment["id"].as_str().unwrap());
    assert_eq!(emu.get(&list, V2025).await.0, 200);
    assert_eq!(emu.get(&one, V2025).await.0, 200);
    emu.control_post("config", json!({ "capabilities": { "comments": false } })).await;
    for path in [&list, &one] {
        let (status, body) = emu.get(path, V2025).await;
        assert_error(status, &body, 403, "restricted_resource");
    }
    // Users came back with the default (`email`) since the patch left them out.
    assert_eq!(emu.get("/v1/users", V2025).await.0, 200);
    let (status, _) =
        emu.control(reqwest::Method::POST, "config", Some(json!({ "capabilities": { "users": "some" } }))).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn edge_errors_are_cloudflare_html() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    for (field, status, marker) in [
        ("fault_504", 504, "504 Gateway Time-out"),
        ("fault_520", 520, "notion.so | 520: Web server is returning an unknown error"),
        ("fault_521", 521, "notion.so | 521: Web server is down"),
        ("fault_522", 522, "notion.so | 522: Connection timed out"),
        ("fault_523", 523, "notion.so | 523: Origin is unreachable"),
        ("fault_524", 524, "<title>notion.so | 524: A timeout occurred</title>"),
        ("fault_403_html", 403, "Sorry, you have been blocked"),
    ] {
        emu.control_post("stats/reset", Value::Null).await;
        emu.control_post("config", json!({ field: 1.0 })).await;
        let r = emu.req(reqwest::Method::POST, "/v1/search", V2025).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{field}");
        assert!(r.headers().contains_key("cf-ray"), "{field}");
        assert!(!r.headers().contains_key("x-notion-request-id"), "{field}: not from Notion");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{field}");
        let text = r.text().await.unwrap();
        assert!(text.contains(marker), "{field}: {text}");
        assert!(serde_json::from_str::<Value>(&text).is_err(), "{field}: no JSON");
        let stats = emu.control_get("stats").await;
        let key = field.replace("fault_", "status_");
        assert_eq!(stats["faults"][key.as_str()], 1, "{stats}");
        assert_eq!(stats["by_status"][status.to_string()], 1, "{stats}");
        emu.control_post("config", json!({ field: 0.0 })).await;
    }
    // 503 carries Retry-After only when asked to.
    emu.control_post("config", json!({ "fault_503": 1.0 })).await;
    let r = emu.req(reqwest::Method::GET, "/v1/users", V2025).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(!r.headers().contains_key("retry-after"));
    emu.control_post("config", json!({ "retry_after_503": 120 })).await;
    let r = emu.req(reqwest::Method::GET, "/v1/users", V2025).send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "120");
    assert_error(503, &r.json::<Value>().await.unwrap(), 503, "service_unavailable");
    // The new probabilities count towards the total.
    let (status, _) =
        emu.control(reqwest::Method::POST, "config", Some(json!({ "fault_503": 0.6, "fault_524": 0.6 }))).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn long_retry_after_and_a_one_shot_throttle() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    emu.control_post("config", json!({ "fault_429": 1.0, "retry_after_429": 3600 })).await;
    let r = emu.req(reqwest::Method::GET, "/v1/users", V2025).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "3600", "not clamped");
    emu.control_post("config", json!({ "fault_429": 0.0 })).await;
    emu.control_post("stats/reset", Value::Null).await;

    let t = json!({ "after_requests": 3, "retry_after": 90, "count": 2 });
    assert_eq!(emu.control_post("config", json!({ "throttle_after": t })).await["throttle_after"], t);
    let mut seen = Vec::new();
    for _ in 0..7 {
        let r = emu.req(reqwest::Method::GET, "/v1/users", V2025).send().await.unwrap();
        let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        let status = r.status().as_u16();
        if status == 429 {
            assert_error(429, &r.json::<Value>().await.unwrap(), 429, "rate_limited");
        }
        seen.push((status, retry));
    }
    let limited = (429, Some("90".to_string()));
    let ok = (200, None);
    assert_eq!(seen, [ok.clone(), ok.clone(), ok.clone(), limited.clone(), limited, ok.clone(), ok]);
    assert!(emu.control_get("config").await["throttle_after"].is_null(), "cleared itself");
    assert_eq!(emu.control_get("stats").await["rate_limited"], 2);
    // Setting it again counts from then.
    emu.control_post("config", json!({ "throttle_after": { "after_requests": 0, "retry_after": 1, "count": 1 } }))
        .await;
    assert_eq!(emu.get("/v1/users", V2025).await.0, 429);
    assert_eq!(emu.get("/v1/users", V2025).await.0, 200);
    let bad = json!({ "throttle_after": { "after_requests": 1, "retry_after": 1, "count": 0 } });
    assert_eq!(emu.control(reqwest::Method::POST, "config", Some(bad)).await.0, 400);
}

#[tokio::test]
async fn filter_max_depth_follows_notions_two_levels() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    // A data source whose database has only it (so that the 2022 query works too).
    let sources =
        emu.post_all("/v1/search", V2025, json!({ "filter": { "property": "object", "value": "data_source" } })).await;
    let mut single = None;
    for s in &sources {
        let db = s["parent"]["database_id"].as_str().unwrap().to_string();
        let (_, d) = emu.get(&format!("/v1/databases/{db}"), V2025).await;
        if d["data_sources"].as_array().is_some_and(|a| a.len() == 1) {
            single = Some((s["id"].as_str().unwrap().to_string(), db));
            break;
        }
    }
    let (ds, db) = single.expect("a single-source database");
    let path = format!("/v1/data_sources/{ds}/query");
    let legacy = format!("/v1/databases/{db}/query");
    let done = json!({ "property": "Done", "checkbox": { "equals": true } });
    let not_done = json!({ "property": "Done", "checkbox": { "equals": false } });
    let two = json!({ "and": [{ "or": [done, not_done] }, { "timestamp": "created_time", "created_time": { "after": "2000-01-01" } }] });
    let three = json!({ "or": [{ "and": [{ "or": [done, not_done] }] }] });
    assert_eq!(emu.post(&path, V2025, json!({ "filter": three })).await.0, 200, "lenient by default");
    assert_eq!(emu.post(&legacy, V2022, json!({ "filter": three })).await.0, 200);
    emu.control_post("config", json!({ "filter_max_depth": 2 })).await;
    assert_eq!(emu.post(&path, V2025, json!({ "filter": two })).await.0, 200);
    assert_eq!(emu.post(&path, V2025, json!({ "filter": done })).await.0, 200);
    let (status, body) = emu.post(&path, V2025, json!({ "filter": three })).await;
    assert_error(status, &body, 400, "validation_error");
    let msg = body["message"].as_str().unwrap();
    assert!(msg.starts_with("body failed validation: body.filter.or[0].and[0].or"), "{msg}");
    assert!(msg.contains("nested at most 2 levels"), "{msg}");
    // The 2022 database query follows the same rule.
    let (status, body) = emu.post(&legacy, V2022, json!({ "filter": three })).await;
    assert_error(status, &body, 400, "validation_error");
    emu.control_post("config", json!({ "filter_max_depth": null })).await;
    assert_eq!(emu.post(&path, V2025, json!({ "filter": three })).await.0, 200);
}

type Seen = Arc<Mutex<Vec<(Option<String>, Vec<u8>)>>>;

async fn receiver() -> (String, Seen) {
    use axum::{body::Bytes, http::HeaderMap, routing::post, Router};
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move {
                let sig = headers.get("x-notion-signature").and_then(|v| v.to_str().ok()).map(str::to_string);
                s.lock().unwrap().push((sig, body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), seen)
}

fn verified(token: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(sig) = header.and_then(|h| h.strip_prefix("sha256=")).and_then(|h| hex::decode(h).ok()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[tokio::test]
async fn webhooks_repeat_and_arrive_out_of_order() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    let (url, seen) = receiver().await;
    let token = "whsec_test";
    let pages: Vec<String> = emu
        .post_all("/v1/search", V2025, json!({ "filter": { "property": "object", "value": "page" } }))
        .await
        .iter()
        .take(4)
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let out = emu
        .control_post(
            "webhooks/emit",
            json!({ "url": url, "verification_token": token, "type": "page.content_updated",
                    "entity": { "id": pages[0], "type": "page" }, "repeat": 3 }),
        )
        .await;
    assert_eq!(out["deliveries"].as_array().unwrap().len(), 3);
    let got: Vec<(Option<String>, Value)> = seen
        .lock()
        .unwrap()
        .drain(..)
        .map(|(sig, body)| {
            assert!(verified(token, &body, sig.as_deref()), "each delivery is signed");
            (sig, serde_json::from_slice(&body).unwrap())
        })
        .collect();
    assert_eq!(got.len(), 3);
    let attempts: Vec<u64> = got.iter().map(|(_, p)| p["attempt_number"].as_u64().unwrap()).collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert!(got.iter().all(|(_, p)| p["id"] == got[0].1["id"] && p["timestamp"] == got[0].1["timestamp"]));
    assert_eq!(out["payload"]["attempt_number"], 3, "the answer is the last delivery");

    // A batch, reversed.
    let events: Vec<Value> = pages
        .iter()
        .map(|p| json!({ "type": "page.properties_updated", "entity": { "id": p, "type": "page" } }))
        .collect();
    let out = emu
        .control_post(
            "webhooks/emit_batch",
            json!({ "url": url, "verification_token": token, "events": events, "order": "reversed" }),
        )
        .await;
    let order: Vec<u64> = out["results"].as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert_eq!(order, [3, 2, 1, 0]);
    let received: Vec<String> = seen
        .lock()
        .unwrap()
        .drain(..)
        .map(|(sig, body)| {
            assert!(verified(token, &body, sig.as_deref()));
            serde_json::from_slice::<Value>(&body).unwrap()["entity"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    let want: Vec<String> = pages.iter().rev().cloned().collect();
    assert_eq!(received, want);

    // Shuffled: the same seed gives the same order; a permutation of the events.
    let shuffle = |seed: u64| json!({ "url": url, "verification_token": token, "events": events, "order": "shuffled", "seed": seed });
    let a = emu.control_post("webhooks/emit_batch", shuffle(5)).await;
    let b = emu.control_post("webhooks/emit_batch", shuffle(5)).await;
    let idx = |v: &Value| -> Vec<u64> {
        v["results"].as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()).collect()
    };
    assert_eq!(idx(&a), idx(&b));
    let mut sorted = idx(&a);
    sorted.sort();
    assert_eq!(sorted, [0, 1, 2, 3]);
    let stats = emu.control_get("stats").await;
    assert_eq!(stats["webhooks_sent"], 3 + 4 + 8);
    let bad = json!({ "url": url, "verification_token": token, "events": events, "order": "sideways" });
    assert_eq!(emu.control(reqwest::Method::POST, "webhooks/emit_batch", Some(bad)).await.0, 400);
}

/// The title property's rich text array of a page.
fn title_items(page: &Value) -> Value {
    page["properties"].as_object().and_then(|m| m.values().find(|p| p["type"] == "title")).unwrap()["title"].clone()
}

fn plain(items: &Value) -> String {
    items.as_array().unwrap().iter().map(|t| t["plain_text"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn limits_workspace_holds_objects_at_notions_limits() {
    let emu = Emu::start(WorkspaceKind::Limits).await;
    let counts = emu.control_get("counts").await;
    assert_eq!(counts["workspace"], "limits");
    let expected = emu.control_get("expected").await;
    assert_eq!(expected["pages"].as_array().unwrap().len(), 50, "20 pages and 30 rows");

    // 200,000-character titles: 100 rich text items of 2,000 characters.
    let found = emu.post_all("/v1/search", V2025, json!({ "query": "longtitle0w0 " })).await;
    assert_eq!(found.len(), 1);
    let title = title_items(&found[0]);
    assert_eq!(title.as_array().unwrap().len(), 100);
    assert_eq!(plain(&title).chars().count(), 200_000);

    // A paragraph of 100 items of 2,000 characters.
    let lp = emu.post_all("/v1/search", V2025, json!({ "query": "Long paragraph" })).await[0]["id"].clone();
    let kids = emu.get_all(&format!("/v1/blocks/{}/children", lp.as_str().unwrap()), V2025).await;
    let long = kids.iter().find(|b| b["paragraph"]["rich_text"].as_array().is_some_and(|a| a.len() == 100));
    assert_eq!(plain(&long.expect("a 100-item paragraph")["paragraph"]["rich_text"]).len(), 200_000);

    // 200 properties, 30 rows filling all of them.
    let ds =
        emu.post_all("/v1/search", V2025, json!({ "filter": { "property": "object", "value": "data_source" } })).await;
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0]["properties"].as_object().unwrap().len(), 200);
    let rows =
        emu.post_all(&format!("/v1/data_sources/{}/query", ds[0]["id"].as_str().unwrap()), V2025, json!({})).await;
    assert_eq!(rows.len(), 30);
    let mut types = HashMap::new();
    for row in &rows {
        let props = row["properties"].as_object().unwrap();
        assert_eq!(props.len(), 200);
        for p in props.values() {
            *types.entry(p["type"].as_str().unwrap().to_string()).or_insert(0) += 1;
            if p["type"] == "rich_text" {
                assert_eq!(plain(&p["rich_text"]).len(), 2_000);
            }
        }
    }
    for t in ["rich_text", "number", "select", "checkbox", "multi_select", "date", "url", "people"] {
        assert!(types.contains_key(t), "{t}: {types:?}");
    }

    // A chain of sub-pages 12 deep.
    let mut cur = emu.post_all("/v1/search", V2025, json!({ "query": "Page chain root" })).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut depth = 0;
    loop {
        let kids = emu.get_all(&format!("/v1/blocks/{cur}/children"), V2025).await;
        match kids.iter().find(|b| b["type"] == "child_page") {
            Some(c) => {
                cur = c["id"].as_str().unwrap().to_string();
                depth += 1;
            }
            None => break,
        }
    }
    assert_eq!(depth, 12);

    // Toggles 20 deep.
    let mut cur = emu.post_all("/v1/search", V2025, json!({ "query": "Nested toggles" })).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut toggles = 0;
    loop {
        let kids = emu.get_all(&format!("/v1/blocks/{cur}/children"), V2025).await;
        match kids.iter().find(|b| b["type"] == "toggle") {
            Some(t) => {
                cur = t["id"].as_str().unwrap().to_string();
                toggles += 1;
            }
            None => {
                assert!(kids.iter().any(|b| plain(&b["paragraph"]["rich_text"]).contains("togglemarker")));
                break;
            }
        }
    }
    assert_eq!(toggles, 20);
}

#[tokio::test]
async fn reset_to_limits_and_huge_titles_built_server_side() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    let out = emu.control_post("reset", json!({ "workspace": "limits" })).await;
    assert_eq!(out["workspace"], "limits");
    assert_eq!(out["counts"]["rows"], 30);
    // 20 MB of title from a small request.
    let page = emu.control_post("pages", json!({ "title": "0123456789", "title_repeat": 2_000_000 })).await;
    let id = page["id"].as_str().unwrap();
    let (status, got) = emu.get(&format!("/v1/pages/{id}"), V2025).await;
    assert_eq!(status, 200);
    let title = title_items(&got);
    assert_eq!(title.as_array().unwrap().len(), 10_000, "split in 2,000-character items");
    assert_eq!(plain(&title).len(), 20_000_000);
    for bad in [json!(0), json!("3"), json!(u64::MAX)] {
        let body = json!({ "title": "x", "title_repeat": bad });
        assert_eq!(emu.control(reqwest::Method::POST, "pages", Some(body)).await.0, 400);
    }
}

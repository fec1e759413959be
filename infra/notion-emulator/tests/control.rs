//! The control API: mutations, webhooks, files, and the minimum-calls figure against a hand walk.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use hmac::{Hmac, Mac};
use notion_emulator::WorkspaceKind;
use serde_json::{json, Value};
use sha2::Sha256;

async fn children_text(emu: &Emu, id: &str) -> Vec<String> {
    emu.get_all(&format!("/v1/blocks/{id}/children"), V2025)
        .await
        .iter()
        .map(|b| {
            let t = b["type"].as_str().unwrap();
            b[t]["rich_text"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x["plain_text"].as_str()).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn mutations_are_visible_through_the_api() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    // Add a page with nested blocks at the workspace level.
    let created = emu
        .control_post("pages", json!({
            "parent": { "type": "workspace" },
            "title": "Added by a test",
            "blocks": [
                { "type": "paragraph", "text": "first paragraph" },
                { "type": "toggle", "text": "a toggle", "children": [{ "type": "paragraph", "text": "nested" }] },
                { "type": "heading_1", "heading_1": { "rich_text": [{ "type": "text", "text": { "content": "Notion shaped" } }] } }
            ]
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let (status, page) = emu.get(&format!("/v1/pages/{id}"), V2025).await;
    assert_eq!(status, 200);
    assert_eq!(title_of(&page), "Added by a test");
    assert_eq!(children_text(&emu, &id).await, vec!["first paragraph", "a toggle", "Notion shaped"]);
    let hits = emu.post_all("/v1/search", V2025, json!({ "query": "added by a test" })).await;
    assert_eq!(hits.len(), 1);

    // Edit: title and text; last_edited_time bumps to the (rounded) edit time.
    let (status, _) = emu
        .control(
            reqwest::Method::PATCH,
            &format!("pages/{id}"),
            Some(json!({ "title": "Renamed", "text": "edited paragraph", "at": "2031-05-06T07:08:59Z" })),
        )
        .await;
    assert_eq!(status, 200);
    let (_, page) = emu.get(&format!("/v1/pages/{id}"), V2025).await;
    assert_eq!(title_of(&page), "Renamed");
    assert_eq!(page["last_edited_time"], "2031-05-06T07:08:00.000Z");
    assert_eq!(children_text(&emu, &id).await[0], "edited paragraph");

    // Append children, edit and delete a block.
    let appended = emu
        .control_post(
            &format!("blocks/{id}/children"),
            json!({ "children": [{ "type": "quote", "text": "appended" }] }),
        )
        .await;
    let bid = appended["ids"][0].as_str().unwrap().to_string();
    assert_eq!(children_text(&emu, &id).await.last().unwrap(), "appended");
    emu.control(reqwest::Method::PATCH, &format!("blocks/{bid}"), Some(json!({ "text": "changed" }))).await;
    let (_, b) = emu.get(&format!("/v1/blocks/{bid}"), V2025).await;
    assert_eq!(b["quote"]["rich_text"][0]["plain_text"], "changed");
    emu.control(reqwest::Method::DELETE, &format!("blocks/{bid}"), None).await;
    assert!(!children_text(&emu, &id).await.contains(&"changed".to_string()));
    let (_, b) = emu.get(&format!("/v1/blocks/{bid}"), V2025).await;
    assert_eq!(b["in_trash"], true);

    // A child page, moved under another page, then trashed, restored, unshared, deleted.
    let child = emu.control_post("pages", json!({ "parent": { "page_id": id }, "title": "Child", "blocks": [] })).await;
    let cid = child["id"].as_str().unwrap().to_string();
    let kids = emu.get_all(&format!("/v1/blocks/{id}/children"), V2025).await;
    assert!(kids.iter().any(|k| k["type"] == "child_page" && k["id"] == cid.as_str()));
    let other = emu.control_post("pages", json!({ "title": "Other" })).await["id"].as_str().unwrap().to_string();
    emu.control_post(&format!("pages/{cid}/move"), json!({ "parent": { "type": "page_id", "page_id": other } })).await;
    let (_, moved) = emu.get(&format!("/v1/pages/{cid}"), V2025).await;
    assert_eq!(moved["parent"]["page_id"], other.as_str());
    assert!(emu.get_all(&format!("/v1/blocks/{id}/children"), V2025).await.iter().all(|k| k["id"] != cid.as_str()));
    assert!(emu.get_all(&format!("/v1/blocks/{other}/children"), V2025).await.iter().any(|k| k["id"] == cid.as_str()));

    emu.control_post(&format!("pages/{cid}/trash"), json!({})).await;
    let (_, trashed) = emu.get(&format!("/v1/pages/{cid}"), V2026).await;
    assert_eq!(trashed["in_trash"], true);
    assert!(emu
        .post_all("/v1/search", V2025, json!({ "query": "Child" }))
        .await
        .iter()
        .all(|r| r["id"] != cid.as_str()));
    emu.control_post(&format!("pages/{cid}/trash"), json!({ "in_trash": false })).await;
    assert!(emu
        .post_all("/v1/search", V2025, json!({ "query": "Child" }))
        .await
        .iter()
        .any(|r| r["id"] == cid.as_str()));

    emu.control_post(&format!("pages/{cid}/unshare"), json!({})).await;
    assert_eq!(emu.get(&format!("/v1/pages/{cid}"), V2025).await.0, 404);
    emu.control_post(&format!("pages/{cid}/unshare"), json!({ "unshared": false })).await;
    assert_eq!(emu.get(&format!("/v1/pages/{cid}"), V2025).await.0, 200);

    let (status, _) = emu.control(reqwest::Method::DELETE, &format!("pages/{id}"), None).await;
    assert_eq!(status, 200);
    let (status, body) = emu.get(&format!("/v1/pages/{id}"), V2025).await;
    assert_error(status, &body, 404, "object_not_found");

    // Rows: added with properties and a created time, visible in the query.
    let sources =
        emu.post_all("/v1/search", V2025, json!({ "filter": { "property": "object", "value": "data_source" } })).await;
    let ds = sources[0]["id"].as_str().unwrap();
    let row = emu
        .control_post(&format!("data_sources/{ds}/rows"), json!({ "title": "New row", "properties": { "Done": true, "Status": "Done" }, "created_time": "2030-01-01T00:00:30Z" }))
        .await;
    let rows = emu
        .post_all(
            &format!("/v1/data_sources/{ds}/query"),
            V2025,
            json!({ "filter": { "property": "Name", "title": { "equals": "New row" } } }),
        )
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], row["id"]);
    assert_eq!(rows[0]["created_time"], "2030-01-01T00:00:00.000Z");
    assert_eq!(rows[0]["properties"]["Done"]["checkbox"], true);
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

fn verify(token: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[tokio::test]
async fn emitted_webhooks_verify_with_hmac_of_the_raw_body() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    let (url, seen) = receiver().await;
    let page = emu.post_all("/v1/search", V2025, json!({ "filter": { "property": "object", "value": "page" } })).await
        [0]["id"]
        .clone();
    let token = "secret_verification_token";
    let out = emu
        .control_post("webhooks/emit", json!({ "url": url, "verification_token": token, "type": "page.content_updated", "entity": { "id": page, "type": "page" } }))
        .await;
    assert_eq!(out["status"], 200);
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let (sig, body) = &got[0];
    let sig = sig.clone().expect("X-Notion-Signature");
    assert_eq!(sig, out["signature"].as_str().unwrap());
    assert!(verify(token, body, &sig));
    assert!(!verify("other token", body, &sig));
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert!(!verify(token, &tampered, &sig), "a re-serialized body does not verify");
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload, out["payload"]);
    assert_eq!(payload["type"], "page.content_updated");
    assert_eq!(payload["entity"]["id"], page);
    for key in [
        "id",
        "timestamp",
        "workspace_id",
        "subscription_id",
        "integration_id",
        "authors",
        "attempt_number",
        "api_version",
        "data",
    ] {
        assert!(payload.get(key).is_some(), "missing {key}");
    }
    assert!(payload["data"]["parent"]["type"].is_string());
    assert!(payload["data"]["updated_blocks"].is_array());

    // The verification handshake is signed the same way.
    emu.control_post("webhooks/emit", json!({ "url": url, "verification_token": token, "verification": true })).await;
    let got = seen.lock().unwrap().clone();
    let (sig, body) = &got[1];
    assert!(verify(token, body, sig.as_deref().unwrap()));
    assert_eq!(serde_json::from_slice::<Value>(body).unwrap(), json!({ "verification_token": token }));

    // An unreachable receiver is reported, not a crash.
    let out = emu.control_post("webhooks/emit", json!({ "url": "http://127.0.0.1:1/none", "verification_token": token, "type": "page.created", "entity": { "id": page, "type": "page" } })).await;
    assert!(out["status"].is_null() && out["error"].is_string());
}

async fn file_blocks(emu: &Emu, page: &str) -> Vec<Value> {
    emu.get_all(&format!("/v1/blocks/{page}/children"), V2025)
        .await
        .into_iter()
        .filter(|b| matches!(b["type"].as_str(), Some("file" | "pdf")))
        .collect()
}

#[tokio::test]
async fn files_are_served_and_signed_urls_expire() {
    let emu = Emu::start(WorkspaceKind::Edge).await;
    let every = emu.post_all("/v1/search", V2025, json!({ "query": "Every block type" })).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let blocks = file_blocks(&emu, &every).await;
    let catalog = emu.control_get("files").await;
    let expected = |name: &str| {
        catalog["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .and_then(|f| f["expected_text"].as_str())
            .map(str::to_string)
    };
    let mut checked = HashSet::new();
    for b in &blocks {
        let t = b["type"].as_str().unwrap();
        let payload = &b[t];
        let url = match payload["type"].as_str().unwrap() {
            "file" => {
                assert!(payload["file"]["expiry_time"].is_string());
                payload["file"]["url"].as_str().unwrap().to_string()
            }
            _ => payload["external"]["url"].as_str().unwrap().to_string(),
        };
        if !url.starts_with(&emu.base) {
            continue;
        }
        let name = catalog["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| url.contains(&f["id"].as_str().unwrap().replace('-', "")))
            .map(|f| f["name"].as_str().unwrap().to_string())
            .unwrap_or_default();
        let r = emu.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{name}");
        let bytes = r.bytes().await.unwrap();
        match name.as_str() {
            "readme.txt" | "table.csv" | "page.html" | "external-notes.txt" => {
                assert!(String::from_utf8_lossy(&bytes).contains(&expected(&name).unwrap()), "{name}");
            }
            "quarterly-report.pdf" => {
                let text = pdf_extract::extract_text_from_mem(&bytes).expect("pdf extracts");
                let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(flat.contains(&expected(&name).unwrap()), "pdf text: {text:?}");
            }
            "meeting-notes.docx" => {
                let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
                let mut xml = String::new();
                std::io::Read::read_to_string(&mut z.by_name("word/document.xml").unwrap(), &mut xml).unwrap();
                assert!(xml.contains(&expected(&name).unwrap()));
            }
            "huge-export.txt" => assert!(bytes.len() > 10 * 1024 * 1024),
            "broken.pdf" => assert!(pdf_extract::extract_text_from_mem(&bytes).is_err() || bytes.starts_with(b"%PDF")),
            _ => {}
        }
        checked.insert(name);
    }
    for n in [
        "readme.txt",
        "table.csv",
        "page.html",
        "quarterly-report.pdf",
        "meeting-notes.docx",
        "external-notes.txt",
        "huge-export.txt",
    ] {
        assert!(checked.contains(n), "file {n} not checked ({checked:?})");
    }

    // A bad signature is refused like S3 does.
    let b = blocks.iter().find(|b| b["file"]["type"] == "file").unwrap();
    let url = b["file"]["file"]["url"].as_str().unwrap();
    let tampered = format!("{}0", url);
    let r = emu.http.get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("SignatureDoesNotMatch"));

    // Expiry: with a 1 s TTL the URL works at once and is refused once expired; re-reading the block refreshes it.
    emu.control_post("config", json!({ "file_url_ttl_secs": 1 })).await;
    let short = file_blocks(&emu, &every).await;
    let url = short.iter().find(|b| b["file"]["type"] == "file").unwrap()["file"]["file"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(emu.http.get(&url).send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = emu.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("AccessDenied"));
    let fresh = file_blocks(&emu, &every).await;
    let url = fresh.iter().find(|b| b["file"]["type"] == "file").unwrap()["file"]["file"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(emu.http.get(&url).send().await.unwrap().status(), 200);
    assert!(emu.control_get("stats").await["files_expired"].as_u64().unwrap() >= 1);
}

/// Read a data source by created_time windows: a new query from the last created_time whenever the row cap is hit.
async fn windowed_query(emu: &Emu, ds: &str, v: &str) {
    let mut since: Option<String> = None;
    loop {
        let mut body = json!({ "sorts": [{ "timestamp": "created_time", "direction": "ascending" }] });
        if let Some(t) = &since {
            body["filter"] = json!({ "timestamp": "created_time", "created_time": { "on_or_after": t } });
        }
        loop {
            let (status, page) = emu.post(&format!("/v1/data_sources/{ds}/query"), v, body.clone()).await;
            assert_eq!(status, 200, "{page}");
            if let Some(last) = page["results"].as_array().and_then(|r| r.last()) {
                since = last["created_time"].as_str().map(str::to_string);
            }
            if page["has_more"] == true {
                body["start_cursor"] = page["next_cursor"].clone();
                continue;
            }
            if page["request_status"]["type"] != "incomplete" {
                return;
            }
            break;
        }
    }
}

/// Walk the whole small workspace with the formula's rules, then compare the call counter with `/minimum`.
async fn hand_walk(emu: &Emu, v: &str) -> u64 {
    emu.reset_stats().await;
    let results = emu.post_all("/v1/search", v, json!({})).await;
    let mut pages = Vec::new();
    let mut databases = Vec::new();
    let mut sources = Vec::new();
    for r in &results {
        match r["object"].as_str().unwrap() {
            "page" => pages.push(r["id"].as_str().unwrap().to_string()),
            "database" => databases.push(r["id"].as_str().unwrap().to_string()),
            "data_source" => {
                sources.push(r["id"].as_str().unwrap().to_string());
                let db = r["parent"]["database_id"].as_str().unwrap().to_string();
                if !databases.contains(&db) {
                    databases.push(db);
                }
            }
            other => panic!("unexpected {other}"),
        }
    }
    if v == V2022 {
        for db in &databases {
            let (status, first) = emu.post(&format!("/v1/databases/{db}/query"), v, json!({})).await;
            if status == 200 && first["has_more"] == true {
                let mut body = json!({ "start_cursor": first["next_cursor"] });
                loop {
                    let (_, next) = emu.post(&format!("/v1/databases/{db}/query"), v, body.clone()).await;
                    if next["has_more"] != true {
                        break;
                    }
                    body["start_cursor"] = next["next_cursor"].clone();
                }
            }
        }
    } else {
        for db in &databases {
            assert_eq!(emu.get(&format!("/v1/databases/{db}"), v).await.0, 200);
        }
        for ds in &sources {
            windowed_query(emu, ds, v).await;
        }
    }
    let mut visited = HashSet::new();
    for p in &pages {
        let mut stack = vec![p.clone()];
        while let Some(id) = stack.pop() {
            if !visited.insert(id.clone()) {
                continue;
            }
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("/v1/blocks/{id}/children?start_cursor={c}"),
                    None => format!("/v1/blocks/{id}/children"),
                };
                let (status, list) = emu.get(&path, v).await;
                if status != 200 {
                    break;
                }
                for b in list["results"].as_array().unwrap() {
                    let t = b["type"].as_str().unwrap();
                    if b["has_children"] == true && t != "child_page" && t != "child_database" {
                        stack.push(b["id"].as_str().unwrap().to_string());
                    }
                }
                match list["next_cursor"].as_str() {
                    Some(c) if list["has_more"] == true => cursor = Some(c.to_string()),
                    _ => break,
                }
            }
        }
    }
    emu.get_all("/v1/users", v).await;
    emu.stats_total().await
}

#[tokio::test]
async fn minimum_calls_match_a_hand_walk() {
    for (ws, versions) in [(WorkspaceKind::Small, vec![V2025, V2022, V2026]), (WorkspaceKind::Edge, vec![V2025])] {
        let emu = Emu::start(ws).await;
        for v in versions {
            let min = emu.control_get(&format!("minimum?version={v}")).await;
            let walked = hand_walk(&emu, v).await;
            assert_eq!(walked, min["total"].as_u64().unwrap(), "{ws:?} {v}: {min}");
        }
    }
}

#[tokio::test]
async fn expected_and_counts_describe_the_workspace() {
    let emu = Emu::start(WorkspaceKind::Edge).await;
    let counts = emu.control_get("counts").await;
    assert_eq!(counts["workspace"], "edge");
    assert!(counts["largest_data_source_rows"].as_u64().unwrap() > 10_000);
    assert!(counts["largest_children_list"].as_u64().unwrap() > 10_000);
    let exp = emu.control_get("expected").await;
    let pages = exp["pages"].as_array().unwrap();
    assert_eq!(pages.len() as u64, counts["listed_pages"].as_u64().unwrap() + counts["listed_rows"].as_u64().unwrap());
    let every = pages.iter().find(|p| p["title"] == "Every block type").unwrap();
    let body = every["body"].as_str().unwrap();
    assert!(body.contains("Edge paragraph text"));
    assert!(body.contains("Synced content marker syncedfalcon"));
    assert!(body.contains("cell tablemarker one"));
    let deep = pages.iter().find(|p| p["title"] == "Deep nesting").unwrap();
    assert!(deep["body"].as_str().unwrap().ends_with("Deepest marker deepmarker"));
    assert!(every["files"].as_array().unwrap().iter().any(|f| f["expected_text"] == "zebrapdf quantum lighthouse"));
    let one = emu.control_get(&format!("expected?page_id={}", every["id"].as_str().unwrap())).await;
    assert_eq!(one["pages"].as_array().unwrap().len(), 1);
    // Reset regenerates a workspace.
    let reset = emu.control_post("reset", json!({ "workspace": "small", "seed": 7 })).await;
    assert_eq!(reset["workspace"], "small");
    assert_eq!(emu.control_get("counts").await["workspace"], "small");
}

#[tokio::test]
async fn databases_and_comments_are_added_through_the_control_api() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    let page = emu.control_post("pages", json!({ "title": "Host page" })).await;
    let page_id = page["id"].as_str().unwrap();
    let db = emu
        .control_post(
            "databases",
            json!({ "title": "External tasks", "parent": { "page_id": page_id },
                    "properties": { "Task completed": "checkbox", "Stage": { "type": "select", "options": ["a", "b"] } } }),
        )
        .await;
    let (db_id, ds) = (db["id"].as_str().unwrap(), db["data_source_id"].as_str().unwrap());
    for (title, done) in [("one", true), ("two", false), ("three", true)] {
        emu.control_post(
            &format!("data_sources/{ds}/rows"),
            json!({ "title": title, "properties": { "Task completed": done, "Stage": "a" } }),
        )
        .await;
    }
    // Bad specs are refused.
    for bad in [
        json!({ "title": "x", "properties": { "A": "telepathy" } }),
        json!({ "title": "x", "parent": { "data_source_id": ds } }),
    ] {
        let (status, _) = emu.control(reqwest::Method::POST, "databases", Some(bad)).await;
        assert_eq!(status, 400);
    }

    let filter = json!({ "filter": { "property": "Task completed", "checkbox": { "equals": true } } });
    let done = emu.post_all(&format!("/v1/data_sources/{ds}/query"), V2025, filter.clone()).await;
    let mut titles: Vec<&str> =
        done.iter().map(|r| r["properties"]["Name"]["title"][0]["plain_text"].as_str().unwrap()).collect();
    titles.sort();
    assert_eq!(titles, vec!["one", "three"]);
    let done_2022 = emu.post_all(&format!("/v1/databases/{db_id}/query"), "2022-06-28", filter).await;
    assert_eq!(done_2022.len(), 2);
    let (status, ds_obj) = emu.get(&format!("/v1/data_sources/{ds}"), V2025).await;
    assert_eq!(status, 200);
    assert_eq!(ds_obj["properties"]["Task completed"]["type"], "checkbox");
    assert_eq!(ds_obj["properties"]["Name"]["type"], "title");
    let found = emu
        .post_all(
            "/v1/search",
            V2025,
            json!({ "query": "external TASKS", "filter": { "property": "object", "value": "data_source" } }),
        )
        .await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["parent"]["database_id"], db_id);
    // Inline under its page, as a child_database block.
    let children = emu.get_all(&format!("/v1/blocks/{page_id}/children"), V2025).await;
    assert_eq!(children[0]["type"], "child_database");
    assert_eq!(children[0]["id"], db_id);
    let expected = emu.control_get("expected").await;
    assert!(expected["databases"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["id"] == db_id && d["data_sources"][0]["rows"] == 3));

    // Comments: unresolved ones are listed on their page or block.
    let c = emu
        .control_post(
            "comments",
            json!({ "parent": { "page_id": page_id }, "text": "hello", "at": "2025-05-05T05:05:30Z" }),
        )
        .await;
    emu.control_post("comments", json!({ "parent": { "page_id": page_id }, "text": "done", "resolved": true })).await;
    let listed = emu.get_all(&format!("/v1/comments?block_id={page_id}"), V2025).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], c["id"]);
    assert_eq!(listed[0]["created_time"], "2025-05-05T05:05:00.000Z");
    assert_eq!(listed[0]["display_name"]["resolved_name"], c["author_name"]);
    let (status, _) = emu
        .control(reqwest::Method::POST, "comments", Some(json!({ "parent": { "type": "workspace" }, "text": "x" })))
        .await;
    assert_eq!(status, 400);
}

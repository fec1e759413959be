//! The Notion API surface: pagination, version-dependent shapes, the row cap, search order, errors.

mod common;

use std::collections::HashSet;

use common::*;
use notion_emulator::WorkspaceKind;
use serde_json::{json, Value};

async fn page_id_by_title(emu: &Emu, title: &str) -> String {
    let results = emu
        .post_all("/v1/search", V2025, json!({ "query": title, "filter": { "property": "object", "value": "page" } }))
        .await;
    let hit = results.iter().find(|r| title_of(r) == title).unwrap_or_else(|| panic!("no page titled {title}"));
    hit["id"].as_str().unwrap().to_string()
}

async fn data_source_by_title(emu: &Emu, title: &str) -> Value {
    let results = emu
        .post_all(
            "/v1/search",
            V2025,
            json!({ "query": title, "filter": { "property": "object", "value": "data_source" } }),
        )
        .await;
    results.into_iter().find(|r| title_of(r) == title).unwrap_or_else(|| panic!("no data source titled {title}"))
}

#[tokio::test]
async fn children_paginate_past_100_with_cursors() {
    let emu = Emu::start(WorkspaceKind::Edge).await;
    let huge = page_id_by_title(&emu, "Huge page").await;
    let (status, first) = emu.get(&format!("/v1/blocks/{huge}/children"), V2025).await;
    assert_eq!(status, 200);
    assert_eq!(first["object"], "list");
    assert_eq!(first["type"], "block");
    assert_eq!(first["block"], json!({}));
    assert_eq!(first["results"].as_array().unwrap().len(), 100);
    assert_eq!(first["has_more"], true);
    assert!(first["next_cursor"].is_string());

    let all = emu.get_all(&format!("/v1/blocks/{huge}/children"), V2025).await;
    assert_eq!(all.len(), 10_051);
    let ids: HashSet<&str> = all.iter().filter_map(|b| b["id"].as_str()).collect();
    assert_eq!(ids.len(), all.len(), "no duplicates across pages");
    assert_eq!(all[0]["paragraph"]["rich_text"][0]["plain_text"], "Huge paragraph 0");
    assert_eq!(all[10_049]["paragraph"]["rich_text"][0]["plain_text"], "Huge paragraph 10049");
    // Nested pagination: the toggle with 150 children.
    let toggle = all.last().unwrap();
    assert_eq!(toggle["type"], "toggle");
    assert_eq!(toggle["has_children"], true);
    let nested =
        emu.get_all(&format!("/v1/blocks/{}/children?page_size=40", toggle["id"].as_str().unwrap()), V2025).await;
    assert_eq!(nested.len(), 150);
    // Small page sizes work too.
    let (_, small) = emu.get(&format!("/v1/blocks/{huge}/children?page_size=7"), V2025).await;
    assert_eq!(small["results"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn shapes_follow_the_version() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    // 2022-06-28: search returns databases with properties; data source endpoints do not exist.
    let old = emu.post_all("/v1/search", V2022, json!({})).await;
    let dbs: Vec<&Value> = old.iter().filter(|r| r["object"] == "database").collect();
    assert!(!dbs.is_empty());
    assert!(old.iter().all(|r| r["object"] != "data_source"));
    let single = dbs.iter().find(|d| d["properties"].as_object().is_some_and(|p| !p.is_empty())).unwrap();
    assert!(single.get("data_sources").is_none());
    assert_eq!(single["archived"], false);
    let (status, body) = emu.get(&format!("/v1/data_sources/{}", single["id"].as_str().unwrap()), V2022).await;
    assert_error(status, &body, 400, "invalid_request_url");
    let (status, q) =
        emu.post(&format!("/v1/databases/{}/query", single["id"].as_str().unwrap()), V2022, json!({})).await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["type"], "page");
    for row in q["results"].as_array().unwrap() {
        assert_eq!(row["parent"]["type"], "database_id");
    }
    let (_, filtered) =
        emu.post("/v1/search", V2022, json!({ "filter": { "property": "object", "value": "database" } })).await;
    assert!(filtered["results"].as_array().unwrap().iter().all(|r| r["object"] == "database"));
    assert_eq!(filtered["type"], "page_or_database");

    // 2025-09-03: search returns data sources; databases list data sources and have no properties.
    let new =
        emu.post_all("/v1/search", V2025, json!({ "filter": { "property": "object", "value": "data_source" } })).await;
    assert!(!new.is_empty());
    assert!(new.iter().all(|r| r["object"] == "data_source"));
    let ds = &new[0];
    assert!(ds["properties"].as_object().is_some_and(|p| !p.is_empty()));
    let db_id = ds["parent"]["database_id"].as_str().unwrap();
    let (status, db) = emu.get(&format!("/v1/databases/{db_id}"), V2025).await;
    assert_eq!(status, 200);
    assert!(db.get("properties").is_none());
    assert!(db["data_sources"].as_array().unwrap().iter().any(|d| d["id"] == ds["id"]));
    let (status, body) = emu.post(&format!("/v1/databases/{db_id}/query"), V2025, json!({})).await;
    assert_error(status, &body, 400, "invalid_request_url");
    let (status, q) =
        emu.post(&format!("/v1/data_sources/{}/query", ds["id"].as_str().unwrap()), V2025, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(q["type"], "page_or_data_source");
    for row in q["results"].as_array().unwrap() {
        assert_eq!(row["parent"]["type"], "data_source_id");
        assert_eq!(row["parent"]["database_id"], db_id);
    }
    let (status, body) =
        emu.post("/v1/search", V2025, json!({ "filter": { "property": "object", "value": "database" } })).await;
    assert_error(status, &body, 400, "validation_error");

    // 2026-03-11: in_trash only.
    let (_, db26) = emu.get(&format!("/v1/databases/{db_id}"), V2026).await;
    assert_eq!(db26["in_trash"], false);
    assert!(db26.get("archived").is_none());
    let (_, db25) = emu.get(&format!("/v1/databases/{db_id}"), V2025).await;
    assert_eq!(db25["archived"], false);
}

#[tokio::test]
async fn multi_source_database_fails_in_2022() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    let sources =
        emu.post_all("/v1/search", V2025, json!({ "filter": { "property": "object", "value": "data_source" } })).await;
    let mut by_db = std::collections::HashMap::<String, usize>::new();
    for s in &sources {
        *by_db.entry(s["parent"]["database_id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let multi = by_db.iter().find(|(_, n)| **n == 2).map(|(id, _)| id.clone()).expect("a database with two sources");
    let (status, db) = emu.get(&format!("/v1/databases/{multi}"), V2025).await;
    assert_eq!(status, 200);
    assert_eq!(db["data_sources"].as_array().unwrap().len(), 2);
    let (status, body) = emu.post(&format!("/v1/databases/{multi}/query"), V2022, json!({})).await;
    assert_error(status, &body, 400, "validation_error");
    assert_eq!(body["message"], "Databases with multiple data sources are not supported in this API version.");
    let (status, body) = emu.get(&format!("/v1/databases/{multi}"), V2022).await;
    assert_error(status, &body, 400, "validation_error");
}

/// Read all rows of a data source the way the SDK's `iterateAllDataSourceRows` does: created_time ascending,
/// a new query from the last created_time whenever the cap is hit, de-duplicated by id.
async fn windowed_rows(emu: &Emu, ds: &str) -> (Vec<String>, usize, usize) {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    let mut windows = 0;
    let mut calls = 0;
    let mut since: Option<String> = None;
    loop {
        windows += 1;
        let mut body =
            json!({ "sorts": [{ "timestamp": "created_time", "direction": "ascending" }], "page_size": 100 });
        if let Some(t) = &since {
            body["filter"] = json!({ "timestamp": "created_time", "created_time": { "on_or_after": t } });
        }
        let mut last_created = None;
        let mut incomplete = false;
        loop {
            let (status, v) = emu.post(&format!("/v1/data_sources/{ds}/query"), V2025, body.clone()).await;
            calls += 1;
            assert_eq!(status, 200, "{v}");
            for r in v["results"].as_array().unwrap() {
                let id = r["id"].as_str().unwrap().to_string();
                last_created = Some(r["created_time"].as_str().unwrap().to_string());
                if seen.insert(id.clone()) {
                    order.push(id);
                }
            }
            if v["has_more"] == true {
                body["start_cursor"] = v["next_cursor"].clone();
                continue;
            }
            if v["request_status"]["type"] == "incomplete" {
                assert_eq!(v["request_status"]["incomplete_reason"], "query_result_limit_reached");
                assert!(v["next_cursor"].is_null());
                incomplete = true;
            }
            break;
        }
        if !incomplete {
            return (order, windows, calls);
        }
        since = last_created;
    }
}

#[tokio::test]
async fn row_cap_stops_at_10000_and_created_time_windows_resume() {
    let emu = Emu::start(WorkspaceKind::Edge).await;
    let ds = data_source_by_title(&emu, "Big table").await;
    let ds_id = ds["id"].as_str().unwrap().to_string();
    // A naive loop stops at 10,000 rows with request_status incomplete.
    let mut body = json!({});
    let mut naive = 0;
    let last = loop {
        let (status, v) = emu.post(&format!("/v1/data_sources/{ds_id}/query"), V2025, body.clone()).await;
        assert_eq!(status, 200);
        naive += v["results"].as_array().unwrap().len();
        if v["has_more"] != true {
            break v;
        }
        body["start_cursor"] = v["next_cursor"].clone();
    };
    assert_eq!(naive, 10_000);
    assert_eq!(last["has_more"], false);
    assert_eq!(
        last["request_status"],
        json!({ "type": "incomplete", "incomplete_reason": "query_result_limit_reached" })
    );

    emu.reset_stats().await;
    let (rows, windows, calls) = windowed_rows(&emu, &ds_id).await;
    assert_eq!(rows.len(), 10_250);
    assert_eq!(windows, 2);
    // Three rows per minute: the second window re-reads the last minute's rows.
    assert_eq!(calls, 103);
    assert_eq!(emu.stats_total().await, 103);

    // The 2022 legacy query has no cap.
    let db_id = ds["parent"]["database_id"].as_str().unwrap();
    let old = emu.post_all(&format!("/v1/databases/{db_id}/query"), V2022, json!({})).await;
    assert_eq!(old.len(), 10_250);
}

#[tokio::test]
async fn query_filters_and_sorts() {
    let emu = Emu::start(WorkspaceKind::Edge).await;
    let ds = data_source_by_title(&emu, "Big table").await;
    let path = format!("/v1/data_sources/{}/query", ds["id"].as_str().unwrap());
    let (status, v) =
        emu.post(&path, V2025, json!({ "filter": { "property": "Name", "title": { "equals": "Big row 42" } } })).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    let done = emu
        .post_all(
            &path,
            V2025,
            json!({ "filter": { "and": [
        { "property": "Done", "checkbox": { "equals": true } },
        { "property": "Status", "select": { "equals": "Done" } }
    ] } }),
        )
        .await;
    assert!(!done.is_empty() && done.len() < 10_250);
    for r in &done {
        assert_eq!(r["properties"]["Done"]["checkbox"], true);
        assert_eq!(r["properties"]["Status"]["select"]["name"], "Done");
    }
    let (_, desc) = emu
        .post(
            &path,
            V2025,
            json!({ "sorts": [{ "timestamp": "created_time", "direction": "descending" }], "page_size": 5 }),
        )
        .await;
    let times: Vec<&str> =
        desc["results"].as_array().unwrap().iter().map(|r| r["created_time"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);
    let (_, window) = emu
        .post(&path, V2025, json!({ "filter": { "timestamp": "created_time", "created_time": { "on_or_after": "2025-01-01T00:10:00.000Z" } }, "page_size": 3 }))
        .await;
    assert!(window["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["created_time"].as_str().unwrap() >= "2025-01-01T00:10:00.000Z"));
    assert_eq!(window["results"][0]["created_time"], "2025-01-01T00:10:00.000Z");
}

#[tokio::test]
async fn search_sorts_by_last_edited_time_stably() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    let body = json!({ "sort": { "timestamp": "last_edited_time", "direction": "descending" }, "page_size": 7 });
    let desc = emu.post_all("/v1/search", V2025, body).await;
    let asc = emu
        .post_all(
            "/v1/search",
            V2025,
            json!({ "sort": { "timestamp": "last_edited_time", "direction": "ascending" }, "page_size": 100 }),
        )
        .await;
    assert_eq!(desc.len(), asc.len());
    let key = |r: &Value| (r["last_edited_time"].as_str().unwrap().to_string(), r["id"].as_str().unwrap().to_string());
    let d: Vec<_> = desc.iter().map(key).collect();
    let mut expect = d.clone();
    expect.sort_by(|a, b| b.cmp(a));
    assert_eq!(d, expect, "descending by (last_edited_time, id)");
    let mut a: Vec<_> = asc.iter().map(key).collect();
    a.reverse();
    assert_eq!(a, d, "ascending is the exact reverse");
    let ids: HashSet<String> = d.iter().map(|k| k.1.clone()).collect();
    assert_eq!(ids.len(), d.len());
    // Every timestamp is rounded down to the minute.
    assert!(d.iter().all(|(t, _)| t.ends_with(":00.000Z")));
    // An edited page comes first.
    let victim = asc.iter().find(|r| r["object"] == "page").unwrap()["id"].as_str().unwrap();
    let (status, edited) = emu
        .control(reqwest::Method::PATCH, &format!("pages/{victim}"), Some(json!({ "title": "Freshly edited" })))
        .await;
    assert_eq!(status, 200, "{edited}");
    let (_, top) = emu
        .post(
            "/v1/search",
            V2025,
            json!({ "sort": { "timestamp": "last_edited_time", "direction": "descending" }, "page_size": 1 }),
        )
        .await;
    assert_eq!(top["results"][0]["id"], victim);
    // Query is a case-insensitive title match.
    let hits = emu.post_all("/v1/search", V2025, json!({ "query": "FRESHLY edited" })).await;
    assert_eq!(hits.len(), 1);
}

#[tokio::test]
async fn error_objects_for_bad_requests() {
    let emu = Emu::start(WorkspaceKind::Small).await;
    let unknown = "0b3b7c1e-0000-4000-8000-000000000000";
    for path in [
        format!("/v1/pages/{unknown}"),
        format!("/v1/blocks/{unknown}"),
        format!("/v1/blocks/{unknown}/children"),
        format!("/v1/databases/{unknown}"),
        format!("/v1/data_sources/{unknown}"),
        format!("/v1/users/{unknown}"),
        format!("/v1/comments?block_id={unknown}"),
    ] {
        let (status, body) = emu.get(&path, V2025).await;
        assert_error(status, &body, 404, "object_not_found");
    }
    let (status, body) = emu.post(&format!("/v1/data_sources/{unknown}/query"), V2025, json!({})).await;
    assert_error(status, &body, 404, "object_not_found");

    let (status, body) = emu.post("/v1/search", V2025, json!({ "start_cursor": "bogus" })).await;
    assert_error(status, &body, 400, "validation_error");
    assert!(body["message"].as_str().unwrap().starts_with("The start_cursor provided is invalid: "));
    let some_page =
        emu.post_all("/v1/search", V2025, json!({ "filter": { "property": "object", "value": "page" } })).await;
    let pid = some_page[0]["id"].as_str().unwrap();
    let (status, body) = emu.get(&format!("/v1/blocks/{pid}/children?start_cursor=abc"), V2025).await;
    assert_error(status, &body, 400, "validation_error");

    let (status, body) = emu.post("/v1/search", V2025, json!({ "page_size": 101 })).await;
    assert_error(status, &body, 400, "validation_error");
    let (status, body) = emu.get(&format!("/v1/blocks/{pid}/children?page_size=500"), V2025).await;
    assert_error(status, &body, 400, "validation_error");

    let ds =
        emu.post_all("/v1/search", V2025, json!({ "filter": { "property": "object", "value": "data_source" } })).await;
    let qpath = format!("/v1/data_sources/{}/query", ds[0]["id"].as_str().unwrap());
    for bad in [
        json!({ "filter": "nope" }),
        json!({ "filter": { "property": "Missing", "checkbox": { "equals": true } } }),
        json!({ "filter": { "timestamp": "created_time", "created_time": { "on_or_after": 12 } } }),
        json!({ "filter": { "or": { "a": 1 } } }),
        json!({ "sorts": [{ "timestamp": "created_time" }] }),
    ] {
        let (status, body) = emu.post(&qpath, V2025, bad.clone()).await;
        assert_error(status, &body, 400, "validation_error");
    }
    let r = emu
        .req(reqwest::Method::POST, &qpath, V2025)
        .header("content-type", "application/json")
        .body("{\"filter\": {")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_error(status, &body, 400, "invalid_json");

    let r = emu.http.get(emu.url("/v1/users")).bearer_auth(notion_emulator::DEFAULT_TOKEN).send().await.unwrap();
    let status = r.status().as_u16();
    assert_error(status, &r.json().await.unwrap(), 400, "missing_version");
    let r =
        emu.http.get(emu.url("/v1/users")).bearer_auth("wrong").header("Notion-Version", V2025).send().await.unwrap();
    let status = r.status().as_u16();
    assert_error(status, &r.json().await.unwrap(), 401, "unauthorized");
    let r = emu.http.get(emu.url("/v1/users")).header("Notion-Version", V2025).send().await.unwrap();
    let status = r.status().as_u16();
    assert_error(status, &r.json().await.unwrap(), 401, "unauthorized");
    let (status, body) = emu.get("/v1/pages/not-a-uuid", V2025).await;
    assert_error(status, &body, 400, "validation_error");
    let (status, body) = emu.get("/v1/no/such/endpoint", V2025).await;
    assert_error(status, &body, 400, "invalid_request_url");
}

#[tokio::test]
async fn edge_cases_are_served() {
    let emu = Emu::start(WorkspaceKind::Edge).await;
    let every = page_id_by_title(&emu, "Every block type").await;
    let blocks = emu.get_all(&format!("/v1/blocks/{every}/children"), V2026).await;
    let types: HashSet<&str> = blocks.iter().filter_map(|b| b["type"].as_str()).collect();
    for t in [
        "paragraph",
        "heading_4",
        "toggle",
        "synced_block",
        "table",
        "column_list",
        "child_page",
        "child_database",
        "meeting_notes",
        "unsupported",
        "ai_block",
        "link_to_page",
        "file",
        "pdf",
        "equation",
        "code",
    ] {
        assert!(types.contains(t), "missing {t}");
    }
    let old = emu.get_all(&format!("/v1/blocks/{every}/children"), V2025).await;
    assert!(old.iter().any(|b| b["type"] == "transcription"));
    assert!(old.iter().all(|b| b["type"] != "meeting_notes"));

    // Synced reference lists the original's children.
    let synced: Vec<&Value> = blocks.iter().filter(|b| b["type"] == "synced_block").collect();
    let original = synced.iter().find(|b| b["synced_block"]["synced_from"].is_null()).unwrap();
    let reference = synced.iter().find(|b| !b["synced_block"]["synced_from"].is_null()).unwrap();
    assert_eq!(reference["synced_block"]["synced_from"]["block_id"], original["id"]);
    let a = emu.get_all(&format!("/v1/blocks/{}/children", original["id"].as_str().unwrap()), V2025).await;
    let b = emu.get_all(&format!("/v1/blocks/{}/children", reference["id"].as_str().unwrap()), V2025).await;
    assert_eq!(a, b);
    assert_eq!(a[0]["paragraph"]["rich_text"][0]["plain_text"], "Synced content marker syncedfalcon");

    // ai_block children are refused; unshared links 404.
    let ai = blocks.iter().find(|b| b["type"] == "ai_block").unwrap();
    let (status, body) = emu.get(&format!("/v1/blocks/{}/children", ai["id"].as_str().unwrap()), V2025).await;
    assert_error(status, &body, 400, "validation_error");
    let links: Vec<&Value> = blocks.iter().filter(|b| b["type"] == "link_to_page").collect();
    let mut not_found = 0;
    for l in &links {
        let (status, _) =
            emu.get(&format!("/v1/pages/{}", l["link_to_page"]["page_id"].as_str().unwrap()), V2025).await;
        if status == 404 {
            not_found += 1;
        }
    }
    assert_eq!(not_found, 2);
    let hidden =
        blocks.iter().find(|b| b["type"] == "child_page" && b["child_page"]["title"] == "Hidden child page").unwrap();
    let (status, body) = emu.get(&format!("/v1/pages/{}", hidden["id"].as_str().unwrap()), V2025).await;
    assert_error(status, &body, 404, "object_not_found");

    // Trashed objects: not in search, but GET returns them with in_trash.
    let everything = emu.post_all("/v1/search", V2025, json!({ "query": "Trashed" })).await;
    assert!(everything.iter().all(|r| r["in_trash"] == false));
    let trashed = emu.control_get("expected").await["not_indexed"]["trashed_pages"][0].as_str().unwrap().to_string();
    let (status, page) = emu.get(&format!("/v1/pages/{trashed}"), V2025).await;
    assert_eq!(status, 200);
    assert_eq!(page["in_trash"], true);
    assert_eq!(page["archived"], true);

    // Comments: unresolved only.
    let comments = emu.get_all(&format!("/v1/comments?block_id={every}"), V2025).await;
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["rich_text"][0]["plain_text"], "Page comment commentmarker");

    // Users: people and bots.
    let users = emu.get_all("/v1/users?page_size=10", V2025).await;
    assert!(users.iter().any(|u| u["type"] == "bot") && users.iter().any(|u| u["type"] == "person"));
    let (_, me) = emu.get("/v1/users/me", V2025).await;
    assert_eq!(me["type"], "bot");
    assert!(me["bot"]["workspace_name"].is_string());

    // Paginated property endpoint: 30 people though the page shows 25.
    let crowded = emu.post_all("/v1/search", V2025, json!({ "query": "Row with 30 people" })).await;
    let row = &crowded[0];
    assert_eq!(row["properties"]["Owner"]["people"].as_array().unwrap().len(), 25);
    let prop_id = row["properties"]["Owner"]["id"].as_str().unwrap();
    let people = emu
        .get_all(&format!("/v1/pages/{}/properties/{}?page_size=10", row["id"].as_str().unwrap(), prop_id), V2025)
        .await;
    assert_eq!(people.len(), 30);
    let (status, title) = emu.get(&format!("/v1/pages/{}/properties/title", row["id"].as_str().unwrap()), V2025).await;
    assert_eq!(status, 200);
    assert_eq!(title["results"][0]["title"]["plain_text"], "Row with 30 people");

    // Unicode and empty titles.
    let all_pages =
        emu.post_all("/v1/search", V2025, json!({ "filter": { "property": "object", "value": "page" } })).await;
    let titles: HashSet<String> = all_pages.iter().map(title_of).collect();
    assert!(titles.contains("Ünïcödé ✓ 日本語のページ 🚀"));
    assert!(titles.contains(""));
}

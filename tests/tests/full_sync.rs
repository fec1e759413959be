//! Full sync end to end: planner → SQS (LocalStack) → workers → search index → reaper, against
//! an emulated Notion. Needs `make up` (search engine and LocalStack); `make test` does it.

use std::collections::HashMap;
use std::time::Duration;

use e2e::notion_emulator::WorkspaceKind;
use e2e::Stack;
use reqwest::Method;
use serde_json::{json, Map, Value};
use shared::runs::RunState;

fn text(doc: &Map<String, Value>, field: &str) -> String {
    doc.get(field).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Collapses whitespace and the table-cell separator so texts compare by words.
fn words(s: &str) -> String {
    s.replace(" | ", " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True when every needle occurs in `haystack`, in order.
fn in_order(haystack: &str, needles: &[String]) -> Result<(), String> {
    let hay = words(haystack);
    let mut from = 0;
    for needle in needles.iter().map(|n| words(n)).filter(|n| !n.is_empty()) {
        match hay[from..].find(&needle) {
            Some(at) => from += at + needle.len(),
            None => return Err(format!("{needle:?} missing or out of order")),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn medium_workspace_full_sync_then_deletions() {
    let stack = Stack::start(WorkspaceKind::Medium, &[]).await.expect("stack (is `make up` running?)");
    let expected = stack.control(Method::GET, "expected", None).await.unwrap();
    let run = stack.sync("full").await.unwrap();
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    let docs = stack.documents().await.unwrap();

    // Every page and row, with its fields and its whole text in order.
    let pages = expected["pages"].as_array().unwrap();
    assert!(pages.len() > 10_000, "medium has over 10,000 pages and rows");
    let mut block_pages: HashMap<String, Vec<String>> = HashMap::new();
    for page in pages {
        let id = page["id"].as_str().unwrap();
        let doc = docs.get(id).unwrap_or_else(|| panic!("page {id} not indexed"));
        assert_eq!(text(doc, "object"), "page");
        assert_eq!(text(doc, "id"), id);
        assert_eq!(text(doc, "title"), page["title"].as_str().unwrap(), "title of {id}");
        assert_eq!(text(doc, "page_id"), id);
        assert!(text(doc, "url").starts_with("http"), "url of {id}");
        assert!(doc.get("_timestamp").and_then(Value::as_str).is_some_and(|t| t.ends_with('Z') || t.contains('+')));
        // A row's parent is its data source (2025-09-03); other pages name their parent.
        if let Some(parent) = page["data_source_id"].as_str().or(page["parent_id"].as_str()) {
            assert_eq!(text(doc, "parent_id"), parent, "parent of {id}");
        }
        let details: Value = serde_json::from_str(&text(doc, "details")).expect("details is JSON");
        assert!(details.is_object());
        let body_parts: Vec<String> =
            page["blocks"].as_array().unwrap().iter().map(|b| b["text"].as_str().unwrap().to_string()).collect();
        in_order(&text(doc, "body"), &body_parts).unwrap_or_else(|e| panic!("body of page {id}: {e}"));
        for block in page["blocks"].as_array().unwrap() {
            block_pages.entry(block["id"].as_str().unwrap().to_string()).or_default().push(id.to_string());
        }
    }
    // Every block once, owned by its page (a synced block's copies show on several pages).
    let mut blocks = 0;
    for page in pages {
        for block in page["blocks"].as_array().unwrap() {
            let id = block["id"].as_str().unwrap();
            if matches!(block["type"].as_str(), Some("child_page" | "child_database")) {
                continue; // indexed as the page / database itself, under the same id
            }
            let doc = docs.get(id).unwrap_or_else(|| panic!("block {id} not indexed"));
            assert_eq!(text(doc, "object"), "block");
            assert_eq!(text(doc, "type"), block["type"].as_str().unwrap());
            assert!(block_pages[id].contains(&text(doc, "page_id")), "page_id of block {id}");
            assert!(!text(doc, "parent_id").is_empty());
            assert!(words(&text(doc, "body")).contains(&words(block["text"].as_str().unwrap())), "body of block {id}");
            blocks += 1;
        }
    }
    assert!(blocks > 40_000, "{blocks} blocks checked");
    for db in expected["databases"].as_array().unwrap() {
        let doc = &docs[db["id"].as_str().unwrap()];
        assert_eq!(text(doc, "object"), "database");
        assert_eq!(text(doc, "title"), db["title"].as_str().unwrap());
        for ds in db["data_sources"].as_array().unwrap() {
            assert_eq!(text(&docs[ds["id"].as_str().unwrap()], "object"), "data_source");
        }
    }
    for user in expected["users"].as_array().unwrap().iter().filter(|u| u["type"] == "person") {
        assert_eq!(text(&docs[user["id"].as_str().unwrap()], "title"), user["name"].as_str().unwrap());
    }
    for id in expected["not_indexed"]["trashed_pages"]
        .as_array()
        .unwrap()
        .iter()
        .chain(expected["not_indexed"]["unshared"].as_array().unwrap())
    {
        assert!(!docs.contains_key(id.as_str().unwrap()), "{id} should not be indexed");
    }

    // Second full sync after deletions in Notion: exactly those documents go.
    let plain: Vec<&Value> = pages
        .iter()
        .filter(|p| !p["is_row"].as_bool().unwrap_or(false) && p["blocks"].as_array().unwrap().len() > 3)
        .collect();
    let deleted_page = plain[0]["id"].as_str().unwrap().to_string();
    let trashed_page = plain[1]["id"].as_str().unwrap().to_string();
    let block_owner = plain[2];
    let removed_block = block_owner["blocks"][0]["id"].as_str().unwrap().to_string();
    stack.control(Method::DELETE, &format!("pages/{deleted_page}"), None).await.unwrap();
    stack.control(Method::POST, &format!("pages/{trashed_page}/trash"), None).await.unwrap();
    stack.control(Method::DELETE, &format!("blocks/{removed_block}"), None).await.unwrap();
    // And 1 % of the rows, deleted in Notion.
    let rows: Vec<String> = pages
        .iter()
        .filter(|p| p["is_row"].as_bool().unwrap_or(false))
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let deleted_rows: Vec<String> = rows.iter().step_by(100).cloned().collect();
    for row in &deleted_rows {
        stack.control(Method::DELETE, &format!("pages/{row}"), None).await.unwrap();
    }
    stack.reset_api_calls().await.unwrap();

    let second = stack.sync("full").await.unwrap();
    assert_eq!(second.state, RunState::Completed);
    let after = stack.documents().await.unwrap();
    let mut removed: Vec<String> = docs.keys().filter(|id| !after.contains_key(*id)).cloned().collect();
    removed.sort();
    // Stale removal checked each unseen page, database and data source with Notion first: one call each.
    let verify_calls = verification_calls(&stack, second.id).await;
    let unseen = removed
        .iter()
        .filter(|id| matches!(text(&docs[*id], "object").as_str(), "page" | "database" | "data_source"))
        .count();
    assert_eq!(verify_calls as usize, unseen, "one verification call per unseen object");
    println!(
        "RELIABILITY verify-medium: {} rows (1 %) + 2 pages deleted: {unseen} unseen objects verified with {verify_calls} calls = {:.2} % of the full sync's {} calls; {} documents removed",
        deleted_rows.len(),
        100.0 * verify_calls as f64 / stack.api_calls().await.unwrap() as f64,
        stack.api_calls().await.unwrap(),
        removed.len()
    );
    // What goes: the deleted and trashed pages and rows, the removed block, and everything below them
    // (sub-pages, their databases and rows, blocks), following `parent_id`.
    let roots: Vec<String> =
        [deleted_page.clone(), trashed_page.clone(), removed_block.clone()].into_iter().chain(deleted_rows).collect();
    let mut want: Vec<String> =
        roots.iter().cloned().chain(roots.iter().flat_map(|r| descendants_of(&docs, r))).collect();
    want.sort();
    want.dedup();
    assert_eq!(removed, want, "exactly the deleted objects are removed");
    assert_eq!(second.counts.deleted as usize, want.len());
    stack.cleanup().await;
}

/// Notion calls of a run's verification tasks.
async fn verification_calls(stack: &Stack, run_id: u64) -> u64 {
    let mut calls = 0;
    for i in 0.. {
        match stack.ctx.runs.task(run_id, &format!("verify:{i}")).await.unwrap() {
            Some(task) => calls += task.api_calls,
            None => return calls,
        }
    }
    calls
}

/// Documents whose parent chain leads to `root`.
fn descendants_of(docs: &HashMap<String, Map<String, Value>>, root: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut frontier = vec![root.to_string()];
    while let Some(parent) = frontier.pop() {
        for (id, doc) in docs {
            if text(doc, "parent_id") == parent {
                out.push(id.clone());
                frontier.push(id.clone());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_that_vanishes_mid_sync_is_removed_and_the_run_completes() {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.unwrap();
    assert_eq!(stack.sync("full").await.unwrap().state, RunState::Completed);
    let before = stack.documents().await.unwrap();
    // Pages that are not rows, without sub-pages (a sub-page goes with its parent in Notion).
    let pages: Vec<String> = before
        .iter()
        .filter(|(_, d)| text(d, "object") == "page" && d["parent"]["type"] != "data_source_id")
        .filter(|(id, _)| descendants_of(&before, id).iter().all(|d| text(&before[d], "object") == "block"))
        .map(|(id, _)| id.clone())
        .collect();

    // Trash one page before planning (search no longer lists it: stale, verified, removed), then make one
    // planned page unreadable after planning (its own children answer 404: it vanished mid-run).
    let (vanishing, trashed) = (&pages[0], &pages[1]);
    stack.control(Method::POST, &format!("pages/{trashed}/trash"), None).await.unwrap();
    let planned = stack.invoker().invoke("planner", json!({"kind": "full"})).await.unwrap();
    let run_id = planned["id"].as_u64().unwrap();
    stack.control(Method::POST, &format!("pages/{vanishing}/unshare"), None).await.unwrap();
    let run = stack.pump(run_id).await.unwrap();

    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert_eq!(run.counts.failed, 0);
    assert!(run.warnings.iter().any(|w| w.contains(vanishing.as_str()) && w.contains("404")), "{:?}", run.warnings);
    let after = stack.documents().await.unwrap();
    for page in [vanishing, trashed] {
        let mut gone = descendants_of(&before, page);
        gone.push(page.clone());
        for id in &gone {
            assert!(!after.contains_key(id), "{id} (of page {page}) is still indexed");
        }
    }
    let kept = before.keys().filter(|id| after.contains_key(*id)).count();
    let removed = descendants_of(&before, vanishing).len() + descendants_of(&before, trashed).len() + 2;
    assert_eq!(kept + removed, before.len(), "nothing else is removed");
    assert!(stack.dlq_bodies().await.unwrap().is_empty(), "a vanished page is not a failure: nothing in the DLQ");
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_task_twice_leaves_the_index_identical() {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.unwrap();
    let run = stack.sync("full").await.unwrap();
    let before = stack.documents().await.unwrap();
    // A page without file blocks: a file block's raw signed URL changes with every read.
    let has_files = |id: &str| before.values().any(|b| text(b, "page_id") == id && b.contains_key("attachment"));
    let page = before
        .values()
        .find(|d| text(d, "object") == "page" && !text(d, "body").is_empty() && !has_files(&text(d, "id")))
        .unwrap();
    let page_id = text(page, "id");
    let message = shared::task::TaskMessage::new(
        run.id,
        shared::task::RunKind::Full,
        format!("p:{page_id}"),
        shared::task::Task::Page {
            page_id: page_id.clone(),
            page: None,
            path: page["path"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect(),
        },
    );
    for attempt in 1..=2 {
        shared::sync::worker::handle_message(&stack.ctx, &message.encode(), attempt, None).await.unwrap();
    }
    let after = stack.documents().await.unwrap();
    assert_eq!(before.len(), after.len());
    for (id, doc) in &before {
        assert_eq!(Some(doc), after.get(id), "document {id} changed");
    }
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_page_too_big_for_one_invocation_completes_through_continuations() {
    let mut stack = Stack::start(WorkspaceKind::Edge, &[]).await.unwrap();
    stack.invocation_budget = Some(Duration::from_millis(300));
    let expected = stack.control(Method::GET, "expected", None).await.unwrap();
    let big = expected["pages"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|p| p["blocks"].as_array().unwrap().len())
        .unwrap()
        .clone();
    let big_id = big["id"].as_str().unwrap();
    assert!(big["blocks"].as_array().unwrap().len() > 10_000);

    // A run of just this page, walked by invocations of 300 ms each.
    let run = stack.ctx.runs.create_run(shared::task::RunKind::Full).await.unwrap();
    let page = stack.ctx.notion.get_page(big_id).await.unwrap();
    let task = shared::task::TaskMessage::new(
        run.id,
        run.kind,
        format!("p:{big_id}"),
        shared::task::Task::Page { page_id: big_id.to_string(), page: Some(page), path: vec![] },
    );
    stack.ctx.runs.tasks_queued(run.id, std::slice::from_ref(&task)).await.unwrap();
    stack.ctx.queue.send_tasks(std::slice::from_ref(&task)).await.unwrap();
    stack.ctx.runs.planning_done(run.id, 1).await.unwrap();
    stack.ctx.queue.send_finalize(&shared::task::FinalizeMessage::new(run.id), 1).await.unwrap();
    let run = stack.pump(run.id).await.unwrap();
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    let continuation = stack.ctx.runs.task(run.id, &format!("p:{big_id}:c1")).await.unwrap();
    assert!(continuation.is_some(), "the big page was handed on at least once");
    let docs = stack.documents().await.unwrap();
    let body_parts: Vec<String> =
        big["blocks"].as_array().unwrap().iter().map(|b| b["text"].as_str().unwrap().to_string()).collect();
    in_order(&text(&docs[big_id], "body"), &body_parts).unwrap();
    for block in big["blocks"].as_array().unwrap() {
        assert!(docs.contains_key(block["id"].as_str().unwrap()), "block {} missing", block["id"]);
    }
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_messages_end_in_the_dlq_never_dropped() {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.unwrap();
    let bodies = [
        "not json".to_string(),
        json!({"v": 99, "run_id": 1, "task_id": "x", "run_kind": "full", "task": {"type": "users"}}).to_string(),
        json!({"v": 1, "run_id": 1, "task_id": "x", "run_kind": "full", "task": {"type": "teleport"}}).to_string(),
    ];
    for body in &bodies {
        stack.sqs.send_message().queue_url(&stack.options.work_queue_url).message_body(body).send().await.unwrap();
    }
    let pump = local_runner::Pump {
        sqs: stack.sqs.clone(),
        invoker: stack.invoker(),
        retry_delay_seconds: 0,
        delivered: Default::default(),
        failed: Default::default(),
    };
    let mut dlq = Vec::new();
    for _ in 0..30 {
        pump.pump_once(&stack.options.work_queue_url, "worker", 1).await.unwrap();
        dlq.extend(stack.dlq_bodies().await.unwrap());
        if dlq.len() == bodies.len() {
            break;
        }
    }
    dlq.sort();
    let mut want = bodies.to_vec();
    want.sort();
    assert_eq!(dlq, want, "every bad message reaches the DLQ unchanged");
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_token_fails_the_run_and_deletes_nothing() {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.unwrap();
    assert_eq!(stack.sync("full").await.unwrap().state, RunState::Completed);
    let before = stack.documents().await.unwrap();
    stack.control(Method::POST, "revoke", Some(json!({"token": e2e::notion_emulator::DEFAULT_TOKEN}))).await.unwrap();
    let err = stack.sync("full").await.expect_err("planning must fail");
    assert!(
        format!("{err:#}").contains("401") || format!("{err:#}").to_lowercase().contains("unauthorized"),
        "{err:#}"
    );
    let runs = stack.ctx.runs.recent(1).await.unwrap();
    assert_eq!(runs[0].state, RunState::Failed);
    assert!(runs[0].abort_reason.as_deref().unwrap_or_default().contains("planning failed"), "{:?}", runs[0]);
    assert_eq!(stack.documents().await.unwrap().len(), before.len());
    stack.cleanup().await;
}

#[test]
fn missing_or_invalid_settings_are_named() {
    let base: HashMap<String, String> = [
        ("WORK_QUEUE_URL", "http://127.0.0.1:4566/000000000000/q"),
        ("FINALIZE_QUEUE_URL", "http://127.0.0.1:4566/000000000000/f"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert!(shared::config::Settings::from_map(&base).is_ok());
    for (name, value) in
        [("NOTION_RATE", "-1"), ("NOTION_VERSION", "2023-01-01"), ("SEARCH_URL", "not a url"), ("WORK_QUEUE_URL", "")]
    {
        let mut vars = base.clone();
        vars.insert(name.to_string(), value.to_string());
        let err = shared::config::Settings::from_map(&vars).unwrap_err().to_string();
        assert!(err.contains(name), "{name}: {err}");
    }
    let err = shared::secrets::Secrets::from_json(r#"{"search_username": "elastic"}"#).unwrap_err().to_string();
    assert!(err.contains("notion_token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_closes_right_after_its_last_task_not_at_the_next_delayed_check() {
    // The planner's finalize message waits 60 s (the AWS default); the worker that finishes the last task sends
    // its own, undelayed one, and exactly one reaper closes the run with the full counts.
    let stack = Stack::start(WorkspaceKind::Small, &[("FINALIZE_DELAY_SECONDS", "60")]).await.unwrap();
    let started = std::time::Instant::now();
    let run = stack.sync("full").await.unwrap();
    let took = started.elapsed();
    assert_eq!(run.state, RunState::Completed);
    assert!(took < Duration::from_secs(30), "closed after {took:?}");
    let documents = stack.documents().await.unwrap();
    assert_eq!(run.counts.indexed, documents.len() as u64);
    stack.cleanup().await;
}

//! Scope on every path (issue 12, item 3, and the `page.deleted` re-check): incremental and webhook runs index only
//! what the configuration selects (`pages`, `databases`, advanced rules), as a full run would; what they reach out
//! of scope is ignored, and its own documents removed if an older scope indexed them; `page.deleted` removes only
//! what Notion confirms gone. Webhook runs are made here as the API makes them (`tasks_for_event`, the run record,
//! SQS), without the handshake. Needs `make up`.

use std::collections::HashMap;

use e2e::notion_emulator::WorkspaceKind;
use e2e::Stack;
use reqwest::Method;
use serde_json::{json, Map, Value};
use shared::runs::{RunRecord, RunState};
use shared::task::{FinalizeMessage, RunKind, TaskMessage};
use shared::webhook::{EntityRef, WebhookEvent};

type Docs = HashMap<String, Map<String, Value>>;

fn text(doc: &Map<String, Value>, field: &str) -> String {
    doc.get(field).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

/// Documents that belong to page `id` (the page and its blocks).
fn owned_by(docs: &Docs, id: &str) -> usize {
    docs.iter().filter(|(doc_id, d)| doc_id.as_str() == id || text(d, "page_id") == id).count()
}

/// Whether some document of page `id` (the page or a block) holds `marker`.
fn holds(docs: &Docs, id: &str, marker: &str) -> bool {
    docs.iter()
        .any(|(doc_id, d)| (doc_id.as_str() == id || text(d, "page_id") == id) && text(d, "body").contains(marker))
}

async fn post(stack: &Stack, path: &str, body: Value) -> Value {
    stack.control(Method::POST, path, Some(body)).await.unwrap_or_else(|e| panic!("POST {path}: {e:#}"))
}

async fn page(stack: &Stack, parent: Option<&str>, title: &str, text: &str) -> String {
    let parent = match parent {
        Some(p) => json!({"type": "page_id", "page_id": p}),
        None => json!({"type": "workspace"}),
    };
    let blocks = json!([{"type": "paragraph", "text": text}]);
    str_of(&post(stack, "pages", json!({"parent": parent, "title": title, "blocks": blocks})).await["id"])
}

async fn edit(stack: &Stack, id: &str, body: Value) {
    stack.control(Method::PATCH, &format!("pages/{id}"), Some(body)).await.unwrap();
}

/// Pages and a database of their own, on top of the generated workspace.
struct Fixture {
    root: String,
    child: String,
    outside: String,
    outside_child: String,
    db: String,
    ds: String,
    done_row: String,
    open_row: String,
}

async fn fixture(stack: &Stack) -> Fixture {
    let root = page(stack, None, "Scope Root", "root text").await;
    let child = page(stack, Some(&root), "Scope Child", "child text").await;
    let outside = page(stack, None, "Scope Outside", "outside text").await;
    let outside_child = page(stack, Some(&outside), "Scope Outside Child", "outside child text").await;
    let db = post(stack, "databases", json!({"title": "Scope Tasks", "properties": {"Done": "checkbox"}})).await;
    let (db, ds) = (str_of(&db["id"]), str_of(&db["data_source_id"]));
    let mut rows = Vec::new();
    for (title, done) in [("Done task", true), ("Open task", false)] {
        let body = json!({"title": title, "properties": {"Done": done},
            "blocks": [{"type": "paragraph", "text": format!("notes on {title}")}]});
        rows.push(str_of(&post(stack, &format!("data_sources/{ds}/rows"), body).await["id"]));
    }
    Fixture { root, child, outside, outside_child, db, ds, done_row: rows[0].clone(), open_row: rows[1].clone() }
}

const TITLES: &str = r#"{"pages": "Scope Root", "databases": "Scope Tasks"}"#;

fn advanced(fx: &Fixture) -> String {
    json!({"sync_rules": {"advanced": {"database_query_filters": [
        {"database_id": fx.db, "filter": {"property": "Done", "checkbox": {"equals": true}}}]}}})
    .to_string()
}

async fn start(config: &str) -> (Stack, Fixture) {
    let mut stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack (is `make up` running?)");
    let fx = fixture(&stack).await;
    stack.reconfigure(&[("CONNECTOR_CONFIG", config)]).await.unwrap();
    (stack, fx)
}

async fn sync(stack: &Stack, kind: &str) -> (RunRecord, u64) {
    stack.reset_api_calls().await.unwrap();
    let run = stack.sync(kind).await.unwrap_or_else(|e| panic!("{kind} sync: {e:#}"));
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    let calls = stack.api_calls().await.unwrap();
    println!(
        "{kind} run {}: {} indexed, {} deleted, {calls} Notion calls",
        run.id, run.counts.indexed, run.counts.deleted
    );
    (run, calls)
}

/// One webhook event, queued as the API queues it, pumped until its run closes. Returns the run and its Notion calls.
async fn webhook(stack: &Stack, kind: &str, entity_id: &str, entity_type: &str, data: Value) -> (RunRecord, u64) {
    stack.reset_api_calls().await.unwrap();
    let event = WebhookEvent {
        id: format!("evt-{kind}-{entity_id}-{}", chrono::Utc::now().timestamp_micros()),
        kind: kind.to_string(),
        timestamp: chrono::Utc::now().to_rfc3339(),
        entity: EntityRef { id: entity_id.to_string(), kind: entity_type.to_string() },
        data,
        attempt_number: 1,
    };
    let tasks = shared::webhook::tasks_for_event(&event);
    assert!(!tasks.is_empty(), "{kind} makes tasks");
    let ctx = &stack.ctx;
    let run = ctx.runs.create_run(RunKind::Webhook).await.unwrap();
    let messages: Vec<TaskMessage> =
        tasks.into_iter().map(|(id, task)| TaskMessage::new(run.id, RunKind::Webhook, id, task)).collect();
    ctx.runs.tasks_queued(run.id, &messages).await.unwrap();
    ctx.queue.send_tasks(&messages).await.unwrap();
    ctx.runs.planning_done(run.id, messages.len() as u64).await.unwrap();
    ctx.queue.send_finalize(&FinalizeMessage::new(run.id), 1).await.unwrap();
    let run = stack.pump(run.id).await.unwrap();
    assert_eq!(run.state, RunState::Completed, "{kind}: {run:?}");
    let calls = stack.api_calls().await.unwrap();
    println!(
        "webhook {kind} {entity_id}: {} indexed, {} deleted, {calls} Notion calls",
        run.counts.indexed, run.counts.deleted
    );
    (run, calls)
}

async fn page_event(stack: &Stack, kind: &str, id: &str) -> (RunRecord, u64) {
    webhook(stack, kind, id, "page", json!({})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incremental_runs_index_only_the_selected_pages_and_databases() {
    let (stack, fx) = start(TITLES).await;
    sync(&stack, "full").await;
    let docs = stack.documents().await.unwrap();
    for id in [&fx.root, &fx.child, &fx.done_row, &fx.open_row, &fx.ds] {
        assert!(docs.contains_key(id), "{id} selected and indexed by the full run");
    }
    assert_eq!(owned_by(&docs, &fx.outside), 0, "the full run leaves the outside page out");

    edit(&stack, &fx.outside, json!({"text": "outside edited scopeoutmarker"})).await;
    edit(&stack, &fx.outside_child, json!({"text": "outside child edited scopeoutmarker"})).await;
    let outside_new = page(&stack, Some(&fx.outside), "Scope Outside New", "new outside scopeoutmarker").await;
    edit(&stack, &fx.child, json!({"text": "child edited scopechildmarker"})).await;
    let grandchild = page(&stack, Some(&fx.child), "Scope Grandchild", "new scopegrandmarker").await;
    edit(&stack, &fx.open_row, json!({"text": "row edited scoperowmarker"})).await;
    sync(&stack, "incremental").await;

    let docs = stack.documents().await.unwrap();
    for id in [&fx.outside, &fx.outside_child, &outside_new] {
        assert_eq!(owned_by(&docs, id), 0, "page {id} outside the selection: nothing of it indexed");
    }
    assert!(!docs.values().any(|d| text(d, "body").contains("scopeoutmarker")));
    assert!(holds(&docs, &fx.child, "scopechildmarker"), "an edit under a selected root is indexed");
    assert!(holds(&docs, &grandchild, "scopegrandmarker"), "a new page under a selected root is indexed");
    assert!(holds(&docs, &fx.open_row, "scoperowmarker"), "a row of a selected database is indexed");
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_index_only_the_selection_and_remove_what_an_older_scope_indexed() {
    let (mut stack, fx) = start("{}").await;
    sync(&stack, "full").await;
    let docs = stack.documents().await.unwrap();
    assert!(owned_by(&docs, &fx.outside) >= 2, "everything selected: the outside page and its block are indexed");
    let generated = docs.len();

    // The selection narrows; no full run yet.
    stack.reconfigure(&[("CONNECTOR_CONFIG", TITLES)]).await.unwrap();
    edit(&stack, &fx.outside, json!({"text": "outside edited scopeoutmarker"})).await;
    page_event(&stack, "page.content_updated", &fx.outside).await;
    let docs = stack.documents().await.unwrap();
    assert_eq!(owned_by(&docs, &fx.outside), 0, "out of scope now: its documents go");
    assert!(docs.contains_key(&fx.outside_child), "only its own documents: the child page stays until a full run");
    assert!(docs.len() < generated);

    let fresh = page(&stack, None, "Scope Fresh Outside", "fresh scopeoutmarker").await;
    page_event(&stack, "page.created", &fresh).await;
    let docs = stack.documents().await.unwrap();
    assert_eq!(owned_by(&docs, &fresh), 0, "a new page outside the selection is not indexed");

    // Under the selected root: indexed, through ancestors the index holds and ancestors only Notion knows.
    edit(&stack, &fx.child, json!({"text": "child edited scopechildmarker"})).await;
    page_event(&stack, "page.content_updated", &fx.child).await;
    let mid = page(&stack, Some(&fx.child), "Scope Mid", "mid text").await;
    let leaf = page(&stack, Some(&mid), "Scope Leaf", "leaf scopeleafmarker").await;
    page_event(&stack, "page.created", &leaf).await;
    let docs = stack.documents().await.unwrap();
    assert!(holds(&docs, &fx.child, "scopechildmarker"), "an edit under a selected root is indexed");
    assert!(holds(&docs, &leaf, "scopeleafmarker"), "a page below an unindexed page below the root is indexed");
    assert!(!docs.values().any(|d| text(d, "body").contains("scopeoutmarker")));
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_advanced_rules_changed_rows_must_match_the_filter() {
    let mut stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack (is `make up` running?)");
    let fx = fixture(&stack).await;
    stack.reconfigure(&[("CONNECTOR_CONFIG", &advanced(&fx))]).await.unwrap();
    sync(&stack, "full").await;
    let docs = stack.documents().await.unwrap();
    assert!(docs.contains_key(&fx.done_row), "a matching row is indexed");
    assert!(!docs.contains_key(&fx.open_row), "a row not matching the filter is not");
    assert_eq!(owned_by(&docs, &fx.root), 0, "a page no rule selects is not");

    // Incremental: a changed row that does not match stays out; one that matches comes in; a page no rule
    // selects stays out.
    edit(&stack, &fx.open_row, json!({"text": "open row edited scopeopenmarker"})).await;
    edit(&stack, &fx.done_row, json!({"text": "done row edited scopedonemarker"})).await;
    edit(&stack, &fx.root, json!({"text": "root edited scopeoutmarker"})).await;
    sync(&stack, "incremental").await;
    let docs = stack.documents().await.unwrap();
    assert_eq!(owned_by(&docs, &fx.open_row), 0, "incremental: the open row does not match");
    assert_eq!(owned_by(&docs, &fx.root), 0, "incremental: no rule selects the page");
    assert!(holds(&docs, &fx.done_row, "scopedonemarker"), "incremental: the matching row is indexed");

    // Webhooks: a row event and a data source event index only matching rows.
    edit(&stack, &fx.open_row, json!({"text": "open row edited again scopeopenmarker"})).await;
    page_event(&stack, "page.properties_updated", &fx.open_row).await;
    let data = json!({"parent": {"id": fx.db, "type": "database"}});
    webhook(&stack, "data_source.content_updated", &fx.ds, "data_source", data.clone()).await;
    webhook(&stack, "data_source.schema_updated", &fx.ds, "data_source", data).await;
    page_event(&stack, "page.content_updated", &fx.root).await;
    let docs = stack.documents().await.unwrap();
    assert_eq!(owned_by(&docs, &fx.open_row), 0, "webhook: the open row does not match");
    assert_eq!(owned_by(&docs, &fx.root), 0, "webhook: no rule selects the page");
    assert!(!docs.values().any(|d| text(d, "body").contains("scopeopenmarker")));

    // A row that stops matching goes.
    edit(&stack, &fx.done_row, json!({"properties": {"Done": false}})).await;
    page_event(&stack, "page.properties_updated", &fx.done_row).await;
    let docs = stack.documents().await.unwrap();
    assert_eq!(owned_by(&docs, &fx.done_row), 0, "a row that no longer matches is removed");
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn page_deleted_removes_only_what_notion_confirms_gone() {
    let (stack, fx) = start("{}").await;
    sync(&stack, "full").await;
    let before = stack.documents().await.unwrap();
    assert!(owned_by(&before, &fx.child) >= 2);

    // Forged, late or reordered: the page is live; nothing goes.
    page_event(&stack, "page.deleted", &fx.child).await;
    webhook(&stack, "database.deleted", &fx.db, "database", json!({})).await;
    webhook(&stack, "data_source.deleted", &fx.ds, "data_source", json!({})).await;
    let after = stack.documents().await.unwrap();
    let mut missing: Vec<&String> = before.keys().filter(|id| !after.contains_key(*id)).collect();
    missing.sort();
    assert!(missing.is_empty(), "a delete event for live objects removed {missing:?}");

    // Trashed, then removed for good: gone.
    stack.control(Method::POST, &format!("pages/{}/trash", fx.child), Some(json!({}))).await.unwrap();
    page_event(&stack, "page.deleted", &fx.child).await;
    stack.control(Method::DELETE, &format!("pages/{}", fx.outside_child), None).await.unwrap();
    page_event(&stack, "page.deleted", &fx.outside_child).await;
    let docs = stack.documents().await.unwrap();
    assert_eq!(owned_by(&docs, &fx.child), 0, "a trashed page is removed");
    assert_eq!(owned_by(&docs, &fx.outside_child), 0, "a page Notion no longer knows is removed");
    assert!(docs.contains_key(&fx.root) && docs.contains_key(&fx.outside), "their parents stay");
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn basic_rules_apply_on_incremental_and_webhook_paths_too() {
    let config = json!({"pages": "Scope Root", "sync_rules": {"basic": [
        {"policy": "exclude", "field": "body", "rule": "contains", "value": "scopesecret"}]}});
    let (stack, fx) = start(&config.to_string()).await;
    sync(&stack, "full").await;
    edit(&stack, &fx.child, json!({"text": "child now holds scopesecret"})).await;
    page_event(&stack, "page.content_updated", &fx.child).await;
    let grandchild = page(&stack, Some(&fx.root), "Scope Secret", "another scopesecret").await;
    let kept = page(&stack, Some(&fx.root), "Scope Kept", "scopekeptmarker").await;
    sync(&stack, "incremental").await;
    let docs = stack.documents().await.unwrap();
    assert!(!docs.values().any(|d| text(d, "body").contains("scopesecret")), "excluded by the basic rule");
    assert!(!docs.contains_key(&grandchild));
    assert!(!docs.contains_key(&fx.child), "a page the rule excludes now loses its earlier document");
    assert!(holds(&docs, &kept, "scopekeptmarker"), "what the rule lets through under the root is indexed");
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_comment_event_is_indexed_only_with_its_page() {
    let (stack, fx) = start(r#"{"pages": "Scope Root", "index_comments": true}"#).await;
    sync(&stack, "full").await;
    let mut comments = Vec::new();
    for on in [&fx.root, &fx.outside] {
        let body = json!({"parent": {"page_id": on}, "text": "a comment scopecommentmarker"});
        let id = str_of(&post(&stack, "comments", body).await["id"]);
        webhook(&stack, "comment.created", &id, "comment", json!({"page_id": on})).await;
        comments.push(id);
    }
    let docs = stack.documents().await.unwrap();
    assert!(docs.contains_key(&comments[0]), "a comment on a selected page is indexed");
    assert!(!docs.contains_key(&comments[1]), "a comment on a page outside the selection is not");
    stack.cleanup().await;
}

//! Incremental sync end to end (issue 6): after one full sync of `medium`, edits, additions and
//! deletions in the emulated Notion; incremental syncs bring exactly the changed pages up to date
//! for a small fraction of the full sync's API calls; deletions wait for the next full sync.
//! Needs `make up` (search engine and LocalStack).

use std::collections::{HashMap, HashSet};

use e2e::notion_emulator::WorkspaceKind;
use e2e::Stack;
use reqwest::Method;
use serde_json::{json, Map, Value};
use shared::runs::{RunRecord, RunState};
use shared::task::RunKind;

fn text(doc: &Map<String, Value>, field: &str) -> String {
    doc.get(field).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// What an edit set a page to.
struct Edit {
    title: String,
    marker: String,
}

/// Edits every `step`-th page of `pages` (skipping `avoid`), titles and first text block.
async fn edit_pages(
    stack: &Stack,
    pages: &[Value],
    count: usize,
    tag: &str,
    avoid: &HashSet<String>,
) -> HashMap<String, Edit> {
    let step = (pages.len() / count).max(1);
    let mut edits = HashMap::new();
    for page in pages.iter().step_by(step).filter(|p| !avoid.contains(p["id"].as_str().unwrap())).take(count) {
        let id = page["id"].as_str().unwrap().to_string();
        let n = edits.len();
        let edit =
            Edit { title: format!("{} {tag}{n}", page["title"].as_str().unwrap()), marker: format!("{tag}marker{n}") };
        stack
            .control(
                Method::PATCH,
                &format!("pages/{id}"),
                Some(json!({"title": edit.title, "text": format!("changed text {}", edit.marker)})),
            )
            .await
            .unwrap();
        edits.insert(id, edit);
    }
    edits
}

fn assert_edits_indexed(docs: &HashMap<String, Map<String, Value>>, edits: &HashMap<String, Edit>) {
    let mut block_text: HashMap<String, String> = HashMap::new();
    for d in docs.values().filter(|d| text(d, "object") == "block") {
        let owner = block_text.entry(text(d, "page_id")).or_default();
        owner.push_str(&text(d, "body"));
        owner.push('\n');
    }
    for (id, edit) in edits {
        let doc = docs.get(id).unwrap_or_else(|| panic!("edited page {id} missing"));
        assert_eq!(text(doc, "title"), edit.title, "title of edited page {id}");
        assert!(
            text(doc, "body").contains(&edit.marker),
            "body of edited page {id} lacks {}: {}",
            edit.marker,
            text(doc, "body")
        );
        assert!(
            block_text.get(id).is_some_and(|t| t.contains(&edit.marker)),
            "no block document of page {id} carries the new text {}",
            edit.marker
        );
    }
}

async fn incremental(stack: &Stack) -> (RunRecord, u64) {
    stack.reset_api_calls().await.unwrap();
    let run = stack.sync("incremental").await.unwrap();
    let calls = stack.api_calls().await.unwrap();
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert_eq!(run.kind, RunKind::Incremental, "an incremental run after a completed full run stays incremental");
    (run, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incremental_syncs_after_a_full_sync_of_medium() {
    let stack = Stack::start(WorkspaceKind::Medium, &[]).await.expect("stack (is `make up` running?)");
    let expected = stack.control(Method::GET, "expected", None).await.unwrap();
    let pages: Vec<Value> = expected["pages"].as_array().unwrap().clone();
    let plain: Vec<&Value> = pages.iter().filter(|p| !p["is_row"].as_bool().unwrap_or(false)).collect();

    stack.reset_api_calls().await.unwrap();
    let full = stack.sync("full").await.unwrap();
    assert_eq!(full.state, RunState::Completed, "{full:?}");
    let full_calls = stack.api_calls().await.unwrap();
    let watermark0 = full.watermark.clone().expect("a full run records a watermark");

    // 1 % of the pages and rows edited; pages and rows added; leaf pages deleted.
    let deleted_roots: Vec<String> = plain
        .iter()
        .rev()
        .filter(|p| {
            p["blocks"].as_array().unwrap().iter().all(|b| b["type"] != "child_page" && b["type"] != "child_database")
        })
        .take(3)
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let avoid: HashSet<String> = deleted_roots.iter().cloned().collect();
    let edits = edit_pages(&stack, &pages, pages.len().div_ceil(100), "incone", &avoid).await;
    let rows_edited = edits.keys().filter(|id| pages.iter().any(|p| p["id"] == **id && p["is_row"] == true)).count();
    assert!(
        rows_edited > 0 && rows_edited < edits.len(),
        "edits cover pages and rows ({rows_edited} rows of {})",
        edits.len()
    );
    let mut added: HashMap<String, Edit> = HashMap::new();
    for n in 0..5 {
        let parent = plain[10 + n]["id"].as_str().unwrap();
        let title = format!("Incremental new page {n}");
        let marker = format!("incnewmarker{n}");
        let made = stack
            .control(
                Method::POST,
                "pages",
                Some(json!({"parent": {"type": "page_id", "page_id": parent}, "title": title,
                "blocks": [{"type": "paragraph", "text": format!("fresh body {marker}")}]})),
            )
            .await
            .unwrap();
        added.insert(made["id"].as_str().unwrap().to_string(), Edit { title, marker });
    }
    let source = expected["databases"][0]["data_sources"][0]["id"].as_str().unwrap();
    for n in 0..2 {
        let title = format!("Incremental new row {n}");
        let marker = format!("incrowmarker{n}");
        let made = stack
            .control(
                Method::POST,
                &format!("data_sources/{source}/rows"),
                Some(json!({"title": title,
                "blocks": [{"type": "paragraph", "text": format!("row body {marker}")}]})),
            )
            .await
            .unwrap();
        added.insert(made["id"].as_str().unwrap().to_string(), Edit { title, marker });
    }
    let mut deleted: Vec<String> = Vec::new();
    for id in &deleted_roots {
        let gone = stack.control(Method::DELETE, &format!("pages/{id}"), None).await.unwrap();
        deleted.extend(gone["deleted_pages"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()));
    }
    let before = stack.documents().await.unwrap();
    let deleted_docs: Vec<String> = before
        .iter()
        .filter(|(id, d)| deleted.contains(id) || deleted.contains(&text(d, "page_id")))
        .map(|(id, _)| id.clone())
        .collect();
    assert!(deleted_docs.len() > deleted.len(), "the deleted pages had block documents");

    let (first, calls_1) = incremental(&stack).await;
    let ratio_1 = calls_1 as f64 / full_calls as f64;
    eprintln!(
        "BENCH incremental 1%: {} pages/rows edited ({rows_edited} rows), {} added, {} deleted: {calls_1} API calls vs full {full_calls} = {:.2}%",
        edits.len(),
        added.len(),
        deleted.len(),
        ratio_1 * 100.0
    );
    let docs = stack.documents().await.unwrap();
    assert_edits_indexed(&docs, &edits);
    for id in edits.keys() {
        let depth = |d: &HashMap<String, Map<String, Value>>| d[id]["path"].as_array().map(Vec::len);
        assert_eq!(
            depth(&docs),
            depth(&before),
            "breadcrumb of {id} kept: {:?} was {:?}",
            docs[id]["path"],
            before[id]["path"]
        );
    }
    assert_edits_indexed(&docs, &added);
    for id in &deleted_docs {
        assert!(docs.contains_key(id), "{id} removed by an incremental sync: only full syncs delete");
    }
    assert!(
        ratio_1 <= 0.03,
        "incremental used {calls_1} calls, {:.2}% of the full sync's {full_calls}",
        ratio_1 * 100.0
    );
    let watermark1 = first.watermark.clone().expect("incremental watermark");
    assert!(watermark1 > watermark0, "watermark advanced: {watermark0} -> {watermark1}");

    // An edit stamped in the watermark's own minute is not missed.
    let same_minute: Vec<&Value> = plain
        .iter()
        .filter(|p| !edits.contains_key(p["id"].as_str().unwrap()) && !avoid.contains(p["id"].as_str().unwrap()))
        .take(2)
        .copied()
        .collect();
    let mut late: HashMap<String, Edit> = HashMap::new();
    for (n, page) in same_minute.iter().enumerate() {
        let id = page["id"].as_str().unwrap().to_string();
        let edit = Edit { title: format!("Same minute {n}"), marker: format!("sameminutemarker{n}") };
        let out = stack
            .control(
                Method::PATCH,
                &format!("pages/{id}"),
                Some(json!({"title": edit.title, "text": format!("late {}", edit.marker), "at": watermark1})),
            )
            .await
            .unwrap();
        let stamped = chrono::DateTime::parse_from_rfc3339(out["last_edited_time"].as_str().unwrap()).unwrap();
        assert_eq!(
            stamped,
            chrono::DateTime::parse_from_rfc3339(&watermark1).unwrap(),
            "edit stamped at the watermark minute"
        );
        late.insert(id, edit);
    }
    let (second, calls_same) = incremental(&stack).await;
    assert_edits_indexed(&stack.documents().await.unwrap(), &late);
    eprintln!(
        "incremental after 2 edits in the watermark minute: {calls_same} API calls; watermark {:?}",
        second.watermark
    );

    // 10 % change.
    let avoid: HashSet<String> = avoid.into_iter().chain(deleted.iter().cloned()).collect();
    let edits_10 = edit_pages(&stack, &pages, pages.len().div_ceil(10), "incten", &avoid).await;
    let (_, calls_10) = incremental(&stack).await;
    let ratio_10 = calls_10 as f64 / full_calls as f64;
    eprintln!(
        "BENCH incremental 10%: {} pages/rows edited: {calls_10} API calls vs full {full_calls} = {:.2}%",
        edits_10.len(),
        ratio_10 * 100.0
    );
    assert_edits_indexed(&stack.documents().await.unwrap(), &edits_10);

    // The next full sync removes what was deleted in Notion, and only that.
    let again = stack.sync("full").await.unwrap();
    assert_eq!(again.state, RunState::Completed, "{again:?}");
    let after = stack.documents().await.unwrap();
    for id in &deleted_docs {
        assert!(!after.contains_key(id), "{id} of a deleted page survived the full sync");
    }
    for id in edits_10.keys().chain(added.keys()).chain(late.keys()) {
        assert!(after.contains_key(id), "{id} lost by the full sync");
    }
    assert_edits_indexed(&after, &added);
    stack.cleanup().await;
}

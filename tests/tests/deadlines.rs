//! Page walks and `Comments` tasks honour the task deadline between blocks, not only before a Notion call
//! (review M1, H5). With an invocation budget of 1 ms every segment of a walk visits one block and every
//! `Comments` task lists one block's comments, then hands the rest on; the run still completes with every block
//! and every comment indexed. Needs `make up` (search engine and LocalStack).

use std::time::Duration;

use e2e::notion_emulator::WorkspaceKind;
use e2e::Stack;
use reqwest::Method;
use serde_json::{json, Value};
use shared::runs::RunState;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn walks_and_comments_hand_on_between_blocks_at_the_deadline() {
    let mut stack = Stack::start(WorkspaceKind::Small, &[("CONNECTOR_CONFIG", r#"{"index_comments": true}"#)])
        .await
        .expect("stack (is `make up` running?)");
    let blocks: Vec<Value> =
        (0..4).map(|i| json!({"type": "paragraph", "text": format!("Deadline block {i}")})).collect();
    let page =
        stack.control(Method::POST, "pages", Some(json!({"title": "Deadlines", "blocks": blocks}))).await.unwrap();
    let page_id = page["id"].as_str().expect("page id").to_string();
    let block_ids: Vec<String> =
        page["blocks"].as_array().expect("block ids").iter().map(|b| b.as_str().unwrap().to_string()).collect();
    assert_eq!(block_ids.len(), 4);
    for (i, block_id) in block_ids.iter().enumerate() {
        let comment = json!({"parent": {"block_id": block_id}, "text": format!("Deadline comment {i}")});
        stack.control(Method::POST, "comments", Some(comment)).await.unwrap();
    }
    stack.invocation_budget = Some(Duration::from_millis(1));

    let run_id = stack.plan_page_run(&page_id).await.unwrap();
    let run = tokio::time::timeout(Duration::from_secs(300), stack.pump(run_id)).await.expect("within 5 min").unwrap();
    println!("{run:?}");
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert_eq!(run.counts.failed, 0, "{run:?}");

    // One segment per block: the walk checked the deadline between blocks.
    for segment in 1..4 {
        let id = format!("p:{page_id}:c{segment}");
        assert!(stack.ctx.runs.task(run.id, &id).await.unwrap().is_some(), "continuation {id}");
    }
    // The first segment's comments (the page's, then the first block's) went on as a task of their own.
    let handed_on = format!("comments:{page_id}:0:0:r1");
    assert!(stack.ctx.runs.task(run.id, &handed_on).await.unwrap().is_some(), "comments handed on as {handed_on}");

    let docs = stack.documents().await.unwrap();
    for i in 0..4 {
        for phrase in [format!("Deadline block {i}"), format!("Deadline comment {i}")] {
            assert!(
                docs.values().any(|d| d.get("body").and_then(Value::as_str).is_some_and(|b| b.contains(&phrase))),
                "{phrase:?} indexed"
            );
        }
    }
    stack.cleanup().await;
}

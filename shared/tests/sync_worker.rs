//! The worker's decisions, against the in-memory ports and the emulated Notion (no search engine, no
//! LocalStack): follow-ups are recorded and sent before their parent is done, a walk past its deadline hands
//! the rest on, a message delivered twice counts once, and a task of a closed run costs no Notion call.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};
use shared::runs::{RunState, TaskState};
use shared::sync::worker::handle_message;
use shared::task::{RunKind, Task, TaskMessage};
use shared::testing::{Pump, WorkspaceKind, World};

type Docs = BTreeMap<String, Map<String, Value>>;

fn text<'a>(doc: &'a Map<String, Value>, field: &str) -> &'a str {
    doc.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// Pages whose text depends on how their walk was cut (a file's text, its signed URL): those with file blocks.
fn pages_with_files(docs: &Docs) -> Vec<String> {
    docs.values().filter(|d| d.contains_key("attachment")).map(|d| text(d, "page_id").to_string()).collect()
}

/// A document as two runs must both write it: everything but the run, and for file blocks and their pages
/// the identity only.
fn comparable(doc: &Map<String, Value>, with_files: &[String]) -> Map<String, Value> {
    let mut doc = doc.clone();
    doc.remove("sync_run");
    if doc.contains_key("attachment") || with_files.iter().any(|p| p == text(&doc, "id")) {
        doc.retain(|k, _| matches!(k.as_str(), "id" | "object" | "title" | "page_id" | "parent_id"));
    }
    doc
}

fn assert_same_documents(before: &Docs, after: &Docs) {
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "the same documents");
    let with_files = pages_with_files(before);
    for (id, doc) in before {
        assert_eq!(comparable(doc, &with_files), comparable(&after[id], &with_files), "document {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_are_recorded_and_sent_before_their_parent_is_done() {
    let world = World::start(WorkspaceKind::Small).await;
    let run = world.plan(RunKind::Full).await;
    // One message at a time, each with its deadline already passed, so that walks hand on continuations and
    // rows queries hand out pages: what a delivery leaves in the queue is its own follow-ups.
    let pump = Pump { budget: Some(Duration::ZERO), ..Pump::default() };
    let journal = world.journal();
    let (mut parents, mut follow_ups) = (0, 0);
    let mut waiting: Vec<TaskMessage> = world.take_tasks();
    while let Some(parent) = waiting.pop() {
        assert!(world.deliver(std::slice::from_ref(&parent), 1, &pump).await.is_empty(), "{} failed", parent.task_id);
        let children = world.take_tasks();
        let done = journal.done(run.id, &parent.task_id).expect("the parent is recorded done");
        for child in &children {
            let recorded = journal.recorded_queued(run.id, &child.task_id);
            let sent = journal.sent(run.id, &child.task_id).expect("sent");
            assert!(recorded.is_some_and(|r| r < sent), "{} sent before it was recorded", child.task_id);
            assert!(sent < done, "{} sent after its parent {} was done", child.task_id, parent.task_id);
        }
        parents += usize::from(!children.is_empty());
        follow_ups += children.len();
        waiting.extend(children);
    }
    assert!(parents > 10 && follow_ups > 50, "{parents} parents handed on {follow_ups} tasks");
    let run = world.pump(run.id).await;
    assert_eq!(run.state, RunState::Completed, "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_past_its_deadline_hands_on_and_the_run_ends_with_the_same_documents() {
    let world = World::start(WorkspaceKind::Small).await;
    let first = world.sync(RunKind::Full).await;
    assert_eq!(first.state, RunState::Completed);
    let unbounded = world.store.documents();

    // Every batch starts past its deadline: each segment of a walk visits one block, then hands on.
    let run = world.plan(RunKind::Full).await;
    let pumped = world.pump_with(run.id, &Pump { budget: Some(Duration::ZERO), ..Pump::default() }).await;
    assert_eq!(pumped.run.state, RunState::Completed, "{:?}", pumped.run);
    assert_eq!(pumped.run.counts.failed, 0);
    let records = world.ledger.tasks_of(run.id);
    let continuations: Vec<&String> = records.keys().filter(|id| id.contains(":c")).collect();
    assert!(continuations.len() > 20, "{} continuations", continuations.len());
    assert!(records.values().all(|t| t.state != TaskState::Queued));
    // A page of several blocks went on at least once, from its first segment.
    let expected = world.expected();
    let long =
        expected["pages"].as_array().unwrap().iter().find(|p| p["blocks"].as_array().unwrap().len() > 3).unwrap();
    let id = long["id"].as_str().unwrap();
    assert!(records.keys().any(|t| t.contains(id) && t.ends_with(":c1")), "page {id} handed on");

    let bounded = world.store.documents();
    assert!(bounded.values().all(|d| d["sync_run"] == run.id), "every document rewritten by the second run");
    assert_same_documents(&unbounded, &bounded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_delivered_twice_count_once_and_index_the_same() {
    let world = World::start(WorkspaceKind::Small).await;
    let once = world.plan(RunKind::Full).await;
    let once = world.pump_with(once.id, &Pump::default()).await;
    assert_eq!(once.run.state, RunState::Completed);
    let documents = world.store.documents();

    let twice = world.plan(RunKind::Full).await;
    let twice = world.pump_with(twice.id, &Pump { duplicates: true, ..Pump::default() }).await;
    assert_eq!(twice.run.state, RunState::Completed, "{:?}", twice.run);
    assert!(
        twice.deliveries >= 2 * once.deliveries,
        "{} deliveries, {} without duplicates",
        twice.deliveries,
        once.deliveries
    );
    let (a, b) = (&once.run.counts, &twice.run.counts);
    assert_eq!((a.done, a.failed, a.indexed, a.skipped), (b.done, b.failed, b.indexed, b.skipped), "counted once");
    assert_same_documents(&documents, &world.store.documents());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_page_task_twice_leaves_the_index_and_its_record_as_they_were() {
    let world = World::start(WorkspaceKind::Small).await;
    let run = world.plan(RunKind::Full).await;
    let tasks = world.take_tasks();
    world.ctx.queue.send_tasks(&tasks).await.unwrap();
    assert_eq!(world.pump(run.id).await.state, RunState::Completed);
    let docs = world.store.documents();
    // A page without file blocks: a file's signed URL changes with every read.
    let with_files = pages_with_files(&docs);
    let page = tasks
        .iter()
        .find(|t| matches!(&t.task, Task::Page { page_id, .. } if !with_files.contains(page_id)))
        .expect("a page task")
        .clone();
    let record = world.ledger.tasks_of(run.id)[&page.task_id].clone();
    assert!(record.indexed > 0);
    for attempt in 1..=2 {
        assert_eq!(handle_message(&world.ctx, &page.encode(), attempt, None).await.ok(), Some(run.id));
    }
    assert_eq!(world.store.documents(), docs, "the index is unchanged");
    let again = world.ledger.tasks_of(run.id)[&page.task_id].clone();
    assert_eq!((again.state, again.indexed, again.api_calls), (record.state, record.indexed, record.api_calls));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_of_ended_runs_cost_no_notion_call() {
    let world = World::start(WorkspaceKind::Small).await;
    let run = world.sync(RunKind::Full).await;
    assert_eq!(run.state, RunState::Completed);
    let page_id = world.expected()["pages"][0]["id"].as_str().unwrap().to_string();
    let late = |run_id: u64| {
        let task = Task::Page { page_id: page_id.clone(), page: None, path: vec![] };
        TaskMessage::new(run_id, RunKind::Full, format!("p:{page_id}:late"), task)
    };
    let (docs, calls) = (world.store.documents(), world.notion_calls());

    // A closed run's task is acknowledged and dropped: no call, no write, no record.
    assert_eq!(handle_message(&world.ctx, &late(run.id).encode(), 1, None).await.ok(), Some(run.id));
    assert_eq!(world.notion_calls(), calls, "no Notion call");
    assert_eq!(world.store.documents(), docs);
    assert!(!world.ledger.tasks_of(run.id).contains_key(&format!("p:{page_id}:late")));

    // An aborted run's task is recorded failed at once, so the run can close.
    let aborted = world.ctx.runs.create_run(RunKind::Incremental).await.unwrap();
    world.ctx.runs.abort(aborted.id, "token revoked").await.unwrap();
    assert_eq!(handle_message(&world.ctx, &late(aborted.id).encode(), 1, None).await.ok(), Some(aborted.id));
    assert_eq!(world.notion_calls(), calls, "no Notion call");
    let record = world.ledger.tasks_of(aborted.id)[&format!("p:{page_id}:late")].clone();
    assert_eq!(record.state, TaskState::Failed);
    assert!(record.error.unwrap_or_default().contains("aborted"));
}

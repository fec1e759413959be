//! Planning and completion, against the in-memory ports and the emulated Notion (no search engine, no
//! LocalStack): a full run indexes what the workspace holds, a run is complete only when planning is done
//! and no task is queued, and one full run at a time holds the lock.

use serde_json::{Map, Value};
use shared::runs::RunState;
use shared::task::{FinalizeMessage, RunKind, Task, TaskMessage};
use shared::testing::{WorkspaceKind, World};

fn text<'a>(doc: &'a Map<String, Value>, field: &str) -> &'a str {
    doc.get(field).and_then(Value::as_str).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_of_small_indexes_what_the_emulator_serves() {
    let world = World::start(WorkspaceKind::Small).await;
    let expected = world.expected();
    let run = world.sync(RunKind::Full).await;
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert_eq!(run.counts.failed, 0, "{run:?}");
    let docs = world.store.documents();

    let pages = expected["pages"].as_array().unwrap();
    assert!(pages.len() > 20, "small serves {} pages and rows", pages.len());
    let mut blocks = 0;
    for page in pages {
        let id = page["id"].as_str().unwrap();
        let doc = docs.get(id).unwrap_or_else(|| panic!("page {id} not indexed"));
        assert_eq!((text(doc, "object"), text(doc, "title")), ("page", page["title"].as_str().unwrap()), "{id}");
        assert_eq!(doc["sync_run"], run.id, "page {id} written by this run");
        for block in page["blocks"].as_array().unwrap() {
            let block_id = block["id"].as_str().unwrap();
            if matches!(block["type"].as_str(), Some("child_page" | "child_database")) {
                continue; // indexed as the page or database itself
            }
            let doc = docs.get(block_id).unwrap_or_else(|| panic!("block {block_id} of page {id} not indexed"));
            assert_eq!(text(doc, "object"), "block");
            blocks += 1;
        }
    }
    assert!(blocks > 100, "{blocks} blocks checked");
    for db in expected["databases"].as_array().unwrap() {
        assert_eq!(text(&docs[db["id"].as_str().unwrap()], "object"), "database");
        for ds in db["data_sources"].as_array().unwrap() {
            assert_eq!(text(&docs[ds["id"].as_str().unwrap()], "object"), "data_source");
        }
    }
    for user in expected["users"].as_array().unwrap().iter().filter(|u| u["type"] == "person") {
        assert_eq!(text(&docs[user["id"].as_str().unwrap()], "title"), user["name"].as_str().unwrap());
    }
    let not_indexed = &expected["not_indexed"];
    for id in not_indexed["trashed_pages"].as_array().unwrap().iter().chain(not_indexed["unshared"].as_array().unwrap())
    {
        assert!(!docs.contains_key(id.as_str().unwrap()), "{id} must not be indexed");
    }

    // The run's counts are the sums over its task records, and every document was indexed by one of its tasks.
    let status = world.ctx.runs.status(run.id).await.unwrap();
    assert_eq!((run.counts.done, run.counts.failed, run.counts.indexed), (status.done, status.failed, status.indexed));
    assert_eq!(run.counts.indexed, docs.len() as u64, "each document indexed once");
    let records = world.ledger.tasks_of(run.id);
    let done = records.values().filter(|t| t.state == shared::runs::TaskState::Done).count();
    assert_eq!(done as u64, run.counts.done);
    assert!(run.counts.done >= run.planned && run.planned > 0, "{run:?}");
    assert!(world.queue.max_body_bytes() < shared::queue::MAX_MESSAGE_BYTES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_not_complete_while_a_task_is_queued() {
    let world = World::start(WorkspaceKind::Small).await;
    let run = world.plan(RunKind::Full).await;
    // One page task held back, as a message SQS has not delivered yet.
    let mut tasks = world.take_tasks();
    let held = tasks.iter().position(|t| matches!(t.task, Task::Page { .. })).expect("a page task");
    let held = tasks.remove(held);
    world.ctx.queue.send_tasks(&tasks).await.unwrap();

    let pumped = world.pump_with(run.id, &Default::default()).await;
    assert_eq!(pumped.run.state, RunState::Running, "{:?}", pumped.run);
    assert!(pumped.finalize_checks > 0, "the reaper looked and left it open");
    let status = world.ctx.runs.status(run.id).await.unwrap();
    assert_eq!(status.queued, 1, "{status:?}");
    assert_eq!(world.ledger.tasks_of(run.id)[&held.task_id].state, shared::runs::TaskState::Queued);
    assert!(world.store.source(&held_page(&held)).is_none(), "the held page is not indexed yet");

    world.ctx.queue.send_tasks(std::slice::from_ref(&held)).await.unwrap();
    let run = world.pump(run.id).await;
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert!(world.store.source(&held_page(&held)).is_some());
}

fn held_page(msg: &TaskMessage) -> String {
    match &msg.task {
        Task::Page { page_id, .. } => page_id.clone(),
        other => panic!("not a page task: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_not_complete_before_planning_is_done() {
    let world = World::start(WorkspaceKind::Small).await;
    let page_id = world.expected()["pages"][0]["id"].as_str().unwrap().to_string();
    // A run whose planner has queued one task and not finished (it may queue more).
    let run = world.ctx.runs.create_run(RunKind::Full).await.unwrap();
    let task =
        TaskMessage::new(run.id, run.kind, format!("p:{page_id}"), Task::Page { page_id, page: None, path: vec![] });
    world.ctx.runs.tasks_queued(run.id, std::slice::from_ref(&task)).await.unwrap();
    world.ctx.queue.send_tasks(std::slice::from_ref(&task)).await.unwrap();
    world.ctx.queue.send_finalize(&FinalizeMessage::new(run.id), 0).await.unwrap();

    let open = world.pump(run.id).await;
    assert!(!open.state.is_closed(), "{open:?}");
    let status = world.ctx.runs.status(run.id).await.unwrap();
    assert_eq!((status.queued, status.done, status.planning_done), (0, 1, false), "{status:?}");

    world.ctx.runs.planning_done(run.id, 1).await.unwrap();
    world.ctx.queue.send_finalize(&FinalizeMessage::new(run.id), 0).await.unwrap();
    let closed = world.pump(run.id).await;
    assert_eq!(closed.state, RunState::Completed, "{closed:?}");
    assert_eq!(closed.counts.done, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_full_run_is_skipped_while_another_holds_the_lock() {
    let world = World::start(WorkspaceKind::Small).await;
    let first = world.plan(RunKind::Full).await;
    let queued = world.take_tasks().len();
    assert!(queued > 0);
    let second = world.plan(RunKind::Full).await;
    assert_eq!(second.id, first.id, "the schedule is answered with the running full run");
    assert_eq!(world.ctx.runs.recent(10).await.unwrap().len(), 1, "nothing else recorded");
    assert!(world.take_tasks().is_empty(), "and nothing queued again");
    assert_eq!(world.ledger.lock_holder(), Some(first.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_first_closes_the_runs_whose_lease_ran_out() {
    let world = World::start(WorkspaceKind::Small).await;
    // A full run whose planner died: it holds the lock, but neither it nor the lock was renewed for two days.
    let dead = world.plan(RunKind::Full).await;
    world.take_tasks();
    let past = chrono::Utc::now() - chrono::Duration::days(2);
    world.ledger.edit_run(dead.id, |run| (run.lease_until, run.renewed_at) = (Some(past), Some(past)));
    world.ledger.expire_lock();

    let next = world.sync(RunKind::Full).await;
    assert_ne!(next.id, dead.id);
    assert_eq!(next.state, RunState::Completed, "{next:?}");
    let dead = world.run(dead.id).await;
    assert_eq!(dead.state, RunState::Failed, "{dead:?}");
    assert!(dead.abort_reason.is_some_and(|r| r.contains("no finalize check")), "the zombie is named");
}

//! Stale removal, against the in-memory ports and the emulated Notion (no search engine, no LocalStack): the
//! reaper deletes what a run did not see only after a complete full run without a failed task or an abort.
//! An incremental run, a run with a failed task and an aborted run delete nothing.

use serde_json::json;
use shared::runs::RunState;
use shared::sync::reaper::{self, Finalized};
use shared::task::{FinalizeMessage, RunKind, Task, TaskMessage};
use shared::testing::{WorkspaceKind, World};

/// A page Notion does not know (so its verification answers 404) and a block of it, as an earlier run wrote them.
const STALE_PAGE: &str = "00000000-0000-4000-8000-00000000beef";
const STALE_BLOCK: &str = "00000000-0000-4000-8000-00000000b10c";

fn put_stale(world: &World) {
    world.store.put(STALE_PAGE, json!({"id": STALE_PAGE, "object": "page", "title": "Gone", "sync_run": 1}));
    world.store.put(
        STALE_BLOCK,
        json!({"id": STALE_BLOCK, "object": "block", "page_id": STALE_PAGE, "body": "old text", "sync_run": 1}),
    );
}

fn stale_left(world: &World) -> (bool, bool) {
    (world.store.source(STALE_PAGE).is_some(), world.store.source(STALE_BLOCK).is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_failure_free_full_run_removes_what_it_did_not_see() {
    let world = World::start(WorkspaceKind::Small).await;
    put_stale(&world);
    let run = world.sync(RunKind::Full).await;
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert!(run.verify_planned, "unseen pages were verified with Notion first");
    assert!(world.ledger.tasks_of(run.id).contains_key("verify:0"));
    assert_eq!(stale_left(&world), (false, false), "the unseen page (404) and its block are gone");
    assert!(run.counts.deleted >= 2, "{:?}", run.counts);
    // Only what the run did not write went.
    let docs = world.store.documents();
    assert!(docs.values().all(|d| d["sync_run"] == run.id));
    assert_eq!(docs.len() as u64, run.counts.indexed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_fails_the_run_and_nothing_is_deleted() {
    let world = World::start(WorkspaceKind::Small).await;
    put_stale(&world);
    let run = world.plan(RunKind::Full).await;
    // A task Notion refuses for good (400: not an id), queued into the run as a follow-up would be.
    let bad = Task::Page { page_id: "not-a-page-id".into(), page: None, path: vec![] };
    let bad = TaskMessage::new(run.id, RunKind::Full, "p:not-a-page-id", bad);
    world.ctx.runs.tasks_queued(run.id, std::slice::from_ref(&bad)).await.unwrap();
    world.ctx.queue.send_tasks(std::slice::from_ref(&bad)).await.unwrap();

    let run = world.pump(run.id).await;
    assert_eq!(run.state, RunState::Failed, "{run:?}");
    assert_eq!(run.counts.failed, 1, "{:?}", run.counts);
    assert!(run.errors.iter().any(|e| e.contains("p:not-a-page-id")), "{:?}", run.errors);
    assert!(!run.verify_planned, "no verification: nothing will be deleted");
    assert_eq!(stale_left(&world), (true, true), "nothing stale was removed");
    assert_eq!(run.counts.deleted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_deletes_nothing() {
    let world = World::start(WorkspaceKind::Small).await;
    assert_eq!(world.sync(RunKind::Full).await.state, RunState::Completed);
    put_stale(&world);
    let run = world.sync(RunKind::Incremental).await;
    assert_eq!((run.kind, run.state), (RunKind::Incremental, RunState::Completed), "{run:?}");
    assert_eq!(stale_left(&world), (true, true));
    assert_eq!(run.counts.deleted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_aborts_the_run_and_nothing_is_deleted() {
    let world = World::start(WorkspaceKind::Small).await;
    put_stale(&world);
    let run = world.plan(RunKind::Full).await;
    // Revoked after planning: the workers meet 401 and abort the run.
    let mut config = world.emulator.app.config();
    config.revoked_tokens.push(notion_emulator::DEFAULT_TOKEN.to_string());
    world.emulator.app.set_config(config);

    let run = world.pump(run.id).await;
    assert_eq!(run.state, RunState::Failed, "{run:?}");
    assert!(run.abort_reason.as_deref().is_some_and(|r| r.contains("rejected the token")), "{run:?}");
    assert_eq!(stale_left(&world), (true, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_closes_once_whichever_finalize_chain_comes_first() {
    let world = World::start(WorkspaceKind::Small).await;
    put_stale(&world);
    let run = world.plan(RunKind::Full).await;
    // Deliver the tasks only: the planner's chain and the worker's undelayed one wait in the queue.
    while !world.queue.tasks.lock().unwrap().is_empty() {
        let batch = world.take_tasks();
        for chunk in batch.chunks(10) {
            assert!(world.deliver(chunk, 1, &Default::default()).await.is_empty());
        }
    }
    let chains = world.take_finalizes();
    assert!(chains.len() >= 2, "{chains:?}");
    let outcomes = [
        reaper::finalize(&world.ctx, &chains[0]).await.unwrap(),
        reaper::finalize(&world.ctx, &chains[1]).await.unwrap(),
    ];
    // The first chain verifies the unseen page (tasks of the run) and checks again; the second is refused
    // the close while the first holds it, or finds more work.
    assert!(outcomes.iter().all(|o| matches!(o, Finalized::Requeued { .. })), "{outcomes:?}");
    let run = world.pump(run.id).await;
    assert_eq!(run.state, RunState::Completed, "{run:?}");
    assert_eq!(stale_left(&world), (false, false));
    let late = FinalizeMessage { token: "another chain".into(), ..FinalizeMessage::new(run.id) };
    assert_eq!(reaper::finalize(&world.ctx, &late).await.unwrap(), Finalized::AlreadyClosed);
    assert_eq!(world.run(run.id).await.counts, run.counts, "closed once, counts kept");
}

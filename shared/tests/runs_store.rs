//! Run and task records against the real engine (SEARCH_URL, default http://127.0.0.1:9200).
//! These tests fail, not skip, when the engine is absent.

use std::time::Duration;

use elasticsearch::http::Method;
use serde_json::json;
use shared::adapters::search::RunStore;
use shared::adapters::search::SearchStore;
use shared::index::{RetryPolicy, SearchSettings};
use shared::runs::{is_complete, may_delete, FullStart, Leases, Lock, RunState, TaskOutcome, TaskState};
use shared::task::{RunKind, Task, TaskMessage};

async fn stores(name: &str) -> (SearchStore, RunStore) {
    let url = std::env::var("SEARCH_URL").unwrap_or_else(|_| "http://127.0.0.1:9200".into());
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let index = format!("test-runs-{name}-{}-{nanos}", std::process::id());
    let retry = RetryPolicy {
        initial: Duration::from_millis(50),
        max_delay: Duration::from_secs(1),
        max_elapsed: Duration::from_secs(20),
        item_attempts: 6,
    };
    let store = SearchStore::connect(&SearchSettings { retry, ..SearchSettings::new(url, index) }).expect("client");
    store.ensure_indices().await.expect("engine reachable at SEARCH_URL (run `make up`)");
    let runs = RunStore::beside(&store);
    (store, runs)
}

fn page_task(run_id: u64, page: &str) -> TaskMessage {
    TaskMessage::new(
        run_id,
        RunKind::Full,
        format!("p:{page}"),
        Task::Page { page_id: page.into(), page: None, path: vec![] },
    )
}

fn continuation(run_id: u64, page: &str, segment: u32) -> TaskMessage {
    let task: Task =
        serde_json::from_value(json!({"type": "continuation", "page_id": page, "segment": segment, "frontier": []}))
            .unwrap();
    TaskMessage::new(run_id, RunKind::Full, format!("p:{page}:c{segment}"), task)
}

fn outcome(indexed: u64) -> TaskOutcome {
    TaskOutcome { indexed, api_calls: 2, ..Default::default() }
}

#[tokio::test]
async fn counts_are_sums_over_task_records_and_completion_waits_for_planning() {
    let (store, runs) = stores("counting").await;
    let run = runs.create_run(RunKind::Full).await.unwrap();
    assert_eq!(run.state, RunState::Planning);
    let tasks = vec![page_task(run.id, "a"), page_task(run.id, "b"), page_task(run.id, "c")];
    runs.tasks_queued(run.id, &tasks).await.unwrap();
    let status = runs.status(run.id).await.unwrap();
    assert_eq!((status.queued, status.done, status.failed), (3, 0, 0));
    assert!(!is_complete(&status));

    // Done twice (a duplicate delivery): counted once.
    runs.task_done("p:a", run.id, &outcome(5)).await.unwrap();
    runs.task_done("p:a", run.id, &outcome(5)).await.unwrap();
    runs.task_done("p:b", run.id, &outcome(7)).await.unwrap();
    runs.task_done("p:c", run.id, &outcome(1)).await.unwrap();
    let status = runs.status(run.id).await.unwrap();
    assert_eq!((status.queued, status.done, status.indexed, status.api_calls), (0, 3, 13, 6));
    assert!(!is_complete(&status), "planning has not finished");

    runs.planning_done(run.id, 3).await.unwrap();
    let status = runs.status(run.id).await.unwrap();
    assert_eq!(status.state, RunState::Running);
    assert!(is_complete(&status) && may_delete(&status));

    // A follow-up queued later reopens completion until it ends.
    runs.tasks_queued(run.id, &[page_task(run.id, "d")]).await.unwrap();
    let status = runs.status(run.id).await.unwrap();
    assert!(!is_complete(&status));
    runs.task_failed("p:d", run.id, "boom").await.unwrap();
    let status = runs.status(run.id).await.unwrap();
    assert_eq!((status.done, status.failed, status.queued), (3, 1, 0));
    assert!(is_complete(&status) && !may_delete(&status));

    let closed = runs.close(run.id, RunState::Failed, 0).await.unwrap();
    assert_eq!(closed.counts.indexed, 13);
    assert_eq!(closed.counts.failed, 1);
    assert!(closed.errors.iter().any(|e| e.contains("p:d") && e.contains("boom")), "{:?}", closed.errors);
    let stored = runs.get(run.id).await.unwrap().unwrap();
    assert_eq!(stored.state, RunState::Failed);
    assert_eq!(stored.counts, closed.counts);
    assert!(stored.finished_at.is_some());
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn records_never_regress() {
    let (store, runs) = stores("regress").await;
    let run = runs.create_run(RunKind::Full).await.unwrap();
    runs.tasks_queued(run.id, &[page_task(run.id, "a"), page_task(run.id, "b")]).await.unwrap();
    runs.task_done("p:a", run.id, &outcome(2)).await.unwrap();
    // Re-queued by a redelivered parent: stays done.
    runs.tasks_queued(run.id, &[page_task(run.id, "a")]).await.unwrap();
    // A late failing duplicate: stays done.
    runs.task_failed("p:a", run.id, "late duplicate").await.unwrap();
    let a = runs.task(run.id, "p:a").await.unwrap().unwrap();
    assert_eq!((a.state, a.indexed, a.error), (TaskState::Done, 2, None));
    // Done after failed (a retry that finally worked) wins.
    runs.task_failed("p:b", run.id, "first try").await.unwrap();
    runs.task_done("p:b", run.id, &outcome(1)).await.unwrap();
    assert_eq!(runs.task(run.id, "p:b").await.unwrap().unwrap().state, TaskState::Done);
    // A record missing entirely is created by task_done / task_failed.
    runs.task_done("p:unqueued", run.id, &outcome(1)).await.unwrap();
    runs.task_failed("p:unqueued2", run.id, "x").await.unwrap();
    let status = runs.status(run.id).await.unwrap();
    assert_eq!((status.done, status.failed, status.queued), (3, 1, 0));
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn abort_keeps_the_first_reason_and_forbids_deletion() {
    let (store, runs) = stores("abort").await;
    let run = runs.create_run(RunKind::Full).await.unwrap();
    runs.planning_done(run.id, 0).await.unwrap();
    assert!(may_delete(&runs.status(run.id).await.unwrap()));
    runs.abort(run.id, "token revoked").await.unwrap();
    runs.abort(run.id, "second reason").await.unwrap();
    let status = runs.status(run.id).await.unwrap();
    assert_eq!(status.abort_reason.as_deref(), Some("token revoked"));
    assert!(is_complete(&status) && !may_delete(&status));
    let record = runs.get(run.id).await.unwrap().unwrap();
    assert_eq!(record.errors, vec!["token revoked".to_string()]);
    assert!(runs.abort(42, "no such run").await.is_err());
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn run_ids_history_and_last_completed() {
    let (store, runs) = stores("history").await;
    let first = runs.create_run(RunKind::Full).await.unwrap();
    let second = runs.create_run(RunKind::Incremental).await.unwrap();
    let third = runs.create_run(RunKind::Full).await.unwrap();
    assert!(first.id < second.id && second.id < third.id);
    assert!(runs.next_run_id().await.unwrap() > third.id);
    let recent: Vec<u64> = runs.recent(2).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(recent, vec![third.id, second.id]);
    assert!(runs.last_completed(RunKind::Full).await.unwrap().is_none());
    runs.planning_done(first.id, 0).await.unwrap();
    runs.close(first.id, RunState::Completed, 12).await.unwrap();
    runs.set_watermark(second.id, "2024-05-01T00:00:00.000Z").await.unwrap();
    runs.close(second.id, RunState::Completed, 0).await.unwrap();
    let last = runs.last_completed(RunKind::Full).await.unwrap().unwrap();
    assert_eq!((last.id, last.counts.deleted), (first.id, 12));
    let inc = runs.last_completed(RunKind::Incremental).await.unwrap().unwrap();
    assert_eq!(inc.watermark.as_deref(), Some("2024-05-01T00:00:00.000Z"));
    assert!(runs.get(1).await.unwrap().is_none());
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn body_parts_come_back_in_segment_order() {
    let (store, runs) = stores("parts").await;
    let run = runs.create_run(RunKind::Full).await.unwrap();
    let other = runs.create_run(RunKind::Full).await.unwrap();
    let tasks = vec![
        page_task(run.id, "p"),
        continuation(run.id, "p", 2),
        continuation(run.id, "p", 1),
        continuation(run.id, "p", 3),
    ];
    runs.tasks_queued(run.id, &tasks).await.unwrap();
    let part = |text: &str, segment: u32| TaskOutcome { body_part: Some(text.into()), segment, ..Default::default() };
    runs.task_done("p:p:c2", run.id, &part("third", 2)).await.unwrap();
    runs.task_done("p:p", run.id, &part("first", 0)).await.unwrap();
    runs.task_done("p:p:c1", run.id, &part("second", 1)).await.unwrap();
    // The same page (and the same task id) in another run must not leak in.
    runs.tasks_queued(other.id, &[continuation(other.id, "p", 1)]).await.unwrap();
    runs.task_done("p:p:c1", other.id, &part("other run", 1)).await.unwrap();
    assert_eq!(runs.body_parts("p", other.id).await.unwrap(), vec!["other run"]);
    assert_eq!(runs.body_parts("p", run.id).await.unwrap(), vec!["first", "second", "third"]);
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn prune_keeps_the_newest_runs_tasks() {
    let (store, runs) = stores("prune").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let run = runs.create_run(RunKind::Full).await.unwrap();
        runs.tasks_queued(
            run.id,
            &[page_task(run.id, &format!("x{}", run.id)), page_task(run.id, &format!("y{}", run.id))],
        )
        .await
        .unwrap();
        ids.push(run.id);
    }
    for id in &ids {
        runs.close(*id, RunState::Completed, 0).await.unwrap();
    }
    assert_eq!(runs.prune_tasks(2).await.unwrap(), 2);
    assert_eq!(runs.status(ids[0]).await.unwrap().queued, 0);
    assert_eq!(runs.status(ids[1]).await.unwrap().queued, 2);
    assert_eq!(runs.prune_tasks(5).await.unwrap(), 0);
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn prune_never_touches_a_run_still_open() {
    // A long full run while many webhook runs come and go: its task records are how it completes.
    let (store, runs) = stores("prune-open").await;
    let long = runs.create_run(RunKind::Full).await.unwrap();
    runs.tasks_queued(long.id, &[page_task(long.id, "a"), page_task(long.id, "b")]).await.unwrap();
    for _ in 0..3 {
        let run = runs.create_run(RunKind::Webhook).await.unwrap();
        runs.tasks_queued(run.id, &[page_task(run.id, &format!("w{}", run.id))]).await.unwrap();
        runs.close(run.id, RunState::Completed, 0).await.unwrap();
    }
    assert_eq!(runs.prune_tasks(2).await.unwrap(), 1, "only the oldest closed webhook run's record goes");
    assert_eq!(runs.status(long.id).await.unwrap().queued, 2);
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn webhook_event_records_older_than_the_window_are_pruned() {
    let (store, runs) = stores("prune-events").await;
    let events = shared::adapters::search::SearchEventLog::new(store.client().clone(), store.index());
    use shared::api::EventLog;
    events.record("evt-1").await.unwrap();
    assert!(events.seen("evt-1").await.unwrap());
    assert_eq!(runs.prune_webhook_events(chrono::Duration::days(7)).await.unwrap(), 0);
    assert!(events.seen("evt-1").await.unwrap());
    assert_eq!(runs.prune_webhook_events(chrono::Duration::seconds(-60)).await.unwrap(), 1);
    assert!(!events.seen("evt-1").await.unwrap());
    store.delete_indices().await.unwrap();
    store
        .client()
        .json(Method::Delete, &shared::adapters::search::events_index(store.index()), &[], None)
        .await
        .unwrap();
}

#[tokio::test]
async fn body_parts_saved_before_hand_on_are_checked_for_gaps() {
    let (store, runs) = stores("saved-parts").await;
    let run = runs.create_run(RunKind::Full).await.unwrap();
    runs.tasks_queued(run.id, &[page_task(run.id, "q"), continuation(run.id, "q", 1), continuation(run.id, "q", 2)])
        .await
        .unwrap();
    runs.save_body_part(run.id, "p:q", "q", 0, "zero").await.unwrap();
    // Segment 1 has not saved its part yet: the last segment must wait (retry), not guess.
    let err = runs.body_parts_before("q", run.id, 2).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("[1]"), "{err}");
    runs.save_body_part(run.id, "p:q:c1", "q", 1, "one").await.unwrap();
    assert_eq!(runs.body_parts_before("q", run.id, 2).await.unwrap(), vec!["zero", "one"]);
    // Saving keeps the task queued until it is done; done keeps the saved part.
    let status = runs.status(run.id).await.unwrap();
    assert_eq!((status.queued, status.done), (3, 0));
    runs.task_done("p:q", run.id, &TaskOutcome { body_part: Some("zero".into()), ..Default::default() }).await.unwrap();
    runs.task_done("p:q:c1", run.id, &TaskOutcome { body_part: Some("one".into()), segment: 1, ..Default::default() })
        .await
        .unwrap();
    runs.task_done("p:q:c2", run.id, &TaskOutcome::default()).await.unwrap();
    assert_eq!(runs.body_parts("q", run.id).await.unwrap(), vec!["zero", "one"]);
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn one_finalize_chain_claims_the_closing() {
    let (store, runs) = stores("claim").await;
    let run = runs.create_run(RunKind::Full).await.unwrap();
    assert!(runs.claim_close(run.id, "chain-a").await.unwrap());
    // The same chain again (a redelivery after a crash) keeps its claim; another chain is refused.
    assert!(runs.claim_close(run.id, "chain-a").await.unwrap());
    assert!(!runs.claim_close(run.id, "chain-b").await.unwrap());
    runs.close(run.id, RunState::Completed, 0).await.unwrap();
    // Once closed, nobody claims it.
    assert!(!runs.claim_close(run.id, "chain-a").await.unwrap());
    assert!(!runs.claim_close(run.id, "chain-b").await.unwrap());
    assert!(matches!(runs.claim_close(run.id + 1_000_000, "chain-a").await, Err(shared::runs::RunError::NotFound(_))));
    store.delete_indices().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// One full run per index (issue 12): the lock, its lease, zombie runs
// ---------------------------------------------------------------------------------------------

fn started(start: FullStart) -> shared::runs::RunRecord {
    match start {
        FullStart::Started(run) => run,
        FullStart::Running(holder) => panic!("refused: run {holder} holds the lock"),
    }
}

#[tokio::test]
async fn one_full_run_at_a_time_and_the_lock_goes_when_it_closes() {
    let (store, runs) = stores("lock").await;
    let (a, b) = tokio::join!(runs.start_full_run(), runs.start_full_run());
    let (run, refused) = match (a.unwrap(), b.unwrap()) {
        (FullStart::Started(run), FullStart::Running(holder))
        | (FullStart::Running(holder), FullStart::Started(run)) => (run, holder),
        other => panic!("two concurrent starts must give one run: {other:?}"),
    };
    assert_eq!(refused, run.id);
    // The refused start left no record; the lock document is not a run.
    let recent = runs.recent(10).await.unwrap();
    assert_eq!(recent.iter().map(|r| r.id).collect::<Vec<_>>(), vec![run.id]);
    assert_eq!(runs.full_lock_holder().await.unwrap(), Some(run.id));
    // The holder may take it again (the planner checks it holds it); another run may not.
    assert_eq!(runs.take_full_lock(run.id).await.unwrap(), Lock::Taken);
    let other = runs.create_run(RunKind::Full).await.unwrap();
    assert_eq!(runs.take_full_lock(other.id).await.unwrap(), Lock::Busy(run.id));
    assert!(runs.active_run_ids().await.unwrap().contains(&run.id));
    // Closed (any state), the lock is released.
    runs.close(run.id, RunState::Failed, 0).await.unwrap();
    assert_eq!(runs.full_lock_holder().await.unwrap(), None);
    assert_eq!(runs.take_full_lock(other.id).await.unwrap(), Lock::Taken);
    assert!(!runs.active_run_ids().await.unwrap().contains(&run.id));
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn the_lock_of_a_closed_run_is_taken_over() {
    let (store, runs) = stores("lock-takeover").await;
    let first = started(runs.start_full_run().await.unwrap());
    // Closed without releasing its lock (the function stopped between the two writes).
    let path = format!("{}-runs/_update/{}", store.index(), first.id);
    let body = json!({"doc": {"state": "completed"}});
    store
        .client()
        .json(Method::Post, &path, &[("refresh", "true".into())], Some(&body))
        .await
        .unwrap()
        .ok("close")
        .unwrap();
    let second = started(runs.start_full_run().await.unwrap());
    assert!(second.id > first.id);
    assert_eq!(runs.full_lock_holder().await.unwrap(), Some(second.id));
    store.delete_indices().await.unwrap();
}

#[tokio::test]
async fn zombie_runs_are_closed_as_failed_once_their_lease_runs_out() {
    let (store, runs) = stores("zombies").await;
    let runs = runs.with_leases(Leases { planning: Duration::from_secs(1), running: Duration::from_secs(2) });
    // A full run whose planner died mid-planning, and an incremental run whose finalize chain is lost.
    let planning = started(runs.start_full_run().await.unwrap());
    let running = runs.create_run(RunKind::Incremental).await.unwrap();
    runs.planning_done(running.id, 0).await.unwrap();
    runs.renew_lease(running.id, RunKind::Incremental, runs.leases().running).await.unwrap();
    // Within their leases nothing is closed and the lock holds.
    assert!(runs.close_zombies().await.unwrap().is_empty());
    assert!(matches!(runs.start_full_run().await.unwrap(), FullStart::Running(id) if id == planning.id));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // The planning run's lease is over: a new full run closes it and takes the lock.
    let next = started(runs.start_full_run().await.unwrap());
    let dead = runs.get(planning.id).await.unwrap().unwrap();
    assert_eq!(dead.state, RunState::Failed);
    let reason = dead.abort_reason.unwrap_or_default();
    assert!(reason.contains("planner stopped before planning finished"), "{reason}");
    assert_eq!(runs.get(running.id).await.unwrap().unwrap().state, RunState::Running, "its lease is longer");
    // A renewed lease keeps a run alive.
    tokio::time::sleep(Duration::from_millis(900)).await;
    runs.renew_lease(next.id, RunKind::Full, runs.leases().running).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let closed = runs.close_zombies().await.unwrap();
    assert_eq!(closed, vec![running.id]);
    let dead = runs.get(running.id).await.unwrap().unwrap();
    assert_eq!(dead.state, RunState::Failed);
    let reason = dead.abort_reason.unwrap_or_default();
    assert!(reason.contains("no finalize check for"), "{reason}");
    assert_eq!(runs.full_lock_holder().await.unwrap(), Some(next.id));
    assert_eq!(runs.active_run_ids().await.unwrap(), vec![next.id]);
    store.delete_indices().await.unwrap();
}

//! `MemoryLedger`'s task records and page parts, as `crate::runs::RunStore` keeps them: a record is created
//! only where none exists (a redelivery or a second claimant leaves it as it is), `done` is never undone by a
//! late failure, and the last segment of a page walk finds the earlier segments' texts or an error.

use chrono::Utc;

use super::journal::Event;
use super::ledger::{ready, MemoryLedger, Task, MAX_ERROR_LEN};
use crate::ports::{BodyParts, BoxFuture};
use crate::runs::{parts_before, task_page, truncate, RunError, TaskOutcome, TaskRecord, TaskState, PLANNER};
use crate::task::TaskMessage;

fn new_record(run_id: u64, task_id: &str, state: TaskState) -> TaskRecord {
    TaskRecord {
        run_id,
        task_id: Some(task_id.to_string()),
        state,
        indexed: 0,
        skipped: 0,
        deleted: 0,
        errors: 0,
        api_calls: 0,
        retries: 0,
        error: None,
        error_samples: Vec::new(),
        body_part: None,
        page_id: None,
        segment: None,
        updated_at: Some(Utc::now()),
    }
}

impl MemoryLedger {
    /// Creates the records of `tasks` for `owner` where none exists (the walk's page and segment noted).
    pub(super) fn claim(&self, run_id: u64, owner: &str, tasks: &[TaskMessage]) {
        let mut state = self.state();
        for msg in tasks {
            let key = (run_id, msg.task_id.clone());
            if state.tasks.contains_key(&key) {
                continue;
            }
            let mut record = new_record(run_id, &msg.task_id, TaskState::Queued);
            if let Some((page_id, segment)) = task_page(&msg.task) {
                record.page_id = Some(page_id.to_string());
                record.segment = Some(segment);
            }
            state.tasks.insert(key, Task { record, claimed_by: Some(owner.to_string()) });
            self.journal.note(Event::Recorded { run_id, task_id: msg.task_id.clone(), state: TaskState::Queued });
        }
    }

    /// [`MemoryLedger::claim`], then the tasks this owner holds (created now, or earlier by the same owner).
    pub(super) fn claim_now(&self, run_id: u64, owner: &str, tasks: Vec<TaskMessage>) -> Vec<TaskMessage> {
        self.claim(run_id, owner, &tasks);
        let state = self.state();
        let holds = |msg: &TaskMessage| {
            let task = state.tasks.get(&(run_id, msg.task_id.clone()));
            task.is_some_and(|t| t.claimed_by.as_deref().unwrap_or(PLANNER) == owner)
        };
        tasks.into_iter().filter(|msg| holds(msg)).collect()
    }

    pub(super) fn mark_claimed_now(&self, run_id: u64, task_ids: &[String]) {
        let mut state = self.state();
        for task_id in task_ids {
            if let std::collections::btree_map::Entry::Vacant(slot) = state.tasks.entry((run_id, task_id.clone())) {
                let record = new_record(run_id, task_id, TaskState::Claimed);
                slot.insert(Task { record, claimed_by: Some(PLANNER.to_string()) });
                self.journal.note(Event::Recorded { run_id, task_id: task_id.clone(), state: TaskState::Claimed });
            }
        }
    }

    /// Marks the task done with its counts, creating the record if it is missing; the same outcome twice leaves
    /// the same record (the counts are replaced, not added).
    pub(super) fn task_done_now(&self, task_id: &str, run_id: u64, outcome: &TaskOutcome) {
        let mut state = self.state();
        let key = (run_id, task_id.to_string());
        let task = state
            .tasks
            .entry(key)
            .or_insert_with(|| Task { record: new_record(run_id, task_id, TaskState::Done), claimed_by: None });
        let record = &mut task.record;
        record.state = TaskState::Done;
        record.indexed = outcome.indexed;
        record.skipped = outcome.skipped;
        record.deleted = outcome.deleted;
        record.errors = outcome.errors;
        record.api_calls = outcome.api_calls;
        record.retries = outcome.retries;
        record.error = None;
        record.error_samples = outcome.error_samples.iter().take(20).map(|e| truncate(e, MAX_ERROR_LEN)).collect();
        record.body_part = outcome.body_part.clone();
        if outcome.body_part.is_some() {
            record.segment = Some(outcome.segment);
        }
        record.updated_at = Some(Utc::now());
        self.journal.note(Event::Done { run_id, task_id: task_id.to_string() });
    }

    /// Marks the task failed, unless it is done (a late failing duplicate must not undo a success).
    pub(super) fn task_failed_now(&self, task_id: &str, run_id: u64, error: &str) {
        let mut state = self.state();
        let key = (run_id, task_id.to_string());
        let task = state
            .tasks
            .entry(key)
            .or_insert_with(|| Task { record: new_record(run_id, task_id, TaskState::Failed), claimed_by: None });
        if task.record.state == TaskState::Done {
            return;
        }
        task.record.state = TaskState::Failed;
        task.record.error = Some(truncate(error, MAX_ERROR_LEN));
        task.record.updated_at = Some(Utc::now());
        self.journal.note(Event::Failed { run_id, task_id: task_id.to_string() });
    }

    /// Records a segment's text on record `task_id` (created in `state_if_new` when missing).
    fn save_part(&self, run_id: u64, task_id: &str, page_id: &str, segment: u32, text: &str, state_if_new: TaskState) {
        let mut state = self.state();
        let key = (run_id, task_id.to_string());
        let task = state.tasks.entry(key).or_insert_with(|| {
            self.journal.note(Event::Recorded { run_id, task_id: task_id.to_string(), state: state_if_new });
            Task { record: new_record(run_id, task_id, state_if_new), claimed_by: None }
        });
        task.record.page_id = Some(page_id.to_string());
        task.record.segment = Some(segment);
        task.record.body_part = Some(text.to_string());
        task.record.updated_at = Some(Utc::now());
    }

    fn body_parts_before_now(&self, page_id: &str, run_id: u64, segment: u32) -> Result<Vec<String>, RunError> {
        let state = self.state();
        let mut parts: Vec<(u32, String)> = state
            .tasks
            .values()
            .map(|t| &t.record)
            .filter(|t| t.run_id == run_id && t.page_id.as_deref() == Some(page_id))
            .filter_map(|t| Some((t.segment?, t.body_part.clone()?)))
            .collect();
        parts.sort_by_key(|(segment, _)| *segment);
        parts_before(parts, segment).map_err(|missing| RunError::MissingBodyParts { page_id: page_id.into(), missing })
    }
}

impl BodyParts for MemoryLedger {
    fn save_body_part<'a>(
        &'a self,
        run_id: u64,
        task_id: &'a str,
        page_id: &'a str,
        segment: u32,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        self.save_part(run_id, task_id, page_id, segment, text, TaskState::Queued);
        ready(Ok(()))
    }

    fn save_row_body_part<'a>(
        &'a self,
        run_id: u64,
        page_id: &'a str,
        segment: u32,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        // A record of its own, not counted as a task (as `RunStore` names it).
        let record = format!("p:{page_id}:part{segment}");
        self.save_part(run_id, &record, page_id, segment, text, TaskState::Claimed);
        ready(Ok(()))
    }

    fn body_parts_before<'a>(
        &'a self,
        page_id: &'a str,
        run_id: u64,
        segment: u32,
    ) -> BoxFuture<'a, Result<Vec<String>, RunError>> {
        ready(self.body_parts_before_now(page_id, run_id, segment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::RunLedger;
    use crate::runs::{FullStart, Lock, RunState};
    use crate::task::{RunKind, Task as Work};

    fn page_task(run_id: u64, id: &str) -> TaskMessage {
        TaskMessage::new(
            run_id,
            RunKind::Full,
            format!("p:{id}"),
            Work::Page { page_id: id.into(), page: None, path: vec![] },
        )
    }

    fn done(indexed: u64) -> TaskOutcome {
        TaskOutcome { indexed, api_calls: 2, ..TaskOutcome::default() }
    }

    #[tokio::test]
    async fn a_task_is_claimed_once_and_a_duplicate_counts_once() {
        let ledger = MemoryLedger::default();
        let run = ledger.create_run(RunKind::Full).await.unwrap();
        let tasks = vec![page_task(run.id, "a"), page_task(run.id, "b")];
        assert_eq!(ledger.claim_tasks(run.id, "p:x", tasks.clone()).await.unwrap().len(), 2);
        // Another claimant gets none; the same one (a redelivery) gets them again.
        assert!(ledger.claim_tasks(run.id, "p:y", tasks.clone()).await.unwrap().is_empty());
        assert_eq!(ledger.claim_tasks(run.id, "p:x", tasks.clone()).await.unwrap().len(), 2);
        ledger.mark_claimed(run.id, &["database:d".to_string()]).await.unwrap();
        for _ in 0..2 {
            ledger.task_done("p:a", run.id, &done(3)).await.unwrap();
        }
        ledger.task_failed("p:a", run.id, "late duplicate failed").await.unwrap();
        let status = ledger.status(run.id).await.unwrap();
        assert_eq!((status.queued, status.done, status.failed, status.indexed, status.api_calls), (1, 1, 0, 3, 2));
        ledger.task_failed("p:b", run.id, "boom").await.unwrap();
        ledger.planning_done(run.id, 2).await.unwrap();
        let closed = ledger.close(run.id, RunState::Failed, 4).await.unwrap();
        assert_eq!((closed.counts.done, closed.counts.failed, closed.counts.deleted), (1, 1, 4));
        assert_eq!(closed.errors, vec!["task p:b: boom".to_string()]);
    }

    #[tokio::test]
    async fn the_last_segment_needs_every_earlier_part() {
        let ledger = MemoryLedger::default();
        let run = ledger.create_run(RunKind::Full).await.unwrap().id;
        ledger.save_body_part(run, "p:a", "a", 0, "zero").await.unwrap();
        let err = ledger.body_parts_before("a", run, 2).await.unwrap_err();
        assert!(matches!(&err, RunError::MissingBodyParts { missing, .. } if missing == &vec![1]), "{err}");
        ledger.save_row_body_part(run, "a", 1, "one").await.unwrap();
        assert_eq!(ledger.body_parts_before("a", run, 2).await.unwrap(), vec!["zero", "one"]);
        // The part of `p:a` is a queued task record; the row part is not a task.
        assert_eq!(ledger.status(run).await.unwrap().queued, 1);
    }

    #[tokio::test]
    async fn one_full_run_holds_the_lock_until_closed_or_dead() {
        let ledger = MemoryLedger::default();
        let FullStart::Started(first) = ledger.start_full_run().await.unwrap() else { panic!("lock free") };
        assert_eq!(ledger.start_full_run().await.unwrap(), FullStart::Running(first.id));
        assert_eq!(ledger.recent(10).await.unwrap().len(), 1, "the refused run is not recorded");
        let other = ledger.create_run(RunKind::Full).await.unwrap();
        assert_eq!(ledger.take_full_lock(other.id).await.unwrap(), Lock::Busy(first.id));
        // Only one finalize chain may close a run.
        assert!(ledger.claim_close(first.id, "t1").await.unwrap());
        assert!(!ledger.claim_close(first.id, "t2").await.unwrap());
        assert!(ledger.claim_close(first.id, "t1").await.unwrap());
        ledger.close(first.id, RunState::Completed, 0).await.unwrap();
        assert_eq!(ledger.lock_holder(), None, "closing released it");
        assert!(!ledger.claim_close(first.id, "t1").await.unwrap());
        assert_eq!(ledger.take_full_lock(other.id).await.unwrap(), Lock::Taken);
        // A holder past its lease (and the lock's) is closed as a zombie and the lock taken over.
        let past = Utc::now() - chrono::Duration::days(2);
        ledger.edit_run(other.id, |r| (r.lease_until, r.renewed_at) = (Some(past), Some(past)));
        ledger.expire_lock();
        let third = ledger.create_run(RunKind::Full).await.unwrap();
        assert_eq!(ledger.take_full_lock(third.id).await.unwrap(), Lock::Taken);
        let zombie = ledger.get(other.id).await.unwrap().unwrap();
        assert_eq!(zombie.state, RunState::Failed);
        assert!(zombie.abort_reason.unwrap().contains("planner stopped"));
        assert_eq!(ledger.active_run_ids().await.unwrap(), vec![third.id]);
        // Any open run past its lease is closed by `close_zombies` (the planner's first step).
        let webhook = ledger.create_run(RunKind::Webhook).await.unwrap();
        ledger.edit_run(webhook.id, |r| (r.lease_until, r.renewed_at) = (Some(past), Some(past)));
        assert_eq!(ledger.close_zombies().await.unwrap(), vec![webhook.id]);
        assert_eq!(ledger.active_run_ids().await.unwrap(), vec![third.id]);
    }
}

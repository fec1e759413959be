//! `MemoryLedger`: run and task records in memory, with the semantics of `crate::runs::RunStore`: run ids past
//! the newest, leases and zombies, the full-run lock (one full run at a time, taken over only from a closed or
//! dead holder, released on close), the close claimed by one finalize token. Task records are in `tasks.rs`.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::journal::Journal;
use crate::ports::{BoxFuture, RunLedger};
use crate::runs::{
    next_run_id, truncate, zombie_reason, FullStart, Leases, Lock, RunCounts, RunError, RunRecord, RunState, RunStatus,
    TaskOutcome, TaskRecord, TaskState, MAX_RUN_ERRORS,
};
use crate::task::{RunKind, TaskMessage};

/// Longest error message stored, as `RunStore` cuts them.
pub(super) const MAX_ERROR_LEN: usize = 2000;

/// A run record and the finalize chain that claimed its close.
#[derive(Debug, Clone)]
pub(super) struct Run {
    pub record: RunRecord,
    pub closing_by: Option<String>,
}

/// A task record and its claimant (`None` for records made by an upsert: they count as the planner's, as in
/// `RunStore`).
#[derive(Debug, Clone)]
pub(super) struct Task {
    pub record: TaskRecord,
    pub claimed_by: Option<String>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub runs: BTreeMap<u64, Run>,
    /// By `(run_id, task_id)`, as `RunStore`'s `{run_id}:{task_id}` record ids.
    pub tasks: BTreeMap<(u64, String), Task>,
    /// The full-run lock: its holder and when it expires.
    pub lock: Option<(u64, DateTime<Utc>)>,
}

/// Run and task records in memory. Every write is noted in [`MemoryLedger::journal`] (task records only).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    pub(super) state: Mutex<State>,
    leases: Leases,
    pub journal: Journal,
}

fn lease_delta(lease: Duration) -> chrono::Duration {
    chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::days(365))
}

pub(super) fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl State {
    pub fn run_mut(&mut self, run_id: u64) -> Result<&mut Run, RunError> {
        self.runs.get_mut(&run_id).ok_or(RunError::NotFound(run_id))
    }

    /// The record's flags and the sums over the run's task records (claim marks and row parts count nothing).
    pub fn status(&self, run_id: u64) -> Result<RunStatus, RunError> {
        let run = self.runs.get(&run_id).ok_or(RunError::NotFound(run_id))?;
        let mut status = RunStatus::of(&run.record);
        for task in self.tasks.range((run_id, String::new())..).take_while(|((r, _), _)| *r == run_id) {
            let t = &task.1.record;
            match t.state {
                TaskState::Queued => status.queued += 1,
                TaskState::Done => status.done += 1,
                TaskState::Failed => status.failed += 1,
                TaskState::Claimed => {}
            }
            status.indexed += t.indexed;
            status.skipped += t.skipped;
            status.deleted += t.deleted;
            status.errors += t.errors;
            status.api_calls += t.api_calls;
            status.retries += t.retries;
        }
        Ok(status)
    }

    pub fn abort(&mut self, run_id: u64, reason: &str) -> Result<(), RunError> {
        let run = &mut self.run_mut(run_id)?.record;
        if run.abort_reason.is_none() {
            let reason = truncate(reason, MAX_ERROR_LEN);
            run.abort_reason = Some(reason.clone());
            if run.errors.len() < MAX_RUN_ERRORS {
                run.errors.push(reason);
            }
        }
        Ok(())
    }

    /// Closes the run with its final counts and the first errors of its failed tasks; frees the lock it holds.
    pub fn close(&mut self, run_id: u64, state: RunState, deleted: u64) -> Result<RunRecord, RunError> {
        let status = self.status(run_id)?;
        let mut failed: Vec<&TaskRecord> = self
            .tasks
            .values()
            .map(|t| &t.record)
            .filter(|t| t.run_id == run_id && t.state == TaskState::Failed)
            .collect();
        failed.sort_by_key(|t| t.updated_at);
        let run = &mut self.runs.get_mut(&run_id).ok_or(RunError::NotFound(run_id))?.record;
        for task in failed {
            if run.errors.len() >= MAX_RUN_ERRORS {
                break;
            }
            let error = task.error.as_deref().unwrap_or("failed");
            run.errors.push(format!("task {}: {error}", task.task_id.as_deref().unwrap_or("?")));
        }
        run.state = state;
        run.finished_at = Some(Utc::now());
        run.counts = RunCounts {
            done: status.done,
            failed: status.failed,
            indexed: status.indexed,
            skipped: status.skipped,
            deleted: status.deleted + deleted,
            errors: status.errors,
            api_calls: status.api_calls,
            retries: status.retries,
        };
        let closed = run.clone();
        if closed.kind == RunKind::Full && self.lock.is_some_and(|(holder, _)| holder == run_id) {
            self.lock = None;
        }
        Ok(closed)
    }

    fn create_run(&mut self, kind: RunKind, leases: &Leases) -> RunRecord {
        let now = Utc::now();
        let now_ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let id = next_run_id(now_ms, self.runs.keys().next_back().copied());
        let record = RunRecord::planning(id, kind, now, lease_delta(leases.planning));
        self.runs.insert(id, Run { record: record.clone(), closing_by: None });
        record
    }

    fn take_full_lock(&mut self, run_id: u64, leases: &Leases) -> Result<Lock, RunError> {
        let now = Utc::now();
        if let Some((holder, expires_at)) = self.lock.filter(|(holder, _)| *holder != run_id) {
            if let Some(run) = self.runs.get(&holder).map(|r| r.record.clone()).filter(|r| !r.state.is_closed()) {
                // A live holder keeps it; a dead one (its lease and the lock's ran out) is closed first.
                match zombie_reason(&run, leases, now) {
                    Some(reason) if expires_at < now => {
                        self.abort(holder, &reason)?;
                        self.close(holder, RunState::Failed, 0)?;
                    }
                    _ => return Ok(Lock::Busy(holder)),
                }
            }
        }
        self.lock = Some((run_id, now + lease_delta(leases.planning)));
        Ok(Lock::Taken)
    }

    fn open_runs(&self) -> Vec<RunRecord> {
        self.runs.values().rev().map(|r| r.record.clone()).filter(|r| !r.state.is_closed()).collect()
    }
}

impl MemoryLedger {
    pub fn with_leases(leases: Leases) -> Self {
        MemoryLedger { leases, ..MemoryLedger::default() }
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("memory ledger lock")
    }

    /// Every task record of a run, by task id.
    pub fn tasks_of(&self, run_id: u64) -> BTreeMap<String, TaskRecord> {
        let state = self.state();
        let of_run = state.tasks.iter().filter(|((r, _), _)| *r == run_id);
        of_run.map(|((_, id), t)| (id.clone(), t.record.clone())).collect()
    }

    /// The run holding the full-run lock, if any.
    pub fn lock_holder(&self) -> Option<u64> {
        self.state().lock.map(|(holder, _)| holder)
    }

    /// Lets the full-run lock's own lease run out (its holder is then taken over if its run's lease ran out too).
    pub fn expire_lock(&self) {
        let mut state = self.state();
        state.lock = state.lock.map(|(holder, _)| (holder, Utc::now() - chrono::Duration::seconds(1)));
    }

    /// Changes a run record in place (tests age a lease this way).
    pub fn edit_run(&self, run_id: u64, edit: impl FnOnce(&mut RunRecord)) {
        if let Some(run) = self.state().runs.get_mut(&run_id) {
            edit(&mut run.record);
        }
    }

    fn update(&self, run_id: u64, edit: impl FnOnce(&mut RunRecord)) -> Result<(), RunError> {
        edit(&mut self.state().run_mut(run_id)?.record);
        Ok(())
    }

    fn add_warning_now(&self, run_id: u64, warning: &str, class: Option<&str>) -> Result<(), RunError> {
        let warning = truncate(warning, MAX_ERROR_LEN);
        self.update(run_id, |run| {
            if run.warnings.len() < MAX_RUN_ERRORS && !run.warnings.contains(&warning) {
                run.warnings.push(warning);
            }
            if let Some(class) = class.filter(|c| !run.skipped_classes.iter().any(|s| s == c)) {
                run.skipped_classes.push(class.to_string());
            }
        })
    }

    fn renew_lease_now(&self, run_id: u64, kind: RunKind, lease: Duration) -> Result<(), RunError> {
        let now = Utc::now();
        let until = now + lease_delta(lease);
        let mut state = self.state();
        let run = &mut state.run_mut(run_id)?.record;
        run.lease_until = Some(until);
        run.renewed_at = Some(now);
        if kind == RunKind::Full && state.lock.is_some_and(|(holder, _)| holder == run_id) {
            state.lock = Some((run_id, until));
        }
        Ok(())
    }

    fn claim_close_now(&self, run_id: u64, token: &str) -> Result<bool, RunError> {
        let mut state = self.state();
        let run = state.run_mut(run_id)?;
        if run.record.state.is_closed() || run.closing_by.as_deref().is_some_and(|t| t != token) {
            return Ok(false);
        }
        run.closing_by = Some(token.to_string());
        Ok(true)
    }

    fn close_zombies_now(&self) -> Result<Vec<u64>, RunError> {
        let mut state = self.state();
        let mut closed = Vec::new();
        for run in state.open_runs() {
            if let Some(reason) = zombie_reason(&run, &self.leases, Utc::now()) {
                state.abort(run.id, &reason)?;
                state.close(run.id, RunState::Failed, 0)?;
                closed.push(run.id);
            }
        }
        Ok(closed)
    }

    fn start_full_run_now(&self) -> Result<FullStart, RunError> {
        let mut state = self.state();
        let run = state.create_run(RunKind::Full, &self.leases);
        match state.take_full_lock(run.id, &self.leases)? {
            Lock::Taken => Ok(FullStart::Started(run)),
            Lock::Busy(holder) => {
                // Refused: nothing stays recorded.
                state.runs.remove(&run.id);
                Ok(FullStart::Running(holder))
            }
        }
    }

    fn prune_tasks_now(&self, keep_runs: usize) -> u64 {
        let mut state = self.state();
        let keep = keep_runs.max(1);
        let kept: Vec<u64> = state.runs.keys().rev().take(keep).copied().collect();
        let (Some(&oldest_kept), true) = (kept.last(), kept.len() == keep) else { return 0 };
        let open: Vec<u64> = state.open_runs().iter().map(|r| r.id).collect();
        let before = state.tasks.len();
        state.tasks.retain(|(run, _), _| *run >= oldest_kept || open.contains(run));
        (before - state.tasks.len()) as u64
    }
}

impl RunLedger for MemoryLedger {
    fn leases(&self) -> &Leases {
        &self.leases
    }
    fn create_run(&self, kind: RunKind) -> BoxFuture<'_, Result<RunRecord, RunError>> {
        ready(Ok(self.state().create_run(kind, &self.leases)))
    }
    fn get(&self, run_id: u64) -> BoxFuture<'_, Result<Option<RunRecord>, RunError>> {
        ready(Ok(self.state().runs.get(&run_id).map(|r| r.record.clone())))
    }
    fn recent(&self, n: usize) -> BoxFuture<'_, Result<Vec<RunRecord>, RunError>> {
        ready(Ok(self.state().runs.values().rev().take(n).map(|r| r.record.clone()).collect()))
    }
    fn last_completed(&self, kind: RunKind) -> BoxFuture<'_, Result<Option<RunRecord>, RunError>> {
        let state = self.state();
        let mut runs = state.runs.values().rev().map(|r| &r.record);
        ready(Ok(runs.find(|r| r.kind == kind && r.state == RunState::Completed).cloned()))
    }
    fn status(&self, run_id: u64) -> BoxFuture<'_, Result<RunStatus, RunError>> {
        ready(self.state().status(run_id))
    }
    fn task<'a>(&'a self, run_id: u64, task_id: &'a str) -> BoxFuture<'a, Result<Option<TaskRecord>, RunError>> {
        ready(Ok(self.state().tasks.get(&(run_id, task_id.to_string())).map(|t| t.record.clone())))
    }
    fn tasks_queued<'a>(&'a self, run_id: u64, tasks: &'a [TaskMessage]) -> BoxFuture<'a, Result<(), RunError>> {
        self.claim(run_id, crate::runs::PLANNER, tasks);
        ready(Ok(()))
    }
    fn claim_tasks<'a>(
        &'a self,
        run_id: u64,
        owner: &'a str,
        tasks: Vec<TaskMessage>,
    ) -> BoxFuture<'a, Result<Vec<TaskMessage>, RunError>> {
        ready(Ok(self.claim_now(run_id, owner, tasks)))
    }
    fn mark_claimed<'a>(&'a self, run_id: u64, task_ids: &'a [String]) -> BoxFuture<'a, Result<(), RunError>> {
        self.mark_claimed_now(run_id, task_ids);
        ready(Ok(()))
    }
    fn task_done<'a>(
        &'a self,
        task_id: &'a str,
        run_id: u64,
        outcome: &'a TaskOutcome,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        self.task_done_now(task_id, run_id, outcome);
        ready(Ok(()))
    }
    fn task_failed<'a>(&'a self, task_id: &'a str, run_id: u64, error: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        self.task_failed_now(task_id, run_id, error);
        ready(Ok(()))
    }
    fn planning_done(&self, run_id: u64, planned: u64) -> BoxFuture<'_, Result<(), RunError>> {
        ready(self.update(run_id, |run| {
            run.planning_done = true;
            run.planned = planned;
            run.planned_at = Some(Utc::now());
            if run.state == RunState::Planning {
                run.state = RunState::Running;
            }
        }))
    }
    fn set_index_uuid<'a>(&'a self, run_id: u64, uuid: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        ready(self.update(run_id, |run| run.index_uuid = Some(uuid.to_string())))
    }
    fn set_watermark<'a>(&'a self, run_id: u64, watermark: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        ready(self.update(run_id, |run| run.watermark = Some(watermark.to_string())))
    }
    fn set_verify_planned(&self, run_id: u64) -> BoxFuture<'_, Result<(), RunError>> {
        ready(self.update(run_id, |run| run.verify_planned = true))
    }
    fn add_warning<'a>(
        &'a self,
        run_id: u64,
        warning: &'a str,
        skipped_class: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        ready(self.add_warning_now(run_id, warning, skipped_class))
    }
    fn abort<'a>(&'a self, run_id: u64, reason: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        ready(self.state().abort(run_id, reason))
    }
    fn claim_close<'a>(&'a self, run_id: u64, token: &'a str) -> BoxFuture<'a, Result<bool, RunError>> {
        ready(self.claim_close_now(run_id, token))
    }
    fn close(&self, run_id: u64, state: RunState, deleted: u64) -> BoxFuture<'_, Result<RunRecord, RunError>> {
        ready(self.state().close(run_id, state, deleted))
    }
    fn active_run_ids(&self) -> BoxFuture<'_, Result<Vec<u64>, RunError>> {
        ready(Ok(self.state().open_runs().iter().map(|r| r.id).collect()))
    }
    fn renew_lease(&self, run_id: u64, kind: RunKind, lease: Duration) -> BoxFuture<'_, Result<(), RunError>> {
        ready(self.renew_lease_now(run_id, kind, lease))
    }
    fn close_zombies(&self) -> BoxFuture<'_, Result<Vec<u64>, RunError>> {
        ready(self.close_zombies_now())
    }
    fn start_full_run(&self) -> BoxFuture<'_, Result<FullStart, RunError>> {
        ready(self.start_full_run_now())
    }
    fn take_full_lock(&self, run_id: u64) -> BoxFuture<'_, Result<Lock, RunError>> {
        ready(self.state().take_full_lock(run_id, &self.leases))
    }
    fn prune_tasks(&self, keep_runs: usize) -> BoxFuture<'_, Result<u64, RunError>> {
        ready(Ok(self.prune_tasks_now(keep_runs)))
    }
    fn prune_webhook_events(&self, _older_than: chrono::Duration) -> BoxFuture<'_, Result<u64, RunError>> {
        // The webhook event log belongs to the API's port, not to this one: nothing to prune here.
        ready(Ok(0))
    }
}

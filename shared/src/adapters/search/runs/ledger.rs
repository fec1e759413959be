//! The ports `RunLedger` and `BodyParts` on the run store.

use super::*;

impl RunLedger for RunStore {
    fn leases(&self) -> &Leases {
        &self.leases
    }
    fn create_run(&self, kind: RunKind) -> BoxFuture<'_, Result<RunRecord, RunError>> {
        Box::pin(RunStore::create_run(self, kind))
    }
    fn get(&self, run_id: u64) -> BoxFuture<'_, Result<Option<RunRecord>, RunError>> {
        Box::pin(RunStore::get(self, run_id))
    }
    fn recent(&self, n: usize) -> BoxFuture<'_, Result<Vec<RunRecord>, RunError>> {
        Box::pin(RunStore::recent(self, n))
    }
    fn last_completed(&self, kind: RunKind) -> BoxFuture<'_, Result<Option<RunRecord>, RunError>> {
        Box::pin(RunStore::last_completed(self, kind))
    }
    fn status(&self, run_id: u64) -> BoxFuture<'_, Result<RunStatus, RunError>> {
        Box::pin(RunStore::status(self, run_id))
    }
    fn task<'a>(&'a self, run_id: u64, task_id: &'a str) -> BoxFuture<'a, Result<Option<TaskRecord>, RunError>> {
        Box::pin(RunStore::task(self, run_id, task_id))
    }
    fn tasks_queued<'a>(&'a self, run_id: u64, tasks: &'a [TaskMessage]) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(RunStore::tasks_queued(self, run_id, tasks))
    }
    fn claim_tasks<'a>(
        &'a self,
        run_id: u64,
        owner: &'a str,
        tasks: Vec<TaskMessage>,
    ) -> BoxFuture<'a, Result<Vec<TaskMessage>, RunError>> {
        Box::pin(RunStore::claim_tasks(self, run_id, owner, tasks))
    }
    fn mark_claimed<'a>(&'a self, run_id: u64, task_ids: &'a [String]) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(RunStore::mark_claimed(self, run_id, task_ids))
    }
    fn task_done<'a>(
        &'a self,
        task_id: &'a str,
        run_id: u64,
        outcome: &'a TaskOutcome,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(RunStore::task_done(self, task_id, run_id, outcome))
    }
    fn task_failed<'a>(&'a self, task_id: &'a str, run_id: u64, error: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(RunStore::task_failed(self, task_id, run_id, error))
    }
    fn planning_done(&self, run_id: u64, planned: u64) -> BoxFuture<'_, Result<(), RunError>> {
        Box::pin(RunStore::planning_done(self, run_id, planned))
    }
    fn set_index_uuid<'a>(&'a self, run_id: u64, uuid: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(RunStore::set_index_uuid(self, run_id, uuid))
    }
    fn set_watermark<'a>(&'a self, run_id: u64, watermark: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(RunStore::set_watermark(self, run_id, watermark))
    }
    fn set_verify_planned(&self, run_id: u64) -> BoxFuture<'_, Result<(), RunError>> {
        Box::pin(RunStore::set_verify_planned(self, run_id))
    }
    fn add_warning<'a>(
        &'a self,
        run_id: u64,
        warning: &'a str,
        skipped_class: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(RunStore::add_warning(self, run_id, warning, skipped_class))
    }
    fn abort<'a>(&'a self, run_id: u64, reason: &'a str) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(RunStore::abort(self, run_id, reason))
    }
    fn claim_close<'a>(&'a self, run_id: u64, token: &'a str) -> BoxFuture<'a, Result<bool, RunError>> {
        Box::pin(RunStore::claim_close(self, run_id, token))
    }
    fn close(&self, run_id: u64, state: RunState, deleted: u64) -> BoxFuture<'_, Result<RunRecord, RunError>> {
        Box::pin(RunStore::close(self, run_id, state, deleted))
    }
    fn active_run_ids(&self) -> BoxFuture<'_, Result<Vec<u64>, RunError>> {
        Box::pin(RunStore::active_run_ids(self))
    }
    fn renew_lease(&self, run_id: u64, kind: RunKind, lease: Duration) -> BoxFuture<'_, Result<(), RunError>> {
        Box::pin(RunStore::renew_lease(self, run_id, kind, lease))
    }
    fn close_zombies(&self) -> BoxFuture<'_, Result<Vec<u64>, RunError>> {
        Box::pin(RunStore::close_zombies(self))
    }
    fn start_full_run(&self) -> BoxFuture<'_, Result<FullStart, RunError>> {
        Box::pin(RunStore::start_full_run(self))
    }
    fn take_full_lock(&self, run_id: u64) -> BoxFuture<'_, Result<Lock, RunError>> {
        Box::pin(RunStore::take_full_lock(self, run_id))
    }
    fn prune_tasks(&self, keep_runs: usize) -> BoxFuture<'_, Result<u64, RunError>> {
        Box::pin(RunStore::prune_tasks(self, keep_runs))
    }
    fn prune_webhook_events(&self, older_than: chrono::Duration) -> BoxFuture<'_, Result<u64, RunError>> {
        Box::pin(RunStore::prune_webhook_events(self, older_than))
    }
}

impl BodyParts for RunStore {
    fn save_body_part<'a>(
        &'a self,
        run_id: u64,
        task_id: &'a str,
        page_id: &'a str,
        segment: u32,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(RunStore::save_body_part(self, run_id, task_id, page_id, segment, text))
    }
    fn save_row_body_part<'a>(
        &'a self,
        run_id: u64,
        page_id: &'a str,
        segment: u32,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(RunStore::save_row_body_part(self, run_id, page_id, segment, text))
    }
    fn body_parts_before<'a>(
        &'a self,
        page_id: &'a str,
        run_id: u64,
        segment: u32,
    ) -> BoxFuture<'a, Result<Vec<String>, RunError>> {
        Box::pin(RunStore::body_parts_before(self, page_id, run_id, segment))
    }
}

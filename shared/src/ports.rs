//! The ports of the sync domain: what planner, worker and reaper need of the outside world, as
//! traits. The search-engine adapters (`crate::adapters::search`) implement them for production;
//! `crate::testing` has in-memory fakes. The Notion client stays concrete: the emulator, served
//! in-process, is its fake. The queue (`TaskQueue`) and the secret source (`SecretSource`) are
//! ports too, defined beside their messages and secrets.

use std::time::Duration;

use serde_json::{Map, Value};

pub use crate::queue::{BoxFuture, TaskQueue};
pub use crate::secrets::SecretSource;

use crate::document::Document;
use crate::index::{BulkReport, IndexError};
use crate::runs::{FullStart, Leases, Lock, RunError, RunRecord, RunState, RunStatus, TaskOutcome, TaskRecord};
use crate::task::{RunKind, TaskMessage};

/// A document's `_source`.
pub type Source = Map<String, Value>;

/// The content index: documents by id, written with the run that made them.
pub trait DocumentStore: Send + Sync + std::fmt::Debug {
    /// The index name, for messages.
    fn index(&self) -> &str;
    /// Indexes documents by `_id` (a document of an older run never replaces a newer one);
    /// rejected documents are reported, not errors.
    fn bulk_index(&self, docs: Vec<Document>) -> BoxFuture<'_, Result<BulkReport, IndexError>>;
    /// One document's source.
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Source>, IndexError>>;
    /// The `fields` of the documents of `ids` that exist (at most 1,000 ids), by id.
    fn sources<'a>(
        &'a self,
        ids: &'a [String],
        fields: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<(String, Source)>, IndexError>>;
    /// Deletes the documents of `ids` that run `run_id` or an older one wrote; returns how many went.
    fn delete_ids_of_run<'a>(&'a self, ids: &'a [String], run_id: u64) -> BoxFuture<'a, Result<u64, IndexError>>;
    /// Deletes a page's (or database's) document and the documents whose `page_id` is it.
    fn delete_page<'a>(&'a self, page_id: &'a str) -> BoxFuture<'a, Result<u64, IndexError>>;
    /// Deletes a page's blocks that run `run_id` did not write (none written by `open_runs`).
    fn delete_removed_blocks<'a>(
        &'a self,
        page_id: &'a str,
        run_id: u64,
        open_runs: &'a [u64],
    ) -> BoxFuture<'a, Result<u64, IndexError>>;
    /// Deletes documents older than `before_run`, except the objects in `keep` and what `open_runs` wrote.
    fn delete_stale_except<'a>(
        &'a self,
        before_run: u64,
        keep: &'a [&'a str],
        open_runs: &'a [u64],
    ) -> BoxFuture<'a, Result<u64, IndexError>>;
    /// Deletes the own documents of objects `ids` (at most 1,000): each one's document, and a
    /// page's blocks and comments.
    fn delete_own<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<u64, IndexError>>;
    /// `(id, object)` of the documents of `objects` types older than `before_run`.
    fn stale_objects<'a>(
        &'a self,
        before_run: u64,
        objects: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, IndexError>>;
    /// The content index's identity (changes when it is deleted and made again); `None` if missing.
    fn index_uuid(&self) -> BoxFuture<'_, Result<Option<String>, IndexError>>;
}

/// Run and task records: the run model's storage.
pub trait RunLedger: Send + Sync + std::fmt::Debug {
    fn leases(&self) -> &Leases;
    fn create_run(&self, kind: RunKind) -> BoxFuture<'_, Result<RunRecord, RunError>>;
    fn get(&self, run_id: u64) -> BoxFuture<'_, Result<Option<RunRecord>, RunError>>;
    fn recent(&self, n: usize) -> BoxFuture<'_, Result<Vec<RunRecord>, RunError>>;
    fn last_completed(&self, kind: RunKind) -> BoxFuture<'_, Result<Option<RunRecord>, RunError>>;
    fn status(&self, run_id: u64) -> BoxFuture<'_, Result<RunStatus, RunError>>;
    fn task<'a>(&'a self, run_id: u64, task_id: &'a str) -> BoxFuture<'a, Result<Option<TaskRecord>, RunError>>;
    fn tasks_queued<'a>(&'a self, run_id: u64, tasks: &'a [TaskMessage]) -> BoxFuture<'a, Result<(), RunError>>;
    /// Records tasks for `owner` unless a record exists; returns those this owner holds.
    fn claim_tasks<'a>(
        &'a self,
        run_id: u64,
        owner: &'a str,
        tasks: Vec<TaskMessage>,
    ) -> BoxFuture<'a, Result<Vec<TaskMessage>, RunError>>;
    /// Marks objects as claimed by the planner without a task of their own.
    fn mark_claimed<'a>(&'a self, run_id: u64, task_ids: &'a [String]) -> BoxFuture<'a, Result<(), RunError>>;
    fn task_done<'a>(
        &'a self,
        task_id: &'a str,
        run_id: u64,
        outcome: &'a TaskOutcome,
    ) -> BoxFuture<'a, Result<(), RunError>>;
    fn task_failed<'a>(&'a self, task_id: &'a str, run_id: u64, error: &'a str) -> BoxFuture<'a, Result<(), RunError>>;
    fn planning_done(&self, run_id: u64, planned: u64) -> BoxFuture<'_, Result<(), RunError>>;
    fn set_index_uuid<'a>(&'a self, run_id: u64, uuid: &'a str) -> BoxFuture<'a, Result<(), RunError>>;
    fn set_watermark<'a>(&'a self, run_id: u64, watermark: &'a str) -> BoxFuture<'a, Result<(), RunError>>;
    fn set_verify_planned(&self, run_id: u64) -> BoxFuture<'_, Result<(), RunError>>;
    /// A warning on the run; `skipped_class` names a class of objects skipped (noted once).
    fn add_warning<'a>(
        &'a self,
        run_id: u64,
        warning: &'a str,
        skipped_class: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), RunError>>;
    fn abort<'a>(&'a self, run_id: u64, reason: &'a str) -> BoxFuture<'a, Result<(), RunError>>;
    /// Claims the closing of a run for the finalize message carrying `token`; false if another holds it.
    fn claim_close<'a>(&'a self, run_id: u64, token: &'a str) -> BoxFuture<'a, Result<bool, RunError>>;
    fn close(&self, run_id: u64, state: RunState, deleted: u64) -> BoxFuture<'_, Result<RunRecord, RunError>>;
    /// Ids of the runs not closed yet.
    fn active_run_ids(&self) -> BoxFuture<'_, Result<Vec<u64>, RunError>>;
    fn renew_lease(&self, run_id: u64, kind: RunKind, lease: Duration) -> BoxFuture<'_, Result<(), RunError>>;
    /// Closes the runs whose lease ran out; returns their ids.
    fn close_zombies(&self) -> BoxFuture<'_, Result<Vec<u64>, RunError>>;
    /// Creates a full run holding the full-run lock, or says which run holds it.
    fn start_full_run(&self) -> BoxFuture<'_, Result<FullStart, RunError>>;
    /// Takes the full-run lock for an existing run.
    fn take_full_lock(&self, run_id: u64) -> BoxFuture<'_, Result<Lock, RunError>>;
    /// Keeps the task records of the newest `keep_runs` runs (and of open runs).
    fn prune_tasks(&self, keep_runs: usize) -> BoxFuture<'_, Result<u64, RunError>>;
    fn prune_webhook_events(&self, older_than: chrono::Duration) -> BoxFuture<'_, Result<u64, RunError>>;
}

/// A page's text in parts, when its walk is split over several tasks: the last part joins them.
pub trait BodyParts: Send + Sync + std::fmt::Debug {
    /// Records a segment's text on the task's own record (before its continuation is sent).
    fn save_body_part<'a>(
        &'a self,
        run_id: u64,
        task_id: &'a str,
        page_id: &'a str,
        segment: u32,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), RunError>>;
    /// The same for a row walked inside another task: the part gets a record of its own.
    fn save_row_body_part<'a>(
        &'a self,
        run_id: u64,
        page_id: &'a str,
        segment: u32,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), RunError>>;
    /// The texts of segments `0..segment` of a page in run `run_id`, in order (an error if one is missing).
    fn body_parts_before<'a>(
        &'a self,
        page_id: &'a str,
        run_id: u64,
        segment: u32,
    ) -> BoxFuture<'a, Result<Vec<String>, RunError>>;
}

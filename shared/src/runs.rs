//! Sync run records (`{index}-runs`, `_id` = run id) and task records (`{index}-tasks`, `_id` =
//! `{run_id}:{task_id}`, since task ids repeat from run to run), stored beside the content index.
//!
//! Concurrency: each worker writes only its own task record; run-level fields are written by the
//! planner and the reaper (and `abort`, a script that keeps the first reason). Run counts are sums
//! over task records, so a task delivered twice is counted once. A run is complete when planning
//! has finished and no task record of the run is `queued` (docs/DESIGN.md "Sync runs").
//!
//! Overlap: one full run per index at a time, by a lock document ([`FULL_LOCK_ID`] in `{index}-runs`)
//! created with `op_type=create`, taken over by compare-and-set (`if_seq_no`/`if_primary_term`) only
//! from a closed run or one whose lease ran out, and released when its run is closed. Every run has
//! a lease (`lease_until`), renewed by its planner and by each finalize check: an open run past it is
//! a zombie (a planner killed mid-planning, a finalize chain lost to its DLQ), closed as failed by
//! [`RunStore::close_zombies`] when the next run starts.

use chrono::{DateTime, Utc};
use elasticsearch::http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::index::bulk::{encode_source, BulkLimits, BulkOp};
use crate::index::client::{Reply, SearchClient};
use crate::index::sender::{send_bulk, EncodedOp};
use crate::index::store::{delete_by_query, get_source, refresh};
use crate::index::{path_segment, runs_index, tasks_index, IndexError, SearchStore};
use crate::ports::{BodyParts, BoxFuture, RunLedger};
use crate::task::{RunKind, Task, TaskMessage};
use std::time::Duration;

/// Most entries kept in a run's `errors` list.
pub const MAX_RUN_ERRORS: usize = 50;
/// Writes of one warning that lose the race for the run record before [`RunStore::add_warning`] gives up.
const WARNING_ATTEMPTS: u32 = 8;
/// Longest error message stored (longer ones are cut).
const MAX_ERROR_LEN: usize = 2000;
/// The `_id` of the full-run lock in `{index}-runs` (it has no `id` field, so it is never read as a run).
pub const FULL_LOCK_ID: &str = "lock:full";
/// Rounds of create / compare-and-set before taking the lock gives up (each round loses only to another taker).
const LOCK_ATTEMPTS: u32 = 6;

/// How long a run counts as alive after its last sign of life (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leases {
    /// While planning (renewed by the planner as it goes).
    pub planning: std::time::Duration,
    /// While running (renewed by every finalize check).
    pub running: std::time::Duration,
}

impl Default for Leases {
    fn default() -> Self {
        Leases {
            planning: std::time::Duration::from_secs(u64::from(crate::config::DEFAULT_PLANNING_LEASE_SECONDS)),
            running: std::time::Duration::from_secs(u64::from(crate::config::DEFAULT_RUN_LEASE_SECONDS)),
        }
    }
}

/// The answer to a request for the full-run lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// The run holds it (it was free, its holder was dead or closed, or the run held it already).
    Taken,
    /// Another run, alive, holds it.
    Busy(u64),
}

/// The answer to [`RunStore::start_full_run`] (a return value, never stored: its size does not matter).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum FullStart {
    /// Recorded (state `planning`), holding the lock.
    Started(RunRecord),
    /// Refused: this full run holds the lock. Nothing was recorded.
    Running(u64),
}

/// The lock document as read, with what a compare-and-set needs.
#[derive(Debug, Clone)]
struct HeldLock {
    run_id: u64,
    expires_at: DateTime<Utc>,
    seq_no: u64,
    primary_term: u64,
}

fn lease_delta(lease: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(lease).unwrap_or_else(|_| chrono::Duration::days(365))
}

/// Why an open run is dead: its lease ran out without a sign of life (`None` while it is alive, or closed).
/// Runs recorded before leases existed count from their start.
pub fn zombie_reason(run: &RunRecord, leases: &Leases, now: DateTime<Utc>) -> Option<String> {
    let lease = match run.state {
        RunState::Planning => leases.planning,
        RunState::Running => leases.running,
        RunState::Completed | RunState::Failed => return None,
    };
    let since = run.renewed_at.unwrap_or(run.started_at);
    if now <= run.lease_until.unwrap_or(since + lease_delta(lease)) {
        return None;
    }
    let quiet = (now - since).num_seconds().max(0);
    Some(match run.state {
        RunState::Planning if run.kind == RunKind::Webhook => {
            format!("the API stopped before the webhook run was queued (no sign of it for {quiet} s)")
        }
        RunState::Planning => format!("planner stopped before planning finished (no sign of it for {quiet} s)"),
        _ => format!("no finalize check for {quiet} s (its finalize chain is lost, see the finalize DLQ)"),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("run {0} not found")]
    NotFound(u64),
    #[error("{what}: malformed record: {detail}")]
    Malformed { what: String, detail: String },
    #[error("page {page_id}: text of segments {missing:?} not recorded yet")]
    MissingBodyParts { page_id: String, missing: Vec<u32> },
    #[error("{failed} of {total} task records could not be written, first: {first}")]
    Unrecorded { failed: usize, total: usize, first: String },
    #[error("the full-run lock changed hands {attempts} times while run {run_id} tried to take it; try again")]
    LockContended { run_id: u64, attempts: u32 },
}

impl RunError {
    /// Whether retrying the operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RunError::Index(err) => err.is_retryable(),
            RunError::MissingBodyParts { .. } | RunError::Unrecorded { .. } | RunError::LockContended { .. } => true,
            RunError::NotFound(_) | RunError::Malformed { .. } => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Planning,
    Running,
    Completed,
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Planning => "planning",
            RunState::Running => "running",
            RunState::Completed => "completed",
            RunState::Failed => "failed",
        }
    }

    pub fn is_closed(self) -> bool {
        matches!(self, RunState::Completed | RunState::Failed)
    }
}

/// Final counts of a run, written when it is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunCounts {
    /// Tasks done / failed.
    pub done: u64,
    pub failed: u64,
    pub indexed: u64,
    pub skipped: u64,
    /// Documents deleted by tasks plus stale documents deleted by the reaper.
    pub deleted: u64,
    pub errors: u64,
    pub api_calls: u64,
    pub retries: u64,
}

/// One sync run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Milliseconds since the epoch when planning started, bumped past the newest existing run.
    pub id: u64,
    pub kind: RunKind,
    pub state: RunState,
    #[serde(default)]
    pub planning_done: bool,
    /// Tasks the planner queued.
    #[serde(default)]
    pub planned: u64,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub planned_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Incremental runs: the newest `last_edited_time` seen.
    #[serde(default)]
    pub watermark: Option<String>,
    /// Set when the run must not delete anything (token revoked, planning failed, ...).
    #[serde(default)]
    pub abort_reason: Option<String>,
    /// The content index's uuid when the run was planned: the reaper fails the run (and deletes
    /// nothing) if the index was deleted or recreated meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_uuid: Option<String>,
    /// Until when the run counts as alive without another sign of life (see [`Leases`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime<Utc>>,
    /// The last sign of life: creation, the planner's progress, a finalize check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at: Option<DateTime<Utc>>,
    /// At most [`MAX_RUN_ERRORS`] messages.
    #[serde(default)]
    pub errors: Vec<String>,
    /// What the run left out without failing (a vanished page, a capability the integration lacks, a
    /// database this API version cannot read), at most [`MAX_RUN_ERRORS`] messages.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// `object`s of the documents skipped for want of a capability (`user`, `comment`): they are kept.
    #[serde(default)]
    pub skipped_classes: Vec<String>,
    /// Full runs: the reaper has queued the verification of the objects the run did not see.
    #[serde(default)]
    pub verify_planned: bool,
    #[serde(default)]
    pub counts: RunCounts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Done,
    Failed,
    /// Not a task: an object the planner took on (see [`RunStore::mark_claimed`]).
    Claimed,
}

/// The owner of the claims the planner makes.
pub const PLANNER: &str = "planner";

/// One task's record. Its `_id` is `{run_id}:{task_id}`: task ids are stable across runs
/// (`p:{page}`), so they are only unique within one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub run_id: u64,
    #[serde(default)]
    pub task_id: Option<String>,
    pub state: TaskState,
    #[serde(default)]
    pub indexed: u64,
    #[serde(default)]
    pub skipped: u64,
    #[serde(default)]
    pub deleted: u64,
    #[serde(default)]
    pub errors: u64,
    #[serde(default)]
    pub api_calls: u64,
    #[serde(default)]
    pub retries: u64,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_samples: Vec<String>,
    /// A continuation segment's text, joined into the page body by the last segment.
    #[serde(default)]
    pub body_part: Option<String>,
    #[serde(default)]
    pub page_id: Option<String>,
    #[serde(default)]
    pub segment: Option<u32>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// What a finished task reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskOutcome {
    pub indexed: u64,
    pub skipped: u64,
    pub deleted: u64,
    pub errors: u64,
    pub api_calls: u64,
    pub retries: u64,
    /// This segment's page text when the walk was handed on (continuations).
    pub body_part: Option<String>,
    /// The segment number of a page walk (0 for the page task itself).
    pub segment: u32,
    pub error_samples: Vec<String>,
}

/// A run as the reaper sees it: the record's flags plus sums over its task records.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStatus {
    pub run_id: u64,
    pub kind: RunKind,
    pub state: RunState,
    pub planning_done: bool,
    pub planned: u64,
    pub abort_reason: Option<String>,
    pub queued: u64,
    pub done: u64,
    pub failed: u64,
    pub indexed: u64,
    pub skipped: u64,
    pub deleted: u64,
    pub errors: u64,
    pub api_calls: u64,
    pub retries: u64,
}

impl RunStatus {
    /// A status with no tasks, from a record (the sums are filled by `RunStore::status`).
    pub fn of(run: &RunRecord) -> Self {
        RunStatus {
            run_id: run.id,
            kind: run.kind,
            state: run.state,
            planning_done: run.planning_done,
            planned: run.planned,
            abort_reason: run.abort_reason.clone(),
            queued: 0,
            done: 0,
            failed: 0,
            indexed: 0,
            skipped: 0,
            deleted: 0,
            errors: 0,
            api_calls: 0,
            retries: 0,
        }
    }
}

/// Planning has finished, no task is still queued, and every planned task has a record.
pub fn is_complete(status: &RunStatus) -> bool {
    status.planning_done && status.queued == 0 && status.done + status.failed >= status.planned
}

/// Stale removal is allowed only after a complete full run with no failed task and no abort.
pub fn may_delete(status: &RunStatus) -> bool {
    status.kind == RunKind::Full
        && is_complete(status)
        && status.failed == 0
        && status.abort_reason.is_none()
        && status.state != RunState::Failed
}

/// The id of a new run: now, or one past the newest existing run if the clock went back.
pub fn next_run_id(now_ms: u64, newest: Option<u64>) -> u64 {
    match newest {
        Some(newest) if newest >= now_ms => newest + 1,
        _ => now_ms,
    }
}

/// The page and segment a task walks, recorded so `body_parts` can find continuation texts.
pub fn task_page(task: &Task) -> Option<(&str, u32)> {
    match task {
        Task::Page { page_id, .. } => Some((page_id.as_str(), 0)),
        Task::Continuation(c) => Some((c.page_id.as_str(), c.segment)),
        _ => None,
    }
}

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn now_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

/// Run and task records over the same client as the content index.
#[derive(Debug, Clone)]
pub struct RunStore {
    client: SearchClient,
    runs: String,
    tasks: String,
    /// The webhook event log (`{index}-webhook-events`), pruned here with the task records.
    events: String,
    limits: BulkLimits,
    leases: Leases,
}

impl RunStore {
    /// The stores of content index `index` (`{index}-runs`, `{index}-tasks`).
    pub fn new(client: SearchClient, index: &str) -> Self {
        RunStore {
            client,
            runs: runs_index(index),
            tasks: tasks_index(index),
            events: crate::api::events_index(index),
            limits: BulkLimits::default(),
            leases: Leases::default(),
        }
    }

    /// The same store with other leases (settings, tests).
    pub fn with_leases(mut self, leases: Leases) -> Self {
        self.leases = leases;
        self
    }

    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    /// The run store beside a content store, sharing its client.
    pub fn beside(store: &SearchStore) -> Self {
        Self::new(store.client().clone(), store.index())
    }

    fn run_path(&self, op: &str, run_id: u64) -> String {
        format!("{}/{op}/{run_id}", path_segment(&self.runs))
    }

    fn task_path(&self, op: &str, run_id: u64, task_id: &str) -> String {
        format!("{}/{op}/{}", path_segment(&self.tasks), path_segment(&task_record_id(run_id, task_id)))
    }

    async fn post(&self, path: &str, query: &[(&str, String)], body: &Value) -> Result<Reply, RunError> {
        Ok(self.client.json(Method::Post, path, query, Some(body)).await?)
    }

    /// A partial update or script on a run record; 404 means the run does not exist.
    async fn update_run(&self, run_id: u64, body: Value, what: &str) -> Result<(), RunError> {
        let reply = self.post(&self.run_path("_update", run_id), &[("retry_on_conflict", "5".into())], &body).await?;
        if reply.status == 404 {
            return Err(RunError::NotFound(run_id));
        }
        reply.ok(&format!("{what} of run {run_id}"))?;
        Ok(())
    }

    async fn update_task(&self, run_id: u64, task_id: &str, body: Value, what: &str) -> Result<(), RunError> {
        let reply =
            self.post(&self.task_path("_update", run_id, task_id), &[("retry_on_conflict", "5".into())], &body).await?;
        reply.ok(&format!("{what} of task {task_id}"))?;
        Ok(())
    }

    async fn search(&self, index: &str, body: &Value) -> Result<Value, RunError> {
        let reply = self.post(&format!("{}/_search", path_segment(index)), &[], body).await?;
        Ok(reply.ok(&format!("search on {index}"))?)
    }

    async fn search_runs(&self, query: Value, size: usize) -> Result<Vec<RunRecord>, RunError> {
        refresh(&self.client, &self.runs).await?;
        // Runs only: the lock document has no `id`.
        let query = json!({"bool": {"filter": [query, {"exists": {"field": "id"}}]}});
        let body = json!({"query": query, "size": size, "sort": [{"id": "desc"}]});
        let response = self.search(&self.runs, &body).await?;
        hits(&response).into_iter().map(|source| parse_run(source, "run search")).collect()
    }

    /// The id for a new run (see [`next_run_id`]).
    pub async fn next_run_id(&self) -> Result<u64, RunError> {
        let newest = self.search_runs(json!({"match_all": {}}), 1).await?.first().map(|r| r.id);
        Ok(next_run_id(now_ms(), newest))
    }

    /// Records a new run in state `planning`.
    pub async fn create_run(&self, kind: RunKind) -> Result<RunRecord, RunError> {
        let mut id = self.next_run_id().await?;
        for _ in 0..5 {
            let now = Utc::now();
            let run = RunRecord {
                id,
                kind,
                state: RunState::Planning,
                planning_done: false,
                planned: 0,
                started_at: now,
                planned_at: None,
                finished_at: None,
                watermark: None,
                abort_reason: None,
                index_uuid: None,
                lease_until: Some(now + lease_delta(self.leases.planning)),
                renewed_at: Some(now),
                errors: Vec::new(),
                warnings: Vec::new(),
                skipped_classes: Vec::new(),
                verify_planned: false,
                counts: RunCounts::default(),
            };
            let body = serde_json::to_value(&run).map_err(|e| malformed("new run", e))?;
            let reply = self.client.json(Method::Put, &self.run_path("_create", id), &[], Some(&body)).await?;
            if reply.status == 409 {
                // Another planner took this id: take the next one.
                id = next_run_id(now_ms(), Some(id));
                continue;
            }
            reply.ok(&format!("creating run {id}"))?;
            tracing::info!(run_id = id, kind = kind.as_str(), "run created");
            return Ok(run);
        }
        Err(RunError::Malformed { what: "creating a run".into(), detail: "run ids kept colliding".into() })
    }

    pub async fn get(&self, run_id: u64) -> Result<Option<RunRecord>, RunError> {
        match get_source(&self.client, &self.runs, &run_id.to_string()).await? {
            Some(source) => Ok(Some(parse_run(source, &format!("run {run_id}"))?)),
            None => Ok(None),
        }
    }

    /// One task's record.
    pub async fn task(&self, run_id: u64, task_id: &str) -> Result<Option<TaskRecord>, RunError> {
        match get_source(&self.client, &self.tasks, &task_record_id(run_id, task_id)).await? {
            Some(source) => Ok(Some(
                serde_json::from_value(Value::Object(source)).map_err(|e| malformed(&format!("task {task_id}"), e))?,
            )),
            None => Ok(None),
        }
    }

    /// Records tasks as `queued` before they are sent. A record that already exists (the task is
    /// done, or this is a redelivery) is left as it is.
    pub async fn tasks_queued(&self, run_id: u64, tasks: &[TaskMessage]) -> Result<(), RunError> {
        self.create_records(run_id, PLANNER, queued_records(tasks), TaskState::Queued).await
    }

    /// Creates task records (`task_id`, and the page and segment a walk task covers) unless they exist.
    async fn create_records<'t>(
        &self,
        run_id: u64,
        owner: &str,
        records: Vec<(&'t str, Option<(&'t str, u32)>)>,
        state: TaskState,
    ) -> Result<(), RunError> {
        let now = Utc::now();
        let total = records.len();
        let mut ops = Vec::with_capacity(total);
        for (task_id, page) in records {
            let (page_id, segment) = page.unzip();
            let record = json!({"run_id": run_id, "task_id": task_id, "state": state, "page_id": page_id,
                "segment": segment, "has_body_part": false, "claimed_by": owner, "updated_at": now});
            let record_id = task_record_id(run_id, task_id);
            let bytes = encode_source(BulkOp::Create, &record_id, &record).map_err(|e| malformed("task record", e))?;
            ops.push(EncodedOp { id: task_id.to_string(), bytes });
        }
        let outcome = send_bulk(&self.client, &self.tasks, BulkOp::Create, &ops, &self.limits).await?;
        if let Some(first) = outcome.report.failed.first() {
            return Err(RunError::Unrecorded {
                failed: outcome.report.failed.len(),
                total,
                first: format!("{}: {}", first.id, first.reason),
            });
        }
        Ok(())
    }

    /// Marks a task done with its counts (creating the record if it is missing). Writing the
    /// same outcome twice leaves the same record.
    pub async fn task_done(&self, task_id: &str, run_id: u64, outcome: &TaskOutcome) -> Result<(), RunError> {
        let mut doc = json!({
            "run_id": run_id,
            "task_id": task_id,
            "state": TaskState::Done,
            "indexed": outcome.indexed,
            "skipped": outcome.skipped,
            "deleted": outcome.deleted,
            "errors": outcome.errors,
            "api_calls": outcome.api_calls,
            "retries": outcome.retries,
            "error": null,
            "error_samples": outcome.error_samples.iter().take(20).map(|e| truncate(e, MAX_ERROR_LEN)).collect::<Vec<_>>(),
            "has_body_part": outcome.body_part.is_some(),
            "body_part": outcome.body_part,
            "updated_at": Utc::now(),
        });
        if outcome.body_part.is_some() {
            doc["segment"] = json!(outcome.segment);
        }
        self.update_task(run_id, task_id, json!({"doc": doc, "doc_as_upsert": true}), "marking done").await
    }

    /// Marks a task failed, unless it is already done (a late failing duplicate must not undo a
    /// success).
    pub async fn task_failed(&self, task_id: &str, run_id: u64, error: &str) -> Result<(), RunError> {
        let error = truncate(error, MAX_ERROR_LEN);
        let now = Utc::now();
        let body = json!({
            "script": {
                "lang": "painless",
                "source": "if (ctx._source.state == 'done') { ctx.op = 'noop'; } else { ctx._source.state = 'failed'; ctx._source.error = params.error; ctx._source.run_id = params.run_id; ctx._source.updated_at = params.at; }",
                "params": {"error": error, "run_id": run_id, "at": now}
            },
            "upsert": {"run_id": run_id, "task_id": task_id, "state": TaskState::Failed, "error": error, "has_body_part": false, "updated_at": now}
        });
        self.update_task(run_id, task_id, body, "marking failed").await
    }

    /// Planning has finished: `planned` tasks were queued. The run moves to `running`.
    pub async fn planning_done(&self, run_id: u64, planned: u64) -> Result<(), RunError> {
        let body = json!({"script": {
            "lang": "painless",
            "source": "ctx._source.planning_done = true; ctx._source.planned = params.planned; ctx._source.planned_at = params.at; if (ctx._source.state == 'planning') { ctx._source.state = 'running'; }",
            "params": {"planned": planned, "at": Utc::now()}
        }});
        self.update_run(run_id, body, "planning done").await
    }

    /// Claims the closing of a finished run for the finalize chain `token`: true when this chain may close it (it
    /// is not closed, and no other chain has claimed it; a chain may claim again, e.g. after a crash). One claim
    /// per run, so stale removal and the final counts are done once even when two finalize messages arrive at once.
    pub async fn claim_close(&self, run_id: u64, token: &str) -> Result<bool, RunError> {
        let body = json!({"script": {
            "lang": "painless",
            "source": "if (ctx._source.state == 'completed' || ctx._source.state == 'failed' || (ctx._source.closing_by != null && ctx._source.closing_by != params.token)) { ctx.op = 'noop'; } else { ctx._source.closing_by = params.token; }",
            "params": {"token": token}
        }});
        let reply = self.post(&self.run_path("_update", run_id), &[("retry_on_conflict", "5".into())], &body).await?;
        if reply.status == 404 {
            return Err(RunError::NotFound(run_id));
        }
        let reply = reply.ok(&format!("claim of run {run_id}"))?;
        Ok(reply["result"] != "noop")
    }

    /// Records the content index's uuid at planning (see [`RunRecord::index_uuid`]).
    pub async fn set_index_uuid(&self, run_id: u64, uuid: &str) -> Result<(), RunError> {
        self.update_run(run_id, json!({"doc": {"index_uuid": uuid}}), "index uuid").await
    }

    /// Records the incremental watermark (the newest `last_edited_time` seen).
    pub async fn set_watermark(&self, run_id: u64, watermark: &str) -> Result<(), RunError> {
        self.update_run(run_id, json!({"doc": {"watermark": watermark}}), "watermark").await
    }

    /// Appends a message to the run's errors (kept to the first [`MAX_RUN_ERRORS`]).
    pub async fn add_error(&self, run_id: u64, error: &str) -> Result<(), RunError> {
        let body = json!({"script": {
            "lang": "painless",
            "source": "if (ctx._source.errors == null) { ctx._source.errors = []; } if (ctx._source.errors.size() < params.max) { ctx._source.errors.add(params.error); } else { ctx.op = 'noop'; }",
            "params": {"error": truncate(error, MAX_ERROR_LEN), "max": MAX_RUN_ERRORS}
        }});
        self.update_run(run_id, body, "error").await
    }

    /// Records something the run left out without failing (kept to the first [`MAX_RUN_ERRORS`]); with
    /// `skipped_class`, the documents of that `object` (`user`, `comment`) were not read, so they are kept.
    ///
    /// Many tasks of a run report the same thing at once (every comments task of an integration without the
    /// capability): a read settles a warning already recorded without a write, and a write that loses the race
    /// for the run record is tried again.
    pub async fn add_warning(&self, run_id: u64, warning: &str, skipped_class: Option<&str>) -> Result<(), RunError> {
        let warning = truncate(warning, MAX_ERROR_LEN);
        let body = json!({"script": {
            "lang": "painless",
            "source": "boolean changed = false; if (ctx._source.warnings == null) { ctx._source.warnings = []; } if (ctx._source.skipped_classes == null) { ctx._source.skipped_classes = []; } if (ctx._source.warnings.size() < params.max && !ctx._source.warnings.contains(params.warning)) { ctx._source.warnings.add(params.warning); changed = true; } if (params.class != null && !ctx._source.skipped_classes.contains(params.class)) { ctx._source.skipped_classes.add(params.class); changed = true; } if (!changed) { ctx.op = 'noop'; }",
            "params": {"warning": warning, "max": MAX_RUN_ERRORS, "class": skipped_class}
        }});
        for attempt in 0..WARNING_ATTEMPTS {
            let run = self.get(run_id).await?.ok_or(RunError::NotFound(run_id))?;
            let noted = run.warnings.contains(&warning) || run.warnings.len() >= MAX_RUN_ERRORS;
            let skipped = skipped_class.is_none_or(|class| run.skipped_classes.iter().any(|c| c == class));
            if noted && skipped {
                return Ok(());
            }
            match self.update_run(run_id, body.clone(), "warning").await {
                Err(RunError::Index(IndexError::Refused { status: 409, .. })) if attempt + 1 < WARNING_ATTEMPTS => {
                    let pause = 50 + rand::random::<u64>() % 200;
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                other => {
                    tracing::warn!(run_id, warning, "run warning");
                    return other;
                }
            }
        }
        Ok(())
    }

    /// Marks that the reaper queued the verification of the objects this full run did not see.
    pub async fn set_verify_planned(&self, run_id: u64) -> Result<(), RunError> {
        self.update_run(run_id, json!({"doc": {"verify_planned": true}}), "verification planned").await
    }

    /// Claims tasks for `owner` (a task id, or `planner`): records them `queued` unless a record exists, then
    /// returns those this owner holds (created now, or earlier by the same owner: a redelivery must send them
    /// again). So an object reached several ways in one run (search, the tree, a verification) is synced once,
    /// whichever worker reaches it first, and a crash between claiming and sending loses nothing.
    pub async fn claim_tasks(
        &self,
        run_id: u64,
        owner: &str,
        tasks: Vec<TaskMessage>,
    ) -> Result<Vec<TaskMessage>, RunError> {
        if tasks.is_empty() {
            return Ok(tasks);
        }
        self.create_records(run_id, owner, queued_records(&tasks), TaskState::Queued).await?;
        let ids: Vec<String> = tasks.iter().map(|t| task_record_id(run_id, &t.task_id)).collect();
        let owners = self.owners(&ids).await?;
        Ok(tasks
            .into_iter()
            .zip(ids)
            .filter(|(_, id)| owners.get(id).map(String::as_str) == Some(owner))
            .map(|(t, _)| t)
            .collect())
    }

    /// Marks objects as claimed by the planner without a task of their own (databases it indexes in an objects
    /// task): a `child_database` block reaching one of them then finds it taken. Marks are not counted as tasks.
    pub async fn mark_claimed(&self, run_id: u64, task_ids: &[String]) -> Result<(), RunError> {
        let marks = task_ids.iter().map(|id| (id.as_str(), None)).collect();
        self.create_records(run_id, PLANNER, marks, TaskState::Claimed).await
    }

    /// `claimed_by` of task records, by `_id`.
    async fn owners(&self, ids: &[String]) -> Result<std::collections::HashMap<String, String>, RunError> {
        let mut owners = std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            let body = json!({"ids": chunk});
            let reply = self
                .post(&format!("{}/_mget", path_segment(&self.tasks)), &[("_source", "claimed_by".into())], &body)
                .await?;
            let reply = reply.ok("reading task claims")?;
            for doc in reply.get("docs").and_then(Value::as_array).into_iter().flatten() {
                let id = doc.get("_id").and_then(Value::as_str).unwrap_or_default();
                let owner = doc.pointer("/_source/claimed_by").and_then(Value::as_str).unwrap_or(PLANNER);
                if doc.get("found").and_then(Value::as_bool) == Some(true) {
                    owners.insert(id.to_string(), owner.to_string());
                }
            }
        }
        Ok(owners)
    }

    /// Marks the run as aborted: it will delete nothing. The first reason is kept.
    pub async fn abort(&self, run_id: u64, reason: &str) -> Result<(), RunError> {
        let body = json!({"script": {
            "lang": "painless",
            "source": "if (ctx._source.abort_reason != null) { ctx.op = 'noop'; } else { ctx._source.abort_reason = params.reason; if (ctx._source.errors == null) { ctx._source.errors = []; } if (ctx._source.errors.size() < params.max) { ctx._source.errors.add(params.reason); } }",
            "params": {"reason": truncate(reason, MAX_ERROR_LEN), "max": MAX_RUN_ERRORS}
        }});
        self.update_run(run_id, body, "abort").await?;
        tracing::warn!(run_id, reason, "run aborted");
        Ok(())
    }

    /// The run's flags and the sums over its task records (the tasks index is refreshed first,
    /// so every record written before this call is counted).
    pub async fn status(&self, run_id: u64) -> Result<RunStatus, RunError> {
        let run = self.get(run_id).await?.ok_or(RunError::NotFound(run_id))?;
        refresh(&self.client, &self.tasks).await?;
        let sum = |field: &str| json!({"sum": {"field": field}});
        let body = json!({
            "size": 0,
            "track_total_hits": true,
            "query": {"term": {"run_id": run_id}},
            "aggs": {
                "states": {"terms": {"field": "state", "size": 10}},
                "indexed": sum("indexed"), "skipped": sum("skipped"), "deleted": sum("deleted"),
                "errors": sum("errors"), "api_calls": sum("api_calls"), "retries": sum("retries")
            }
        });
        let response = self.search(&self.tasks, &body).await?;
        let aggs = &response["aggregations"];
        let total = |name: &str| aggs[name]["value"].as_f64().map_or(0, |v| v.max(0.0).round() as u64);
        let mut status = RunStatus::of(&run);
        for bucket in aggs["states"]["buckets"].as_array().into_iter().flatten() {
            let count = bucket["doc_count"].as_u64().unwrap_or(0);
            match bucket["key"].as_str() {
                Some("queued") => status.queued = count,
                Some("done") => status.done = count,
                Some("failed") => status.failed = count,
                _ => {}
            }
        }
        status.indexed = total("indexed");
        status.skipped = total("skipped");
        status.deleted = total("deleted");
        status.errors = total("errors");
        status.api_calls = total("api_calls");
        status.retries = total("retries");
        Ok(status)
    }

    /// Closes the run: state, finish time, final counts (`deleted` = stale documents removed, on
    /// top of the tasks' own deletions) and the first errors of failed tasks.
    pub async fn close(&self, run_id: u64, state: RunState, deleted: u64) -> Result<RunRecord, RunError> {
        let status = self.status(run_id).await?;
        let run = self.get(run_id).await?.ok_or(RunError::NotFound(run_id))?;
        let mut errors = run.errors.clone();
        if status.failed > 0 && errors.len() < MAX_RUN_ERRORS {
            let body = json!({
                "size": MAX_RUN_ERRORS - errors.len(),
                "query": {"bool": {"filter": [{"term": {"run_id": run_id}}, {"term": {"state": "failed"}}]}},
                "_source": ["error", "task_id"],
                "sort": [{"updated_at": "asc"}]
            });
            let response = self.search(&self.tasks, &body).await?;
            for hit in response.pointer("/hits/hits").and_then(Value::as_array).into_iter().flatten() {
                let id =
                    hit.pointer("/_source/task_id").or_else(|| hit.get("_id")).and_then(Value::as_str).unwrap_or("?");
                let error = hit.pointer("/_source/error").and_then(Value::as_str).unwrap_or("failed");
                errors.push(format!("task {id}: {error}"));
            }
        }
        errors.truncate(MAX_RUN_ERRORS);
        let counts = RunCounts {
            done: status.done,
            failed: status.failed,
            indexed: status.indexed,
            skipped: status.skipped,
            deleted: status.deleted + deleted,
            errors: status.errors,
            api_calls: status.api_calls,
            retries: status.retries,
        };
        let finished_at = Utc::now();
        let doc = json!({"state": state, "finished_at": finished_at, "counts": counts, "errors": errors});
        self.update_run(run_id, json!({"doc": doc}), "close").await?;
        if run.kind == RunKind::Full {
            // A lock left behind is taken over anyway (its run is closed); this only frees it sooner.
            if let Err(err) = self.release_full_lock(run_id).await {
                tracing::warn!(run_id, error = %err, "full-run lock not released; the next full run takes it over");
            }
        }
        Ok(RunRecord { state, finished_at: Some(finished_at), counts, errors, ..run })
    }

    /// The newest `n` runs, newest first.
    pub async fn recent(&self, n: usize) -> Result<Vec<RunRecord>, RunError> {
        self.search_runs(json!({"match_all": {}}), n).await
    }

    /// The newest completed run of this kind.
    pub async fn last_completed(&self, kind: RunKind) -> Result<Option<RunRecord>, RunError> {
        let query = json!({"bool": {"filter": [{"term": {"kind": kind.as_str()}}, {"term": {"state": "completed"}}]}});
        Ok(self.search_runs(query, 1).await?.into_iter().next())
    }

    /// Records a segment's page text on the task's own record. A walk that hands the rest of a
    /// page on should call this *before* sending the continuation, so the last segment is sure to
    /// find it (`task_done` with `body_part` writes it too, but only after the send).
    pub async fn save_body_part(
        &self,
        run_id: u64,
        task_id: &str,
        page_id: &str,
        segment: u32,
        text: &str,
    ) -> Result<(), RunError> {
        self.save_part(run_id, task_id, page_id, segment, text, TaskState::Queued).await
    }

    /// [`RunStore::save_body_part`] for a walk that is not a task of its own (a row walked inside a `pages`
    /// task): the part gets a record of its own, which is not counted as a task.
    pub async fn save_row_body_part(
        &self,
        run_id: u64,
        page_id: &str,
        segment: u32,
        text: &str,
    ) -> Result<(), RunError> {
        let record = format!("p:{page_id}:part{segment}");
        self.save_part(run_id, &record, page_id, segment, text, TaskState::Claimed).await
    }

    async fn save_part(
        &self,
        run_id: u64,
        task_id: &str,
        page_id: &str,
        segment: u32,
        text: &str,
        state_if_new: TaskState,
    ) -> Result<(), RunError> {
        let part = json!({"run_id": run_id, "task_id": task_id, "page_id": page_id, "segment": segment,
            "body_part": text, "has_body_part": true, "updated_at": Utc::now()});
        let mut upsert = part.clone();
        upsert["state"] = json!(state_if_new);
        let body = json!({"doc": part, "upsert": upsert});
        self.update_task(run_id, task_id, body, "saving body part").await
    }

    /// `(segment, text)` of every recorded part of a page walk in this run, in segment order.
    async fn segment_parts(&self, page_id: &str, run_id: u64) -> Result<Vec<(u32, String)>, RunError> {
        refresh(&self.client, &self.tasks).await?;
        let body = json!({
            "size": 10_000,
            "query": {"bool": {"filter": [
                {"term": {"run_id": run_id}}, {"term": {"page_id": page_id}}, {"term": {"has_body_part": true}}
            ]}},
            "_source": ["body_part", "segment"],
            "sort": [{"segment": "asc"}]
        });
        let response = self.search(&self.tasks, &body).await?;
        Ok(hits(&response)
            .into_iter()
            .filter_map(|mut source| {
                let segment = source.get("segment").and_then(Value::as_u64).and_then(|s| u32::try_from(s).ok())?;
                match source.remove("body_part") {
                    Some(Value::String(text)) => Some((segment, text)),
                    _ => None,
                }
            })
            .collect())
    }

    /// The texts handed on by the earlier segments of a page walk in this run, in segment order.
    pub async fn body_parts(&self, page_id: &str, run_id: u64) -> Result<Vec<String>, RunError> {
        Ok(self.segment_parts(page_id, run_id).await?.into_iter().map(|(_, text)| text).collect())
    }

    /// The texts of segments `0..segment`, in order; `MissingBodyParts` (retry later) when one
    /// of them is not recorded yet.
    pub async fn body_parts_before(&self, page_id: &str, run_id: u64, segment: u32) -> Result<Vec<String>, RunError> {
        let parts = self.segment_parts(page_id, run_id).await?;
        parts_before(parts, segment)
            .map_err(|missing| RunError::MissingBodyParts { page_id: page_id.to_string(), missing })
    }

    /// Runs in state `planning` or `running`, newest first.
    pub async fn open_runs(&self) -> Result<Vec<RunRecord>, RunError> {
        let states = [RunState::Planning.as_str(), RunState::Running.as_str()];
        match self.search_runs(json!({"terms": {"state": states}}), 1000).await {
            // No runs index: no run was ever recorded.
            Err(RunError::Index(IndexError::Refused { status: 404, .. })) => Ok(Vec::new()),
            other => other,
        }
    }

    /// The ids of the runs in state `planning` or `running` (their documents are not another run's to delete).
    pub async fn active_run_ids(&self) -> Result<Vec<u64>, RunError> {
        Ok(self.open_runs().await?.into_iter().map(|r| r.id).collect())
    }

    /// Renews the run's lease for `lease` from now (and the full-run lock's, when the run holds it).
    pub async fn renew_lease(&self, run_id: u64, kind: RunKind, lease: std::time::Duration) -> Result<(), RunError> {
        let now = Utc::now();
        let until = now + lease_delta(lease);
        self.update_run(run_id, json!({"doc": {"lease_until": until, "renewed_at": now}}), "lease").await?;
        if kind != RunKind::Full {
            return Ok(());
        }
        match self.read_lock().await? {
            Some(held) if held.run_id == run_id => {
                let reply = self.write_lock(run_id, until, Some(&held)).await?;
                if reply.status == 409 {
                    tracing::warn!(run_id, "full-run lock changed hands while its lease was renewed");
                } else {
                    reply.ok(&format!("renewing the full-run lock of run {run_id}"))?;
                }
            }
            other => {
                let holder = other.map(|h| h.run_id);
                tracing::warn!(run_id, ?holder, "full run no longer holds the full-run lock");
            }
        }
        Ok(())
    }

    /// Closes every open run whose lease ran out as failed (deleting nothing), naming why; returns their ids.
    pub async fn close_zombies(&self) -> Result<Vec<u64>, RunError> {
        let now = Utc::now();
        let mut closed = Vec::new();
        for run in self.open_runs().await? {
            if let Some(reason) = zombie_reason(&run, &self.leases, now) {
                self.close_zombie(&run, &reason).await?;
                closed.push(run.id);
            }
        }
        Ok(closed)
    }

    async fn close_zombie(&self, run: &RunRecord, reason: &str) -> Result<(), RunError> {
        self.abort(run.id, reason).await?;
        self.close(run.id, RunState::Failed, 0).await?;
        tracing::error!(
            run_id = run.id,
            kind = run.kind.as_str(),
            event = "run_closed",
            state = "failed",
            reason,
            "zombie run closed"
        );
        Ok(())
    }

    /// Records a new full run holding the full-run lock, or names the full run that holds it (and records nothing).
    pub async fn start_full_run(&self) -> Result<FullStart, RunError> {
        let run = self.create_run(RunKind::Full).await?;
        match self.take_full_lock(run.id).await {
            Ok(Lock::Taken) => Ok(FullStart::Started(run)),
            Ok(Lock::Busy(holder)) => {
                let reply = self
                    .client
                    .json(Method::Delete, &self.run_path("_doc", run.id), &[("refresh", "true".into())], None)
                    .await?;
                if !reply.is_success() && reply.status != 404 {
                    return Err(reply.refused(&format!("removing refused run {}", run.id)).into());
                }
                tracing::info!(
                    refused = run.id,
                    running = holder,
                    "full run not started: another full run holds the lock"
                );
                Ok(FullStart::Running(holder))
            }
            Err(err) => {
                let reason = format!("could not take the full-run lock: {err}");
                if let Err(e) = self.abort(run.id, &reason).await {
                    tracing::error!(run_id = run.id, error = %e, "could not record why the run did not start");
                } else if let Err(e) = self.close(run.id, RunState::Failed, 0).await {
                    tracing::error!(run_id = run.id, error = %e, "could not close the run");
                }
                Err(err)
            }
        }
    }

    /// Takes the full-run lock for `run_id`: created if there is none; taken over (compare-and-set) from a holder
    /// that is closed, missing, or dead (that one is closed as failed first); `Taken` again for its holder.
    pub async fn take_full_lock(&self, run_id: u64) -> Result<Lock, RunError> {
        for _ in 0..LOCK_ATTEMPTS {
            let now = Utc::now();
            let until = now + lease_delta(self.leases.planning);
            let reply = self.write_lock(run_id, until, None).await?;
            if reply.is_success() {
                tracing::info!(run_id, "full-run lock taken");
                return Ok(Lock::Taken);
            }
            if reply.status != 409 {
                return Err(reply.refused("taking the full-run lock").into());
            }
            let Some(held) = self.read_lock().await? else { continue };
            if held.run_id == run_id {
                return Ok(Lock::Taken);
            }
            if let Some(holder) = self.get(held.run_id).await?.filter(|r| !r.state.is_closed()) {
                match zombie_reason(&holder, &self.leases, now) {
                    Some(reason) if held.expires_at < now => self.close_zombie(&holder, &reason).await?,
                    _ => return Ok(Lock::Busy(holder.id)),
                }
            }
            // Its run is closed (or gone): take it over, unless someone else changed it since it was read.
            let reply = self.write_lock(run_id, until, Some(&held)).await?;
            if reply.is_success() {
                tracing::info!(run_id, previous = held.run_id, "full-run lock taken over");
                return Ok(Lock::Taken);
            }
            if reply.status != 409 && reply.status != 404 {
                return Err(reply.refused("taking over the full-run lock").into());
            }
        }
        Err(RunError::LockContended { run_id, attempts: LOCK_ATTEMPTS })
    }

    /// The full run that holds the lock and is alive, if any.
    pub async fn full_lock_holder(&self) -> Result<Option<u64>, RunError> {
        let Some(held) = self.read_lock().await? else { return Ok(None) };
        let now = Utc::now();
        match self.get(held.run_id).await? {
            Some(run) if !run.state.is_closed() => {
                let dead = held.expires_at < now && zombie_reason(&run, &self.leases, now).is_some();
                Ok((!dead).then_some(run.id))
            }
            _ => Ok(None),
        }
    }

    /// Releases the full-run lock if `run_id` holds it (compare-and-set: a lock taken over meanwhile stays).
    pub async fn release_full_lock(&self, run_id: u64) -> Result<(), RunError> {
        let Some(held) = self.read_lock().await?.filter(|h| h.run_id == run_id) else { return Ok(()) };
        let query = [("if_seq_no", held.seq_no.to_string()), ("if_primary_term", held.primary_term.to_string())];
        let reply = self.client.json(Method::Delete, &self.lock_path(), &query, None).await?;
        if reply.is_success() {
            tracing::info!(run_id, "full-run lock released");
        } else if reply.status != 404 && reply.status != 409 {
            return Err(reply.refused(&format!("releasing the full-run lock of run {run_id}")).into());
        }
        Ok(())
    }

    fn lock_path(&self) -> String {
        format!("{}/_doc/{}", path_segment(&self.runs), path_segment(FULL_LOCK_ID))
    }

    async fn read_lock(&self) -> Result<Option<HeldLock>, RunError> {
        let reply = self.client.json(Method::Get, &self.lock_path(), &[], None).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let body = reply.ok("reading the full-run lock")?;
        let field = |name: &str| body.get(name).and_then(Value::as_u64);
        let source = body.get("_source");
        let expires_at = source
            .and_then(|s| s.get("expires_at"))
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        match (
            source.and_then(|s| s.get("run_id")).and_then(Value::as_u64),
            expires_at,
            field("_seq_no"),
            field("_primary_term"),
        ) {
            (Some(run_id), Some(expires_at), Some(seq_no), Some(primary_term)) => {
                Ok(Some(HeldLock { run_id, expires_at, seq_no, primary_term }))
            }
            _ => Err(malformed("the full-run lock", format!("unexpected document {body}"))),
        }
    }

    /// Creates the lock (`held: None`, `op_type=create`) or replaces the one read (`if_seq_no`/`if_primary_term`).
    async fn write_lock(&self, run_id: u64, until: DateTime<Utc>, held: Option<&HeldLock>) -> Result<Reply, RunError> {
        let body = json!({"lock": "full", "run_id": run_id, "expires_at": until, "renewed_at": Utc::now()});
        let query = match held {
            None => vec![("op_type", "create".to_string())],
            Some(h) => vec![("if_seq_no", h.seq_no.to_string()), ("if_primary_term", h.primary_term.to_string())],
        };
        Ok(self.client.json(Method::Put, &self.lock_path(), &query, Some(&body)).await?)
    }

    /// Deletes the task records (and the page texts they hold) of all but the newest `keep_runs` runs
    /// (at least one is kept), never those of a run still open; returns how many were deleted.
    pub async fn prune_tasks(&self, keep_runs: usize) -> Result<u64, RunError> {
        let kept = self.recent(keep_runs.max(1)).await?;
        if kept.len() < keep_runs.max(1) {
            return Ok(0);
        }
        let Some(oldest_kept) = kept.last().map(|r| r.id) else {
            return Ok(0);
        };
        let open = self.active_run_ids().await?;
        let query = json!({"bool": {
            "filter": [{"range": {"run_id": {"lt": oldest_kept}}}],
            "must_not": [{"terms": {"run_id": open}}]
        }});
        Ok(delete_by_query(&self.client, &self.tasks, &query).await?)
    }

    /// Deletes the webhook event ids received more than `older_than` ago (Notion retries an event
    /// for hours, not days); returns how many were deleted. A missing log is fine.
    pub async fn prune_webhook_events(&self, older_than: chrono::Duration) -> Result<u64, RunError> {
        let before = (Utc::now() - older_than).to_rfc3339();
        let query = json!({"range": {"received_at": {"lt": before}}});
        Ok(delete_by_query(&self.client, &self.events, &query).await?)
    }
}

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

/// The texts of segments `0..segment` from `(segment, text)` pairs sorted by segment, or the
/// segments missing among them.
pub fn parts_before(parts: Vec<(u32, String)>, segment: u32) -> Result<Vec<String>, Vec<u32>> {
    let mut texts = Vec::with_capacity(segment as usize);
    let mut missing = Vec::new();
    let mut parts = parts.into_iter().filter(|(s, _)| *s < segment).peekable();
    for wanted in 0..segment {
        match parts.next_if(|(s, _)| *s == wanted) {
            Some((_, text)) => texts.push(text),
            None => missing.push(wanted),
        }
    }
    if missing.is_empty() {
        Ok(texts)
    } else {
        Err(missing)
    }
}

/// The records of tasks about to be queued: their ids and the page and segment each walks.
fn queued_records(tasks: &[TaskMessage]) -> Vec<(&str, Option<(&str, u32)>)> {
    tasks.iter().map(|msg| (msg.task_id.as_str(), task_page(&msg.task))).collect()
}

/// The `_id` of a task record.
pub fn task_record_id(run_id: u64, task_id: &str) -> String {
    format!("{run_id}:{task_id}")
}

fn malformed(what: &str, err: impl std::fmt::Display) -> RunError {
    RunError::Malformed { what: what.to_string(), detail: err.to_string() }
}

fn parse_run(source: Map<String, Value>, what: &str) -> Result<RunRecord, RunError> {
    serde_json::from_value(Value::Object(source)).map_err(|e| malformed(what, e))
}

/// The `_source`s of a search response's hits.
fn hits(response: &Value) -> Vec<Map<String, Value>> {
    response
        .pointer("/hits/hits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|hit| hit.get("_source").and_then(Value::as_object).cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(
        kind: RunKind,
        planning_done: bool,
        planned: u64,
        queued: u64,
        done: u64,
        failed: u64,
        abort: bool,
    ) -> RunStatus {
        RunStatus {
            run_id: 1,
            kind,
            state: RunState::Running,
            planning_done,
            planned,
            abort_reason: abort.then(|| "token revoked".to_string()),
            queued,
            done,
            failed,
            indexed: 0,
            skipped: 0,
            deleted: 0,
            errors: 0,
            api_calls: 0,
            retries: 0,
        }
    }

    #[test]
    fn completeness_and_deletion_table() {
        use RunKind::*;
        // (status, complete, may delete)
        let cases = [
            (status(Full, false, 0, 0, 0, 0, false), false, false),
            (status(Full, false, 3, 0, 3, 0, false), false, false),
            (status(Full, true, 3, 1, 2, 0, false), false, false),
            (status(Full, true, 3, 0, 3, 0, false), true, true),
            (status(Full, true, 3, 0, 5, 0, false), true, true),
            (status(Full, true, 3, 0, 2, 1, false), true, false),
            (status(Full, true, 3, 0, 3, 0, true), true, false),
            (status(Full, true, 4, 0, 3, 0, false), false, false),
            (status(Full, true, 0, 0, 0, 0, false), true, true),
            (status(Incremental, true, 3, 0, 3, 0, false), true, false),
            (status(Webhook, true, 1, 0, 1, 0, false), true, false),
        ];
        for (i, (s, complete, delete)) in cases.iter().enumerate() {
            assert_eq!(is_complete(s), *complete, "case {i}: {s:?}");
            assert_eq!(may_delete(s), *delete, "case {i}: {s:?}");
        }
        let closed_failed = RunStatus { state: RunState::Failed, ..status(Full, true, 1, 0, 1, 0, false) };
        assert!(is_complete(&closed_failed) && !may_delete(&closed_failed));
    }

    #[test]
    fn parts_before_requires_every_earlier_segment() {
        let parts = |segs: &[u32]| segs.iter().map(|s| (*s, format!("t{s}"))).collect::<Vec<_>>();
        assert_eq!(parts_before(parts(&[0, 1, 2]), 3), Ok(vec!["t0".into(), "t1".into(), "t2".into()]));
        assert_eq!(parts_before(parts(&[0, 1, 2, 3]), 2), Ok(vec!["t0".into(), "t1".into()]));
        assert_eq!(parts_before(parts(&[0, 2]), 3), Err(vec![1]));
        assert_eq!(parts_before(parts(&[]), 2), Err(vec![0, 1]));
        assert_eq!(parts_before(parts(&[]), 0), Ok(vec![]));
    }

    #[test]
    fn a_run_is_a_zombie_only_past_its_lease() {
        let leases =
            Leases { planning: std::time::Duration::from_secs(60), running: std::time::Duration::from_secs(300) };
        let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut run: RunRecord = serde_json::from_value(json!({
            "id": 5, "kind": "full", "state": "planning", "started_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        let at = |secs: i64| start + chrono::Duration::seconds(secs);
        // Recorded before leases: counted from the start.
        assert_eq!(zombie_reason(&run, &leases, at(60)), None);
        assert!(zombie_reason(&run, &leases, at(61)).unwrap().contains("planner stopped before planning finished"));
        run.state = RunState::Running;
        run.renewed_at = Some(at(100));
        run.lease_until = Some(at(400));
        assert_eq!(zombie_reason(&run, &leases, at(400)), None);
        assert_eq!(
            zombie_reason(&run, &leases, at(401)).unwrap(),
            "no finalize check for 301 s (its finalize chain is lost, see the finalize DLQ)"
        );
        run.state = RunState::Failed;
        assert_eq!(zombie_reason(&run, &leases, at(10_000)), None);
    }

    #[test]
    fn run_ids_are_monotonic() {
        assert_eq!(next_run_id(1000, None), 1000);
        assert_eq!(next_run_id(1000, Some(999)), 1000);
        assert_eq!(next_run_id(1000, Some(1000)), 1001);
        assert_eq!(next_run_id(1000, Some(5000)), 5001);
    }

    #[test]
    fn run_record_round_trips_and_tolerates_missing_fields() {
        let record: RunRecord = serde_json::from_value(json!({
            "id": 5, "kind": "full", "state": "running", "started_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(record.counts, RunCounts::default());
        assert!(!record.planning_done && record.errors.is_empty());
        let back: RunRecord = serde_json::from_value(serde_json::to_value(&record).unwrap()).unwrap();
        assert_eq!(back, record);
        assert_eq!(serde_json::to_value(RunState::Completed).unwrap(), "completed");
    }

    #[test]
    fn long_errors_are_cut_on_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é…");
    }

    #[test]
    fn page_tasks_name_their_page_and_segment() {
        let page = Task::Page { page_id: "p".into(), page: None, path: vec![] };
        assert_eq!(task_page(&page), Some(("p", 0)));
        assert_eq!(task_page(&Task::Users), None);
    }
}

//! The sync run model: run and task records, their states and counts, leases and the full-run lock's
//! answers, and the pure decisions over them (completion, stale-removal gating, zombies, body parts).
//! Stored by `crate::adapters::search::RunStore` behind the `crate::ports::RunLedger` port.
//!
//! Concurrency: each worker writes only its own task record; run-level fields are written by the
//! planner and the reaper. Run counts are sums over task records, so a task delivered twice is
//! counted once. A run is complete when planning has finished and no task record of the run is
//! `queued` (docs/DESIGN.md "Sync runs"). One full run per index at a time (the full-run lock);
//! every run has a lease, and an open run past it is a zombie, closed as failed when the next run
//! starts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::index::IndexError;
use crate::task::{RunKind, Task};

/// Most entries kept in a run's `errors` list.
pub const MAX_RUN_ERRORS: usize = 50;
/// The `_id` of the full-run lock in `{index}-runs` (it has no `id` field, so it is never read as a run).
pub const FULL_LOCK_ID: &str = "lock:full";

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

/// The answer to [`crate::adapters::search::RunStore::start_full_run`] (a return value, never stored: its size does not matter).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum FullStart {
    /// Recorded (state `planning`), holding the lock.
    Started(RunRecord),
    /// Refused: this full run holds the lock. Nothing was recorded.
    Running(u64),
}

pub(crate) fn lease_delta(lease: std::time::Duration) -> chrono::Duration {
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

impl RunRecord {
    /// A new run in state `planning`, started `now`, its lease `lease` long.
    pub fn planning(id: u64, kind: RunKind, now: DateTime<Utc>, lease: chrono::Duration) -> Self {
        RunRecord {
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
            lease_until: Some(now + lease),
            renewed_at: Some(now),
            errors: Vec::new(),
            warnings: Vec::new(),
            skipped_classes: Vec::new(),
            verify_planned: false,
            counts: RunCounts::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Done,
    Failed,
    /// Not a task: an object the planner took on (see [`crate::adapters::search::RunStore::mark_claimed`]).
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
    /// A status with no tasks, from a record (the sums are filled by `crate::ports::RunLedger::status`).
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

/// The `_id` of a task record.
pub fn task_record_id(run_id: u64, task_id: &str) -> String {
    format!("{run_id}:{task_id}")
}

#[cfg(test)]
mod tests;

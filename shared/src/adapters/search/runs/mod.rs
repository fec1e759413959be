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

//!
//! In parts: run records here, task records ([`tasks`]), body parts ([`parts`]), leases and the lock
//! ([`lock`]), and the ports on it ([`ledger`]).

mod ledger;
mod lock;
mod parts;
mod tasks;

use chrono::{DateTime, Utc};
use elasticsearch::http::Method;
use serde_json::{json, Map, Value};

use super::client::{Reply, SearchClient};
use super::ops::{delete_by_query, get_source, refresh};
use super::sender::{send_bulk, EncodedOp};
use super::{path_segment, SearchStore};
use crate::index::bulk::{encode_source, BulkLimits, BulkOp};
use crate::index::{runs_index, tasks_index, IndexError};
use crate::ports::{BodyParts, BoxFuture, RunLedger};
use crate::runs::*;
use crate::task::{RunKind, TaskMessage};
use std::time::Duration;

/// Writes of one warning that lose the race for the run record before [`RunStore::add_warning`] gives up.
const WARNING_ATTEMPTS: u32 = 8;
/// Longest error message stored (longer ones are cut).
const MAX_ERROR_LEN: usize = 2000;
/// Rounds of create / compare-and-set before taking the lock gives up (each round loses only to another taker).
const LOCK_ATTEMPTS: u32 = 6;

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

fn now_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

impl RunStore {
    /// The stores of content index `index` (`{index}-runs`, `{index}-tasks`).
    pub fn new(client: SearchClient, index: &str) -> Self {
        RunStore {
            client,
            runs: runs_index(index),
            tasks: tasks_index(index),
            events: super::events_index(index),
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
            let run = RunRecord::planning(id, kind, now, lease_delta(self.leases.planning));
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
}

/// The records of tasks about to be queued: their ids and the page and segment each walks.
fn queued_records(tasks: &[TaskMessage]) -> Vec<(&str, Option<(&str, u32)>)> {
    tasks.iter().map(|msg| (msg.task_id.as_str(), task_page(&msg.task))).collect()
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

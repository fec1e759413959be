//! The planner: enumerates what a run must visit and fans it out as tasks. This module reads Notion and records
//! the run; [`inventory`] holds what search found and turns it into tasks (pure).

mod inventory;

pub(crate) use inventory::object_chunks;
pub use inventory::{breadcrumb, tasks_for, Inventory};

use serde_json::{json, Value};

use crate::document::{parent_id, title_of};
use crate::runs::{FullStart, Lock, RunRecord};
use crate::task::{FinalizeMessage, RunKind, TaskMessage};

use super::{SyncContext, SyncError};

/// Every result of one search, all pages of it.
pub async fn search_all(ctx: &SyncContext, mut body: Value, api_calls: &mut u64) -> Result<Vec<Value>, SyncError> {
    let mut results = Vec::new();
    loop {
        body["page_size"] = json!(100);
        *api_calls += 1;
        let page = ctx.notion.search(&body).await?;
        results.extend(page.results);
        match (page.has_more, page.next_cursor) {
            (true, Some(next)) => body["start_cursor"] = json!(next),
            _ => return Ok(results),
        }
    }
}

/// The planner's input: `{"kind": "full" | "incremental"}` (a direct invoke or a schedule
/// target's constant input), or a raw EventBridge scheduled event (`detail.kind`, default full).
pub fn requested_kind(event: &Value) -> Result<RunKind, SyncError> {
    let kind = if let Some(kind) = event.get("kind") {
        Some(kind)
    } else if event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
        // A raw scheduled event: `detail.kind`, else the rule's name (`…-incremental-sync`).
        let from_rule = event["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|arn| arn.ends_with("-incremental-sync"));
        match event.pointer("/detail/kind") {
            Some(kind) => Some(kind),
            None if from_rule => return Ok(RunKind::Incremental),
            None => Some(&Value::Null),
        }
    } else {
        None
    };
    match kind {
        Some(Value::Null) => Ok(RunKind::Full),
        Some(Value::String(k)) if k == "full" => Ok(RunKind::Full),
        Some(Value::String(k)) if k == "incremental" => Ok(RunKind::Incremental),
        Some(other) => Err(SyncError::Config(format!("planner event: `kind` must be \"full\" or \"incremental\", got {other}"))),
        None => Err(SyncError::Config(
            "planner event not recognised: expected {\"kind\": \"full\"|\"incremental\"} or an EventBridge scheduled event".into(),
        )),
    }
}

/// Entry point of the planner function.
/// `run_id` is given when the API already recorded the run (`POST /syncs`); otherwise (a schedule) runs whose
/// lease ran out are closed first, and a full run is started only if no other full run holds the lock.
pub async fn handle_event(ctx: &SyncContext, event: &Value) -> Result<RunRecord, SyncError> {
    let kind = requested_kind(event)?;
    let existing = match event.get("run_id") {
        None | Some(Value::Null) => None,
        Some(id) => {
            let id = id
                .as_u64()
                .ok_or_else(|| SyncError::Config(format!("planner event: `run_id` must be a number, got {id}")))?;
            let run = ctx
                .runs
                .get(id)
                .await?
                .ok_or_else(|| SyncError::Config(format!("planner event: run {id} does not exist")))?;
            if run.state != crate::runs::RunState::Planning || run.kind != kind {
                return Err(SyncError::Config(format!(
                    "planner event: run {id} is {:?} {:?}, not a {kind:?} run waiting to be planned",
                    run.kind, run.state
                )));
            }
            Some(run)
        }
    };
    if existing.is_none() {
        let closed = ctx.runs.close_zombies().await?;
        if !closed.is_empty() {
            tracing::warn!(?closed, "runs whose lease ran out closed as failed");
        }
    }
    match kind {
        RunKind::Full => plan_full(ctx, existing).await,
        RunKind::Incremental => super::incremental::plan_incremental(ctx, existing).await,
        RunKind::Webhook => Err(SyncError::Config("webhook runs are started by the API".into())),
    }
}

/// Plans a full sync: records the run holding the full-run lock, enqueues every task, then the delayed finalize
/// message. When another full run holds the lock, nothing is recorded and that run is returned (a schedule is
/// skipped); a run the API recorded must hold it.
pub async fn plan_full(ctx: &SyncContext, existing: Option<RunRecord>) -> Result<RunRecord, SyncError> {
    let run = match existing {
        Some(run) => match ctx.runs.take_full_lock(run.id).await? {
            Lock::Taken => run,
            Lock::Busy(holder) => {
                let err = SyncError::Task(format!("full run {holder} holds the full-run lock"));
                fail_planning(ctx, run.id, &err).await?;
                return Err(err);
            }
        },
        None => match ctx.runs.start_full_run().await? {
            FullStart::Started(run) => run,
            FullStart::Running(holder) => {
                tracing::info!(running = holder, "full sync skipped: another full run is running");
                return ctx
                    .runs
                    .get(holder)
                    .await?
                    .ok_or_else(|| SyncError::Task(format!("full run {holder} holds the lock but has no record")));
            }
        },
    };
    tracing::info!(run_id = run.id, "planning full sync");
    match plan_into(ctx, &run).await {
        Ok(planned) => {
            ctx.runs.renew_lease(run.id, RunKind::Full, ctx.runs.leases().running).await?;
            ctx.runs.planning_done(run.id, planned).await?;
            ctx.queue.send_finalize(&FinalizeMessage::new(run.id), ctx.limits.finalize_delay_seconds).await?;
            tracing::info!(run_id = run.id, planned, "planned");
            Ok(ctx.runs.get(run.id).await?.unwrap_or(run))
        }
        Err(err) => {
            // Nothing was deleted and nothing will be: the run is closed as failed, naming why.
            fail_planning(ctx, run.id, &err).await?;
            Err(err)
        }
    }
}

/// Closes a run whose planning failed: nothing was deleted and nothing will be.
pub async fn fail_planning(ctx: &SyncContext, run_id: u64, err: &SyncError) -> Result<(), SyncError> {
    let reason = format!("planning failed: {err}");
    ctx.runs.abort(run_id, &reason).await?;
    ctx.runs.close(run_id, crate::runs::RunState::Failed, 0).await?;
    tracing::error!(run_id, event = "run_closed", state = "failed", %reason, "run closed");
    Ok(())
}

/// Records the content index's uuid on the run before any task is sent: the reaper compares it
/// with the index's at the end, so an index deleted (and auto-created by `_bulk`) mid-run fails
/// the run instead of letting it delete or report success.
pub async fn record_index_uuid(ctx: &SyncContext, run_id: u64) -> Result<(), SyncError> {
    let uuid = ctx.store.index_uuid().await?.ok_or_else(|| {
        SyncError::Task(format!(
            "content index {} does not exist (it is created when a function starts)",
            ctx.store.index()
        ))
    })?;
    ctx.runs.set_index_uuid(run_id, &uuid).await?;
    Ok(())
}

async fn plan_into(ctx: &SyncContext, run: &RunRecord) -> Result<u64, SyncError> {
    record_index_uuid(ctx, run.id).await?;
    let inventory = match &ctx.config.sync_rules.advanced {
        Some(rules) => super::selection::advanced(ctx, rules).await?,
        None => {
            let mut inventory = enumerate(ctx).await?;
            super::selection::by_titles(ctx, &mut inventory).await?;
            inventory
        }
    };
    // Planning goes on: the lease (and the full-run lock) is renewed as it does.
    ctx.runs.renew_lease(run.id, RunKind::Full, ctx.runs.leases().planning).await?;
    let data_sources = ctx.notion.version().has_data_sources();
    let tasks = tasks_for(&inventory, data_sources);
    // The databases indexed here are taken: a `child_database` block reaching one of them leaves it alone.
    let containers = if data_sources { &inventory.databases } else { &inventory.sources };
    let marks: Vec<String> = containers
        .iter()
        .filter_map(|d| d.get("id").and_then(Value::as_str))
        .map(|id| format!("database:{id}"))
        .collect();
    ctx.runs.mark_claimed(run.id, &marks).await?;
    let messages: Vec<TaskMessage> =
        tasks.into_iter().map(|(id, task)| TaskMessage::new(run.id, RunKind::Full, id, task)).collect();
    let planned = messages.len() as u64;
    let mut messages = messages.into_iter().peekable();
    while messages.peek().is_some() {
        // Claimed, not just recorded: a worker walking an earlier chunk may already have reached (and queued)
        // a page of this one through the tree.
        let chunk: Vec<TaskMessage> = messages.by_ref().take(500).collect();
        let owned = ctx.runs.claim_tasks(run.id, crate::runs::PLANNER, chunk).await?;
        ctx.queue.send_tasks(&owned).await?;
        ctx.runs.renew_lease(run.id, RunKind::Full, ctx.runs.leases().planning).await?;
    }
    if let Some(newest) = inventory.newest {
        ctx.runs.set_watermark(run.id, &newest.to_rfc3339()).await?;
    }
    Ok(planned)
}

/// Searches the whole workspace once, then fetches each database container (2025-09-03+).
pub async fn enumerate(ctx: &SyncContext) -> Result<Inventory, SyncError> {
    let mut inv = Inventory { users: true, ..Inventory::default() };
    for object in search_all(ctx, json!({}), &mut inv.api_calls).await? {
        inv.add(object, false);
    }
    fetch_databases(ctx, &mut inv).await?;
    Ok(inv)
}

/// Fetches the database container of every data source (once each; 2025-09-03+ only).
pub async fn fetch_databases(ctx: &SyncContext, inv: &mut Inventory) -> Result<(), SyncError> {
    let mut ids: Vec<String> = Vec::new();
    for source in inv.sources.iter().filter(|s| s.get("object").and_then(Value::as_str) == Some("data_source")) {
        if let Some(db) = source.pointer("/parent/database_id").and_then(Value::as_str) {
            if !ids.iter().any(|i| i == db) {
                ids.push(db.to_string());
            }
        }
    }
    for id in ids {
        inv.api_calls += 1;
        match ctx.notion.get_database(id.as_str()).await {
            Ok(db) => {
                inv.titles.insert(id.clone(), (title_of(&db), parent_id(&db)));
                inv.databases.push(db);
            }
            Err(err) if err.is_not_found() => tracing::warn!(database_id = %id, "database not shared; skipped"),
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planner_events_decode_or_name_the_problem() {
        assert_eq!(requested_kind(&json!({"kind": "incremental"})).unwrap(), RunKind::Incremental);
        let scheduled = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert_eq!(requested_kind(&scheduled).unwrap(), RunKind::Full);
        let rule = json!({"detail-type": "Scheduled Event", "detail": {}, "resources": ["arn:aws:events:us-east-1:1:rule/notion-es-incremental-sync"]});
        assert_eq!(requested_kind(&rule).unwrap(), RunKind::Incremental);
        assert!(requested_kind(&json!({"kind": "weekly"})).unwrap_err().to_string().contains("\"weekly\""));
        assert!(requested_kind(&json!({"hello": 1})).unwrap_err().to_string().contains("not recognised"));
    }
}

//! The reaper: closes a run once every task has ended, and only after a complete, failure-free
//! full run deletes the documents that run did not see.

use crate::runs::RunRecord;
use crate::runs::{is_complete, may_delete, RunState};
use crate::task::{FinalizeMessage, RunKind, TaskMessage, VerifyTarget};

use super::{SyncContext, SyncError};

/// Runs whose task records are kept (the API lists the newest 20 runs).
const KEEP_TASK_RECORDS_OF: usize = 50;
/// How long a webhook event id is remembered for de-duplication.
const KEEP_WEBHOOK_EVENTS: chrono::Duration = chrono::Duration::days(7);

/// What the reaper did with a finalize message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finalized {
    /// Not finished yet: checked again after the delay.
    Requeued { checks: u32 },
    /// Closed; `deleted` stale documents removed.
    Closed { state: RunState, deleted: u64 },
    /// Already closed by an earlier delivery of the same message.
    AlreadyClosed,
}

pub async fn finalize(ctx: &SyncContext, msg: &FinalizeMessage) -> Result<Finalized, SyncError> {
    let Some(run) = ctx.runs.get(msg.run_id).await? else {
        return Err(SyncError::Task(format!("unknown run {}", msg.run_id)));
    };
    if matches!(run.state, RunState::Completed | RunState::Failed) {
        return Ok(Finalized::AlreadyClosed);
    }
    // Every check is a sign of life: the run (and its full-run lock) stays leased.
    let lease = if run.state == RunState::Planning { ctx.runs.leases().planning } else { ctx.runs.leases().running };
    ctx.runs.renew_lease(msg.run_id, run.kind, lease).await?;
    let status = ctx.runs.status(msg.run_id).await?;
    if !is_complete(&status) {
        let why = format!("{} tasks still queued", status.queued);
        return check_again_later(ctx, msg, &why).await;
    }
    if may_delete(&status) && !run.verify_planned && index_replaced(ctx, &run).await?.is_none() {
        // Before anything is deleted, the objects the run did not see are checked with Notion (as tasks of the
        // run, paced like the others); the run is complete again once they are done.
        let unseen = plan_verification(ctx, msg).await?;
        ctx.runs.set_verify_planned(msg.run_id).await?;
        if unseen > 0 {
            return check_again_later(ctx, msg, &format!("verifying {unseen} unseen objects")).await;
        }
    }
    if !ctx.runs.claim_close(msg.run_id, &msg.token).await? {
        // Another finalize chain of this run (a worker's or the planner's) is closing it.
        return check_again_later(ctx, msg, "another finalize message is closing it").await;
    }
    if let Some(reason) = index_replaced(ctx, &run).await? {
        ctx.runs.abort(msg.run_id, &reason).await?;
        ctx.runs.close(msg.run_id, RunState::Failed, 0).await?;
        tracing::error!(run_id = msg.run_id, event = "run_closed", state = "failed", %reason, "run closed");
        return Ok(Finalized::Closed { state: RunState::Failed, deleted: 0 });
    }
    let (state, deleted) = if may_delete(&status) {
        // Verified objects were removed by their verification tasks; what is left unseen belongs to walks and
        // listings this run completed (blocks, comments, users), except classes it could not read.
        let mut keep: Vec<&str> = super::verify::VERIFIED_OBJECTS.to_vec();
        keep.extend(run.skipped_classes.iter().map(String::as_str));
        // Documents of runs still open (an older incremental or webhook run) are theirs, not stale.
        let open_runs = ctx.runs.active_run_ids().await?;
        let deleted = ctx.store.delete_stale_except(msg.run_id, &keep, &open_runs).await?;
        (RunState::Completed, deleted)
    } else if status.failed == 0 && status.abort_reason.is_none() {
        // An incremental or webhook run that went well: complete, but it never deletes.
        (RunState::Completed, 0)
    } else {
        (RunState::Failed, 0)
    };
    ctx.runs.close(msg.run_id, state, deleted).await?;
    if run.kind == RunKind::Full {
        prune_records(ctx).await;
    }
    tracing::info!(
        run_id = msg.run_id,
        event = "run_closed",
        state = state.as_str(),
        deleted,
        failed = status.failed,
        done = status.done,
        "run closed"
    );
    Ok(Finalized::Closed { state, deleted })
}

/// Why the run must fail because its content index was deleted (and maybe auto-created again by a `_bulk`)
/// during the run: what was indexed before is gone, so it must delete nothing. `None` when the index is the one
/// the run was planned on.
async fn index_replaced(ctx: &SyncContext, run: &RunRecord) -> Result<Option<String>, SyncError> {
    let Some(planned_uuid) = &run.index_uuid else { return Ok(None) };
    let now = ctx.store.index_uuid().await?;
    if now.as_deref() == Some(planned_uuid.as_str()) {
        return Ok(None);
    }
    Ok(Some(format!(
        "content index {} was deleted or recreated during the run (uuid {planned_uuid} at planning, {} now): \
         documents indexed before are lost and nothing is deleted; if it was recreated without the connector's \
         mapping, delete it and run a full sync",
        ctx.store.index(),
        now.as_deref().unwrap_or("missing")
    )))
}

/// Queues a verification task per [`super::verify::VERIFY_BATCH`] unseen objects; returns how many this
/// run has unseen objects (another finalize chain may have queued the same tasks: each is claimed once).
async fn plan_verification(ctx: &SyncContext, msg: &FinalizeMessage) -> Result<usize, SyncError> {
    let stale = ctx.store.stale_objects(msg.run_id, &super::verify::VERIFIED_OBJECTS).await?;
    let unseen = stale.len();
    tracing::info!(run_id = msg.run_id, unseen, "verifying the objects the run did not see");
    let targets: Vec<VerifyTarget> = stale.into_iter().map(|(id, object)| VerifyTarget { id, object }).collect();
    let messages: Vec<TaskMessage> = super::verify::verify_tasks(targets)
        .into_iter()
        .map(|(id, task)| TaskMessage::new(msg.run_id, RunKind::Full, id, task))
        .collect();
    let owner = format!("reaper:{}", msg.token);
    let owned = ctx.runs.claim_tasks(msg.run_id, &owner, messages).await?;
    ctx.queue.send_tasks(&owned).await?;
    Ok(unseen)
}

/// Re-delays the message, unless the run has been checked too often: then it fails (deleting nothing), so tasks
/// that never report (a message lost to a DLQ before it could be recorded) cannot keep a run open forever.
async fn check_again_later(ctx: &SyncContext, msg: &FinalizeMessage, why: &str) -> Result<Finalized, SyncError> {
    if msg.checks + 1 >= ctx.limits.max_finalize_checks {
        let reason = format!("run did not close after {} checks ({why})", msg.checks + 1);
        ctx.runs.abort(msg.run_id, &reason).await?;
        ctx.runs.close(msg.run_id, RunState::Failed, 0).await?;
        tracing::error!(run_id = msg.run_id, event = "run_closed", state = "failed", %reason, "run closed");
        return Ok(Finalized::Closed { state: RunState::Failed, deleted: 0 });
    }
    let next = FinalizeMessage { checks: msg.checks + 1, ..msg.clone() };
    ctx.queue.send_finalize(&next, ctx.limits.finalize_delay_seconds).await?;
    tracing::info!(run_id = msg.run_id, checks = next.checks, why, "run not closed; checking again later");
    Ok(Finalized::Requeued { checks: next.checks })
}

/// Decodes and handles one finalize message body; errors leave the message for a retry.
pub async fn handle_message(ctx: &SyncContext, body: &str) -> Result<Finalized, SyncError> {
    let msg = FinalizeMessage::decode(body).map_err(|e| {
        tracing::error!(error = %e, "undecodable finalize message; it will reach the DLQ");
        SyncError::Task(e.to_string())
    })?;
    finalize(ctx, &msg).await
}

/// After each full run: task records of closed runs beyond the newest [`KEEP_TASK_RECORDS_OF`] and webhook event ids past
/// [`KEEP_WEBHOOK_EVENTS`] go, so the companion indices do not grow forever. Best effort: a failure
/// is logged and tried again after the next run.
async fn prune_records(ctx: &SyncContext) {
    match ctx.runs.prune_tasks(KEEP_TASK_RECORDS_OF).await {
        Ok(pruned) => tracing::info!(pruned, "task records of old runs pruned"),
        Err(err) => tracing::warn!(error = %err, "task records not pruned"),
    }
    match ctx.runs.prune_webhook_events(KEEP_WEBHOOK_EVENTS).await {
        Ok(pruned) => tracing::info!(pruned, "old webhook event ids pruned"),
        Err(err) => tracing::warn!(error = %err, "webhook event ids not pruned"),
    }
}

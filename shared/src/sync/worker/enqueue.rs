//! Follow-up tasks: recorded as queued before they are sent (see docs/DESIGN.md), or claimed when another task
//! may have reached the same object.

use crate::task::{Task, TaskMessage};

use crate::sync::{SyncContext, SyncError};

/// Records follow-up tasks as queued, then sends them (in that order: see docs/DESIGN.md).
pub async fn enqueue(ctx: &SyncContext, parent: &TaskMessage, tasks: Vec<(String, Task)>) -> Result<(), SyncError> {
    enqueue_after(ctx, parent, tasks, 0).await
}

/// [`enqueue`], the messages delivered after `delay_seconds`.
pub async fn enqueue_after(
    ctx: &SyncContext,
    parent: &TaskMessage,
    tasks: Vec<(String, Task)>,
    delay_seconds: u32,
) -> Result<(), SyncError> {
    if tasks.is_empty() {
        return Ok(());
    }
    let messages: Vec<TaskMessage> =
        tasks.into_iter().map(|(id, task)| TaskMessage::new(parent.run_id, parent.run_kind, id, task)).collect();
    ctx.runs.tasks_queued(parent.run_id, &messages).await?;
    ctx.queue.send_tasks_after(&messages, delay_seconds).await?;
    Ok(())
}

/// Sends the tasks of objects this run may already have reached another way (a child page search also
/// returned, a page a verification finds alive): only those the parent task claims (see `RunStore::claim_tasks`).
pub async fn claim(ctx: &SyncContext, parent: &TaskMessage, tasks: Vec<(String, Task)>) -> Result<(), SyncError> {
    if tasks.is_empty() {
        return Ok(());
    }
    let messages: Vec<TaskMessage> =
        tasks.into_iter().map(|(id, task)| TaskMessage::new(parent.run_id, parent.run_kind, id, task)).collect();
    let owned = ctx.runs.claim_tasks(parent.run_id, &parent.task_id, messages).await?;
    if !owned.is_empty() {
        tracing::info!(claimed = owned.len(), "objects reached through the tree or a verification queued");
        ctx.queue.send_tasks(&owned).await?;
    }
    Ok(())
}

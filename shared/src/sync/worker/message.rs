//! The worker's entry points: an SQS batch, one message of it, and what follows a batch (a run it may have
//! completed is offered to the reaper at once).

use std::time::Instant;

use tracing::Instrument;

use crate::runs::RunState;
use crate::task::TaskMessage;

use super::run_task;
use crate::sync::{SyncContext, SyncError};

/// How one message went, for the SQS adapter: `Ok` deletes the message, `Err` leaves it for a
/// retry (and, after `maxReceiveCount` attempts, the DLQ).
#[derive(Debug)]
pub enum MessageError {
    /// The body is not a task this build understands. Logged; left to reach the DLQ.
    Undecodable(String),
    /// The task failed; `recorded` says whether its record was marked failed (last attempt or a permanent error).
    Failed { error: String, recorded: bool },
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::Undecodable(e) => write!(f, "undecodable message: {e}"),
            MessageError::Failed { error, .. } => write!(f, "task failed: {error}"),
        }
    }
}

/// Handles one SQS message body and returns the id of the run its task belongs to. `receive_count` is SQS's
/// `ApproximateReceiveCount`; `deadline` is when the walk must stop and hand on the rest (Lambda deadline minus margin).
pub async fn handle_message(
    ctx: &SyncContext,
    body: &str,
    receive_count: u32,
    deadline: Option<Instant>,
) -> Result<u64, MessageError> {
    let msg = TaskMessage::decode(body).map_err(|e| {
        tracing::error!(error = %e, receive_count, "undecodable task message; it will reach the DLQ");
        MessageError::Undecodable(e.to_string())
    })?;
    let span = tracing::info_span!("task", run_id = msg.run_id, task_id = %msg.task_id, attempt = receive_count);
    async {
        if let Some(done) = skip_if_run_ended(ctx, &msg).await {
            return done;
        }
        let started = Instant::now();
        // This task's own Notion retries (the client and its counters are shared by the batch); no Notion wait
        // may pass the deadline.
        let run = crate::notion::with_deadline(deadline, run_task(ctx, &msg, deadline));
        let (result, retries) = crate::notion::counting_retries(run).await;
        if let Some(delay) = result.as_ref().err().and_then(notion_deadline_delay) {
            // Notion asked for a wait that would pass the invocation's deadline: the task goes back to the
            // queue, to run after the wait, instead of sleeping until the invocation is killed.
            tracing::info!(delay_s = delay, "rate-limit wait past the deadline: task handed back");
            return match ctx.queue.send_tasks_after(std::slice::from_ref(&msg), delay).await {
                Ok(()) => Ok(msg.run_id),
                Err(e) => {
                    Err(MessageError::Failed { error: format!("could not hand the task back: {e}"), recorded: false })
                }
            };
        }
        match result {
            Ok(mut outcome) => {
                outcome.retries = retries;
                tracing::info!(
                    indexed = outcome.indexed,
                    skipped = outcome.skipped,
                    api_calls = outcome.api_calls,
                    retries = outcome.retries,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "task done"
                );
                ctx.runs.task_done(&msg.task_id, msg.run_id, &outcome).await.map_err(|e| MessageError::Failed {
                    error: format!("could not record task done: {e}"),
                    recorded: false,
                })?;
                Ok(msg.run_id)
            }
            Err(err) => {
                let error = err.to_string();
                let last = receive_count >= ctx.limits.max_receive_count;
                let record = last || err.is_permanent();
                tracing::warn!(%error, last_attempt = last, permanent = err.is_permanent(), "task failed");
                if err.is_unauthorized() {
                    let reason = format!("Notion rejected the token: {error}");
                    if let Err(e) = ctx.runs.abort(msg.run_id, &reason).await {
                        tracing::error!(error = %e, "could not abort the run");
                    }
                }
                if record {
                    if let Err(e) = ctx.runs.task_failed(&msg.task_id, msg.run_id, &error).await {
                        tracing::error!(error = %e, "could not record task failure");
                    }
                }
                Err(MessageError::Failed { error, recorded: record })
            }
        }
    }
    .instrument(span)
    .await
}

/// A task of a run that ended spends no Notion call: a closed run's is dropped (acknowledged), an aborted run's is
/// recorded failed so the run closes now. `None`: the run goes on (or its record cannot be read: the task runs).
async fn skip_if_run_ended(ctx: &SyncContext, msg: &TaskMessage) -> Option<Result<u64, MessageError>> {
    let run = match ctx.runs.get(msg.run_id).await {
        Ok(Some(run)) => run,
        Ok(None) => return None,
        Err(err) => {
            tracing::warn!(error = %err, "run record not read; the task runs");
            return None;
        }
    };
    if run.state.is_closed() {
        tracing::info!(state = run.state.as_str(), "task of a closed run dropped");
        return Some(Ok(msg.run_id));
    }
    let reason = run.abort_reason?;
    tracing::info!(%reason, "task of an aborted run recorded failed without running");
    let error = format!("not run: the run was aborted ({reason})");
    Some(match ctx.runs.task_failed(&msg.task_id, msg.run_id, &error).await {
        Ok(()) => Ok(msg.run_id),
        Err(e) => Err(MessageError::Failed { error: format!("could not record task failure: {e}"), recorded: false }),
    })
}

/// [`crate::sync::deadline_delay`] of a Notion error.
fn notion_deadline_delay(err: &SyncError) -> Option<u32> {
    match err {
        SyncError::Notion(err) => crate::sync::deadline_delay(err),
        _ => None,
    }
}

/// One message of a batch, as the SQS adapter hands it over.
#[derive(Debug, Clone)]
pub struct IncomingMessage {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
}

/// Handles a batch with bounded concurrency; returns the ids of the messages that failed (the
/// partial batch response). A panic in one message fails only that message. Runs the batch may have
/// completed are then offered to the reaper at once.
pub async fn handle_batch(
    ctx: &SyncContext,
    messages: Vec<IncomingMessage>,
    deadline: Option<Instant>,
    concurrency: usize,
) -> Vec<String> {
    use futures::{FutureExt, StreamExt};
    let outcomes: Vec<Result<u64, String>> = futures::stream::iter(messages)
        .map(|m| async move {
            let run =
                std::panic::AssertUnwindSafe(handle_message(ctx, &m.body, m.receive_count, deadline)).catch_unwind();
            match run.await {
                Ok(Ok(run_id)) => Ok(run_id),
                Ok(Err(err)) => {
                    tracing::warn!(message_id = %m.message_id, error = %err, "message failed");
                    Err(m.message_id)
                }
                Err(_) => {
                    tracing::error!(message_id = %m.message_id, "task panicked; message failed");
                    Err(m.message_id)
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut finished_runs: Vec<u64> = outcomes.iter().filter_map(|o| o.as_ref().ok().copied()).collect();
    finished_runs.sort_unstable();
    finished_runs.dedup();
    for run_id in finished_runs {
        finalize_if_complete(ctx, run_id).await;
    }
    outcomes.into_iter().filter_map(Result::err).collect()
}

/// A run whose last task this batch finished is closed now rather than at the reaper's next delayed check: an
/// undelayed finalize message of its own (the reaper's claim keeps two chains from both closing). Best effort:
/// the planner's delayed chain closes the run anyway.
async fn finalize_if_complete(ctx: &SyncContext, run_id: u64) {
    let complete = match ctx.runs.status(run_id).await {
        Ok(status) => {
            crate::runs::is_complete(&status) && !matches!(status.state, RunState::Completed | RunState::Failed)
        }
        Err(err) => {
            tracing::warn!(run_id, error = %err, "could not read the run's status after the batch");
            return;
        }
    };
    if complete {
        if let Err(err) = ctx.queue.send_finalize(&crate::task::FinalizeMessage::new(run_id), 0).await {
            tracing::warn!(run_id, error = %err, "could not send the finalize message of a complete run");
        }
    }
}

//! The worker: one task message in, documents and follow-up tasks out, the task record updated.
//!
//! - [`message`]: the SQS batch and message entry points (decoding, skipping tasks of ended runs, retries and
//!   failures, closing a run the batch completed).
//! - this module: [`run_task`], one function per task kind over a [`TaskRun`].
//! - [`pages`]: page tasks, continuations and the pages of a rows query, walked ([`walk`](crate::sync::walk)).
//! - [`rows`]: a rows query paged through and handed out, with its pure cursor logic.
//! - [`databases`], [`comments`], [`users`], [`delete`]: the other task kinds.
//! - [`enqueue`]: follow-up tasks, recorded before they are sent.

mod comments;
mod databases;
mod delete;
mod enqueue;
mod message;
mod pages;
mod rows;
mod users;

use std::time::Instant;

use crate::runs::TaskOutcome;
use crate::task::{Task, TaskMessage};

use super::{DocBuffer, SyncContext, SyncError};

pub(crate) use databases::push_object;
pub use enqueue::{claim, enqueue, enqueue_after};
pub use message::{handle_batch, handle_message, IncomingMessage, MessageError};
pub use pages::in_trash;
pub use rows::{next_rows_cursor, rows_query};

/// One task being run: what every part of it reads (the context, the message, the deadline) and what it fills
/// (the documents on their way to the index, and the outcome recorded when the task is done).
struct TaskRun<'a> {
    ctx: &'a SyncContext,
    msg: &'a TaskMessage,
    /// When the walk must stop and hand on the rest (Lambda deadline minus margin).
    deadline: Option<Instant>,
    buffer: DocBuffer<'a>,
    outcome: TaskOutcome,
}

impl<'a> TaskRun<'a> {
    fn new(ctx: &'a SyncContext, msg: &'a TaskMessage, deadline: Option<Instant>) -> Self {
        TaskRun { ctx, msg, deadline, buffer: DocBuffer::new(ctx), outcome: TaskOutcome::default() }
    }

    /// Whether the deadline has come (never without one).
    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Flushes the documents left and adds the buffer's counts to the outcome.
    async fn finish(self) -> Result<TaskOutcome, SyncError> {
        let TaskRun { mut buffer, mut outcome, .. } = self;
        buffer.flush().await?;
        outcome.indexed += buffer.indexed;
        outcome.skipped += buffer.skipped;
        outcome.deleted += buffer.deleted;
        outcome.errors += buffer.failed + buffer.malformed + buffer.file_errors;
        outcome.error_samples = buffer.errors;
        Ok(outcome)
    }
}

/// Runs a decoded task. Follow-up tasks are recorded and sent before this returns, so the
/// caller may then mark the task done (the run-completeness invariant).
pub async fn run_task(
    ctx: &SyncContext,
    msg: &TaskMessage,
    deadline: Option<Instant>,
) -> Result<TaskOutcome, SyncError> {
    let mut run = TaskRun::new(ctx, msg, deadline);
    match &msg.task {
        Task::Page { page_id, page, path } => pages::page(&mut run, page_id, page.as_ref(), path).await?,
        Task::Continuation(cont) => pages::continuation(&mut run, cont).await?,
        Task::Rows(cursor) => rows::rows(&mut run, cursor).await?,
        Task::Pages { pages, path } => pages::walk_pages(&mut run, pages, path).await?,
        Task::Objects { objects, paths } => databases::objects(&mut run, objects, paths).await?,
        Task::Database { database_id, path } => databases::database(&mut run, database_id, path).await?,
        Task::Verify { objects } => super::verify::verify(ctx, msg, objects, &mut run.buffer, &mut run.outcome).await?,
        Task::Users => users::users(&mut run).await?,
        Task::Comments { block_ids, page_id } => comments::comments(&mut run, block_ids, page_id).await?,
        Task::Comment { comment_id, page_id } => comments::comment(&mut run, comment_id, page_id).await?,
        Task::DeletePage { page_id } => delete::delete_checked(&mut run, page_id).await?,
    }
    run.finish().await
}

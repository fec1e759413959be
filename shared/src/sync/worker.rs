//! The worker: one task message in, documents and follow-up tasks out, the task record updated.

use std::time::Instant;

use serde_json::{json, Value};
use tracing::Instrument;

use crate::document::{properties_text, title_of, to_document, Placement};
use crate::runs::{RunState, TaskOutcome};
use crate::task::{Continuation, FrontierEntry, RowsCursor, RunKind, Task, TaskMessage};

use super::walk::{PageWalk, WalkEnd};
use super::{DocBuffer, SyncContext, SyncError};

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
        let started = Instant::now();
        // This task's own Notion retries (the client and its counters are shared by the batch).
        let (result, retries) = crate::notion::counting_retries(run_task(ctx, &msg, deadline)).await;
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
                if err.is_auth() {
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

/// Runs a decoded task. Follow-up tasks are recorded and sent before this returns, so the
/// caller may then mark the task done (the run-completeness invariant).
pub async fn run_task(
    ctx: &SyncContext,
    msg: &TaskMessage,
    deadline: Option<Instant>,
) -> Result<TaskOutcome, SyncError> {
    let mut buffer = DocBuffer::new(ctx);
    let mut outcome = TaskOutcome::default();
    match &msg.task {
        Task::Page { page_id, page, path } => {
            let page = match page {
                Some(page) => page.clone(),
                None => {
                    outcome.api_calls += 1;
                    ctx.notion.get_page(page_id).await?
                }
            };
            // A webhook names only the page: its breadcrumb comes from the indexed ancestors.
            let path = match msg.run_kind {
                RunKind::Webhook if path.is_empty() => super::incremental::path_from_index(ctx, &page).await,
                _ => path.clone(),
            };
            let start = PageWalk::start(page_id);
            outcome.body_part =
                walk_page(ctx, msg, &page, &path, start, 0, &mut buffer, &mut outcome, deadline).await?;
        }
        Task::Continuation(cont) => {
            let page = cont.page.clone().unwrap_or_else(|| json!({"object": "page", "id": cont.page_id}));
            outcome.segment = cont.segment;
            outcome.body_part = walk_page(
                ctx,
                msg,
                &page,
                &cont.path,
                cont.frontier.clone(),
                cont.segment,
                &mut buffer,
                &mut outcome,
                deadline,
            )
            .await?;
        }
        Task::Rows(cursor) => rows(ctx, msg, cursor, &mut outcome, deadline).await?,
        Task::Pages { pages, path } => walk_pages(ctx, msg, pages, path, &mut buffer, &mut outcome, deadline).await?,
        Task::Objects { objects, paths } => {
            for (i, object) in objects.iter().enumerate() {
                let path = paths.get(i).map(Vec::as_slice).unwrap_or(&[]);
                let body = object_body(object);
                let page_id = crate::document::parent_id(object);
                let placement = Placement { page_id: page_id.as_deref(), page_url: None, path };
                if let Some(doc) = to_document(object, &placement, body, msg.run_id) {
                    buffer.push(doc).await?;
                }
            }
        }
        Task::Users => {
            let mut cursor: Option<String> = None;
            loop {
                outcome.api_calls += 1;
                let page = ctx.notion.list_users(cursor.as_deref()).await?;
                for user in &page.results {
                    // Bots are integrations, not people: the Elastic connector skips them too.
                    if user.get("type").and_then(Value::as_str) != Some("person") {
                        continue;
                    }
                    let email = user.pointer("/person/email").and_then(Value::as_str).unwrap_or_default();
                    let body = [title_of(user).as_str(), email]
                        .iter()
                        .filter(|s| !s.is_empty())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n");
                    if let Some(doc) = to_document(user, &Placement::default(), body, msg.run_id) {
                        buffer.push(doc).await?;
                    }
                }
                match (page.has_more, page.next_cursor) {
                    (true, Some(next)) => cursor = Some(next),
                    _ => break,
                }
            }
        }
        Task::Comments { block_ids, page_id } => {
            for block_id in block_ids {
                let mut cursor: Option<String> = None;
                loop {
                    outcome.api_calls += 1;
                    let page = match ctx.notion.list_comments(block_id, cursor.as_deref()).await {
                        Ok(page) => page,
                        Err(err) if err.is_not_found() => break,
                        Err(err) => return Err(err.into()),
                    };
                    for comment in &page.results {
                        push_comment(msg.run_id, comment, page_id, &mut buffer).await?;
                    }
                    match (page.has_more, page.next_cursor) {
                        (true, Some(next)) => cursor = Some(next),
                        _ => break,
                    }
                }
            }
        }
        Task::Comment { comment_id, .. } if !ctx.config.index_comments => {
            // Comments are indexed only with `index_comments` (a full sync would remove them again).
            tracing::debug!(comment_id, "comment event skipped: index_comments is off");
            outcome.skipped += 1;
        }
        Task::Comment { comment_id, page_id } => {
            outcome.api_calls += 1;
            match ctx.notion.get_comment(comment_id).await {
                Ok(comment) => push_comment(msg.run_id, &comment, page_id, &mut buffer).await?,
                Err(err) if err.is_not_found() => {
                    outcome.deleted += ctx.store.delete_ids(std::slice::from_ref(comment_id)).await?;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Task::DeletePage { page_id } => {
            outcome.deleted += ctx.store.delete_page(page_id).await?;
        }
    }
    buffer.flush().await?;
    outcome.indexed += buffer.indexed;
    outcome.skipped += buffer.skipped;
    outcome.errors += buffer.failed + buffer.malformed + buffer.file_errors;
    outcome.error_samples = buffer.errors;
    Ok(outcome)
}

async fn push_comment(
    run_id: u64,
    comment: &Value,
    page_id: &str,
    buffer: &mut DocBuffer<'_>,
) -> Result<(), SyncError> {
    let body = crate::document::plain_text(&comment["rich_text"]);
    let placement = Placement { page_id: Some(page_id), page_url: None, path: &[] };
    if let Some(mut doc) = to_document(comment, &placement, body, run_id) {
        // The author as Notion shows it (the display name), else the user id.
        let author = comment
            .pointer("/display_name/resolved_name")
            .and_then(Value::as_str)
            .or_else(|| comment.pointer("/created_by/id").and_then(Value::as_str));
        if let Some(author) = author {
            doc.source.insert("author".into(), Value::String(author.to_string()));
        }
        buffer.push(doc).await?;
    }
    Ok(())
}

/// Text of a database or data source document: its title and description.
fn object_body(object: &Value) -> String {
    let title = title_of(object);
    let description = crate::document::plain_text(&object["description"]);
    [title, description].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n")
}

/// Walks a page (or the rest of it), writes its block documents, and either writes the page
/// document (walk finished) or hands the rest on. Returns this segment's text when suspended.
#[allow(clippy::too_many_arguments)]
async fn walk_page(
    ctx: &SyncContext,
    msg: &TaskMessage,
    page: &Value,
    path: &[String],
    frontier: Vec<FrontierEntry>,
    segment: u32,
    buffer: &mut DocBuffer<'_>,
    outcome: &mut TaskOutcome,
    deadline: Option<Instant>,
) -> Result<Option<String>, SyncError> {
    let page_id =
        page.get("id").and_then(Value::as_str).ok_or_else(|| SyncError::Task("page object without id".into()))?;
    let title = title_of(page);
    let block_path: Vec<String> = path.iter().cloned().chain(std::iter::once(title.clone())).collect();
    let mut walk = PageWalk {
        ctx,
        run_id: msg.run_id,
        page_id,
        page_url: page.get("url").and_then(Value::as_str),
        block_path: &block_path,
        text: String::new(),
        api_calls: 0,
        block_ids: Vec::new(),
    };
    if segment == 0 {
        // The page's own text comes first: title, then (for rows) the property values.
        walk.text =
            [title.clone(), properties_text(page)].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n");
    }
    let end = walk.run(frontier, buffer, deadline).await?;
    outcome.api_calls += walk.api_calls;
    let text = walk.text;
    if ctx.config.index_comments {
        // Comments hang off the page and any of its blocks: one list call each, in tasks of
        // their own so a long page's comments never hold up its walk.
        let ids: Vec<String> = (segment == 0).then(|| page_id.to_string()).into_iter().chain(walk.block_ids).collect();
        let tasks = ids
            .chunks(100)
            .enumerate()
            .map(|(i, chunk)| {
                (
                    format!("comments:{page_id}:{segment}:{i}"),
                    Task::Comments { block_ids: chunk.to_vec(), page_id: page_id.to_string() },
                )
            })
            .collect();
        enqueue(ctx, msg, tasks).await?;
    }
    match end {
        WalkEnd::Suspended(frontier) => {
            let next = Continuation {
                page_id: page_id.to_string(),
                page: Some(page.clone()),
                path: path.to_vec(),
                segment: segment + 1,
                frontier,
            };
            let task_id = format!("{}:c{}", msg.task_id.split(":c").next().unwrap_or(&msg.task_id), segment + 1);
            tracing::info!(page_id, segment = segment + 1, "deadline near: handing the rest of the page on");
            // This segment's text is saved before the next segment can exist, so the last
            // segment always finds every earlier part.
            ctx.runs.save_body_part(msg.run_id, &msg.task_id, page_id, segment, &text).await?;
            enqueue(ctx, msg, vec![(task_id, Task::Continuation(next))]).await?;
            Ok(Some(text))
        }
        WalkEnd::Finished => {
            let mut body = String::new();
            if segment > 0 {
                for part in ctx.runs.body_parts_before(page_id, msg.run_id, segment).await? {
                    body.push_str(&part);
                    body.push('\n');
                }
            }
            body.push_str(&text);
            let placement = Placement { page_id: Some(page_id), page_url: None, path };
            if let Some(doc) = to_document(page, &placement, body, msg.run_id) {
                buffer.push(doc).await?;
            }
            if msg.run_kind != RunKind::Full {
                // Outside full runs nothing else removes the blocks deleted from a changed page.
                buffer.flush().await?;
                outcome.deleted += ctx.store.delete_removed_blocks(page_id, msg.run_id).await?;
            }
            Ok(None)
        }
    }
}

/// Pages through a rows query, handing each page of rows out as a `Pages` task.
async fn rows(
    ctx: &SyncContext,
    msg: &TaskMessage,
    start: &RowsCursor,
    outcome: &mut TaskOutcome,
    deadline: Option<Instant>,
) -> Result<(), SyncError> {
    let mut cursor = start.clone();
    loop {
        outcome.api_calls += 1;
        let page = ctx.notion.query_rows(cursor.source_id.as_str(), &rows_query(&cursor)).await?;
        let hit_cap = page.hit_result_limit();
        let rows: Vec<Value> = page
            .results
            .into_iter()
            .filter(|row| row.get("object").and_then(Value::as_str) == Some("page"))
            .filter(|row| {
                row.get("id").and_then(Value::as_str).is_some_and(|id| !cursor.skip_ids.iter().any(|s| s == id))
            })
            .collect();
        let next = next_rows_cursor(&cursor, &rows, page.has_more, page.next_cursor, hit_cap);
        let mut tasks: Vec<(String, Task)> = row_batches(rows)
            .into_iter()
            .enumerate()
            .map(|(i, pages)| {
                (
                    format!("rows:{}:{}:w{i}", cursor.source_id, cursor.seq),
                    Task::Pages { pages, path: cursor.path.clone() },
                )
            })
            .collect();
        let Some(next) = next else {
            return enqueue(ctx, msg, tasks).await;
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            tasks.push((format!("rows:{}:{}", next.source_id, next.seq), Task::Rows(next)));
            return enqueue(ctx, msg, tasks).await;
        }
        enqueue(ctx, msg, tasks).await?;
        cursor = next;
    }
}

/// Splits rows into `Pages` tasks that fit comfortably in one SQS message (256 KiB).
fn row_batches(rows: Vec<Value>) -> Vec<Vec<Value>> {
    const MAX_BATCH_BYTES: usize = 160 * 1024;
    let mut batches: Vec<Vec<Value>> = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let size = row.to_string().len();
        if batches.is_empty() || bytes + size > MAX_BATCH_BYTES {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        batches.last_mut().expect("a batch was just pushed").push(row);
    }
    batches
}

/// Walks pages that were fetched already, a few at once; pages left when the deadline nears
/// are handed on as `Page` tasks.
async fn walk_pages(
    ctx: &SyncContext,
    msg: &TaskMessage,
    pages: &[Value],
    path: &[String],
    buffer: &mut DocBuffer<'_>,
    outcome: &mut TaskOutcome,
    deadline: Option<Instant>,
) -> Result<(), SyncError> {
    let mut chunks = pages.chunks(PAGE_CONCURRENCY);
    while let Some(chunk) = chunks.next() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let rest: Vec<(String, Task)> = chunk
                .iter()
                .chain(chunks.flatten())
                .filter_map(|page| {
                    let id = page.get("id")?.as_str()?.to_string();
                    Some((format!("p:{id}"), Task::Page { page_id: id, page: Some(page.clone()), path: path.to_vec() }))
                })
                .collect();
            return enqueue(ctx, msg, rest).await;
        }
        let walks = chunk.iter().map(|page| async move {
            let page_id = page.get("id").and_then(Value::as_str).unwrap_or_default();
            let mut local = DocBuffer::new(ctx);
            let mut walked = TaskOutcome::default();
            let result =
                walk_page(ctx, msg, page, path, PageWalk::start(page_id), 0, &mut local, &mut walked, None).await;
            (local, walked, result)
        });
        for (local, walked, result) in futures::future::join_all(walks).await {
            buffer.absorb(local).await?;
            outcome.api_calls += walked.api_calls;
            outcome.deleted += walked.deleted;
            result?;
        }
    }
    Ok(())
}

/// Pages of one `Pages` task walked at once (their calls share the client's pacer).
const PAGE_CONCURRENCY: usize = 8;

/// The query body: rows oldest first (so the 10,000-row cap can be windowed by creation time),
/// restricted to the current window and to the rule's filter if any.
pub fn rows_query(cursor: &RowsCursor) -> Value {
    let mut filters = Vec::new();
    if let Some(after) = &cursor.after_created {
        filters.push(json!({"timestamp": "created_time", "created_time": {"on_or_after": after}}));
    }
    if let Some(filter) = &cursor.filter {
        filters.push(filter.clone());
    }
    let mut body = json!({"page_size": 100, "sorts": [{"timestamp": "created_time", "direction": "ascending"}]});
    match filters.len() {
        0 => {}
        1 => body["filter"] = filters.remove(0),
        _ => body["filter"] = json!({"and": filters}),
    }
    if let Some(start) = &cursor.start_cursor {
        body["start_cursor"] = json!(start);
    }
    body
}

/// Where the next query page starts: the same window's next cursor, or (when the row cap cut
/// the window short) a new window from the last row's creation minute, skipping the rows of that
/// minute already seen.
pub fn next_rows_cursor(
    cursor: &RowsCursor,
    rows: &[Value],
    has_more: bool,
    next: Option<String>,
    hit_cap: bool,
) -> Option<RowsCursor> {
    let created = |row: &Value| row.get("created_time").and_then(Value::as_str).map(str::to_string);
    if has_more {
        return next.map(|start| RowsCursor {
            start_cursor: Some(start),
            seq: cursor.seq + 1,
            skip_ids: cursor.skip_ids.clone(),
            ..cursor.clone()
        });
    }
    if !hit_cap {
        return None;
    }
    let last = rows.last().and_then(created)?;
    let mut skip_ids: Vec<String> = rows
        .iter()
        .filter(|r| created(r).as_deref() == Some(last.as_str()))
        .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    if cursor.after_created.as_deref() == Some(last.as_str()) {
        // Still the same minute: keep what the earlier pages of this window skipped too.
        skip_ids.extend(cursor.skip_ids.iter().cloned());
    }
    Some(RowsCursor { start_cursor: None, after_created: Some(last), skip_ids, seq: cursor.seq + 1, ..cursor.clone() })
}

/// Records follow-up tasks as queued, then sends them (in that order: see docs/DESIGN.md).
pub async fn enqueue(ctx: &SyncContext, parent: &TaskMessage, tasks: Vec<(String, Task)>) -> Result<(), SyncError> {
    if tasks.is_empty() {
        return Ok(());
    }
    let messages: Vec<TaskMessage> =
        tasks.into_iter().map(|(id, task)| TaskMessage::new(parent.run_id, parent.run_kind, id, task)).collect();
    ctx.runs.tasks_queued(parent.run_id, &messages).await?;
    ctx.queue.send_tasks(&messages).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, created: &str) -> Value {
        json!({"object": "page", "id": id, "created_time": created})
    }

    fn cursor() -> RowsCursor {
        RowsCursor {
            source_id: "ds".into(),
            database_id: None,
            start_cursor: None,
            after_created: None,
            skip_ids: vec![],
            filter: None,
            path: vec![],
            seq: 0,
        }
    }

    #[test]
    fn next_page_of_the_same_window() {
        let next = next_rows_cursor(&cursor(), &[row("a", "t1")], true, Some("c2".into()), false).unwrap();
        assert_eq!(next.start_cursor.as_deref(), Some("c2"));
        assert_eq!(next.seq, 1);
        assert!(next_rows_cursor(&cursor(), &[row("a", "t1")], false, None, false).is_none());
    }

    #[test]
    fn row_cap_opens_a_new_window_at_the_last_minute() {
        let rows = [row("a", "t1"), row("b", "t2"), row("c", "t2")];
        let next = next_rows_cursor(&cursor(), &rows, false, None, true).unwrap();
        assert_eq!(next.after_created.as_deref(), Some("t2"));
        assert_eq!(next.skip_ids, vec!["b".to_string(), "c".to_string()]);
        assert_eq!(next.start_cursor, None);
        let body = rows_query(&next);
        assert_eq!(body["filter"]["created_time"]["on_or_after"], "t2");
    }

    #[test]
    fn rule_filter_and_window_combine() {
        let mut c = cursor();
        c.filter = Some(json!({"property": "Done", "checkbox": {"equals": true}}));
        assert_eq!(rows_query(&c)["filter"]["property"], "Done");
        c.after_created = Some("t".into());
        assert_eq!(rows_query(&c)["filter"]["and"].as_array().unwrap().len(), 2);
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

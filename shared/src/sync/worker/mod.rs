//! The worker: one task message in, documents and follow-up tasks out, the task record updated.

use std::time::Instant;

use serde_json::{json, Value};
use tracing::Instrument;

use crate::document::{properties_text, title_of, to_document, Placement};
use crate::runs::{RunState, TaskOutcome};
use crate::task::{Continuation, FrontierEntry, RowsCursor, RunKind, Task, TaskMessage};

use super::walk::{Discovered, PageWalk, WalkEnd};
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
                    match ctx.notion.get_page(page_id).await {
                        Ok(page) => page,
                        Err(err) if err.is_not_found() => {
                            vanished(ctx, msg, page_id, &mut outcome).await?;
                            return Ok(outcome);
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
            };
            if in_trash(&page) {
                // Reached late (a webhook, an incremental run, a stale search result): never indexed again.
                outcome.deleted += ctx.store.delete_page(page_id).await?;
                return Ok(outcome);
            }
            // A webhook names any page the integration can read: only those the configuration selects are indexed
            // (incremental runs are narrowed when planned).
            if let Some(selection) =
                super::scope::Selection::of(&ctx.config).filter(|_| msg.run_kind == RunKind::Webhook)
            {
                let (_, out) =
                    super::scope::partition(ctx, &selection, vec![page.clone()], &mut outcome.api_calls).await?;
                if !out.is_empty() {
                    tracing::info!(page_id, "page outside the configured scope: not indexed");
                    outcome.deleted += super::scope::remove_own(ctx, &out).await?;
                    outcome.skipped += 1;
                    return Ok(outcome);
                }
            }
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
            let page = match &cont.page {
                Some(page) => page.clone(),
                // Too large to ride along: read again (its title names the blocks and the page document).
                None => {
                    outcome.api_calls += 1;
                    match ctx.notion.get_page(cont.page_id.as_str()).await {
                        Ok(page) => page,
                        Err(err) if err.is_not_found() => {
                            vanished(ctx, msg, &cont.page_id, &mut outcome).await?;
                            return Ok(outcome);
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
            };
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
                push_object(msg.run_id, object, path, &mut buffer).await?;
            }
        }
        Task::Database { database_id, path } => {
            database(ctx, msg, database_id, path, &mut buffer, &mut outcome).await?
        }
        Task::Verify { objects } => super::verify::verify(ctx, msg, objects, &mut buffer, &mut outcome).await?,
        Task::Users => {
            let mut cursor: Option<String> = None;
            loop {
                outcome.api_calls += 1;
                let page = match ctx.notion.list_users(cursor.as_deref()).await {
                    Ok(page) => page,
                    Err(err) if err.is_restricted() => {
                        // One message per run (no request id in it): every task that meets the 403 says the same.
                        tracing::warn!(error = %err, "users skipped: capability missing");
                        let warning = "skipped: users (403 restricted_resource): GET /v1/users needs the \"read user \
                                       information\" capability, which the integration lacks; user documents indexed \
                                       before are kept";
                        ctx.runs.add_warning(msg.run_id, warning, Some("user")).await?;
                        break;
                    }
                    Err(err) => return Err(err.into()),
                };
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
            'blocks: for (i, block_id) in block_ids.iter().enumerate() {
                // The deadline is checked between blocks (each one's comments are listed whole): the blocks left
                // go on as a task of their own.
                if i > 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                    tracing::info!(left = block_ids.len() - i, "deadline near: handing the rest of the comments on");
                    let rest = Task::Comments { block_ids: block_ids[i..].to_vec(), page_id: page_id.clone() };
                    enqueue(ctx, msg, vec![(format!("{}:r{i}", msg.task_id), rest)]).await?;
                    break;
                }
                let mut cursor: Option<String> = None;
                loop {
                    outcome.api_calls += 1;
                    let page = match ctx.notion.list_comments(block_id, cursor.as_deref()).await {
                        Ok(page) => page,
                        Err(err) if err.is_not_found() => break,
                        Err(err) if err.is_restricted() => {
                            tracing::warn!(error = %err, "comments skipped: capability missing");
                            let warning = "skipped: comments (403 restricted_resource): GET /v1/comments needs the \
                                           \"read comments\" capability, which the integration lacks; comment \
                                           documents indexed before are kept";
                            ctx.runs.add_warning(msg.run_id, warning, Some("comment")).await?;
                            break 'blocks;
                        }
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
        Task::Comment { comment_id, page_id }
            if super::scope::Selection::of(&ctx.config).is_some() && ctx.store.get(page_id).await?.is_none() =>
        {
            // Under a narrower selection a comment is indexed only with its page (a webhook names any comment).
            tracing::info!(comment_id, page_id, "comment on a page that is not indexed: skipped");
            outcome.deleted += ctx.store.delete_ids_of_run(std::slice::from_ref(comment_id), msg.run_id).await?;
            outcome.skipped += 1;
        }
        Task::Comment { comment_id, page_id } => {
            outcome.api_calls += 1;
            match ctx.notion.get_comment(comment_id).await {
                Ok(comment) => push_comment(msg.run_id, &comment, page_id, &mut buffer).await?,
                Err(err) if err.is_not_found() => {
                    outcome.deleted +=
                        ctx.store.delete_ids_of_run(std::slice::from_ref(comment_id), msg.run_id).await?;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Task::DeletePage { page_id } => delete_checked(ctx, msg, page_id, &mut outcome).await?,
    }
    buffer.flush().await?;
    outcome.indexed += buffer.indexed;
    outcome.skipped += buffer.skipped;
    outcome.deleted += buffer.deleted;
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

/// Indexes a database or data source object.
pub(crate) async fn push_object(
    run_id: u64,
    object: &Value,
    path: &[String],
    buffer: &mut DocBuffer<'_>,
) -> Result<(), SyncError> {
    let body = object_body(object);
    let page_id = crate::document::parent_id(object);
    let placement = Placement { page_id: page_id.as_deref(), page_url: None, path };
    if let Some(doc) = to_document(object, &placement, body, run_id) {
        buffer.push(doc).await?;
    }
    Ok(())
}

/// Notion's trash flags (`in_trash`, and `archived` before 2026-03-11).
pub fn in_trash(object: &Value) -> bool {
    ["in_trash", "archived", "is_archived"].iter().any(|flag| object.get(*flag).and_then(Value::as_bool) == Some(true))
}

/// A queued page that answers 404 was deleted or unshared since it was listed: its documents go, the run
/// records it and goes on (a busy workspace must not fail every full sync).
async fn vanished(
    ctx: &SyncContext,
    msg: &TaskMessage,
    page_id: &str,
    outcome: &mut TaskOutcome,
) -> Result<(), SyncError> {
    outcome.deleted += ctx.store.delete_page(page_id).await?;
    let warning = format!("page {page_id} vanished (404 object_not_found) during the run: its documents were removed");
    ctx.runs.add_warning(msg.run_id, &warning, None).await?;
    Ok(())
}

/// A `page.deleted` / `database.deleted` / `data_source.deleted` event, checked with Notion first (events may be
/// late, reordered or forged): the documents go only when Notion answers 404 `object_not_found` or shows the
/// object in the trash. A live object is synced again instead (if in scope).
async fn delete_checked(
    ctx: &SyncContext,
    msg: &TaskMessage,
    id: &str,
    outcome: &mut TaskOutcome,
) -> Result<(), SyncError> {
    // What the id names: its document says; else each kind in turn (a 404 of one kind says nothing of another).
    let indexed = ctx.store.get(id).await?.and_then(|d| d.get("object").and_then(Value::as_str).map(str::to_string));
    let kinds: Vec<&str> = match indexed.as_deref() {
        Some(kind @ ("page" | "database" | "data_source")) => vec![kind],
        _ if ctx.notion.version().has_data_sources() => vec!["page", "database", "data_source"],
        _ => vec!["page", "database"],
    };
    let mut not_found = false;
    for kind in kinds {
        outcome.api_calls += 1;
        let fetched = match kind {
            "page" => ctx.notion.get_page(id).await,
            "database" => ctx.notion.get_database(id).await,
            _ => ctx.notion.get_data_source(id).await,
        };
        let object = match fetched {
            Ok(object) => object,
            Err(err) if err.code() == Some("object_not_found") => {
                not_found = true;
                continue;
            }
            // Asked as the wrong kind of object (a database id as a page): try the next kind.
            Err(err) if err.code() == Some("validation_error") => continue,
            Err(err) => return Err(err.into()),
        };
        if in_trash(&object) {
            outcome.deleted += ctx.store.delete_page(id).await?;
            return Ok(());
        }
        tracing::info!(id, object = kind, "delete event for an object Notion still shows live: synced again instead");
        let task = match kind {
            "page" => {
                let page = crate::task::embeddable(&object).then(|| object.clone());
                (format!("p:{id}"), Task::Page { page_id: id.to_string(), page, path: vec![] })
            }
            _ => {
                // A data source is synced with its database (2025-09-03+); before, the database is the source.
                let database =
                    object.pointer("/parent/database_id").and_then(Value::as_str).filter(|_| kind == "data_source");
                let database = database.unwrap_or(id);
                let path = match ctx.store.get(database).await? {
                    Some(doc) => doc
                        .get("path")
                        .and_then(Value::as_array)
                        .map(|p| p.iter().filter_map(Value::as_str).map(str::to_string).collect())
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                (format!("database:{database}"), Task::Database { database_id: database.to_string(), path })
            }
        };
        return enqueue(ctx, msg, vec![task]).await;
    }
    if !not_found {
        // Every kind refused the id without saying it is gone: nothing is confirmed, nothing goes.
        tracing::warn!(id, "delete event for an id Notion neither shows nor reports gone: nothing removed");
        outcome.skipped += 1;
        return Ok(());
    }
    outcome.deleted += ctx.store.delete_page(id).await?;
    Ok(())
}

/// A database search did not return, reached through a `child_database` block: index it and its data
/// sources, and claim their rows queries (each is synced once per run, however it was reached).
async fn database(
    ctx: &SyncContext,
    msg: &TaskMessage,
    database_id: &str,
    path: &[String],
    buffer: &mut DocBuffer<'_>,
    outcome: &mut TaskOutcome,
) -> Result<(), SyncError> {
    outcome.api_calls += 1;
    let database = match ctx.notion.get_database(database_id).await {
        Ok(database) if !in_trash(&database) => database,
        Ok(_) => return Ok(()),
        Err(err) if err.is_not_found() || err.code() == Some("validation_error") => {
            let warning = format!("database {database_id} (reached through the page tree) skipped: {err}");
            ctx.runs.add_warning(msg.run_id, &warning, None).await?;
            return Ok(());
        }
        Err(err) => return Err(err.into()),
    };
    let mut source_path = path.to_vec();
    source_path.push(title_of(&database));
    let mut sources = Vec::new();
    let mut objects = vec![database.clone()];
    if ctx.notion.version().has_data_sources() {
        let ids: Vec<String> = database["data_sources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        for id in ids {
            outcome.api_calls += 1;
            match ctx.notion.get_data_source(id.as_str()).await {
                Ok(source) => {
                    objects.push(source);
                    sources.push((id, Some(database_id.to_string())));
                }
                Err(err) if err.is_not_found() => {
                    tracing::warn!(data_source_id = %id, "data source not shared; skipped")
                }
                Err(err) => return Err(err.into()),
            }
        }
    } else {
        sources.push((database_id.to_string(), None));
    }
    // Outside full runs (a webhook) the database and its sources are indexed only in scope; their rows queries
    // are narrowed by `rows`.
    let selection = super::scope::Selection::of(&ctx.config).filter(|_| msg.run_kind != RunKind::Full);
    if let Some(selection) = selection {
        let (kept, mut out) = super::scope::partition(ctx, &selection, objects.clone(), &mut outcome.api_calls).await?;
        // The container goes with any of its sources.
        if !kept.is_empty() {
            out.retain(|id| id != database_id);
        }
        objects.retain(|o| o.get("id").and_then(Value::as_str).is_some_and(|id| !out.iter().any(|x| x == id)));
        outcome.deleted += super::scope::remove_own(ctx, &out).await?;
    }
    for object in &objects {
        let container = object.get("id").and_then(Value::as_str) == Some(database_id);
        push_object(msg.run_id, object, if container { path } else { &source_path }, buffer).await?;
    }
    let tasks = sources
        .into_iter()
        .map(|(source_id, database_id)| {
            let cursor = RowsCursor::start(&source_id, database_id, None, source_path.clone());
            (cursor.task_id(), Task::Rows(cursor))
        })
        .collect();
    claim(ctx, msg, tasks).await
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
        discovered: Vec::new(),
    };
    if segment == 0 {
        // The page's own text comes first: title, then (for rows) the property values.
        // Bounded like the title field: a title beyond Notion's own limit must not crowd out the page's text.
        let title = super::walk::truncate_chars(&title, crate::document::MAX_TITLE_CHARS).to_string();
        walk.text = [title, properties_text(page)].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n");
    }
    let end = walk.run(frontier, buffer, deadline).await?;
    outcome.api_calls += walk.api_calls;
    if matches!(end, WalkEnd::Vanished) {
        vanished(ctx, msg, page_id, outcome).await?;
        return Ok(None);
    }
    // What the tree reached is synced in a full run too, once, whoever reaches it first (incremental and webhook
    // runs sync what changed; an unchanged child page needs nothing).
    if msg.run_kind != RunKind::Full {
        walk.discovered.clear();
    }
    let found = walk
        .discovered
        .iter()
        .map(|object| match object {
            Discovered::Page(id) => {
                (format!("p:{id}"), Task::Page { page_id: id.clone(), page: None, path: block_path.clone() })
            }
            Discovered::Database(id) => {
                (format!("database:{id}"), Task::Database { database_id: id.clone(), path: block_path.clone() })
            }
        })
        .collect();
    claim(ctx, msg, found).await?;
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
        WalkEnd::Vanished => Ok(None),
        WalkEnd::Suspended { frontier, delay_seconds } => {
            let next = Continuation {
                page_id: page_id.to_string(),
                page: Some(page.clone()),
                path: path.to_vec(),
                segment: segment + 1,
                frontier,
            };
            tracing::info!(page_id, segment = segment + 1, "deadline near: handing the rest of the page on");
            // This segment's text is saved before the next segment can exist, so the last
            // segment always finds every earlier part.
            let task_id = if matches!(msg.task, Task::Pages { .. }) {
                // A row walked beside others: its parts and continuations are named after it.
                ctx.parts.save_row_body_part(msg.run_id, page_id, segment, &text).await?;
                format!("p:{page_id}:c{}", segment + 1)
            } else {
                ctx.parts.save_body_part(msg.run_id, &msg.task_id, page_id, segment, &text).await?;
                format!("{}:c{}", msg.task_id.split(":c").next().unwrap_or(&msg.task_id), segment + 1)
            };
            enqueue_after(ctx, msg, vec![(task_id, Task::Continuation(next))], delay_seconds).await?;
            Ok(Some(text))
        }
        WalkEnd::Finished => {
            let mut parts =
                if segment > 0 { ctx.parts.body_parts_before(page_id, msg.run_id, segment).await? } else { Vec::new() };
            parts.push(text);
            // Segments join like the lines of one walk (an empty segment adds nothing).
            let body = parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join("\n");
            let placement = Placement { page_id: Some(page_id), page_url: None, path };
            if let Some(doc) = to_document(page, &placement, body, msg.run_id) {
                buffer.push(doc).await?;
            }
            if msg.run_kind != RunKind::Full {
                // Outside full runs nothing else removes the blocks deleted from a changed page.
                buffer.flush().await?;
                // Blocks of runs still open are kept: one may have walked the page after this walk.
                let open_runs = ctx.runs.active_run_ids().await?;
                outcome.deleted += ctx.store.delete_removed_blocks(page_id, msg.run_id, &open_runs).await?;
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
    // Outside full runs (a webhook, a database reached again) the query is narrowed to the rows in scope, once, at
    // its start: later pages carry the narrowed filter, and the further queries made here are narrowed already.
    let fresh = start.seq == 0 && start.query == 0 && start.start_cursor.is_none() && start.after_created.is_none();
    let selection = super::scope::Selection::of(&ctx.config).filter(|_| msg.run_kind != RunKind::Full && fresh);
    if let Some(selection) = selection {
        let source = start.source_id.as_str();
        let (scope, verdict) =
            super::scope::rows_scope(ctx, &selection, source, start.database_id.as_deref(), &mut outcome.api_calls)
                .await?;
        let filters = match scope {
            super::scope::RowsScope::All => vec![],
            super::scope::RowsScope::Matching(filters) => filters,
            super::scope::RowsScope::None => {
                tracing::info!(source, "rows of a source outside the configured scope: not indexed");
                if verdict == Some(super::scope::Verdict::Out) {
                    outcome.deleted += super::scope::remove_own(ctx, &[source.to_string()]).await?;
                }
                outcome.skipped += 1;
                return Ok(());
            }
        };
        let narrowed: Vec<RowsCursor> = filters
            .iter()
            .enumerate()
            .map(|(query, rule)| RowsCursor {
                query: query as u32,
                filter: Some(match &start.filter {
                    Some(window) => crate::rules::nesting::and_with(window.clone(), rule),
                    None => rule.clone(),
                }),
                ..start.clone()
            })
            .collect();
        if let Some((first, rest)) = narrowed.split_first() {
            let tasks = rest.iter().map(|c| (c.task_id(), Task::Rows(c.clone()))).collect();
            enqueue(ctx, msg, tasks).await?;
            cursor = first.clone();
        }
    }
    let first = cursor.clone();
    loop {
        outcome.api_calls += 1;
        let page = match ctx.notion.query_rows(cursor.source_id.as_str(), &rows_query(&cursor)).await {
            Ok(page) => page,
            Err(err) if err.is_not_found() || err.code() == Some("validation_error") => {
                // Search lists linked and restricted databases whose rows cannot be read, and 2022-06-28 cannot
                // read a database with several data sources: those rows are skipped, the database document stays,
                // the run goes on.
                let source = cursor.database_id.as_deref().unwrap_or(&cursor.source_id);
                let hint = if err.to_string().contains("multiple data sources") {
                    " (this database has several data sources, which Notion-Version 2022-06-28 cannot read: set NOTION_VERSION to 2025-09-03)"
                } else {
                    ""
                };
                let name = cursor.path.last().map(|t| format!(" {t:?}")).unwrap_or_default();
                let warning = format!("rows of database{name} ({source}) skipped{hint}: {err}");
                ctx.runs.add_warning(msg.run_id, &warning, None).await?;
                return Ok(());
            }
            Err(err) => match super::deadline_delay(&err) {
                // Rows already handed out stay handed out: the rest of the query goes on after the wait (a first
                // query is handed back whole by `handle_message`).
                Some(delay) if cursor != first => {
                    let task = (cursor.task_id(), Task::Rows(cursor));
                    return enqueue_after(ctx, msg, vec![task], delay).await;
                }
                _ => return Err(err.into()),
            },
        };
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
        // A row too large to ride along travels by id, as a page task of its own.
        let (rows, large): (Vec<Value>, Vec<Value>) = rows.into_iter().partition(crate::task::embeddable);
        let mut tasks: Vec<(String, Task)> = row_batches(rows)
            .into_iter()
            .enumerate()
            .map(|(i, pages)| (format!("{}:w{i}", cursor.task_id()), Task::Pages { pages, path: cursor.path.clone() }))
            .collect();
        for row in &large {
            if let Some(id) = row.get("id").and_then(Value::as_str) {
                let task = Task::Page { page_id: id.to_string(), page: None, path: cursor.path.clone() };
                tasks.push((format!("p:{id}"), task));
            }
        }
        let Some(next) = next else {
            return enqueue(ctx, msg, tasks).await;
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            tasks.push((next.task_id(), Task::Rows(next)));
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
        let size = crate::queue::serialized_len(&row);
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
            // With the deadline, a row whose walk must stop (the deadline, or a rate-limit wait past it) goes on
            // as a continuation of its own, keeping what it walked.
            let result =
                walk_page(ctx, msg, page, path, PageWalk::start(page_id), 0, &mut local, &mut walked, deadline).await;
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
    let window = cursor
        .after_created
        .as_ref()
        .map(|after| json!({"timestamp": "created_time", "created_time": {"on_or_after": after}}));
    let mut body = json!({"page_size": 100, "sorts": [{"timestamp": "created_time", "direction": "ascending"}]});
    match (window, &cursor.filter) {
        (None, None) => {}
        (Some(window), None) => body["filter"] = window,
        (None, Some(filter)) => body["filter"] = filter.clone(),
        // Within Notion's two levels of nesting, whatever the rule's shape.
        (Some(window), Some(filter)) => body["filter"] = crate::rules::nesting::and_with(window, filter),
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

/// [`super::deadline_delay`] of a Notion error.
fn notion_deadline_delay(err: &SyncError) -> Option<u32> {
    match err {
        SyncError::Notion(err) => super::deadline_delay(err),
        _ => None,
    }
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
            query: 0,
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

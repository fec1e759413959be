//! Page tasks: a page (fetched unless it rode along), the continuation of one handed on at a deadline, and the
//! rows of a query walked a few at once. Each walk writes the block documents, then the page document or the
//! next continuation.

use serde_json::Value;

use crate::document::{properties_text, title_of, to_document, Placement};
use crate::task::{Continuation, FrontierEntry, RunKind, Task};

use super::enqueue::{claim, enqueue, enqueue_after};
use super::TaskRun;
use crate::sync::walk::{Discovered, PageWalk, WalkEnd};
use crate::sync::{scope, SyncError};

/// Pages of one `Pages` task walked at once (their calls share the client's pacer).
const PAGE_CONCURRENCY: usize = 8;

/// Notion's trash flags (`in_trash`, and `archived` before 2026-03-11).
pub fn in_trash(object: &Value) -> bool {
    ["in_trash", "archived", "is_archived"].iter().any(|flag| object.get(*flag).and_then(Value::as_bool) == Some(true))
}

/// A page task: a page in the trash has its documents removed, one a webhook names outside the configured
/// scope too; any other is walked.
pub(super) async fn page(
    run: &mut TaskRun<'_>,
    page_id: &str,
    page: Option<&Value>,
    path: &[String],
) -> Result<(), SyncError> {
    let Some(page) = page_or_fetch(run, page_id, page).await? else { return Ok(()) };
    let (ctx, msg) = (run.ctx, run.msg);
    if in_trash(&page) {
        // Reached late (a webhook, an incremental run, a stale search result): never indexed again.
        run.outcome.deleted += ctx.store.delete_page(page_id).await?;
        return Ok(());
    }
    // A webhook names any page the integration can read: only those the configuration selects are indexed
    // (incremental runs are narrowed when planned).
    if let Some(selection) = scope::Selection::of(&ctx.config).filter(|_| msg.run_kind == RunKind::Webhook) {
        let (_, out) = scope::partition(ctx, &selection, vec![page.clone()], &mut run.outcome.api_calls).await?;
        if !out.is_empty() {
            tracing::info!(page_id, "page outside the configured scope: not indexed");
            run.outcome.deleted += scope::remove_own(ctx, &out).await?;
            run.outcome.skipped += 1;
            return Ok(());
        }
    }
    // A webhook names only the page: its breadcrumb comes from the indexed ancestors.
    let path = match msg.run_kind {
        RunKind::Webhook if path.is_empty() => crate::sync::incremental::path_from_index(ctx, &page).await,
        _ => path.to_vec(),
    };
    let start = PageWalk::start(page_id);
    run.outcome.body_part = walk_page(run, &page, &path, start, 0).await?;
    Ok(())
}

/// A continuation: the rest of a page's walk, from the frontier where the last segment stopped.
pub(super) async fn continuation(run: &mut TaskRun<'_>, cont: &Continuation) -> Result<(), SyncError> {
    // Too large to ride along: read again (its title names the blocks and the page document).
    let Some(page) = page_or_fetch(run, cont.page_id.as_str(), cont.page.as_ref()).await? else { return Ok(()) };
    run.outcome.segment = cont.segment;
    run.outcome.body_part = walk_page(run, &page, &cont.path, cont.frontier.clone(), cont.segment).await?;
    Ok(())
}

/// The page that rode along, else the page read from Notion; `None` when it vanished (recorded as such).
async fn page_or_fetch(run: &mut TaskRun<'_>, page_id: &str, page: Option<&Value>) -> Result<Option<Value>, SyncError> {
    if let Some(page) = page {
        return Ok(Some(page.clone()));
    }
    run.outcome.api_calls += 1;
    match run.ctx.notion.get_page(page_id).await {
        Ok(page) => Ok(Some(page)),
        Err(err) if err.is_not_found() => {
            vanished(run, page_id).await?;
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

/// A queued page that answers 404 was deleted or unshared since it was listed: its documents go, the run
/// records it and goes on (a busy workspace must not fail every full sync).
async fn vanished(run: &mut TaskRun<'_>, page_id: &str) -> Result<(), SyncError> {
    run.outcome.deleted += run.ctx.store.delete_page(page_id).await?;
    let warning = format!("page {page_id} vanished (404 object_not_found) during the run: its documents were removed");
    run.ctx.runs.add_warning(run.msg.run_id, &warning, None).await?;
    Ok(())
}

/// Walks pages that were fetched already, a few at once; pages left when the deadline nears
/// are handed on as `Page` tasks.
pub(super) async fn walk_pages(run: &mut TaskRun<'_>, pages: &[Value], path: &[String]) -> Result<(), SyncError> {
    let (ctx, msg, deadline) = (run.ctx, run.msg, run.deadline);
    let mut chunks = pages.chunks(PAGE_CONCURRENCY);
    while let Some(chunk) = chunks.next() {
        if run.past_deadline() {
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
            // Each row is walked with a buffer and counts of its own, taken over below.
            let mut walked = TaskRun::new(ctx, msg, deadline);
            // With the deadline, a row whose walk must stop (the deadline, or a rate-limit wait past it) goes on
            // as a continuation of its own, keeping what it walked.
            let result = walk_page(&mut walked, page, path, PageWalk::start(page_id), 0).await;
            (walked, result)
        });
        for (walked, result) in futures::future::join_all(walks).await {
            run.buffer.absorb(walked.buffer).await?;
            run.outcome.api_calls += walked.outcome.api_calls;
            run.outcome.deleted += walked.outcome.deleted;
            result?;
        }
    }
    Ok(())
}

/// Walks a page (or the rest of it), writes its block documents, and either writes the page
/// document (walk finished) or hands the rest on. Returns this segment's text when suspended.
async fn walk_page(
    run: &mut TaskRun<'_>,
    page: &Value,
    path: &[String],
    frontier: Vec<FrontierEntry>,
    segment: u32,
) -> Result<Option<String>, SyncError> {
    let (ctx, msg, deadline) = (run.ctx, run.msg, run.deadline);
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
        let title = crate::sync::walk::truncate_chars(&title, crate::document::MAX_TITLE_CHARS).to_string();
        walk.text = [title, properties_text(page)].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n");
    }
    let end = walk.run(frontier, &mut run.buffer, deadline).await?;
    run.outcome.api_calls += walk.api_calls;
    if matches!(end, WalkEnd::Vanished) {
        vanished(run, page_id).await?;
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
                run.buffer.push(doc).await?;
            }
            if msg.run_kind != RunKind::Full {
                // Outside full runs nothing else removes the blocks deleted from a changed page.
                run.buffer.flush().await?;
                // Blocks of runs still open are kept: one may have walked the page after this walk.
                let open_runs = ctx.runs.active_run_ids().await?;
                run.outcome.deleted += ctx.store.delete_removed_blocks(page_id, msg.run_id, &open_runs).await?;
            }
            Ok(None)
        }
    }
}

//! Comment tasks: the comments of a page and its blocks (listed), and one comment a webhook names (fetched).

use serde_json::Value;

use crate::document::{to_document, Placement};
use crate::task::Task;

use super::enqueue::enqueue;
use super::TaskRun;
use crate::sync::{DocBuffer, SyncError};

/// Lists the comments of each block (the page's own id among them); the blocks left at the deadline go on as a
/// task of their own.
pub(super) async fn comments(run: &mut TaskRun<'_>, block_ids: &[String], page_id: &str) -> Result<(), SyncError> {
    let (ctx, msg) = (run.ctx, run.msg);
    'blocks: for (i, block_id) in block_ids.iter().enumerate() {
        // The deadline is checked between blocks (each one's comments are listed whole): the blocks left
        // go on as a task of their own.
        if i > 0 && run.past_deadline() {
            tracing::info!(left = block_ids.len() - i, "deadline near: handing the rest of the comments on");
            let rest = Task::Comments { block_ids: block_ids[i..].to_vec(), page_id: page_id.to_string() };
            enqueue(ctx, msg, vec![(format!("{}:r{i}", msg.task_id), rest)]).await?;
            break;
        }
        let mut cursor: Option<String> = None;
        loop {
            run.outcome.api_calls += 1;
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
                push_comment(msg.run_id, comment, page_id, &mut run.buffer).await?;
            }
            match (page.has_more, page.next_cursor) {
                (true, Some(next)) => cursor = Some(next),
                _ => break,
            }
        }
    }
    Ok(())
}

/// One comment a webhook names: indexed (with `index_comments`, and under a narrower selection only with its
/// page), or its document removed when Notion no longer has it.
pub(super) async fn comment(run: &mut TaskRun<'_>, comment_id: &str, page_id: &str) -> Result<(), SyncError> {
    let (ctx, msg) = (run.ctx, run.msg);
    if !ctx.config.index_comments {
        // Comments are indexed only with `index_comments` (a full sync would remove them again).
        tracing::debug!(comment_id, "comment event skipped: index_comments is off");
        run.outcome.skipped += 1;
        return Ok(());
    }
    let ids = [comment_id.to_string()];
    if crate::sync::scope::Selection::of(&ctx.config).is_some() && ctx.store.get(page_id).await?.is_none() {
        // Under a narrower selection a comment is indexed only with its page (a webhook names any comment).
        tracing::info!(comment_id, page_id, "comment on a page that is not indexed: skipped");
        run.outcome.deleted += ctx.store.delete_ids_of_run(&ids, msg.run_id).await?;
        run.outcome.skipped += 1;
        return Ok(());
    }
    run.outcome.api_calls += 1;
    match ctx.notion.get_comment(comment_id).await {
        Ok(comment) => push_comment(msg.run_id, &comment, page_id, &mut run.buffer).await?,
        Err(err) if err.is_not_found() => {
            run.outcome.deleted += ctx.store.delete_ids_of_run(&ids, msg.run_id).await?;
        }
        Err(err) => return Err(err.into()),
    }
    Ok(())
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

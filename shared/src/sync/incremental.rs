//! Incremental sync: only what changed since the last successful run. Search sorted by
//! `last_edited_time` descending, stopping once past the watermark less an overlap (Notion
//! rounds timestamps down to the minute, so an edit in the watermark's own minute must be seen).

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::document::{parent_id, title_of};
use crate::runs::RunRecord;
use crate::task::{FinalizeMessage, RunKind, Task, TaskMessage};

use super::planner::{breadcrumb, plan_full};
use super::{SyncContext, SyncError};

/// How far before the watermark the scan goes again. Notion timestamps have minute precision.
pub const OVERLAP: Duration = Duration::minutes(2);

pub async fn plan_incremental(ctx: &SyncContext, existing: Option<RunRecord>) -> Result<RunRecord, SyncError> {
    let Some(watermark) = last_watermark(ctx).await? else {
        tracing::info!("no successful run yet: the incremental sync runs as a full sync");
        if let Some(run) = existing {
            // The API recorded an incremental run; it is closed and a full run takes its place.
            ctx.runs.abort(run.id, "no earlier successful run: replaced by a full sync").await?;
            ctx.runs.close(run.id, crate::runs::RunState::Failed, 0).await?;
        }
        return plan_full(ctx, None).await;
    };
    let run = match existing {
        Some(run) => run,
        None => ctx.runs.create_run(RunKind::Incremental).await?,
    };
    let since = watermark - OVERLAP;
    tracing::info!(run_id = run.id, %watermark, "planning incremental sync");
    let result = async {
        super::planner::record_index_uuid(ctx, run.id).await?;
        let changes = changed_since(ctx, since).await?;
        ctx.runs.renew_lease(run.id, RunKind::Incremental, ctx.runs.leases().planning).await?;
        let new_watermark = changes.newest.unwrap_or(watermark);
        let messages: Vec<TaskMessage> = changes
            .tasks
            .into_iter()
            .map(|(id, task)| TaskMessage::new(run.id, RunKind::Incremental, id, task))
            .collect();
        for chunk in messages.chunks(500) {
            ctx.runs.tasks_queued(run.id, chunk).await?;
            ctx.queue.send_tasks(chunk).await?;
            ctx.runs.renew_lease(run.id, RunKind::Incremental, ctx.runs.leases().planning).await?;
        }
        ctx.runs.set_watermark(run.id, &new_watermark.to_rfc3339()).await?;
        Ok::<u64, SyncError>(messages.len() as u64)
    }
    .await;
    match result {
        Ok(planned) => {
            ctx.runs.renew_lease(run.id, RunKind::Incremental, ctx.runs.leases().running).await?;
            ctx.runs.planning_done(run.id, planned).await?;
            ctx.queue.send_finalize(&FinalizeMessage::new(run.id), ctx.limits.finalize_delay_seconds).await?;
            tracing::info!(run_id = run.id, planned, "planned");
            Ok(ctx.runs.get(run.id).await?.unwrap_or(run))
        }
        Err(err) => {
            super::planner::fail_planning(ctx, run.id, &err).await?;
            Err(err)
        }
    }
}

/// The newest watermark of a successful full or incremental run.
async fn last_watermark(ctx: &SyncContext) -> Result<Option<DateTime<Utc>>, SyncError> {
    let mut newest = None;
    for kind in [RunKind::Full, RunKind::Incremental] {
        if let Some(run) = ctx.runs.last_completed(kind).await? {
            let parsed = run.watermark.as_deref().and_then(|w| DateTime::parse_from_rfc3339(w).ok());
            newest = newest.max(parsed.map(|t| t.with_timezone(&Utc)));
        }
    }
    Ok(newest)
}

/// What changed: one task per changed page or row, one objects task for changed data sources.
pub struct Changes {
    pub tasks: Vec<(String, Task)>,
    /// The newest `last_edited_time` seen: the next watermark.
    pub newest: Option<DateTime<Utc>>,
    pub api_calls: u64,
}

pub async fn changed_since(ctx: &SyncContext, since: DateTime<Utc>) -> Result<Changes, SyncError> {
    let mut changes = Changes { tasks: Vec::new(), newest: None, api_calls: 0 };
    let mut objects = Vec::new();
    let mut found = Vec::new();
    let mut titles = std::collections::HashMap::new();
    let mut cursor: Option<String> = None;
    'pages: loop {
        let mut body = json!({"page_size": 100, "sort": {"timestamp": "last_edited_time", "direction": "descending"}});
        if let Some(c) = &cursor {
            body["start_cursor"] = json!(c);
        }
        changes.api_calls += 1;
        let page = ctx.notion.search(&body).await?;
        for object in page.results {
            let Some(edited) = edited_at(&object) else { continue };
            if edited < since {
                break 'pages;
            }
            changes.newest = changes.newest.max(Some(edited));
            if let Some(id) = object.get("id").and_then(Value::as_str) {
                titles.insert(id.to_string(), (title_of(&object), parent_id(&object)));
            }
            found.push(object);
        }
        match (page.has_more, page.next_cursor) {
            (true, Some(next)) => cursor = Some(next),
            _ => break,
        }
    }
    // Only what the configuration selects, as a full run would; what an older scope indexed of the rest goes.
    if let Some(selection) = super::scope::Selection::of(&ctx.config) {
        let (kept, out) = super::scope::partition(ctx, &selection, found, &mut changes.api_calls).await?;
        super::scope::remove_own(ctx, &out).await?;
        found = kept;
    }
    // Ancestors that did not change are not in `titles`: their titles come from the index.
    let parents: Vec<Option<String>> = found.iter().map(parent_id).collect();
    titles_from_index(ctx, &mut titles, parents).await;
    for object in found {
        let Some(id) = object.get("id").and_then(Value::as_str).map(str::to_string) else { continue };
        match object.get("object").and_then(Value::as_str) {
            Some("page") => {
                let path = breadcrumb(&titles, parent_id(&object));
                changes.tasks.push((format!("p:{id}"), Task::Page { page_id: id, page: Some(object), path }));
            }
            Some("data_source") | Some("database") if crate::task::embeddable(&object) => {
                let path = breadcrumb(&titles, parent_id(&object));
                objects.push((object, path));
            }
            // Too large to ride along: the worker fetches it (with its data sources).
            Some("data_source") | Some("database") => {
                let database = object.pointer("/parent/database_id").and_then(Value::as_str).unwrap_or(&id);
                let path = breadcrumb(&titles, parent_id(&object));
                let task = Task::Database { database_id: database.to_string(), path };
                changes.tasks.push((format!("database:{database}"), task));
            }
            _ => {}
        }
    }
    for (i, chunk) in super::planner::object_chunks(objects).into_iter().enumerate() {
        let (objects, paths) = chunk.into_iter().unzip();
        changes.tasks.push((format!("objects:{i}"), Task::Objects { objects, paths }));
    }
    Ok(changes)
}

pub fn edited_at(object: &Value) -> Option<DateTime<Utc>> {
    let text = object.get("last_edited_time")?.as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// Fills `titles` with the ancestors of `starts` that it lacks, from the documents earlier runs
/// indexed (pages, databases, data sources: what a full sync's breadcrumb is made of), so a page
/// re-indexed without its ancestors keeps its `path`. A failing lookup only shortens paths.
pub async fn titles_from_index(
    ctx: &SyncContext,
    titles: &mut std::collections::HashMap<String, (String, Option<String>)>,
    starts: impl IntoIterator<Item = Option<String>>,
) {
    let mut asked = std::collections::HashSet::new();
    let mut wanted: Vec<String> = starts.into_iter().flatten().collect();
    loop {
        wanted.retain(|id| !titles.contains_key(id) && asked.insert(id.clone()));
        if wanted.is_empty() {
            return;
        }
        let mut next = Vec::new();
        for chunk in wanted.chunks(1000) {
            let sources = match ctx.store.sources(chunk, &["title", "parent_id", "object"]).await {
                Ok(sources) => sources,
                Err(err) => {
                    tracing::warn!(error = %err, "ancestor titles not found in the index; paths may be shorter");
                    return;
                }
            };
            for (id, source) in sources {
                if !matches!(source.get("object").and_then(Value::as_str), Some("page" | "database" | "data_source")) {
                    continue;
                }
                let title = source.get("title").and_then(Value::as_str).unwrap_or_default().to_string();
                let parent =
                    source.get("parent_id").and_then(Value::as_str).filter(|p| !p.is_empty()).map(str::to_string);
                next.extend(parent.clone());
                titles.insert(id, (title, parent));
            }
        }
        wanted = next;
    }
}

/// The breadcrumb of an object whose ancestors are known only from the index (webhook tasks).
pub async fn path_from_index(ctx: &SyncContext, object: &Value) -> Vec<String> {
    let mut titles = std::collections::HashMap::new();
    titles_from_index(ctx, &mut titles, [parent_id(object)]).await;
    breadcrumb(&titles, parent_id(object))
}

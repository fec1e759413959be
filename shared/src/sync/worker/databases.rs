//! Database tasks: containers and data sources fetched by the planner (objects) or reached through the page tree
//! (a database), indexed, with their rows queries claimed.

use serde_json::Value;

use crate::document::{title_of, to_document, Placement};
use crate::task::{RowsCursor, RunKind, Task};

use super::enqueue::claim;
use super::pages::in_trash;
use super::TaskRun;
use crate::sync::scope;
use crate::sync::{DocBuffer, SyncError};

/// The objects task: databases and data sources the planner fetched, each indexed with its breadcrumb.
pub(super) async fn objects(run: &mut TaskRun<'_>, objects: &[Value], paths: &[Vec<String>]) -> Result<(), SyncError> {
    for (i, object) in objects.iter().enumerate() {
        let path = paths.get(i).map(Vec::as_slice).unwrap_or(&[]);
        push_object(run.msg.run_id, object, path, &mut run.buffer).await?;
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

/// A database search did not return, reached through a `child_database` block: index it and its data
/// sources, and claim their rows queries (each is synced once per run, however it was reached).
pub(super) async fn database(run: &mut TaskRun<'_>, database_id: &str, path: &[String]) -> Result<(), SyncError> {
    let (ctx, msg) = (run.ctx, run.msg);
    let outcome = &mut run.outcome;
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
    let selection = scope::Selection::of(&ctx.config).filter(|_| msg.run_kind != RunKind::Full);
    if let Some(selection) = selection {
        let (kept, mut out) = scope::partition(ctx, &selection, objects.clone(), &mut outcome.api_calls).await?;
        // The container goes with any of its sources.
        if !kept.is_empty() {
            out.retain(|id| id != database_id);
        }
        objects.retain(|o| o.get("id").and_then(Value::as_str).is_some_and(|id| !out.iter().any(|x| x == id)));
        outcome.deleted += scope::remove_own(ctx, &out).await?;
    }
    for object in &objects {
        let container = object.get("id").and_then(Value::as_str) == Some(database_id);
        push_object(msg.run_id, object, if container { path } else { &source_path }, &mut run.buffer).await?;
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

//! Stale removal that verifies before it deletes. Notion's search is not exhaustive, so a document a complete
//! full run did not see is not proof that its object is gone: each unseen page, database and data source is
//! checked with Notion (one paced call each) and removed only when Notion answers 404 or shows it in the
//! trash. One that still exists is kept and synced again in the same run (when the configuration selects
//! everything; with a narrower selection, an existing object the run did not reach is out of scope and goes).

use serde_json::Value;

use crate::runs::TaskOutcome;
use crate::task::{RowsCursor, Task, TaskMessage, VerifyTarget};

use super::worker::{claim, in_trash, push_object};
use super::{DocBuffer, SyncContext, SyncError};

/// Objects checked per verification task.
pub const VERIFY_BATCH: usize = 100;

/// The object classes whose unseen documents are verified; the rest (blocks, comments, users) belong to a
/// walk or a listing that the run completed, so the final sweep removes them.
pub const VERIFIED_OBJECTS: [&str; 3] = ["page", "database", "data_source"];

/// Whether the configuration selects the whole workspace: then every existing object is in scope.
pub fn selects_everything(ctx: &SyncContext) -> bool {
    let config = &ctx.config;
    config.pages.is_all() && config.databases.is_all() && config.sync_rules.advanced.is_none()
}

/// The data source (or 2022-06-28 database) a database row belongs to: its rows query says whether the run
/// reached it.
fn row_source(page: &Value) -> Option<&str> {
    let parent = page.get("parent")?;
    match parent.get("type").and_then(Value::as_str)? {
        "data_source_id" => parent.get("data_source_id").and_then(Value::as_str),
        "database_id" => parent.get("database_id").and_then(Value::as_str),
        _ => None,
    }
}

/// The verification tasks of a run's unseen objects, [`VERIFY_BATCH`] per task.
pub fn verify_tasks(targets: Vec<VerifyTarget>) -> Vec<(String, Task)> {
    targets
        .chunks(VERIFY_BATCH)
        .enumerate()
        .map(|(i, chunk)| (format!("verify:{i}"), Task::Verify { objects: chunk.to_vec() }))
        .collect()
}

/// Runs one verification task.
pub async fn verify(
    ctx: &SyncContext,
    msg: &TaskMessage,
    targets: &[VerifyTarget],
    buffer: &mut DocBuffer<'_>,
    outcome: &mut TaskOutcome,
) -> Result<(), SyncError> {
    let resync = selects_everything(ctx);
    let mut follow_ups = Vec::new();
    let mut kept = 0u64;
    for target in targets {
        outcome.api_calls += 1;
        let id = target.id.as_str();
        let fetched = match target.object.as_str() {
            "page" => ctx.notion.get_page(id).await,
            "database" => ctx.notion.get_database(id).await,
            "data_source" => ctx.notion.get_data_source(id).await,
            _ => continue,
        };
        let object = match fetched {
            Ok(object) if !in_trash(&object) => object,
            Ok(_) => {
                outcome.deleted += ctx.store.delete_page(id).await?;
                continue;
            }
            Err(err) if err.is_not_found() => {
                outcome.deleted += ctx.store.delete_page(id).await?;
                continue;
            }
            // Anything else is not a confirmation: the task fails (or is retried) and the run deletes nothing more.
            Err(err) => return Err(err.into()),
        };
        if !resync {
            tracing::info!(id, object = %target.object, "exists but outside the configured selection: removed");
            outcome.deleted += ctx.store.delete_page(id).await?;
            continue;
        }
        // Reached by this run yet not written (a basic rule excludes it now): its old document goes. Not reached
        // (search and the tree missed it): synced again.
        let reached_as = match target.object.as_str() {
            "page" => match row_source(&object) {
                Some(source) => format!("rows:{source}:0"),
                None => format!("p:{id}"),
            },
            "database" => format!("database:{id}"),
            _ => format!("rows:{id}:0"),
        };
        if ctx.runs.task(msg.run_id, &reached_as).await?.is_some() {
            // Only its own document: what it holds was walked (and written, or judged by the rules) this run.
            outcome.deleted += ctx.store.delete_ids_of_run(&[id.to_string()], msg.run_id).await?;
            continue;
        }
        kept += 1;
        let path = super::incremental::path_from_index(ctx, &object).await;
        match target.object.as_str() {
            "page" => {
                follow_ups.push((format!("p:{id}"), Task::Page { page_id: id.to_string(), page: Some(object), path }))
            }
            "database" => {
                follow_ups.push((format!("database:{id}"), Task::Database { database_id: id.to_string(), path }))
            }
            _ => {
                push_object(msg.run_id, &object, &path, buffer).await?;
                let mut rows_path = path;
                rows_path.push(crate::document::title_of(&object));
                let database_id = object.pointer("/parent/database_id").and_then(Value::as_str).map(str::to_string);
                let cursor = RowsCursor::start(id, database_id, None, rows_path);
                follow_ups.push((cursor.task_id(), Task::Rows(cursor)));
            }
        }
    }
    if kept > 0 {
        let warning = format!(
            "{kept} object(s) the run did not see (search is not exhaustive) still exist in Notion: kept and synced again"
        );
        ctx.runs.add_warning(msg.run_id, &warning, None).await?;
    }
    claim(ctx, msg, follow_ups).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_tasks_are_batched_with_stable_ids() {
        let targets: Vec<VerifyTarget> =
            (0..250).map(|i| VerifyTarget { id: format!("p{i}"), object: "page".into() }).collect();
        let tasks = verify_tasks(targets);
        assert_eq!(tasks.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["verify:0", "verify:1", "verify:2"]);
        let Task::Verify { objects } = &tasks[2].1 else { panic!() };
        assert_eq!(objects.len(), 50);
        assert_eq!(objects[0].id, "p200");
    }
}

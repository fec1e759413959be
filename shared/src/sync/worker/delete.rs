//! Delete events, checked with Notion before anything goes.

use serde_json::Value;

use crate::task::Task;

use super::enqueue::enqueue;
use super::pages::in_trash;
use super::TaskRun;
use crate::sync::SyncError;

/// A `page.deleted` / `database.deleted` / `data_source.deleted` event, checked with Notion first (events may be
/// late, reordered or forged): the documents go only when Notion answers 404 `object_not_found` or shows the
/// object in the trash. A live object is synced again instead (if in scope).
pub(super) async fn delete_checked(run: &mut TaskRun<'_>, id: &str) -> Result<(), SyncError> {
    let (ctx, msg) = (run.ctx, run.msg);
    let outcome = &mut run.outcome;
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

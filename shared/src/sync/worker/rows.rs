//! Rows tasks: a rows query paged through, each page of rows handed out as `Pages` tasks, and the pure parts: the
//! query body and where the next page starts (windowed by creation time past Notion's 10,000-row cap).

use serde_json::{json, Value};

use crate::task::{RowsCursor, RunKind, Task};

use super::enqueue::{enqueue, enqueue_after};
use super::TaskRun;
use crate::sync::{scope, SyncError};

/// Pages through a rows query, handing each page of rows out as a `Pages` task.
pub(super) async fn rows(run: &mut TaskRun<'_>, start: &RowsCursor) -> Result<(), SyncError> {
    let (ctx, msg) = (run.ctx, run.msg);
    let mut cursor = start.clone();
    // Outside full runs (a webhook, a database reached again) the query is narrowed to the rows in scope, once, at
    // its start: later pages carry the narrowed filter, and the further queries made here are narrowed already.
    let fresh = start.seq == 0 && start.query == 0 && start.start_cursor.is_none() && start.after_created.is_none();
    let selection = scope::Selection::of(&ctx.config).filter(|_| msg.run_kind != RunKind::Full && fresh);
    if let Some(selection) = selection {
        let source = start.source_id.as_str();
        let (scope, verdict) =
            scope::rows_scope(ctx, &selection, source, start.database_id.as_deref(), &mut run.outcome.api_calls)
                .await?;
        let filters = match scope {
            scope::RowsScope::All => vec![],
            scope::RowsScope::Matching(filters) => filters,
            scope::RowsScope::None => {
                tracing::info!(source, "rows of a source outside the configured scope: not indexed");
                if verdict == Some(scope::Verdict::Out) {
                    run.outcome.deleted += scope::remove_own(ctx, &[source.to_string()]).await?;
                }
                run.outcome.skipped += 1;
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
        run.outcome.api_calls += 1;
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
            Err(err) => match crate::sync::deadline_delay(&err) {
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
        if run.past_deadline() {
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

//! Task messages: the SQS bodies that carry one unit of work from the planner (or a worker, for
//! follow-ups) to a worker, and the finalize message that wakes the reaper.
//!
//! Versioned JSON (`"v": 1`). Every task is idempotent: running it twice writes the same documents
//! (same `_id`s, same content, same `sync_run`) and the same task record.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only message version this build understands. A message with another `v` is rejected with a
/// clear error (and so ends in the DLQ), never guessed at.
pub const TASK_VERSION: u32 = 1;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Full,
    Incremental,
    Webhook,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Full => "full",
            RunKind::Incremental => "incremental",
            RunKind::Webhook => "webhook",
        }
    }
}

/// One message on the work queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMessage {
    pub v: u32,
    /// Sync run id (see `runs::RunId`): zero-padded milliseconds, monotonic, so it sorts as text
    /// and as a number.
    pub run_id: u64,
    /// Unique within the run and stable across redeliveries; also the `_id` of the task record.
    pub task_id: String,
    pub run_kind: RunKind,
    pub task: Task,
}

/// The work itself. Objects the planner already holds (from search) travel inside the message, so
/// the worker does not fetch them again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Task {
    /// Index a page (or database row) and walk its whole block tree. `page` is the page object as
    /// search or a query returned it; when absent the worker fetches `GET /pages/{page_id}`.
    /// `path` is the breadcrumb of ancestor titles, outermost first.
    Page {
        page_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page: Option<Value>,
        #[serde(default)]
        path: Vec<String>,
    },
    /// The rest of a page's block tree, handed on by a worker that neared its timeout.
    Continuation(Continuation),
    /// The rows of a data source (2025-09-03+) or database (2022-06-28), from this cursor on. The
    /// worker pages through the query and hands the rows out as `Pages` tasks, so walking them
    /// runs in parallel; near its deadline it hands the rest of the query on as another `Rows`.
    Rows(RowsCursor),
    /// Pages to walk, already fetched (a page of query rows), all under one breadcrumb.
    Pages { pages: Vec<Value>, path: Vec<String> },
    /// Index already-fetched objects that need no more API calls (databases, data sources).
    Objects {
        objects: Vec<Value>,
        #[serde(default)]
        paths: Vec<Vec<String>>,
    },
    /// The person users of the workspace.
    Users,
    /// Unresolved comments on these pages / blocks (only when `index_comments` is on).
    Comments { block_ids: Vec<String>, page_id: String },
    /// Remove a page and everything that belongs to it (webhook `page.deleted`).
    DeletePage { page_id: String },
    /// Re-read one comment (webhook `comment.*`).
    Comment { comment_id: String, page_id: String },
    /// A database reached through a `child_database` block that search did not return: fetch it, index it
    /// and its data sources, and sync their rows.
    Database {
        database_id: String,
        #[serde(default)]
        path: Vec<String>,
    },
    /// Objects a complete full run did not see: each is removed only when Notion confirms it gone (404, or in
    /// the trash); one that still exists is kept and synced again.
    Verify { objects: Vec<VerifyTarget> },
}

/// An indexed object to check with Notion: its id and `object` (`page`, `database`, `data_source`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyTarget {
    pub id: String,
    pub object: String,
}

/// Where a rows query stands. `after_created` and `skip_ids` implement the 10,000-row-cap window:
/// once a query reports `query_result_limit_reached`, the next window starts at the last row's
/// `created_time` (minute precision) and skips the ids already seen in that minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowsCursor {
    /// A data source id (2025-09-03+) or a database id (2022-06-28).
    pub source_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_created: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_ids: Vec<String>,
    /// Notion filter from an advanced `database_query_filters` rule, passed through unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    /// Breadcrumb of the data source (rows are its children).
    #[serde(default)]
    pub path: Vec<String>,
    /// Sequence number of this query page within the source, for stable follow-up task ids.
    #[serde(default)]
    pub seq: u32,
    /// Which of the source's queries this is, when its rules needed several (Notion's filter nesting limit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub query: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl RowsCursor {
    /// The first page of a source's rows query (`filter` narrows it).
    pub fn start(source_id: &str, database_id: Option<String>, filter: Option<Value>, path: Vec<String>) -> Self {
        RowsCursor {
            source_id: source_id.to_string(),
            database_id,
            start_cursor: None,
            after_created: None,
            skip_ids: vec![],
            filter,
            path,
            seq: 0,
            query: 0,
        }
    }

    /// The task id of this query page: `rows:{source}:{seq}` (`rows:{source}:q{query}:{seq}` for a source's
    /// further queries).
    pub fn task_id(&self) -> String {
        match self.query {
            0 => format!("rows:{}:{}", self.source_id, self.seq),
            q => format!("rows:{}:q{q}:{}", self.source_id, self.seq),
        }
    }
}

/// A depth-first frontier: the blocks still to list, each with the cursor to resume from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Continuation {
    pub page_id: String,
    /// The page object, carried along so the last segment can write the page document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Value>,
    #[serde(default)]
    pub path: Vec<String>,
    /// Segment number: 1 for the first continuation of a page walk, and so on.
    pub segment: u32,
    pub frontier: Vec<FrontierEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontierEntry {
    pub block_id: String,
    /// The cursor of the children page being read (none = the first page)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// ...and how many of its results were already handled.
    #[serde(default)]
    pub skip: u32,
    pub depth: u32,
    /// Set for the children of a synced-block reference: their text goes into the page body but
    /// they are indexed under the original block's page, not here.
    #[serde(default)]
    pub text_only: bool,
}

/// The delayed message that asks the reaper to close a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalizeMessage {
    pub v: u32,
    pub run_id: u64,
    /// How many times the reaper has already found the run unfinished.
    #[serde(default)]
    pub checks: u32,
    /// Names this finalize chain (kept when the reaper re-delays it, and by SQS redeliveries): of the chains of
    /// one run (the planner's, and a worker's that saw the run complete) only the one that claims the run closes it.
    #[serde(default)]
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message body is not valid task JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported message version {found} (this build understands {TASK_VERSION})")]
    Version { found: u32 },
}

/// Notion objects larger than this (serialized) travel by id only and the worker fetches them: whatever a
/// workspace holds (200,000-character titles, rows with hundreds of properties), a message stays far below
/// SQS's 1 MiB per message and per batch.
pub const MAX_EMBEDDED_OBJECT: usize = 96 * 1024;
/// Breadcrumbs in messages: at most this many crumbs (the outermost and the innermost are kept)...
pub const MAX_PATH_CRUMBS: usize = 32;
/// ...of at most this many bytes each.
pub const MAX_CRUMB_BYTES: usize = 512;

/// Whether the object is small enough to ride along in a message.
pub fn embeddable(object: &Value) -> bool {
    crate::queue::fits_in_message(object, MAX_EMBEDDED_OBJECT)
}

/// A breadcrumb bounded for messages and documents (see [`MAX_PATH_CRUMBS`]).
pub fn bounded_path(path: &[String]) -> Vec<String> {
    let crumb = |c: &String| crate::runs::truncate(c, MAX_CRUMB_BYTES);
    if path.len() <= MAX_PATH_CRUMBS {
        return path.iter().map(crumb).collect();
    }
    let head = MAX_PATH_CRUMBS / 4;
    let tail = MAX_PATH_CRUMBS - head - 1;
    path[..head]
        .iter()
        .map(crumb)
        .chain(std::iter::once("…".to_string()))
        .chain(path[path.len() - tail..].iter().map(crumb))
        .collect()
}

impl Task {
    /// Keeps the task small whatever Notion returned: breadcrumbs bounded, oversized objects left for the
    /// worker to fetch.
    fn bound(&mut self) {
        let bound_object = |object: &mut Option<Value>| {
            if object.as_ref().is_some_and(|o| !embeddable(o)) {
                *object = None;
            }
        };
        match self {
            Task::Page { page, path, .. } => {
                bound_object(page);
                *path = bounded_path(path);
            }
            Task::Continuation(c) => {
                bound_object(&mut c.page);
                c.path = bounded_path(&c.path);
            }
            Task::Rows(cursor) => cursor.path = bounded_path(&cursor.path),
            Task::Pages { path, .. } | Task::Database { path, .. } => *path = bounded_path(path),
            Task::Objects { paths, .. } => paths.iter_mut().for_each(|p| *p = bounded_path(p)),
            Task::Users
            | Task::Comments { .. }
            | Task::DeletePage { .. }
            | Task::Comment { .. }
            | Task::Verify { .. } => {}
        }
    }
}

impl TaskMessage {
    pub fn new(run_id: u64, run_kind: RunKind, task_id: impl Into<String>, mut task: Task) -> Self {
        task.bound();
        TaskMessage { v: TASK_VERSION, run_id, task_id: task_id.into(), run_kind, task }
    }

    /// Decodes an SQS body; the version is checked before the rest so an unknown version is
    /// reported as such rather than as a shape error.
    pub fn decode(body: &str) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct Head {
            v: u32,
        }
        let head: Head = serde_json::from_str(body)?;
        if head.v != TASK_VERSION {
            return Err(DecodeError::Version { found: head.v });
        }
        Ok(serde_json::from_str(body)?)
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("task messages always serialize")
    }
}

impl FinalizeMessage {
    pub fn new(run_id: u64) -> Self {
        FinalizeMessage { v: TASK_VERSION, run_id, checks: 0, token: format!("{:016x}", rand::random::<u64>()) }
    }

    pub fn decode(body: &str) -> Result<Self, DecodeError> {
        let msg: FinalizeMessage = serde_json::from_str(body)?;
        if msg.v != TASK_VERSION {
            return Err(DecodeError::Version { found: msg.v });
        }
        Ok(msg)
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("finalize messages always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_finalize_chain_has_its_own_token_and_keeps_it() {
        let (a, b) = (FinalizeMessage::new(7), FinalizeMessage::new(7));
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 16);
        assert_eq!(FinalizeMessage::decode(&a.encode()).unwrap().token, a.token);
    }

    #[test]
    fn page_task_round_trips() {
        let msg = TaskMessage::new(
            1_732_000_000_000,
            RunKind::Full,
            "p:abc",
            Task::Page { page_id: "abc".into(), page: Some(json!({"id": "abc"})), path: vec!["Home".into()] },
        );
        let body = msg.encode();
        assert!(body.contains(r#""type":"page""#), "{body}");
        assert_eq!(TaskMessage::decode(&body).unwrap(), msg);
    }

    #[test]
    fn messages_stay_small_whatever_notion_holds() {
        let title = "t".repeat(200_000);
        let page = json!({"object": "page", "id": "p", "properties": {"title": {"title": [{"plain_text": title}]}}});
        let path: Vec<String> = (0..100).map(|i| format!("{i}{}", "x".repeat(5000))).collect();
        let msg = TaskMessage::new(1, RunKind::Full, "p:p", Task::Page { page_id: "p".into(), page: Some(page), path });
        let Task::Page { page, path, .. } = &msg.task else { panic!() };
        assert!(page.is_none(), "a 200,000-character title travels by id");
        assert_eq!(path.len(), MAX_PATH_CRUMBS);
        assert!(
            path[0].starts_with('0') && path[MAX_PATH_CRUMBS - 1].starts_with("99"),
            "outermost and innermost kept"
        );
        assert!(msg.encode().len() < 32 * 1024, "{}", msg.encode().len());
        let small = json!({"object": "page", "id": "q"});
        let msg = TaskMessage::new(
            1,
            RunKind::Full,
            "p:q",
            Task::Page { page_id: "q".into(), page: Some(small), path: vec![] },
        );
        assert!(matches!(&msg.task, Task::Page { page: Some(_), .. }));
        assert_eq!(bounded_path(&["é".repeat(600)])[0].len(), MAX_CRUMB_BYTES + "…".len());
    }

    #[test]
    fn unknown_version_is_named() {
        let err = TaskMessage::decode(r#"{"v":7,"run_id":1,"task_id":"x","run_kind":"full","task":{"type":"users"}}"#)
            .unwrap_err();
        assert_eq!(err.to_string(), "unsupported message version 7 (this build understands 1)");
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for body in [
            "",
            "{",
            "null",
            "[]",
            r#"{"v":"1"}"#,
            r#"{"v":1}"#,
            r#"{"v":1,"run_id":1,"task_id":"x","run_kind":"full","task":{"type":"nope"}}"#,
        ] {
            assert!(TaskMessage::decode(body).is_err(), "{body} decoded");
        }
    }
}

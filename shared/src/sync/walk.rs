//! Depth-first walk of a page's block tree: every block becomes a document, the page's text is
//! gathered in reading order, and the walk can stop at a deadline and resume from a frontier.

use std::collections::VecDeque;
use std::time::Instant;

use serde_json::Value;

use crate::document::{block_text, to_document, Placement};
use crate::extract::download::OUT_OF_TIME;
use crate::notion::NotionError;
use crate::task::FrontierEntry;

use super::{DocBuffer, SyncContext, SyncError};

/// A page's body is bounded so one enormous page cannot exhaust the worker or the index.
pub const MAX_PAGE_TEXT: usize = 4 * 1024 * 1024;

/// How much of one file's extracted text goes into its page's body (the block keeps it all).
pub const MAX_FILE_TEXT_IN_PAGE: usize = 64 * 1024;

fn join_lines(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a.to_string(),
        (true, false) => b.to_string(),
        (false, false) => format!("{a}\n{b}"),
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub fn truncate_chars(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One level of the depth-first stack: a block whose children are being read.
struct Frame {
    block_id: String,
    depth: u32,
    text_only: bool,
    /// Cursor of the page of children held in `items` (none = first page).
    cursor: Option<String>,
    /// How many of that page's results were handled before it was loaded (resuming).
    skip: u32,
    loaded: bool,
    consumed: u32,
    items: VecDeque<Value>,
    next_cursor: Option<String>,
}

impl Frame {
    fn new(entry: FrontierEntry) -> Self {
        Frame {
            block_id: entry.block_id,
            depth: entry.depth,
            text_only: entry.text_only,
            cursor: entry.cursor,
            skip: entry.skip,
            loaded: false,
            consumed: 0,
            items: VecDeque::new(),
            next_cursor: None,
        }
    }

    fn to_entry(&self) -> FrontierEntry {
        FrontierEntry {
            block_id: self.block_id.clone(),
            cursor: self.cursor.clone(),
            skip: if self.loaded { self.skip + self.consumed } else { self.skip },
            depth: self.depth,
            text_only: self.text_only,
        }
    }
}

/// What visiting one block gave.
enum Visit {
    /// Indexed, with its children's frontier entry when they are to be walked.
    Done(Option<FrontierEntry>),
    /// Its file ran out of the invocation's time: hand the walk on from this block.
    OutOfTime,
}

/// How a walk ended.
pub enum WalkEnd {
    Finished,
    /// The deadline came first (or a rate-limit wait would pass it, then after `delay_seconds`): the rest of the
    /// tree, to be handed on as a continuation.
    Suspended {
        frontier: Vec<FrontierEntry>,
        delay_seconds: u32,
    },
    /// The page itself answered 404: it was deleted or unshared since it was listed.
    Vanished,
}

/// An object a walk reached through a `child_page` / `child_database` block: it is synced in this run
/// whether or not search returned it (search is not exhaustive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovered {
    Page(String),
    Database(String),
}

/// Walks one page. `text` accumulates the page's text (title and properties are added by the
/// caller); `buffer` receives block documents as they are produced.
pub struct PageWalk<'a> {
    pub ctx: &'a SyncContext,
    pub run_id: u64,
    pub page_id: &'a str,
    pub page_url: Option<&'a str>,
    /// Breadcrumb for the page's blocks: the page's path plus its own title.
    pub block_path: &'a [String],
    pub text: String,
    pub api_calls: u64,
    /// Ids of the blocks indexed, kept when comments are indexed (each may carry comments).
    pub block_ids: Vec<String>,
    /// Child pages and databases reached, in order (only when discovery through the tree is on).
    pub discovered: Vec<Discovered>,
}

impl<'a> PageWalk<'a> {
    /// The frontier of a fresh walk: the page's own children.
    pub fn start(page_id: &str) -> Vec<FrontierEntry> {
        vec![FrontierEntry { block_id: page_id.to_string(), cursor: None, skip: 0, depth: 0, text_only: false }]
    }

    pub async fn run(
        &mut self,
        frontier: Vec<FrontierEntry>,
        buffer: &mut DocBuffer<'_>,
        deadline: Option<Instant>,
    ) -> Result<WalkEnd, SyncError> {
        // The frontier is stored outermost first; the stack's top is its last entry.
        let mut stack: Vec<Frame> = frontier.into_iter().map(Frame::new).collect();
        // Blocks visited in this segment: one at least before handing on (a segment that only listed children would
        // list them again next time, and never end). So a file that is the segment's first block may take all the
        // time left, and is indexed without text if even that is not enough; a later one that the deadline cuts
        // short is handed on, to be the first block of the next segment.
        let mut visited = 0u32;
        let past = |deadline: Option<Instant>| deadline.is_some_and(|d| Instant::now() >= d);
        while let Some(top) = stack.last_mut() {
            if !top.loaded {
                // Every segment makes progress (at least one call) before it may hand on.
                if self.api_calls > 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                    let frontier = stack.iter().map(Frame::to_entry).collect();
                    return Ok(WalkEnd::Suspended { frontier, delay_seconds: 0 });
                }
                self.api_calls += 1;
                match self.ctx.notion.list_children(&top.block_id, top.cursor.as_deref()).await {
                    Ok(page) => {
                        top.items = page.results.into_iter().skip(top.skip as usize).collect();
                        top.next_cursor = if page.has_more { page.next_cursor } else { None };
                        top.loaded = true;
                    }
                    // A block reached through the tree may have been deleted or unshared since
                    // its parent was listed, or be of a type whose children the API refuses
                    // (`ai_block`: 400 validation_error): skip it, as the Elastic connector does.
                    // The page itself (depth 0) failing is an error for the caller.
                    Err(err) if top.depth > 0 && (err.is_not_found() || err.code() == Some("validation_error")) => {
                        tracing::warn!(block_id = %top.block_id, page_id = %self.page_id, error = %err, "block children unreadable; skipped");
                        buffer.note_error(format!("children of block {} skipped: {err}", top.block_id));
                        stack.pop();
                        continue;
                    }
                    Err(err) if top.depth == 0 && err.is_not_found() => return Ok(WalkEnd::Vanished),
                    Err(err) => match super::deadline_delay(&err) {
                        // A rate-limit wait that would pass the invocation's deadline: hand the rest on,
                        // to start after the wait, instead of sleeping until the invocation is killed.
                        Some(delay_seconds) => {
                            let frontier = stack.iter().map(Frame::to_entry).collect();
                            return Ok(WalkEnd::Suspended { frontier, delay_seconds });
                        }
                        None => return Err(err.into()),
                    },
                }
            }
            if !top.items.is_empty() {
                // Between blocks too (a file download may have used the time): the rest is handed on.
                if visited > 0 && past(deadline) {
                    let frontier = stack.iter().map(Frame::to_entry).collect();
                    return Ok(WalkEnd::Suspended { frontier, delay_seconds: 0 });
                }
                let Some(block) = top.items.pop_front() else { continue };
                let (depth, text_only) = (top.depth, top.text_only);
                match self.visit(&block, depth, text_only, visited > 0, buffer).await? {
                    Visit::OutOfTime => {
                        // Not consumed: the continuation starts with it.
                        top.items.push_front(block);
                        let frontier = stack.iter().map(Frame::to_entry).collect();
                        return Ok(WalkEnd::Suspended { frontier, delay_seconds: 0 });
                    }
                    Visit::Done(child) => {
                        visited += 1;
                        let top = stack.last_mut().expect("the frame visited");
                        top.consumed += 1;
                        if let Some(child) = child {
                            stack.push(Frame::new(child));
                        }
                    }
                }
            } else if let Some(next) = top.next_cursor.take() {
                top.cursor = Some(next);
                top.skip = 0;
                top.consumed = 0;
                top.loaded = false;
            } else {
                stack.pop();
            }
        }
        Ok(WalkEnd::Finished)
    }

    /// Indexes one block, adds its text to the page, and says whether to descend into it. With `may_hand_on`, a
    /// file whose download or extraction the deadline cut short leaves the block untouched (`Visit::OutOfTime`).
    async fn visit(
        &mut self,
        block: &Value,
        depth: u32,
        text_only: bool,
        may_hand_on: bool,
        buffer: &mut DocBuffer<'_>,
    ) -> Result<Visit, SyncError> {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or_default();
        let Some(id) = block.get("id").and_then(Value::as_str) else {
            tracing::warn!(page_id = %self.page_id, "block without id skipped");
            buffer.malformed += 1;
            return Ok(Visit::Done(None));
        };
        let mut text = block_text(block);
        let mut attachment = None;
        if !text_only && matches!(kind, "file" | "pdf") {
            let Some((extracted, fields)) = self.file_text(block, id, &text, may_hand_on, buffer).await else {
                tracing::info!(block_id = id, page_id = %self.page_id, "file cut short by the deadline: handed on");
                return Ok(Visit::OutOfTime);
            };
            // The block's body holds the whole file text; the page's body a bounded share of it.
            let share = truncate_chars(&extracted, MAX_FILE_TEXT_IN_PAGE);
            self.push_text(&join_lines(&text, share));
            text = join_lines(&text, &extracted);
            attachment = Some(fields);
        } else {
            self.push_text(&text);
        }
        // Child pages and databases are their own objects (walked by their own tasks, under
        // the same id), so their blocks are neither indexed here nor descended into.
        let own_object = matches!(kind, "child_page" | "child_database");
        let config = &self.ctx.config;
        if own_object && config.sync_rules.advanced.is_none() {
            // Advanced rules select exactly what their searches return; otherwise what lies below a synced page
            // is in scope, found through the tree as well as by search, except databases when only listed
            // databases are selected.
            let id = id.to_string();
            if kind == "child_page" {
                self.discovered.push(Discovered::Page(id));
            } else if config.databases.is_all() || !config.pages.is_all() {
                self.discovered.push(Discovered::Database(id));
            }
        }
        if !text_only && !own_object {
            let placement = Placement { page_id: Some(self.page_id), page_url: self.page_url, path: self.block_path };
            if self.ctx.config.index_comments {
                self.block_ids.push(id.to_string());
            }
            if let Some(mut doc) = to_document(block, &placement, text, self.run_id) {
                if let Some(fields) = attachment {
                    doc.source.insert("attachment".into(), fields);
                }
                buffer.push(doc).await?;
            }
        }
        let has_children = block.get("has_children").and_then(Value::as_bool).unwrap_or(false);
        if !has_children || own_object {
            return Ok(Visit::Done(None));
        }
        // A synced-block reference lists the original's children: their text shows on this
        // page, but their documents belong to the original's page.
        let reference =
            kind == "synced_block" && block.pointer("/synced_block/synced_from").is_some_and(|v| !v.is_null());
        let child = FrontierEntry {
            block_id: id.to_string(),
            cursor: None,
            skip: 0,
            depth: depth + 1,
            text_only: text_only || reference,
        };
        Ok(Visit::Done(Some(child)))
    }

    /// Downloads a `file`/`pdf` block's file and extracts its text; an expired signed URL is refreshed once by
    /// re-reading the block. A failure is counted and noted and the block is still indexed, without text: it never
    /// fails the task. After a transient failure (network, timeout, 429, time ran out), the text an earlier sync
    /// indexed for the block is kept rather than wiped (review L2). With `may_hand_on`, a file cut short by the
    /// task's deadline gives `None` (nothing noted): the walk hands it on to its continuation. Returns the file's
    /// text and the block's `attachment` fields.
    async fn file_text(
        &self,
        block: &Value,
        id: &str,
        caption: &str,
        may_hand_on: bool,
        buffer: &mut DocBuffer<'_>,
    ) -> Option<(String, Value)> {
        let ctx = self.ctx;
        let name = crate::extract::file_block_info(block).and_then(|info| info.name);
        let outcome = ctx
            .downloader
            .fetch_block(block, || async {
                tracing::info!(block_id = id, "file URL expired; re-reading the block");
                ctx.notion.get_block(id).await.ok()
            })
            .await;
        if may_hand_on && outcome.error_code == Some(OUT_OF_TIME) {
            return None;
        }
        let mut text = outcome.text().to_string();
        let mut fields = outcome.file_fields(name.as_deref());
        if let Some(error) = &outcome.error {
            buffer.file_errors += 1;
            buffer.note_error(format!("file in block {id}: {error}"));
            if outcome.is_transient() {
                if let Some((earlier, mut earlier_fields)) = self.earlier_file_text(id, caption).await {
                    tracing::info!(block_id = id, %error, "file unavailable for now: its earlier text is kept");
                    earlier_fields
                        .insert("error".into(), Value::from(format!("{error} (text of an earlier sync kept)")));
                    text = earlier;
                    fields = Value::Object(earlier_fields);
                }
            }
        }
        Some((text, fields))
    }

    /// The file text and `attachment` fields indexed for block `id` by an earlier sync, when it had text.
    async fn earlier_file_text(&self, id: &str, caption: &str) -> Option<(String, serde_json::Map<String, Value>)> {
        let doc = self.ctx.store.get(id).await.ok()??;
        let fields = doc.get("attachment")?.as_object()?.clone();
        if fields.get("extracted").and_then(Value::as_bool) != Some(true) {
            return None;
        }
        let body = doc.get("body")?.as_str()?;
        // The block's body is its caption, then the file's text.
        let text = body.strip_prefix(caption).map_or(body, str::trim_start);
        (!text.is_empty()).then(|| (text.to_string(), fields))
    }

    fn push_text(&mut self, text: &str) {
        if text.is_empty() || self.text.len() >= MAX_PAGE_TEXT {
            return;
        }
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        let room = MAX_PAGE_TEXT.saturating_sub(self.text.len());
        self.text.push_str(truncate_chars(text, room));
    }
}

impl From<NotionError> for SyncError {
    fn from(err: NotionError) -> Self {
        SyncError::Notion(err)
    }
}

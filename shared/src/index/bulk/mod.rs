//! Bulk indexing in parts, all pure: the encoder (action line + document), batching by count and
//! bytes, and the decision of which items of a `_bulk` response to retry.
//!
//! A 2xx `_bulk` response is not success: every item is read. 429/5xx items (and the engine's
//! rejected-execution errors) are retried with backoff; other 4xx items are final failures of that
//! one document only.
//!
//! Content documents are written in run order: an operation of run `r` carries `version = r`,
//! `version_type = external_gte` ([`Versioned`]), so a newer run's document is never replaced (nor
//! deleted by id) by an older run's late write; the engine answers such an item with a version
//! conflict, which counts as skipped. Documents written before (internal versions 1, 2, ...) are
//! far below any run id, a millisecond timestamp, so they are simply overwritten.

use std::ops::Range;

use serde::Serialize;
use serde_json::{Map, Value};

/// The bulk operations this crate sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkOp {
    /// Create or replace.
    Index,
    /// Create only; an existing document is left alone (409 counts as done).
    Create,
    /// Delete; an absent document counts as done.
    Delete,
}

impl BulkOp {
    fn name(self) -> &'static str {
        match self {
            BulkOp::Index => "index",
            BulkOp::Create => "create",
            BulkOp::Delete => "delete",
        }
    }
}

/// Limits of one `_bulk` request.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkLimits {
    /// Most documents per request.
    pub max_docs: usize,
    /// Most bytes per request body (a single larger document still goes, alone).
    pub max_bytes: usize,
    /// Requests in flight at once for one `bulk_index` call.
    pub concurrency: usize,
}

impl Default for BulkLimits {
    fn default() -> Self {
        BulkLimits { max_docs: 500, max_bytes: 5 * 1024 * 1024, concurrency: 2 }
    }
}

/// A document the engine refused for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedDoc {
    pub id: String,
    /// The item's HTTP status (e.g. 400 for a mapping error; 429 if retries ran out).
    pub status: u16,
    /// `type: reason`, with the root cause when the engine gives one.
    pub reason: String,
}

/// What a bulk call did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BulkReport {
    /// Documents written (for deletions: operations applied, absent documents included).
    pub indexed: u64,
    /// Versioned operations the engine declined because a newer run already wrote the document.
    pub skipped: u64,
    pub failed: Vec<FailedDoc>,
    /// Item sends beyond the first (429/5xx items sent again).
    pub retried_items: u64,
    /// `_bulk` requests that got an answer.
    pub requests: u64,
}

impl BulkReport {
    pub fn merge(&mut self, other: BulkReport) {
        self.indexed += other.indexed;
        self.skipped += other.skipped;
        self.failed.extend(other.failed);
        self.retried_items += other.retried_items;
        self.requests += other.requests;
    }
}

/// The action line of one operation, newline included: `{"index":{"_id":"abc"}}\n`. The index
/// is in the request path, so it is not repeated here.
pub fn encode_action(op: BulkOp, id: &str) -> Vec<u8> {
    encode_versioned_action(op, id, None)
}

/// An operation written in run order: `version` is the run id, compared with `external_gte`, so
/// the same run may write again and a newer run may replace it, an older run may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versioned(pub u64);

/// [`encode_action`] with `"version": run, "version_type": "external_gte"` when `version` is given.
pub fn encode_versioned_action(op: BulkOp, id: &str, version: Option<Versioned>) -> Vec<u8> {
    let mut meta = Map::new();
    meta.insert("_id".into(), Value::String(id.to_string()));
    if let Some(Versioned(run)) = version {
        meta.insert("version".into(), Value::from(run));
        meta.insert("version_type".into(), Value::String("external_gte".into()));
    }
    let mut action = Map::new();
    action.insert(op.name().into(), Value::Object(meta));
    let mut out = serde_json::to_vec(&action).unwrap_or_default();
    out.push(b'\n');
    out
}

/// One `index` (or `create`) operation: action line, then the source on one line.
pub fn encode_source(op: BulkOp, id: &str, source: &impl Serialize) -> Result<Vec<u8>, serde_json::Error> {
    encode_versioned_source(op, id, None, source)
}

/// [`encode_source`] with a run-order version (see [`Versioned`]).
pub fn encode_versioned_source(
    op: BulkOp,
    id: &str,
    version: Option<Versioned>,
    source: &impl Serialize,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = encode_versioned_action(op, id, version);
    serde_json::to_writer(&mut out, source)?;
    out.push(b'\n');
    Ok(out)
}

/// Splits encoded operations (given by their sizes in bytes) into consecutive batches of at most
/// `max_docs` operations and, unless a single operation is larger, at most `max_bytes`.
pub fn plan_batches(sizes: &[usize], limits: &BulkLimits) -> Vec<Range<usize>> {
    let max_docs = limits.max_docs.max(1);
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let count = i - start;
        if count > 0 && (count >= max_docs || bytes + size > limits.max_bytes) {
            batches.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        batches.push(start..sizes.len());
    }
    batches
}

/// Halves a request the engine refused as too large (HTTP 413: its `http.max_content_length`, or
/// a proxy's limit, is below our byte budget), so the operations that fit still go and only an
/// operation too large on its own fails. `None` for a single operation: it cannot be split.
pub fn split_refused(pending: &[usize]) -> Option<(Vec<usize>, Vec<usize>)> {
    if pending.len() < 2 {
        return None;
    }
    let (first, second) = pending.split_at(pending.len() / 2);
    Some((first.to_vec(), second.to_vec()))
}

/// One item of a `_bulk` response, reduced to what decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemResult {
    pub id: String,
    pub status: u16,
    /// `result` of a successful item (`created`, `updated`, `deleted`, `not_found`, `noop`).
    pub result: Option<String>,
    pub error_type: Option<String>,
    pub reason: Option<String>,
}

/// What to do with one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemDecision {
    Done,
    /// A versioned operation a newer run's document refused: nothing to do, not a failure.
    Skipped,
    Retry,
    Fail,
}

/// Error types that mean "overloaded or not ready, try again" whatever their status.
const TRANSIENT_TYPES: &[&str] = &[
    "es_rejected_execution_exception",
    "rejected_execution_exception",
    "opensearch_rejected_execution_exception",
    "circuit_breaking_exception",
    "unavailable_shards_exception",
    "no_shard_available_action_exception",
    "cluster_block_exception",
    "process_cluster_event_timeout_exception",
];

/// The retry decision for one item.
pub fn decide_item(op: BulkOp, status: u16, error_type: Option<&str>) -> ItemDecision {
    if (200..300).contains(&status) {
        return ItemDecision::Done;
    }
    match (op, status) {
        (BulkOp::Delete, 404) => return ItemDecision::Done,
        (BulkOp::Create, 409) => return ItemDecision::Done,
        (BulkOp::Index | BulkOp::Delete, 409) if error_type == Some("version_conflict_engine_exception") => {
            return ItemDecision::Skipped
        }
        _ => {}
    }
    if status == 429 || status >= 500 || error_type.is_some_and(|t| TRANSIENT_TYPES.contains(&t)) {
        ItemDecision::Retry
    } else {
        ItemDecision::Fail
    }
}

/// Reads the items of a `_bulk` response. Each item is `{"<op>": {"_id", "status", "result"?,
/// "error"?}}`.
pub fn parse_items(response: &Value) -> Result<Vec<ItemResult>, String> {
    let items = response.get("items").and_then(Value::as_array).ok_or("no items array")?;
    items
        .iter()
        .map(|item| {
            let inner = item.as_object().and_then(|o| o.values().next()).ok_or("item is not an object")?;
            let status = inner.get("status").and_then(Value::as_u64).ok_or("item without status")?;
            let error = inner.get("error");
            Ok(ItemResult {
                id: inner.get("_id").and_then(Value::as_str).unwrap_or_default().to_string(),
                status: u16::try_from(status).unwrap_or(u16::MAX),
                result: inner.get("result").and_then(Value::as_str).map(str::to_string),
                error_type: error.and_then(|e| e.get("type")).and_then(Value::as_str).map(str::to_string),
                reason: error.map(error_reason),
            })
        })
        .collect()
}

/// `type: reason (caused by: type: reason)` from an engine error object (or a plain string).
pub fn error_reason(error: &Value) -> String {
    if let Some(text) = error.as_str() {
        return text.to_string();
    }
    let part = |e: &Value| {
        let ty = e.get("type").and_then(Value::as_str).unwrap_or("error");
        let reason = e.get("reason").and_then(Value::as_str).unwrap_or("");
        format!("{ty}: {reason}")
    };
    match error.get("caused_by") {
        Some(cause) => format!("{} (caused by {})", part(error), part(cause)),
        None => part(error),
    }
}

/// The verdict on one response: which of the sent operations are done, to retry, or failed.
/// `sent[i]` is the caller's index of the operation in position `i` of the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemPlan {
    pub done: Vec<usize>,
    /// Of `done`, deletions that found their document (`result: deleted`).
    pub deleted: u64,
    /// Versioned operations a newer run's document refused (not in `done`).
    pub skipped: Vec<usize>,
    pub retry: Vec<(usize, u16, String)>,
    pub failed: Vec<(usize, u16, String)>,
}

/// Decides every item of a `_bulk` response (the pure core of the retry loop).
pub fn plan_items(op: BulkOp, response: &Value, sent: &[usize]) -> Result<ItemPlan, String> {
    let items = parse_items(response)?;
    if items.len() != sent.len() {
        return Err(format!("{} items for {} operations", items.len(), sent.len()));
    }
    let mut plan = ItemPlan::default();
    for (item, &index) in items.iter().zip(sent) {
        let reason = || item.reason.clone().unwrap_or_else(|| format!("HTTP {}", item.status));
        match decide_item(op, item.status, item.error_type.as_deref()) {
            ItemDecision::Done => {
                if item.result.as_deref() == Some("deleted") {
                    plan.deleted += 1;
                }
                plan.done.push(index);
            }
            ItemDecision::Skipped => plan.skipped.push(index),
            ItemDecision::Retry => plan.retry.push((index, item.status, reason())),
            ItemDecision::Fail => plan.failed.push((index, item.status, reason())),
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests;

//! The sync itself: planning a run, running tasks, closing a run. Handlers are plain async
//! functions over a `SyncContext`, called by the Lambda adapters and directly by tests.

pub mod incremental;
pub mod planner;
pub mod reaper;
pub mod scope;
pub mod selection;
pub mod verify;
pub mod walk;
pub mod worker;

use std::sync::Arc;

use serde_json::Value;

use crate::config::ConnectorConfig;
use crate::document::Document;
use crate::extract::Downloader;
use crate::index::IndexError;
use crate::notion::{NotionClient, NotionError};
use crate::ports::{BodyParts, DocumentStore, RunLedger, TaskQueue};
use crate::queue::QueueError;
use crate::runs::RunError;

/// Everything a handler needs, built once per Lambda container (outside the handler).
pub struct SyncContext {
    pub notion: NotionClient,
    pub store: Arc<dyn DocumentStore>,
    pub runs: Arc<dyn RunLedger>,
    pub parts: Arc<dyn BodyParts>,
    pub queue: Arc<dyn TaskQueue>,
    pub config: ConnectorConfig,
    pub downloader: Downloader,
    pub limits: Limits,
}

/// Knobs that come from the deployment rather than the connector configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The work queue's `maxReceiveCount`: on this attempt a failing task is recorded as failed.
    pub max_receive_count: u32,
    /// Delay of the finalize message and of the reaper's re-checks.
    pub finalize_delay_seconds: u32,
    /// Re-checks after which the reaper gives up on a run that never completes (lost messages).
    pub max_finalize_checks: u32,
    /// Time kept in reserve before the Lambda deadline: a walk stops and hands on after it.
    pub deadline_margin: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_receive_count: 3,
            finalize_delay_seconds: 60,
            max_finalize_checks: 240,
            deadline_margin: std::time::Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Notion(NotionError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Runs(#[from] RunError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Task(String),
}

impl SyncError {
    /// Errors that will not go away by retrying: the task is recorded as failed at once.
    pub fn is_permanent(&self) -> bool {
        match self {
            SyncError::Notion(err) => !err.is_retryable(),
            SyncError::Config(_) | SyncError::Task(_) => true,
            _ => false,
        }
    }

    /// The token was rejected (401): the whole run is aborted (and deletes nothing).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, SyncError::Notion(err) if err.is_unauthorized())
    }
}

/// When Notion asked for a wait that would pass the invocation's deadline (see `notion::with_deadline`), the SQS
/// delay after which the work handed on may start: the wait in whole seconds, at most SQS's 15 minutes.
pub fn deadline_delay(err: &NotionError) -> Option<u32> {
    let wait = err.retry_after_hint().filter(|_| err.is_deadline())?;
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Some(secs.min(900) as u32)
}

/// Documents on their way to the index: filtered by the basic sync rules, flushed in bulk
/// batches as they accumulate so a huge page never sits in memory.
pub struct DocBuffer<'a> {
    ctx: &'a SyncContext,
    docs: Vec<Document>,
    bytes: usize,
    pub indexed: u64,
    pub skipped: u64,
    /// Earlier documents removed because the basic rules now exclude them.
    pub deleted: u64,
    pub failed: u64,
    pub malformed: u64,
    pub file_errors: u64,
    /// Cuts made to documents to fit the caps (`document::bound`), one per warning: noted in
    /// `errors`, never counted as failed documents.
    pub warnings: u64,
    pub errors: Vec<String>,
    /// Documents the basic rules exclude, with the run that made them: removed from the index at the next flush.
    excluded: Vec<(String, u64)>,
}

const FLUSH_DOCS: usize = 500;
const FLUSH_BYTES: usize = 4 * 1024 * 1024;

impl<'a> DocBuffer<'a> {
    pub fn new(ctx: &'a SyncContext) -> Self {
        DocBuffer {
            ctx,
            docs: Vec::new(),
            bytes: 0,
            indexed: 0,
            skipped: 0,
            deleted: 0,
            failed: 0,
            malformed: 0,
            file_errors: 0,
            warnings: 0,
            errors: Vec::new(),
            excluded: Vec::new(),
        }
    }

    pub async fn push(&mut self, mut doc: Document) -> Result<(), SyncError> {
        if !self.ctx.config.sync_rules.basic.allows(&doc.source) {
            // Excluded now: a document an earlier run wrote goes too (only if no newer run wrote it).
            let run = doc.source.get("sync_run").and_then(Value::as_u64).unwrap_or(0);
            self.excluded.push((doc.id, run));
            self.skipped += 1;
            return Ok(());
        }
        // Bounded again for the fields added after `to_document` (attachment, author); the cuts
        // of both passes are in the document's warnings, noted here once each.
        crate::document::bound(&mut doc);
        let warnings: Vec<String> = doc.warnings().iter().map(|w| format!("document {}: {w}", doc.id)).collect();
        for warning in warnings {
            self.warnings += 1;
            self.note_error(warning);
        }
        self.bytes += doc.source.get("body").and_then(Value::as_str).map_or(0, str::len) + 512;
        self.docs.push(doc);
        if self.docs.len() >= FLUSH_DOCS || self.bytes >= FLUSH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), SyncError> {
        let mut excluded: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
        for (id, run) in std::mem::take(&mut self.excluded) {
            excluded.entry(run).or_default().push(id);
        }
        for (run, ids) in excluded {
            self.deleted += self.ctx.store.delete_ids_of_run(&ids, run).await?;
        }
        if self.docs.is_empty() {
            return Ok(());
        }
        let docs = std::mem::take(&mut self.docs);
        self.bytes = 0;
        let report = self.ctx.store.bulk_index(docs).await?;
        self.indexed += report.indexed as u64;
        self.skipped += report.skipped;
        for failed in &report.failed {
            self.failed += 1;
            self.note_error(format!("document {} rejected: {}", failed.id, failed.reason));
        }
        Ok(())
    }

    /// Takes over another buffer's pending documents and counts (a row walked beside others).
    pub async fn absorb(&mut self, other: DocBuffer<'_>) -> Result<(), SyncError> {
        self.indexed += other.indexed;
        self.skipped += other.skipped;
        self.deleted += other.deleted;
        self.failed += other.failed;
        self.malformed += other.malformed;
        self.file_errors += other.file_errors;
        self.warnings += other.warnings;
        self.excluded.extend(other.excluded);
        let room = 20usize.saturating_sub(self.errors.len());
        self.errors.extend(other.errors.into_iter().take(room));
        for doc in other.docs {
            // Already filtered by the rules when the other buffer took it.
            self.bytes += doc.source.get("body").and_then(Value::as_str).map_or(0, str::len) + 512;
            self.docs.push(doc);
        }
        if self.docs.len() >= FLUSH_DOCS || self.bytes >= FLUSH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    pub fn note_error(&mut self, error: String) {
        tracing::warn!(%error, "document error");
        if self.errors.len() < 20 {
            self.errors.push(error);
        }
    }
}

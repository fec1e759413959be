//! File content: download attachments (`download`), read Notion `file`/`pdf` blocks (`block`) and
//! turn file bytes into plain text (`extract_text`).
//!
//! Extraction is pure and bounded:
//! - the type comes from magic bytes, then the file name's extension, then the content type, then a
//!   text sniff; anything else is `FileKind::Unsupported` (indexed with metadata, no text);
//! - output text is capped (`ExtractLimits::max_text_bytes`, 1 MiB by default) and marked `truncated`;
//! - zip containers (DOCX/PPTX/XLSX/ODF) read at most `max_decompressed_bytes` in total, so a zip bomb
//!   stops at the cap;
//! - our own parsers (HTML, XML, CSV, JSON) are loops, never recursive, and check a deadline;
//! - a PDF is pre-scanned before lopdf sees it (`pdf`): Flate bombs, deep nesting and what the scan cannot measure
//!   are refused as `ExtractError::PdfRefused`; form XObjects cannot recurse; text output is bounded;
//! - panics inside extraction crates become `ExtractError::Panicked`;
//! - `extract_in_background` runs the CPU-bound work in `spawn_blocking` under a timeout; the downloader bounds
//!   that timeout (and each download's) by the time left before the task's deadline.

pub mod block;
mod budget;
mod detect;
pub mod download;
mod html;
mod ooxml;
mod pdf;
mod text;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use serde::Serialize;

pub use block::{file_block_info, FileBlockInfo};
pub(crate) use budget::{Budget, TextSink};
pub use detect::{detect, kind_from_name};
pub use download::{
    address_allowed, allowed_addrs, AddressRefused, DownloadConfig, DownloadError, Downloaded, Downloader, FileOutcome,
    PublicResolver, TrustedHost,
};

/// What the caller knows about a file before looking at its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileHint {
    /// File name (e.g. from the block's `name` or the URL's last path segment).
    pub name: Option<String>,
    /// `Content-Type` from the file host, if any.
    pub content_type: Option<String>,
}

impl FileHint {
    pub fn new(name: Option<&str>, content_type: Option<&str>) -> Self {
        Self { name: name.map(str::to_owned), content_type: content_type.map(str::to_owned) }
    }
}

/// Detected file type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Pdf,
    Docx,
    Pptx,
    Xlsx,
    /// OpenDocument text/presentation/spreadsheet (content.xml).
    Odf,
    Text,
    Markdown,
    Csv,
    Json,
    Html,
    Xml,
    /// Known or unknown binary we do not read: indexed with metadata, no text.
    Unsupported,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Pdf => "pdf",
            FileKind::Docx => "docx",
            FileKind::Pptx => "pptx",
            FileKind::Xlsx => "xlsx",
            FileKind::Odf => "odf",
            FileKind::Text => "text",
            FileKind::Markdown => "markdown",
            FileKind::Csv => "csv",
            FileKind::Json => "json",
            FileKind::Html => "html",
            FileKind::Xml => "xml",
            FileKind::Unsupported => "unsupported",
        }
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text taken from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub text: String,
    pub kind: FileKind,
    /// True when the text was cut at `max_text_bytes` or a zip container hit `max_decompressed_bytes`.
    pub truncated: bool,
}

/// Budgets for one file.
#[derive(Debug, Clone)]
pub struct ExtractLimits {
    /// Maximum bytes of output text (cut on a char boundary). Default 1 MiB.
    pub max_text_bytes: usize,
    /// Maximum bytes decompressed from a zip container, all entries together. Default 64 MiB.
    pub max_decompressed_bytes: u64,
    /// Time budget for one file. Default 20 s.
    pub timeout: Duration,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self { max_text_bytes: 1 << 20, max_decompressed_bytes: 64 << 20, timeout: Duration::from_secs(20) }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ExtractError {
    #[error("could not read {kind} file: {message}")]
    Corrupt { kind: FileKind, message: String },
    #[error("{kind} file decompresses to more than {limit} bytes and gave no text")]
    DecompressedTooLarge { kind: FileKind, limit: u64 },
    #[error("text extraction took longer than {0:?}")]
    Timeout(Duration),
    /// The pre-scan refused the PDF before the parser saw it (a bomb, deep nesting, what it cannot measure).
    #[error("PDF not extracted: {0}")]
    PdfRefused(String),
    #[error("text extraction panicked: {0}")]
    Panicked(String),
}

impl ExtractError {
    pub(crate) fn corrupt(kind: FileKind, message: impl std::fmt::Display) -> Self {
        ExtractError::Corrupt { kind, message: message.to_string() }
    }
}

/// Extracts text with the default limits. Never panics; see `extract_text_with`.
pub fn extract_text(bytes: &[u8], hint: FileHint) -> Result<Extracted, ExtractError> {
    extract_text_with(bytes, &hint, &ExtractLimits::default())
}

/// Extracts text under `limits`. Runs on the current thread: call it from `spawn_blocking`
/// (or use `extract_in_background`) in async code. Our own parsers stop at the deadline; a PDF's
/// text output stops there too (pdf-extract's other work cannot be interrupted, but the scan bounds it).
pub fn extract_text_with(bytes: &[u8], hint: &FileHint, limits: &ExtractLimits) -> Result<Extracted, ExtractError> {
    let kind = detect(bytes, hint);
    let budget = Budget::new(limits);
    match catch_unwind(AssertUnwindSafe(|| extract_kind(kind, bytes, &budget))) {
        Ok(result) => result,
        Err(panic) => Err(ExtractError::Panicked(panic_message(panic.as_ref()))),
    }
}

/// Runs `extract_text_with` on tokio's blocking pool under `limits.timeout`.
/// On timeout the caller gets `ExtractError::Timeout` at once; the blocking thread is left to
/// finish (our parsers notice the same deadline and stop).
pub async fn extract_in_background(
    bytes: Vec<u8>,
    hint: FileHint,
    limits: ExtractLimits,
) -> Result<Extracted, ExtractError> {
    let timeout = limits.timeout;
    let task = tokio::task::spawn_blocking(move || extract_text_with(&bytes, &hint, &limits));
    match tokio::time::timeout(timeout, task).await {
        Err(_) => Err(ExtractError::Timeout(timeout)),
        Ok(Ok(result)) => result,
        Ok(Err(join_error)) => Err(ExtractError::Panicked(join_error.to_string())),
    }
}

fn extract_kind(kind: FileKind, bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    let mut sink = TextSink::new(budget.max_text_bytes);
    let mut container_truncated = false;
    match kind {
        FileKind::Pdf => pdf::extract(bytes, &mut sink, budget)?,
        FileKind::Docx | FileKind::Pptx | FileKind::Xlsx | FileKind::Odf => {
            container_truncated = ooxml::extract(kind, bytes, &mut sink, budget)?;
        }
        FileKind::Text | FileKind::Markdown => text::plain(bytes, &mut sink),
        FileKind::Csv => text::csv(bytes, &mut sink, budget)?,
        FileKind::Json => text::json(bytes, &mut sink, budget)?,
        FileKind::Html | FileKind::Xml => html::strip(&text::decode(bytes), &mut sink, budget)?,
        FileKind::Unsupported => {}
    }
    let truncated = sink.truncated || container_truncated;
    Ok(Extracted { text: sink.finish(), kind, truncated })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

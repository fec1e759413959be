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
pub mod download;
mod html;
mod ooxml;
mod pdf;
mod text;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use block::{file_block_info, FileBlockInfo};
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

/// Deadline and size budget shared by the parsers.
pub(crate) struct Budget {
    deadline: Instant,
    timeout: Duration,
    pub max_text_bytes: usize,
    pub max_decompressed_bytes: u64,
}

impl Budget {
    fn new(limits: &ExtractLimits) -> Self {
        Self {
            deadline: Instant::now() + limits.timeout,
            timeout: limits.timeout,
            max_text_bytes: limits.max_text_bytes,
            max_decompressed_bytes: limits.max_decompressed_bytes,
        }
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn check(&self) -> Result<(), ExtractError> {
        if Instant::now() >= self.deadline {
            Err(ExtractError::Timeout(self.timeout))
        } else {
            Ok(())
        }
    }
}

/// Output text with a byte cap and light whitespace handling.
pub(crate) struct TextSink {
    buf: String,
    max: usize,
    pub truncated: bool,
}

impl TextSink {
    pub fn new(max: usize) -> Self {
        Self { buf: String::new(), max, truncated: false }
    }

    pub fn is_full(&self) -> bool {
        self.truncated
    }

    pub fn is_empty(&self) -> bool {
        self.buf.trim().is_empty()
    }

    pub fn push_str(&mut self, s: &str) {
        if self.truncated {
            return;
        }
        let room = self.max.saturating_sub(self.buf.len());
        if s.len() <= room {
            self.buf.push_str(s);
        } else {
            let mut cut = room;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.buf.push_str(&s[..cut]);
            self.truncated = true;
        }
    }

    pub fn push_char(&mut self, c: char) {
        let mut tmp = [0u8; 4];
        self.push_str(c.encode_utf8(&mut tmp));
    }

    /// Adds a line break unless the text is empty or already ends with one.
    pub fn newline(&mut self) {
        if !self.buf.is_empty() && !self.buf.ends_with('\n') {
            self.push_char('\n');
        }
    }

    /// Adds a space unless the text is empty or already ends with whitespace.
    pub fn space(&mut self) {
        if !self.buf.is_empty() && !self.buf.ends_with(|c: char| c.is_whitespace()) {
            self.push_char(' ');
        }
    }

    pub fn finish(self) -> String {
        let trimmed = self.buf.trim_end();
        if trimmed.len() == self.buf.len() {
            self.buf
        } else {
            trimmed.to_owned()
        }
    }
}

/// Detects the file type: magic bytes, then extension, then content type, then a text sniff.
pub fn detect(bytes: &[u8], hint: &FileHint) -> FileKind {
    let by_name = hint.name.as_deref().and_then(kind_from_name);
    let by_type = hint.content_type.as_deref().and_then(kind_from_content_type);
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        // A zip: its entries tell the office format. A zip without them is only read (and
        // reported corrupt) when the name or content type says it is an office file.
        return match ooxml::container_kind(bytes) {
            Some(kind) if kind != FileKind::Unsupported => kind,
            _ => by_name.or(by_type).filter(|k| is_zip_kind(*k)).unwrap_or(FileKind::Unsupported),
        };
    }
    if let Some(kind) = detect_magic(bytes) {
        return kind;
    }
    by_name.or(by_type).unwrap_or_else(|| sniff_text(bytes))
}

fn is_zip_kind(kind: FileKind) -> bool {
    matches!(kind, FileKind::Docx | FileKind::Pptx | FileKind::Xlsx | FileKind::Odf)
}

/// Type by the file name alone, when the extension is known. Lets a caller skip downloading
/// files it cannot read (images, video, archives).
pub fn kind_from_name(name: &str) -> Option<FileKind> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    let kind = match ext.as_str() {
        "pdf" => FileKind::Pdf,
        "docx" | "docm" | "dotx" => FileKind::Docx,
        "pptx" | "pptm" | "potx" => FileKind::Pptx,
        "xlsx" | "xlsm" => FileKind::Xlsx,
        "odt" | "odp" | "ods" => FileKind::Odf,
        "md" | "markdown" | "mdown" => FileKind::Markdown,
        "csv" | "tsv" => FileKind::Csv,
        "json" | "jsonl" | "ndjson" | "geojson" => FileKind::Json,
        "html" | "htm" | "xhtml" | "aspx" => FileKind::Html,
        "xml" | "svg" | "rss" | "atom" => FileKind::Xml,
        "txt" | "text" | "log" | "rst" | "tex" | "py" | "rs" | "js" | "ts" | "java" | "go" | "rb" | "sh" | "c"
        | "h" | "cpp" | "hpp" | "cs" | "php" | "sql" | "yaml" | "yml" | "toml" | "ini" | "cfg" | "conf" | "css"
        | "srt" | "vtt" => FileKind::Text,
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "bmp" | "tif" | "tiff" | "heic" | "ico" | "mp3" | "wav" | "ogg"
        | "flac" | "m4a" | "mp4" | "mov" | "avi" | "mkv" | "webm" | "zip" | "gz" | "tgz" | "7z" | "rar" | "tar"
        | "exe" | "dmg" | "iso" | "bin" | "doc" | "xls" | "ppt" | "psd" | "sketch" | "fig" => FileKind::Unsupported,
        _ => return None,
    };
    Some(kind)
}

fn kind_from_content_type(content_type: &str) -> Option<FileKind> {
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let kind = match mime.as_str() {
        "application/pdf" => FileKind::Pdf,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => FileKind::Docx,
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => FileKind::Pptx,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => FileKind::Xlsx,
        "text/html" | "application/xhtml+xml" => FileKind::Html,
        "text/csv" | "text/tab-separated-values" => FileKind::Csv,
        "application/json" | "application/x-ndjson" => FileKind::Json,
        "text/markdown" | "text/x-markdown" => FileKind::Markdown,
        "application/xml" | "text/xml" | "image/svg+xml" => FileKind::Xml,
        m if m.ends_with("+json") => FileKind::Json,
        m if m.starts_with("text/") => FileKind::Text,
        m if m.starts_with("image/") || m.starts_with("video/") || m.starts_with("audio/") => FileKind::Unsupported,
        _ => return None,
    };
    Some(kind)
}

fn detect_magic(bytes: &[u8]) -> Option<FileKind> {
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return Some(FileKind::Pdf);
    }
    const BINARY: &[&[u8]] = &[
        b"\x89PNG",
        b"\xFF\xD8\xFF",
        b"GIF8",
        b"\x1F\x8B",
        b"\xD0\xCF\x11\xE0", // OLE: .doc/.xls/.ppt
        b"ID3",
        b"OggS",
        b"fLaC",
        b"7z\xBC\xAF",
        b"Rar!",
        b"BM",
        b"II*\x00",
        b"MM\x00*",
    ];
    if BINARY.iter().any(|m| bytes.starts_with(m)) || bytes.starts_with(b"RIFF") || bytes.get(4..8) == Some(b"ftyp") {
        return Some(FileKind::Unsupported);
    }
    None
}

fn sniff_text(bytes: &[u8]) -> FileKind {
    let head = &bytes[..bytes.len().min(8192)];
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return FileKind::Text;
    }
    if head.contains(&0) {
        return FileKind::Unsupported;
    }
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        // A multi-byte char cut by the 8 KiB window is fine.
        Err(e) => e.error_len().is_none(),
    };
    if !valid {
        return FileKind::Unsupported;
    }
    let start = String::from_utf8_lossy(&head[..head.len().min(256)]).trim_start().to_ascii_lowercase();
    if start.starts_with("<!doctype html") || start.starts_with("<html") {
        FileKind::Html
    } else if start.starts_with("<?xml") {
        FileKind::Xml
    } else {
        FileKind::Text
    }
}

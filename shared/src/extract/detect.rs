//! The file type of some bytes: magic bytes, then the name's extension, then the content type, then a text sniff.

use super::{ooxml, FileHint, FileKind};

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

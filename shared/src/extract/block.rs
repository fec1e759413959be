//! Reading Notion `file` and `pdf` blocks:
//! `{type:"file"|"pdf", file|pdf: {type:"file", file:{url, expiry_time}} | {type:"external", external:{url}},
//!   name?, caption}`.

use serde_json::Value;

use super::FileHint;

/// Where a file block's bytes are and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileBlockInfo {
    /// `"file"` or `"pdf"`.
    pub block_type: String,
    pub url: String,
    /// The block's `name`, else the URL path's last segment (percent-decoded); None if neither.
    pub name: Option<String>,
    /// True for Notion-hosted files (`type:"file"`, signed URL that expires), false for `external`.
    pub notion_hosted: bool,
    /// `expiry_time` of a Notion-hosted URL, as given.
    pub expiry_time: Option<String>,
    /// Caption as plain text.
    pub caption: String,
}

impl FileBlockInfo {
    pub fn hint(&self) -> FileHint {
        FileHint { name: self.name.clone(), content_type: None }
    }
}

/// Reads a `file` or `pdf` block. None for other block types, `file_upload` payloads (no URL yet)
/// and malformed payloads.
pub fn file_block_info(block: &Value) -> Option<FileBlockInfo> {
    let block_type = block.get("type")?.as_str()?;
    if block_type != "file" && block_type != "pdf" {
        return None;
    }
    let payload = block.get(block_type)?;
    let source_type = payload.get("type")?.as_str()?;
    let source = payload.get(source_type)?;
    let notion_hosted = match source_type {
        "file" => true,
        "external" => false,
        _ => return None,
    };
    let url = source.get("url")?.as_str()?.trim();
    if url.is_empty() {
        return None;
    }
    let name = payload
        .get("name")
        .or_else(|| block.get("name"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .or_else(|| name_from_url(url));
    let expiry_time = source.get("expiry_time").and_then(Value::as_str).map(str::to_owned);
    let caption = payload
        .get("caption")
        .and_then(Value::as_array)
        .map(|parts| parts.iter().filter_map(|p| p.get("plain_text").and_then(Value::as_str)).collect::<String>())
        .unwrap_or_default();
    Some(FileBlockInfo {
        block_type: block_type.to_owned(),
        url: url.to_owned(),
        name,
        notion_hosted,
        expiry_time,
        caption,
    })
}

/// The last non-empty path segment of a URL, percent-decoded.
pub fn name_from_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let segment = parsed.path_segments()?.rfind(|s| !s.is_empty())?;
    let name = percent_decode(segment);
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(byte) = hex {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

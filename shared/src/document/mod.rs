//! Documents written to the content index: one per Notion object, `_id` = the Notion id (as the
//! Elastic connector), the raw Notion fields kept, plus normalized fields for search.
//!
//! Everything here is pure and lenient: a missing or oddly shaped field gives an empty value,
//! never an error.

mod bound;
#[cfg(test)]
mod tests;
mod text;

pub use bound::bound;
pub use text::{block_text, plain_text, properties_text, title_of};

use serde_json::{Map, Value};

/// Most characters of `title` (and of each `path` entry, an ancestor's title). Notion accepts
/// titles of up to 200,000 characters (100 rich-text items of 2,000), and those are indexed whole;
/// only what Notion returns beyond that (mentions render other titles, so a title can reach
/// megabytes) is cut. The page's `body` starts with the title, so the rest may still be found
/// there.
pub const MAX_TITLE_CHARS: usize = 200_000;

/// Most characters of `details` (the `properties` JSON string). A row with hundreds of full text
/// properties, or a 200,000-character title (about 430,000 characters of JSON), stays whole; past
/// the cap the string is cut and is then no longer valid JSON (the document's `warnings` say so).
pub const MAX_DETAILS_CHARS: usize = 2_000_000;

/// Most characters of any other string in `_source` except `body` (raw Notion fields at any
/// depth, `url`, ids). Notion bounds every text item it accepts to 2,000 characters and a title
/// (a child page block's `title`, a mention's `plain_text`) to 200,000, so nothing within
/// Notion's limits is cut.
pub const MAX_FIELD_CHARS: usize = 200_000;

/// Most bytes of a document's `_source`, serialized. Below the 10 MiB request limit of the
/// smallest Amazon OpenSearch instance types (and far below Elasticsearch's default 100 MB), so
/// one document can always be sent, alone. Past it the largest fields go first: a raw Notion
/// field is dropped, the body (or another field of ours) is cut.
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

/// The `_source` field listing what [`bound`] cut (strings such as "title truncated from
/// 20000000 to 10000 characters"); absent when nothing was cut. Kept in `_source` only (the
/// mapping is not dynamic), so a reader can tell a cut document from a whole one.
pub const WARNINGS_FIELD: &str = "warnings";

/// Room kept below [`MAX_DOCUMENT_BYTES`] for the warnings themselves.
const WARNINGS_RESERVE: usize = 64 * 1024;

/// Warnings kept per document (a pathological object could produce one per raw field).
const MAX_WARNINGS: usize = 50;

/// Fields the connector writes itself: never dropped to make a document fit, only shortened.
const OWN_FIELDS: &[&str] = &[
    "id",
    "object",
    "type",
    "title",
    "body",
    "details",
    "url",
    "parent_id",
    "page_id",
    "path",
    "sync_run",
    "_timestamp",
    "created_time",
    "last_edited_time",
    "author",
    "attachment",
    WARNINGS_FIELD,
];

/// A document ready for the index: its `_id` and its whole `_source`.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub source: Map<String, Value>,
}

impl Document {
    /// What [`bound`] cut from this document (empty for a whole one).
    pub fn warnings(&self) -> Vec<&str> {
        match self.source.get(WARNINGS_FIELD) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// Where an object sits: filled by the traversal, not read from the object itself.
#[derive(Debug, Clone, Default)]
pub struct Placement<'a> {
    /// The page the object belongs to (for a page or row: itself).
    pub page_id: Option<&'a str>,
    /// The owning page's URL, used to build block URLs.
    pub page_url: Option<&'a str>,
    /// Breadcrumb of ancestor titles, outermost first.
    pub path: &'a [String],
}

/// Maps any Notion object (page, database, data source, block, user, comment) to a document.
/// `body` is the object's text; for a page the caller passes the whole page's text.
pub fn to_document(object: &Value, placement: &Placement, body: String, sync_run: u64) -> Option<Document> {
    let raw = object.as_object()?;
    let id = raw.get("id")?.as_str()?.to_string();
    let mut source = Map::with_capacity(raw.len() + 10);
    for (key, value) in raw {
        if key == "properties" {
            // Notion's property shapes are inconsistent; keep them as a JSON string (valid JSON,
            // unlike the reference's Python repr) so they can never cause a mapping conflict.
            source.insert("details".into(), Value::String(value.to_string()));
        } else {
            source.insert(key.clone(), value.clone());
        }
    }
    let kind = raw.get("object").and_then(Value::as_str).unwrap_or("");
    source.insert("id".into(), Value::String(id.clone()));
    if let Some(edited) = raw.get("last_edited_time").and_then(Value::as_str) {
        source.insert("_timestamp".into(), Value::String(edited.to_string()));
    }
    source.insert("title".into(), Value::String(title_of(object)));
    source.insert("body".into(), Value::String(body));
    if let Some(url) = url_of(object, kind, placement) {
        source.insert("url".into(), Value::String(url));
    }
    if let Some(parent) = parent_id(object) {
        source.insert("parent_id".into(), Value::String(parent));
    }
    let page_id = match kind {
        "page" => Some(id.as_str()),
        _ => placement.page_id,
    };
    if let Some(page_id) = page_id {
        source.insert("page_id".into(), Value::String(page_id.to_string()));
    }
    source.insert("path".into(), Value::Array(placement.path.iter().cloned().map(Value::String).collect()));
    source.insert("sync_run".into(), Value::from(sync_run));
    let mut doc = Document { id, source };
    bound(&mut doc);
    Some(doc)
}

/// The id of the object's parent (page, block, database or data source), if it has one.
pub fn parent_id(object: &Value) -> Option<String> {
    let parent = object.get("parent")?;
    let kind = parent.get("type")?.as_str()?;
    parent.get(kind)?.as_str().map(str::to_string)
}

fn url_of(object: &Value, kind: &str, placement: &Placement) -> Option<String> {
    if let Some(url) = object.get("url").and_then(Value::as_str) {
        return Some(url.to_string());
    }
    match kind {
        // Notion links to a block as the page URL with the block id (no dashes) as fragment.
        "block" | "comment" => {
            let id = object.get("id")?.as_str()?.replace('-', "");
            placement.page_url.map(|page| format!("{page}#{id}"))
        }
        _ => None,
    }
}

/// True when the page is a database row (its parent is a data source or a database).
pub fn is_row(page: &Value) -> bool {
    matches!(page.pointer("/parent/type").and_then(Value::as_str), Some("data_source_id") | Some("database_id"))
}

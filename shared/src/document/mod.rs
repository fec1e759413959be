//! Documents written to the content index: one per Notion object, `_id` = the Notion id (as the
//! Elastic connector), the raw Notion fields kept, plus normalized fields for search.
//!
//! Everything here is pure and lenient: a missing or oddly shaped field gives an empty value,
//! never an error.

use serde_json::{Map, Value};

use crate::queue::serialized_len;

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

/// Applies the caps above whatever Notion sent, so no object can make a bulk request fail or a
/// sync stop: strings are cut on a char boundary, then, if the document is still over
/// [`MAX_DOCUMENT_BYTES`], its largest fields are cut or dropped. Each cut is appended
/// to [`WARNINGS_FIELD`] and returned. A document within the caps is left exactly as it is, and
/// bounding twice cuts nothing more (so the sync bounds again the fields it adds later).
pub fn bound(doc: &mut Document) -> Vec<String> {
    let mut warnings = Vec::new();
    let source = &mut doc.source;
    cap_own_string(source, "title", MAX_TITLE_CHARS, &mut warnings);
    cap_own_string(source, "details", MAX_DETAILS_CHARS, &mut warnings);
    cap_path(source, &mut warnings);
    cap_other_strings(source, &mut warnings);
    fit_total(source, &mut warnings);
    record_warnings(source, &warnings);
    warnings
}

/// Cuts `s` to `max` characters; returns its length in characters when it was longer.
fn truncate_chars(s: &mut String, max: usize) -> Option<usize> {
    if s.len() <= max {
        return None; // at most `max` bytes, so at most `max` characters
    }
    let (end, _) = s.char_indices().nth(max)?;
    let chars = max + s[end..].chars().count();
    s.truncate(end);
    Some(chars)
}

fn cap_own_string(source: &mut Map<String, Value>, key: &str, max: usize, warnings: &mut Vec<String>) {
    if let Some(Value::String(s)) = source.get_mut(key) {
        if let Some(chars) = truncate_chars(s, max) {
            warnings.push(format!("{key} truncated from {chars} to {max} characters"));
        }
    }
}

/// A path entry is an ancestor's title: capped like a title.
fn cap_path(source: &mut Map<String, Value>, warnings: &mut Vec<String>) {
    let Some(Value::Array(entries)) = source.get_mut("path") else { return };
    let mut longest = None;
    for entry in entries.iter_mut() {
        if let Value::String(s) = entry {
            longest = longest.max(truncate_chars(s, MAX_TITLE_CHARS));
        }
    }
    if let Some(chars) = longest {
        warnings.push(format!("path entries truncated to {MAX_TITLE_CHARS} characters (longest had {chars})"));
    }
}

/// Caps every string of the other fields, at any depth; one warning per top-level field.
fn cap_other_strings(source: &mut Map<String, Value>, warnings: &mut Vec<String>) {
    for (key, value) in source.iter_mut() {
        if matches!(key.as_str(), "title" | "details" | "body" | "path" | WARNINGS_FIELD) {
            continue;
        }
        let (mut count, mut longest) = (0usize, 0usize);
        cap_strings(value, &mut count, &mut longest);
        if count > 0 {
            warnings.push(format!(
                "field {}: {count} string(s) truncated to {MAX_FIELD_CHARS} characters (longest had {longest})",
                short(key)
            ));
        }
    }
}

fn cap_strings(value: &mut Value, count: &mut usize, longest: &mut usize) {
    match value {
        Value::String(s) => {
            if let Some(chars) = truncate_chars(s, MAX_FIELD_CHARS) {
                *count += 1;
                *longest = (*longest).max(chars);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| cap_strings(v, count, longest)),
        Value::Object(map) => map.values_mut().for_each(|v| cap_strings(v, count, longest)),
        _ => {}
    }
}

/// Makes the serialized `_source` fit [`MAX_DOCUMENT_BYTES`], taking from the largest field
/// first: a raw Notion field is dropped (it is kept in `_source` only, and a block's raw payload
/// repeats its body), one of the connector's own fields (most often the body) is shortened by
/// what is over, so a big page keeps its raw fields and a big block keeps its body.
fn fit_total(source: &mut Map<String, Value>, warnings: &mut Vec<String>) {
    let budget = MAX_DOCUMENT_BYTES - WARNINGS_RESERVE;
    loop {
        let over = serialized_len(source).saturating_sub(budget);
        if over == 0 {
            return;
        }
        let Some((key, bytes)) = largest_field(source, |k| k != WARNINGS_FIELD) else { return };
        if !OWN_FIELDS.contains(&key.as_str()) {
            source.remove(&key);
            warnings.push(format!(
                "field {} of {bytes} bytes dropped (document over {MAX_DOCUMENT_BYTES} bytes)",
                short(&key)
            ));
        } else if !shorten(source, &key, over, warnings) {
            return; // the largest field cannot be cut (a number): nothing more to do
        }
    }
}

/// The largest top-level field (serialized bytes) among those `eligible`.
fn largest_field(source: &Map<String, Value>, eligible: impl Fn(&str) -> bool) -> Option<(String, usize)> {
    source
        .iter()
        .filter(|(k, _)| eligible(k))
        .map(|(k, v)| (k, serialized_len(v)))
        .max_by_key(|&(_, bytes)| bytes)
        .map(|(k, bytes)| (k.clone(), bytes))
}

/// Shortens field `key` by `over` serialized bytes or more when it can (a string is cut at its
/// end, an array or object is emptied); returns whether it cut anything.
fn shorten(source: &mut Map<String, Value>, key: &str, over: usize, warnings: &mut Vec<String>) -> bool {
    let reason = format!("(document over {MAX_DOCUMENT_BYTES} bytes)");
    match source.get_mut(key) {
        Some(Value::String(s)) if !s.is_empty() => {
            let chars = s.chars().count();
            let target = serialized_len(s.as_str()).saturating_sub(over);
            // Escapes make the serialized form longer than the text, never shorter: cutting the
            // excess from the text removes at least as much from the serialized form.
            while !s.is_empty() && serialized_len(s.as_str()) > target {
                let mut end = s.len().saturating_sub(serialized_len(s.as_str()) - target);
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
            }
            warnings.push(format!(
                "{} truncated from {chars} to {} characters {reason}",
                short(key),
                s.chars().count()
            ));
            true
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            items.clear();
            warnings.push(format!("{} emptied {reason}", short(key)));
            true
        }
        Some(Value::Object(map)) if !map.is_empty() => {
            map.clear();
            warnings.push(format!("{} emptied {reason}", short(key)));
            true
        }
        _ => false,
    }
}

/// A field name as warnings show it (raw keys are Notion's, but nothing bounds them).
fn short(key: &str) -> String {
    let mut name = key.to_string();
    if truncate_chars(&mut name, 100).is_some() {
        name.push('…');
    }
    format!("`{name}`")
}

fn record_warnings(source: &mut Map<String, Value>, warnings: &[String]) {
    if warnings.is_empty() {
        return;
    }
    let entry = source.entry(WARNINGS_FIELD).or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    if let Value::Array(items) = entry {
        let room = MAX_WARNINGS.saturating_sub(items.len());
        items.extend(warnings.iter().take(room).cloned().map(Value::String));
    }
}

/// The object's title: a page's `title` property, a database's or data source's title, a child
/// page/database block's title, a file's name, a user's name.
pub fn title_of(object: &Value) -> String {
    match object.get("object").and_then(Value::as_str) {
        Some("page") => object
            .get("properties")
            .and_then(Value::as_object)
            .and_then(|props| props.values().find(|p| p.get("type").and_then(Value::as_str) == Some("title")))
            .map(|p| plain_text(&p["title"]))
            .unwrap_or_default(),
        Some("database") | Some("data_source") => plain_text(&object["title"]),
        Some("user") => object.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
        Some("block") => {
            let kind = object.get("type").and_then(Value::as_str).unwrap_or_default();
            let payload = &object[kind];
            match payload.get("title").or_else(|| payload.get("name")) {
                Some(Value::String(s)) => s.clone(),
                Some(rich) => plain_text(rich),
                None => String::new(),
            }
        }
        _ => String::new(),
    }
}

/// Concatenated `plain_text` of a rich-text array (mentions and equations included).
pub fn plain_text(rich_text: &Value) -> String {
    let Some(items) = rich_text.as_array() else { return String::new() };
    let mut out = String::new();
    for item in items {
        if let Some(text) = item.get("plain_text").and_then(Value::as_str) {
            out.push_str(text);
        } else if let Some(text) = item.pointer("/text/content").and_then(Value::as_str) {
            out.push_str(text);
        }
    }
    out
}

/// The text a block contributes to its page, without its children.
pub fn block_text(block: &Value) -> String {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or_default();
    let payload = &block[kind];
    let mut parts: Vec<String> = Vec::new();
    match kind {
        "table_row" => {
            let cells: Vec<String> =
                payload["cells"].as_array().map(|c| c.iter().map(plain_text).collect()).unwrap_or_default();
            parts.push(cells.join(" | "));
        }
        "equation" => parts.push(payload["expression"].as_str().unwrap_or_default().to_string()),
        "child_page" | "child_database" => parts.push(title_of(block)),
        "bookmark" | "embed" | "link_preview" => {
            parts.push(payload["url"].as_str().unwrap_or_default().to_string());
        }
        _ => {
            if let Some(name) = payload.get("name").and_then(Value::as_str) {
                parts.push(name.to_string());
            }
            parts.push(plain_text(&payload["rich_text"]));
            if let Some(title) = payload.get("title").filter(|t| t.is_array()) {
                parts.push(plain_text(title));
            }
        }
    }
    parts.push(plain_text(&payload["caption"]));
    join_nonempty(parts, " ")
}

/// The text of a page's properties other than the title (database rows), one `Name: value` per line.
pub fn properties_text(page: &Value) -> String {
    let Some(props) = page.get("properties").and_then(Value::as_object) else { return String::new() };
    let mut lines = Vec::new();
    for (name, prop) in props {
        let kind = prop.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind == "title" {
            continue;
        }
        let value = property_value_text(kind, &prop[kind]);
        if !value.is_empty() {
            lines.push(format!("{name}: {value}"));
        }
    }
    lines.join("\n")
}

fn property_value_text(kind: &str, value: &Value) -> String {
    match kind {
        "rich_text" => plain_text(value),
        "select" | "status" => value.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
        "multi_select" => join_nonempty(
            value.as_array().into_iter().flatten().filter_map(|v| v["name"].as_str().map(str::to_string)).collect(),
            ", ",
        ),
        "number" | "checkbox" => scalar_text(value),
        "url" | "email" | "phone_number" | "created_time" | "last_edited_time" => {
            value.as_str().unwrap_or_default().to_string()
        }
        "date" => join_nonempty(vec![scalar_text(&value["start"]), scalar_text(&value["end"])], " → "),
        "people" => join_nonempty(
            value.as_array().into_iter().flatten().filter_map(|u| u["name"].as_str().map(str::to_string)).collect(),
            ", ",
        ),
        "files" => join_nonempty(
            value.as_array().into_iter().flatten().filter_map(|f| f["name"].as_str().map(str::to_string)).collect(),
            ", ",
        ),
        "formula" => {
            let inner = value.get("type").and_then(Value::as_str).unwrap_or_default();
            match inner {
                "date" => scalar_text(&value["date"]["start"]),
                _ => scalar_text(&value[inner]),
            }
        }
        "unique_id" => {
            let number = scalar_text(&value["number"]);
            match value["prefix"].as_str() {
                Some(prefix) if !number.is_empty() => format!("{prefix}-{number}"),
                _ => number,
            }
        }
        _ => String::new(),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn join_nonempty(parts: Vec<String>, sep: &str) -> String {
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect::<Vec<_>>().join(sep)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rich(text: &str) -> Value {
        json!([{"type": "text", "plain_text": text, "text": {"content": text}}])
    }

    #[test]
    fn page_document_has_elastic_fields_and_normalized_ones() {
        let page = json!({
            "object": "page", "id": "p1", "last_edited_time": "2024-01-31T08:15:00.000Z",
            "url": "https://www.notion.so/p1", "parent": {"type": "workspace", "workspace": true},
            "properties": {"Name": {"id": "title", "type": "title", "title": rich("Roadmap")},
                           "Owner": {"id": "x", "type": "rich_text", "rich_text": rich("Ada")}}
        });
        let path = vec!["Home".to_string()];
        let doc =
            to_document(&page, &Placement { path: &path, ..Default::default() }, "Roadmap\nbody".into(), 7).unwrap();
        assert_eq!(doc.id, "p1");
        let s = &doc.source;
        assert_eq!(s["_timestamp"], "2024-01-31T08:15:00.000Z");
        assert_eq!(s["title"], "Roadmap");
        assert_eq!(s["page_id"], "p1");
        assert_eq!(s["path"], json!(["Home"]));
        assert_eq!(s["sync_run"], 7);
        assert!(s.get("properties").is_none());
        let details: Value = serde_json::from_str(s["details"].as_str().unwrap()).expect("details is JSON");
        assert_eq!(details["Owner"]["rich_text"][0]["plain_text"], "Ada");
        assert!(s.get("parent_id").is_none(), "workspace pages have no parent id");
    }

    #[test]
    fn block_document_links_into_its_page() {
        let block = json!({"object": "block", "id": "b-1", "type": "paragraph",
            "parent": {"type": "block_id", "block_id": "b-0"}, "paragraph": {"rich_text": rich("hello")}});
        let placement = Placement { page_id: Some("p1"), page_url: Some("https://n/p1"), path: &[] };
        let doc = to_document(&block, &placement, block_text(&block), 1).unwrap();
        assert_eq!(doc.source["url"], "https://n/p1#b1");
        assert_eq!(doc.source["parent_id"], "b-0");
        assert_eq!(doc.source["page_id"], "p1");
        assert_eq!(doc.source["body"], "hello");
    }

    #[test]
    fn block_text_covers_special_types() {
        let row = json!({"type": "table_row", "table_row": {"cells": [rich("a"), rich("b")]}});
        assert_eq!(block_text(&row), "a | b");
        let eq = json!({"type": "equation", "equation": {"expression": "e=mc^2"}});
        assert_eq!(block_text(&eq), "e=mc^2");
        let file = json!({"type": "file", "file": {"name": "report.pdf", "caption": rich("Q3")}});
        assert_eq!(block_text(&file), "report.pdf Q3");
        let unknown = json!({"type": "ai_block", "ai_block": {}});
        assert_eq!(block_text(&unknown), "");
        assert_eq!(block_text(&json!("not an object")), "");
    }

    #[test]
    fn properties_text_renders_row_values() {
        let page = json!({"properties": {
            "Name": {"type": "title", "title": rich("Row")},
            "Tags": {"type": "multi_select", "multi_select": [{"name": "a"}, {"name": "b"}]},
            "Done": {"type": "checkbox", "checkbox": true},
            "Id": {"type": "unique_id", "unique_id": {"prefix": "T", "number": 4}},
            "Odd": {"type": "rollup", "rollup": {"type": "array", "array": []}}
        }});
        let text = properties_text(&page);
        assert!(text.contains("Tags: a, b"), "{text}");
        assert!(text.contains("Done: true"));
        assert!(text.contains("Id: T-4"));
        assert!(!text.contains("Row"));
    }

    fn page_titled(title: &str) -> Value {
        json!({
            "object": "page", "id": "p1", "last_edited_time": "2024-01-31T08:15:00.000Z",
            "url": "https://www.notion.so/p1", "parent": {"type": "workspace", "workspace": true},
            "properties": {"Name": {"id": "title", "type": "title", "title": rich(title)}}
        })
    }

    fn size(doc: &Document) -> usize {
        serde_json::to_vec(&doc.source).unwrap().len()
    }

    #[test]
    fn documents_within_the_caps_are_left_as_they_are() {
        // The longest title Notion accepts: 100 rich-text items of 2,000 characters.
        let item = "t".repeat(2_000);
        let items: Vec<Value> = (0..100).map(|_| rich(&item)[0].clone()).collect();
        let long_but_legal = item.repeat(100);
        let mut page = page_titled("");
        page["properties"]["Name"]["title"] = Value::Array(items);
        let mut doc = to_document(&page, &Placement::default(), "body ".repeat(100_000), 3).unwrap();
        assert!(doc.source.get(WARNINGS_FIELD).is_none());
        assert!(doc.warnings().is_empty());
        // (`assert!` rather than `assert_eq!`: a failure would print megabytes.)
        assert!(doc.source["title"] == long_but_legal.as_str());
        assert!(doc.source["details"] == page["properties"].to_string().as_str());
        let before = doc.clone();
        assert!(bound(&mut doc).is_empty());
        assert!(doc == before);
    }

    #[test]
    fn a_row_with_two_hundred_full_text_properties_stays_whole() {
        let mut page = page_titled("Wide row");
        for i in 0..200 {
            let value = json!({"id": format!("p{i}"), "type": "rich_text", "rich_text": rich(&"v".repeat(2_000))});
            page["properties"][format!("Prop {i}")] = value;
        }
        let doc = to_document(&page, &Placement::default(), properties_text(&page), 1).unwrap();
        assert!(doc.warnings().is_empty(), "{:?}", doc.warnings());
        assert_eq!(doc.source["details"].as_str().unwrap(), page["properties"].to_string());
    }

    #[test]
    fn a_twenty_megabyte_title_is_cut_and_said_so() {
        let page = page_titled(&"x".repeat(20_000_000));
        let mut doc = to_document(&page, &Placement::default(), "short body".into(), 1).unwrap();
        assert_eq!(doc.source["title"].as_str().unwrap().len(), MAX_TITLE_CHARS);
        let warnings = doc.warnings();
        assert!(warnings.contains(&"title truncated from 20000000 to 200000 characters"), "{warnings:?}");
        assert!(warnings.iter().any(|w| w.starts_with("details truncated from ")), "{warnings:?}");
        assert!(doc.source["details"].as_str().unwrap().chars().count() == MAX_DETAILS_CHARS);
        assert_eq!(doc.source["body"], "short body");
        assert!(size(&doc) <= MAX_DOCUMENT_BYTES);
        // Bounding again cuts nothing more and adds no warning.
        let count = doc.warnings().len();
        assert!(bound(&mut doc).is_empty());
        assert_eq!(doc.warnings().len(), count);
    }

    #[test]
    fn cuts_fall_on_char_boundaries() {
        let title = "é".repeat(MAX_TITLE_CHARS + 5);
        let mut doc = Document { id: "x".into(), source: Map::new() };
        doc.source.insert("title".into(), Value::String(title));
        doc.source.insert("path".into(), json!(["ü".repeat(MAX_TITLE_CHARS + 1), "Home"]));
        let warnings = bound(&mut doc);
        assert_eq!(doc.source["title"].as_str().unwrap().chars().count(), MAX_TITLE_CHARS);
        assert_eq!(doc.source["path"][0].as_str().unwrap().chars().count(), MAX_TITLE_CHARS);
        assert_eq!(doc.source["path"][1], "Home");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains(&format!("from {} to {MAX_TITLE_CHARS}", MAX_TITLE_CHARS + 5)));
    }

    #[test]
    fn raw_strings_at_any_depth_are_capped() {
        let long = "a".repeat(MAX_FIELD_CHARS + 10);
        let block = json!({"object": "block", "id": "b1", "type": "paragraph",
            "paragraph": {"rich_text": [{"type": "text", "plain_text": long, "text": {"content": long}}]}});
        let doc = to_document(&block, &Placement::default(), "text".into(), 1).unwrap();
        let item = &doc.source["paragraph"]["rich_text"][0];
        assert_eq!(item["plain_text"].as_str().unwrap().len(), MAX_FIELD_CHARS);
        assert_eq!(item["text"]["content"].as_str().unwrap().len(), MAX_FIELD_CHARS);
        assert_eq!(
            doc.warnings(),
            vec![format!(
                "field `paragraph`: 2 string(s) truncated to {MAX_FIELD_CHARS} characters (longest had {})",
                MAX_FIELD_CHARS + 10
            )]
        );
    }

    #[test]
    fn a_huge_body_is_cut_to_the_document_cap() {
        let body = "word ".repeat(4 * 1024 * 1024); // 20 MiB
        let doc = to_document(&page_titled("Big"), &Placement::default(), body, 1).unwrap();
        let size = size(&doc);
        assert!(size <= MAX_DOCUMENT_BYTES && size > MAX_DOCUMENT_BYTES - 2 * WARNINGS_RESERVE, "{size}");
        assert_eq!(doc.source["title"], "Big");
        assert!(doc.source.contains_key("parent") && doc.source.contains_key("details"), "raw fields are kept");
        let warnings = doc.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("`body` truncated from 20971520 to "), "{warnings:?}");
    }

    #[test]
    fn escapes_count_toward_the_cap() {
        // Each control character serializes as six bytes (\u0001).
        let body = "\u{1}".repeat(3 * 1024 * 1024);
        let doc = to_document(&page_titled("Esc"), &Placement::default(), body, 1).unwrap();
        assert!(size(&doc) <= MAX_DOCUMENT_BYTES, "{}", size(&doc));
    }

    #[test]
    fn raw_fields_are_dropped_largest_first_when_the_body_is_not_enough() {
        let chunk = "r".repeat(MAX_FIELD_CHARS);
        let many: Vec<Value> = (0..60).map(|_| json!({"plain_text": chunk})).collect(); // ~12 MB
        let few: Vec<Value> = (0..2).map(|_| json!({"plain_text": chunk})).collect();
        let block = json!({"object": "block", "id": "b2", "type": "quote",
            "quote": {"rich_text": many}, "extra": few, "has_children": false});
        let doc = to_document(&block, &Placement::default(), "quote".into(), 1).unwrap();
        assert!(size(&doc) <= MAX_DOCUMENT_BYTES);
        assert!(doc.source.get("quote").is_none());
        assert_eq!(doc.source["extra"].as_array().unwrap().len(), 2, "the smaller field stays");
        assert_eq!(doc.source["has_children"], false);
        assert_eq!(doc.source["body"], "quote", "the body is cut only as far as needed");
        let warnings = doc.warnings();
        assert!(warnings.iter().any(|w| w.starts_with("field `quote` of ") && w.contains("dropped")), "{warnings:?}");
    }

    #[test]
    fn a_document_made_only_of_own_fields_still_fits() {
        let mut doc = Document { id: "x".into(), source: Map::new() };
        for key in ["url", "parent_id", "page_id", "created_time", "author"] {
            doc.source.insert(key.into(), Value::String("\u{2}".repeat(MAX_FIELD_CHARS)));
        }
        doc.source.insert("body".into(), Value::String(String::new()));
        doc.source.insert("sync_run".into(), json!(4));
        bound(&mut doc);
        assert!(size(&doc) <= MAX_DOCUMENT_BYTES, "{}", size(&doc));
        assert_eq!(doc.source["sync_run"], 4);
    }

    #[test]
    fn objects_without_id_are_not_documents() {
        assert!(to_document(&json!({"object": "page"}), &Placement::default(), String::new(), 1).is_none());
        assert!(to_document(&json!([1, 2]), &Placement::default(), String::new(), 1).is_none());
    }
}

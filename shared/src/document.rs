//! Documents written to the content index: one per Notion object, `_id` = the Notion id (as the
//! Elastic connector), the raw Notion fields kept, plus normalized fields for search.
//!
//! Everything here is pure and lenient: a missing or oddly shaped field gives an empty value,
//! never an error.

use serde_json::{Map, Value};

/// A document ready for the index: its `_id` and its whole `_source`.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub source: Map<String, Value>,
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
    Some(Document { id, source })
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

    #[test]
    fn objects_without_id_are_not_documents() {
        assert!(to_document(&json!({"object": "page"}), &Placement::default(), String::new(), 1).is_none());
        assert!(to_document(&json!([1, 2]), &Placement::default(), String::new(), 1).is_none());
    }
}

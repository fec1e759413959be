//! The text of Notion objects: titles, rich text, blocks and page properties.

use serde_json::Value;

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

//! Blocks: the type name per version and each type's payload (files linked as this server serves them).

use serde_json::{json, Map, Value};

use super::{iso, parent, rich_text, trash_fields, user_ref, Ctx};
use crate::model::Block;
use crate::version::ApiVersion;

/// The name a block type has in this version.
pub fn block_type_name(v: ApiVersion, btype: &str) -> &str {
    match btype {
        "meeting_notes" if v < ApiVersion::V2026 => "transcription",
        other => other,
    }
}

fn file_payload(ctx: &Ctx, b: &Block) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("caption".into(), rich_text(&b.text));
    let asset = b.extra_id("_file_id").and_then(|id| ctx.store.files.get(&id));
    match (asset, b.extra_str("_external_url")) {
        (Some(a), _) if a.external => {
            m.insert("type".into(), json!("external"));
            m.insert("external".into(), json!({ "url": ctx.files.external_url(&a.id) }));
            m.insert("name".into(), json!(a.name));
        }
        (Some(a), _) => {
            let (url, expiry) = ctx.files.signed_url(&a.id);
            m.insert("type".into(), json!("file"));
            m.insert("file".into(), json!({ "url": url, "expiry_time": expiry }));
            m.insert("name".into(), json!(a.name));
        }
        (None, Some(url)) => {
            m.insert("type".into(), json!("external"));
            m.insert("external".into(), json!({ "url": url }));
            m.insert("name".into(), json!(url.rsplit('/').next().unwrap_or("file")));
        }
        (None, None) => {
            m.insert("type".into(), json!("external"));
            m.insert("external".into(), json!({ "url": "https://example.invalid/missing" }));
            m.insert("name".into(), json!("missing"));
        }
    }
    if b.btype != "file" {
        m.remove("name");
    }
    m
}

fn block_payload(ctx: &Ctx, b: &Block) -> Value {
    let mut m = Map::new();
    match b.btype.as_str() {
        "paragraph" | "bulleted_list_item" | "numbered_list_item" | "quote" | "toggle" | "template" => {
            m.insert("rich_text".into(), rich_text(&b.text));
            m.insert("color".into(), json!("default"));
        }
        "heading_1" | "heading_2" | "heading_3" | "heading_4" => {
            m.insert("rich_text".into(), rich_text(&b.text));
            m.insert("color".into(), json!("default"));
            m.insert("is_toggleable".into(), json!(false));
        }
        "to_do" => {
            m.insert("rich_text".into(), rich_text(&b.text));
            m.insert("color".into(), json!("default"));
            m.insert("checked".into(), json!(false));
        }
        "callout" => {
            m.insert("rich_text".into(), rich_text(&b.text));
            m.insert("color".into(), json!("default"));
            m.insert("icon".into(), json!({ "type": "emoji", "emoji": "💡" }));
        }
        "code" => {
            m.insert("rich_text".into(), rich_text(&b.text));
            m.insert("caption".into(), json!([]));
            m.insert("language".into(), json!("plain text"));
        }
        "equation" => {
            m.insert("expression".into(), json!(b.text));
        }
        "child_page" => {
            let title = ctx.store.pages.get(&b.id).map(|p| p.title.as_str()).unwrap_or(b.text.as_str());
            m.insert("title".into(), json!(title));
        }
        "child_database" => {
            let title = ctx.store.databases.get(&b.id).map(|d| d.title.as_str()).unwrap_or(b.text.as_str());
            m.insert("title".into(), json!(title));
        }
        "synced_block" => {
            let from = b.extra_id("_synced_from").map(|id| json!({ "type": "block_id", "block_id": id }));
            m.insert("synced_from".into(), from.unwrap_or(Value::Null));
        }
        "table_row" => {
            let cells: Vec<Value> = b.text.split('\t').map(rich_text).collect();
            m.insert("cells".into(), Value::Array(cells));
        }
        "link_to_page" => {
            let kind = b.extra_str("_link_type").unwrap_or("page_id");
            let target = b.extra_str("_link_target").unwrap_or("");
            m.insert("type".into(), json!(kind));
            m.insert(kind.into(), json!(target));
        }
        "table_of_contents" => {
            m.insert("color".into(), json!("default"));
        }
        "embed" | "bookmark" => {
            m.insert("url".into(), json!(b.extra_str("_url").unwrap_or("https://example.com")));
            m.insert("caption".into(), rich_text(&b.text));
        }
        "link_preview" => {
            m.insert("url".into(), json!(b.extra_str("_url").unwrap_or("https://example.com")));
        }
        "image" | "video" | "pdf" | "audio" | "file" => {
            m = file_payload(ctx, b);
        }
        "meeting_notes" => {
            m.insert("title".into(), rich_text(&b.text));
            m.insert("status".into(), json!("notes_ready"));
        }
        _ => {
            if !b.text.is_empty() {
                m.insert("rich_text".into(), rich_text(&b.text));
            }
        }
    }
    if let Some(extra) = &b.extra {
        for (k, v) in extra.iter() {
            if !k.starts_with('_') {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(m)
}

pub fn block(ctx: &Ctx, b: &Block) -> Value {
    let type_name = block_type_name(ctx.v, &b.btype);
    let mut obj = Map::new();
    obj.insert("object".into(), json!("block"));
    obj.insert("id".into(), json!(b.id));
    obj.insert("parent".into(), parent(ctx, &b.parent));
    obj.insert("created_time".into(), json!(iso(b.created)));
    obj.insert("last_edited_time".into(), json!(iso(b.last_edited)));
    obj.insert("created_by".into(), user_ref(&b.created_by));
    obj.insert("last_edited_by".into(), user_ref(&b.created_by));
    obj.insert("has_children".into(), json!(ctx.store.has_children(b)));
    trash_fields(ctx.v, &mut obj, b.in_trash);
    obj.insert("type".into(), json!(type_name));
    obj.insert(type_name.into(), block_payload(ctx, b));
    Value::Object(obj)
}

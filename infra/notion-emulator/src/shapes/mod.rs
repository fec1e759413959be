//! JSON shapes of Notion objects, per API version.
//!
//! Blocks (their type names and per-type payloads) are in `blocks`; pages, databases, data sources, users and
//! comments here.

mod blocks;

pub use blocks::{block, block_type_name};

use serde_json::{json, Map, Value};

use crate::files::FileLinks;
use crate::model::{
    Comment, DataSource, Database, Id, Page, Parent, PropKind, PropSchema, PropValue, Store, Ts, User, UserKind,
};
use crate::version::ApiVersion;

/// What rendering needs: the store, the version and how to link files.
pub struct Ctx<'a> {
    pub v: ApiVersion,
    pub store: &'a Store,
    pub files: &'a FileLinks,
}

pub fn iso(ts: Ts) -> String {
    chrono::DateTime::from_timestamp(ts, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub fn user_ref(id: &Id) -> Value {
    json!({ "object": "user", "id": id })
}

/// A plain rich text array (split in 2,000-character items, as Notion does).
pub fn rich_text(text: &str) -> Value {
    if text.is_empty() {
        return json!([]);
    }
    let mut items = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    for chunk in chars.chunks(2000) {
        let s: String = chunk.iter().collect();
        items.push(json!({
            "type": "text",
            "text": { "content": s, "link": null },
            "annotations": {
                "bold": false, "italic": false, "strikethrough": false,
                "underline": false, "code": false, "color": "default"
            },
            "plain_text": s,
            "href": null,
        }));
    }
    Value::Array(items)
}

fn trash_fields(v: ApiVersion, obj: &mut Map<String, Value>, in_trash: bool) {
    obj.insert("in_trash".into(), json!(in_trash));
    if v < ApiVersion::V2026 {
        obj.insert("archived".into(), json!(in_trash));
    }
}

pub fn parent(ctx: &Ctx, p: &Parent) -> Value {
    match p {
        Parent::Workspace => json!({ "type": "workspace", "workspace": true }),
        Parent::Page(id) => json!({ "type": "page_id", "page_id": id }),
        Parent::Block(id) => json!({ "type": "block_id", "block_id": id }),
        Parent::Database(id) => json!({ "type": "database_id", "database_id": id }),
        Parent::DataSource(ds) => {
            let db = ctx.store.data_sources.get(ds).map(|d| d.database_id).unwrap_or(*ds);
            if ctx.v.has_data_sources() {
                json!({ "type": "data_source_id", "data_source_id": ds, "database_id": db })
            } else {
                json!({ "type": "database_id", "database_id": db })
            }
        }
    }
}

pub fn notion_url(id: &Id) -> String {
    format!("https://www.notion.so/{}", id.simple())
}

fn option_id(name: &str) -> String {
    let h = name.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    format!("{:08x}", h as u32)
}

fn option(name: &str) -> Value {
    json!({ "id": option_id(name), "name": name, "color": "default" })
}

/// A row's property value object (without the envelope id/type).
pub fn prop_value(_ctx: &Ctx, page: &Page, schema: &PropSchema, value: &PropValue, people_cap: usize) -> Value {
    match (&schema.kind, value) {
        (PropKind::Title, _) => rich_text(&page.title),
        (PropKind::RichText, PropValue::Text(t)) => rich_text(t),
        (PropKind::RichText, _) => json!([]),
        (PropKind::Select(_), PropValue::Select(Some(s))) => option(s),
        (PropKind::Select(_), _) => Value::Null,
        (PropKind::MultiSelect(_), PropValue::MultiSelect(v)) => Value::Array(v.iter().map(|s| option(s)).collect()),
        (PropKind::MultiSelect(_), _) => json!([]),
        (PropKind::Checkbox, PropValue::Checkbox(b)) => json!(b),
        (PropKind::Checkbox, _) => json!(false),
        (PropKind::Number, PropValue::Number(n)) => json!(n),
        (PropKind::Number, _) => Value::Null,
        (PropKind::People, PropValue::People(ids)) => Value::Array(ids.iter().take(people_cap).map(user_ref).collect()),
        (PropKind::People, _) => json!([]),
        (PropKind::Date, PropValue::Date(Some(d))) => {
            json!({ "start": d, "end": null, "time_zone": null })
        }
        (PropKind::Date, _) => Value::Null,
        (PropKind::Url, PropValue::Url(u)) => json!(u),
        (PropKind::Url, _) => Value::Null,
        (PropKind::CreatedTime, _) => json!(iso(page.created)),
        (PropKind::LastEditedTime, _) => json!(iso(page.last_edited)),
    }
}

/// The schema of a row's data source, if it is a row.
pub fn row_schema<'a>(store: &'a Store, page: &Page) -> Option<&'a DataSource> {
    match page.parent {
        Parent::DataSource(ds) => store.data_sources.get(&ds),
        _ => None,
    }
}

pub fn page(ctx: &Ctx, p: &Page) -> Value {
    let mut props = Map::new();
    if let Some(ds) = row_schema(ctx.store, p) {
        for (i, s) in ds.schema.iter().enumerate() {
            let value = p.props.get(i).unwrap_or(&PropValue::None);
            let mut entry = Map::new();
            entry.insert("id".into(), json!(s.id));
            entry.insert("type".into(), json!(s.kind.type_name()));
            entry.insert(s.kind.type_name().into(), prop_value(ctx, p, s, value, 25));
            props.insert(s.name.clone(), Value::Object(entry));
        }
    } else {
        props.insert("title".into(), json!({ "id": "title", "type": "title", "title": rich_text(&p.title) }));
    }
    let mut obj = Map::new();
    obj.insert("object".into(), json!("page"));
    obj.insert("id".into(), json!(p.id));
    obj.insert("created_time".into(), json!(iso(p.created)));
    obj.insert("last_edited_time".into(), json!(iso(p.last_edited)));
    obj.insert("created_by".into(), user_ref(&p.created_by));
    obj.insert("last_edited_by".into(), user_ref(&p.last_edited_by));
    obj.insert("cover".into(), Value::Null);
    obj.insert("icon".into(), p.icon.as_ref().map(|e| json!({ "type": "emoji", "emoji": e })).unwrap_or(Value::Null));
    obj.insert("parent".into(), parent(ctx, &p.parent));
    trash_fields(ctx.v, &mut obj, p.in_trash);
    obj.insert("is_locked".into(), json!(false));
    obj.insert("properties".into(), Value::Object(props));
    obj.insert("url".into(), json!(notion_url(&p.id)));
    obj.insert("public_url".into(), Value::Null);
    Value::Object(obj)
}

fn schema_config(kind: &PropKind) -> Value {
    match kind {
        PropKind::Select(opts) | PropKind::MultiSelect(opts) => {
            json!({ "options": opts.iter().map(|o| option(o)).collect::<Vec<_>>() })
        }
        PropKind::Number => json!({ "format": "number" }),
        _ => json!({}),
    }
}

pub fn schema(ds: &DataSource) -> Value {
    let mut props = Map::new();
    for s in &ds.schema {
        let mut entry = Map::new();
        entry.insert("id".into(), json!(s.id));
        entry.insert("name".into(), json!(s.name));
        entry.insert("description".into(), json!(""));
        entry.insert("type".into(), json!(s.kind.type_name()));
        entry.insert(s.kind.type_name().into(), schema_config(&s.kind));
        props.insert(s.name.clone(), Value::Object(entry));
    }
    Value::Object(props)
}

pub fn database(ctx: &Ctx, db: &Database) -> Value {
    let mut obj = Map::new();
    obj.insert("object".into(), json!("database"));
    obj.insert("id".into(), json!(db.id));
    obj.insert("created_time".into(), json!(iso(db.created)));
    obj.insert("last_edited_time".into(), json!(iso(db.last_edited)));
    obj.insert("created_by".into(), user_ref(&ctx.store.bot_id));
    obj.insert("last_edited_by".into(), user_ref(&ctx.store.bot_id));
    obj.insert("title".into(), rich_text(&db.title));
    obj.insert("description".into(), json!([]));
    obj.insert("icon".into(), Value::Null);
    obj.insert("cover".into(), Value::Null);
    obj.insert("parent".into(), parent(ctx, &db.parent));
    obj.insert("is_inline".into(), json!(db.is_inline));
    trash_fields(ctx.v, &mut obj, db.in_trash);
    obj.insert("is_locked".into(), json!(false));
    if ctx.v.has_data_sources() {
        let sources: Vec<Value> = db
            .data_sources
            .iter()
            .filter_map(|id| ctx.store.data_sources.get(id))
            .map(|ds| json!({ "id": ds.id, "name": ds.name }))
            .collect();
        obj.insert("data_sources".into(), Value::Array(sources));
    } else if let Some(ds) = db.data_sources.first().and_then(|id| ctx.store.data_sources.get(id)) {
        obj.insert("properties".into(), schema(ds));
    } else {
        obj.insert("properties".into(), json!({}));
    }
    obj.insert("url".into(), json!(notion_url(&db.id)));
    obj.insert("public_url".into(), Value::Null);
    Value::Object(obj)
}

pub fn data_source(ctx: &Ctx, ds: &DataSource) -> Value {
    let db = ctx.store.databases.get(&ds.database_id);
    let mut obj = Map::new();
    obj.insert("object".into(), json!("data_source"));
    obj.insert("id".into(), json!(ds.id));
    obj.insert("created_time".into(), json!(iso(ds.created)));
    obj.insert("last_edited_time".into(), json!(iso(ds.last_edited)));
    obj.insert("created_by".into(), user_ref(&ctx.store.bot_id));
    obj.insert("last_edited_by".into(), user_ref(&ctx.store.bot_id));
    obj.insert("title".into(), rich_text(&ds.name));
    obj.insert("description".into(), json!([]));
    obj.insert("icon".into(), Value::Null);
    obj.insert("cover".into(), Value::Null);
    obj.insert("parent".into(), json!({ "type": "database_id", "database_id": ds.database_id }));
    obj.insert("database_parent".into(), db.map(|d| parent(ctx, &d.parent)).unwrap_or(Value::Null));
    obj.insert("is_inline".into(), json!(db.map(|d| d.is_inline).unwrap_or(false)));
    trash_fields(ctx.v, &mut obj, ds.in_trash);
    obj.insert("properties".into(), schema(ds));
    obj.insert("url".into(), json!(notion_url(&ds.id)));
    obj.insert("public_url".into(), Value::Null);
    Value::Object(obj)
}

pub fn user(store: &Store, u: &User, me: bool) -> Value {
    match &u.kind {
        UserKind::Person { email } => json!({
            "object": "user", "id": u.id, "name": u.name, "avatar_url": null,
            "type": "person", "person": { "email": email }
        }),
        UserKind::Bot if me => json!({
            "object": "user", "id": u.id, "name": u.name, "avatar_url": null, "type": "bot",
            "bot": {
                "owner": { "type": "workspace", "workspace": true },
                "workspace_id": store.workspace_id,
                "workspace_name": store.workspace_name,
                "workspace_limits": { "max_file_upload_size_in_bytes": 5_368_709_120u64 }
            }
        }),
        UserKind::Bot => json!({
            "object": "user", "id": u.id, "name": u.name, "avatar_url": null, "type": "bot", "bot": {}
        }),
    }
}

pub fn comment(store: &Store, c: &Comment) -> Value {
    let parent = match c.parent {
        Parent::Block(id) => json!({ "type": "block_id", "block_id": id }),
        p => json!({ "type": "page_id", "page_id": p.id() }),
    };
    json!({
        "object": "comment",
        "id": c.id,
        "parent": parent,
        "discussion_id": c.discussion_id,
        "created_time": iso(c.created),
        "last_edited_time": iso(c.created),
        "created_by": user_ref(&c.author),
        "rich_text": rich_text(&c.text),
        "display_name": { "type": "user", "resolved_name": store.user_name(&c.author) },
    })
}

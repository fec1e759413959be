//! Databases: a schema from `{name: type}` and a database with its data sources (inline or not).

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{at, parse_parent, Body};
use crate::api::parse_body;
use crate::error::{ApiError, ApiResult};
use crate::model::{Block, DataSource, Database, Parent, PropKind, PropSchema};
use crate::state::App;

/// Options of a select / multi-select property spec: `{"type": "select", "options": ["a", "b"]}`.
fn spec_options(spec: &Value) -> Vec<String> {
    spec.get("options")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| o.as_str().or_else(|| o.get("name").and_then(Value::as_str)))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A property kind from its Notion type name (`"checkbox"`) or `{"type": "select", "options": [...]}`.
fn prop_kind(name: &str, spec: &Value) -> ApiResult<PropKind> {
    let type_name = spec.as_str().or_else(|| spec.get("type").and_then(Value::as_str)).ok_or_else(|| {
        ApiError::validation(format!("property `{name}` should be a type name or an object with a `type`"))
    })?;
    Ok(match type_name {
        "title" => PropKind::Title,
        "rich_text" => PropKind::RichText,
        "select" => PropKind::Select(spec_options(spec)),
        "multi_select" => PropKind::MultiSelect(spec_options(spec)),
        "checkbox" => PropKind::Checkbox,
        "number" => PropKind::Number,
        "people" => PropKind::People,
        "date" => PropKind::Date,
        "url" => PropKind::Url,
        "created_time" => PropKind::CreatedTime,
        "last_edited_time" => PropKind::LastEditedTime,
        other => return Err(ApiError::validation(format!("property `{name}`: unsupported type `{other}`"))),
    })
}

/// The schema of a new data source: `{name: type}` in the given order, with a title property (`title_property`,
/// default `Name`) first unless one is given. No `properties`: the generated workspaces' standard schema.
fn database_schema(body: &Body) -> ApiResult<Vec<PropSchema>> {
    let Some(props) = body.get("properties") else {
        return Ok(crate::gen::builder::Builder::standard_schema());
    };
    let props = props.as_object().ok_or_else(|| ApiError::validation("properties should be an object {name: type}"))?;
    let mut schema = Vec::new();
    for (i, (name, spec)) in props.iter().enumerate() {
        let kind = prop_kind(name, spec)?;
        let id = if kind == PropKind::Title { "title".to_string() } else { format!("p{i}%3A{}", name.len()) };
        schema.push(PropSchema { id, name: name.clone(), kind });
    }
    match schema.iter().filter(|s| s.kind == PropKind::Title).count() {
        0 => {
            let name = body.get("title_property").and_then(Value::as_str).unwrap_or("Name").to_string();
            schema.insert(0, PropSchema { id: "title".into(), name, kind: PropKind::Title });
        }
        1 => {}
        _ => return Err(ApiError::validation("a database has exactly one title property")),
    }
    let mut names = std::collections::HashSet::new();
    if let Some(dup) = schema.iter().find(|s| !names.insert(s.name.as_str())) {
        return Err(ApiError::validation(format!("property `{}` is given twice", dup.name)));
    }
    Ok(schema)
}

/// `POST /__control/databases` `{parent?, title, properties?, title_property?, data_sources?, created_time?, at?}`:
/// a database with `data_sources` (default 1) data sources sharing one schema, under the workspace (default), a page
/// or a block (then inline, with its `child_database` block). Rows are added with `POST /__control/data_sources/{id}/rows`.
pub async fn create_database(State(app): State<App>, body: Bytes) -> ApiResult<Json<Value>> {
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let created = if body.contains_key("created_time") { at(&body, "created_time")? } else { ts };
    let title = body.get("title").and_then(Value::as_str).unwrap_or_default().to_string();
    let schema = database_schema(&body)?;
    let sources = match body.get("data_sources") {
        None => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=10).contains(n))
            .ok_or_else(|| ApiError::validation("data_sources should be a number 1..=10"))? as usize,
    };
    let mut store = app.store_mut();
    let parent = parse_parent(&store, body.get("parent").unwrap_or(&json!({"type": "workspace"})))?;
    let container = match parent {
        Parent::Workspace => None,
        Parent::Page(c) | Parent::Block(c) => Some(c),
        _ => return Err(ApiError::validation("a database's parent should be the workspace, a page or a block")),
    };
    let id = Uuid::new_v4();
    let mut ds_ids = Vec::new();
    for i in 0..sources {
        let ds = Uuid::new_v4();
        let name = if i == 0 { title.clone() } else { format!("{title} (source {})", i + 1) };
        store.data_sources.insert(
            ds,
            DataSource {
                id: ds,
                database_id: id,
                name,
                schema: schema.clone(),
                rows: Vec::new(),
                created,
                last_edited: ts,
                in_trash: false,
            },
        );
        ds_ids.push(ds);
    }
    store.databases.insert(
        id,
        Database {
            id,
            parent,
            title: title.clone(),
            is_inline: container.is_some(),
            data_sources: ds_ids.clone(),
            created,
            last_edited: ts,
            in_trash: false,
        },
    );
    if let Some(c) = container {
        let bot = store.bot_id;
        store.blocks.insert(
            id,
            Block {
                id,
                parent,
                btype: "child_database".into(),
                text: title.clone(),
                extra: None,
                created,
                last_edited: ts,
                created_by: bot,
                in_trash: false,
            },
        );
        store.children.entry(c).or_default().push(id);
        store.touch_block(&id, ts);
    }
    let mut created_ids = ds_ids.clone();
    created_ids.push(id);
    app.note_created(&created_ids);
    let properties: Vec<Value> =
        schema.iter().map(|s| json!({"id": s.id, "name": s.name, "type": s.kind.type_name()})).collect();
    Ok(Json(json!({
        "id": id, "object": "database", "title": title, "data_source_id": ds_ids[0],
        "data_sources": ds_ids, "properties": properties, "last_edited_time": crate::shapes::iso(ts),
    })))
}

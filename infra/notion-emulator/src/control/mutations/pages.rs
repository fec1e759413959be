//! Pages: create a page or a database row (with properties and blocks), edit one.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::blocks::insert_blocks;
use super::lifecycle::attach;
use super::{at, parse_parent, Body};
use crate::api::{parse_body, parse_id};
use crate::error::{ApiError, ApiResult};
use crate::model::{Id, Page, Parent, PropKind, PropValue, Store};
use crate::state::App;

fn prop_value(kind: &PropKind, v: &Value) -> PropValue {
    match kind {
        PropKind::RichText => PropValue::Text(v.as_str().unwrap_or_default().to_string()),
        PropKind::Select(_) => PropValue::Select(v.as_str().map(str::to_string)),
        PropKind::MultiSelect(_) => PropValue::MultiSelect(
            v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default(),
        ),
        PropKind::Checkbox => PropValue::Checkbox(v.as_bool().unwrap_or(false)),
        PropKind::Number => PropValue::Number(v.as_f64()),
        PropKind::People => PropValue::People(
            v.as_array()
                .map(|a| a.iter().filter_map(Value::as_str).filter_map(|s| Uuid::parse_str(s).ok()).collect())
                .unwrap_or_default(),
        ),
        PropKind::Date => PropValue::Date(v.as_str().map(str::to_string)),
        PropKind::Url => PropValue::Url(v.as_str().map(str::to_string)),
        _ => PropValue::None,
    }
}

/// Apply `{name: value}` properties to a row.
fn apply_props(store: &mut Store, page_id: &Id, props: &Map<String, Value>) -> ApiResult<()> {
    let Some(Parent::DataSource(ds)) = store.pages.get(page_id).map(|p| p.parent) else {
        return Err(ApiError::validation("only database rows have properties besides the title"));
    };
    let schema = store.data_sources.get(&ds).map(|d| d.schema.clone()).unwrap_or_default();
    let page = store.pages.get_mut(page_id).ok_or_else(|| ApiError::not_found("page", page_id))?;
    page.props.resize(schema.len(), PropValue::None);
    for (name, v) in props {
        let idx = schema
            .iter()
            .position(|s| s.name == *name || s.id == *name)
            .ok_or_else(|| ApiError::validation(format!("no property `{name}`")))?;
        if schema[idx].kind == PropKind::Title {
            page.title = v.as_str().unwrap_or_default().to_string();
        } else {
            page.props[idx] = prop_value(&schema[idx].kind, v);
        }
    }
    Ok(())
}

fn page_json(p: &Page, blocks: Vec<Id>) -> Value {
    json!({ "id": p.id, "object": "page", "title": p.title, "last_edited_time": crate::shapes::iso(p.last_edited), "blocks": blocks })
}

/// Largest title `title_repeat` builds (bytes): far beyond Notion's limits, small enough for a test machine.
const MAX_REPEATED_TITLE: usize = 64 * 1024 * 1024;

/// `title`, repeated `title_repeat` times when given: built here, so that a test can make a 20 MB title without
/// sending 20 MB (axum refuses bodies over 2 MB).
fn page_title(body: &Body) -> ApiResult<String> {
    let title = body.get("title").and_then(Value::as_str).unwrap_or_default();
    let Some(raw) = body.get("title_repeat").filter(|v| !v.is_null()) else {
        return Ok(title.to_string());
    };
    let n = raw
        .as_u64()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::validation("title_repeat should be a positive integer"))?;
    let total = (title.len() as u64).saturating_mul(n);
    if total > MAX_REPEATED_TITLE as u64 {
        return Err(ApiError::validation(format!(
            "title_repeat would build {total} bytes; at most {MAX_REPEATED_TITLE} are allowed"
        )));
    }
    Ok(title.repeat(n as usize))
}

fn new_page(store: &mut Store, body: &Body, parent: Parent) -> ApiResult<(Id, Value)> {
    let ts = at(body, "at")?;
    let created = if body.contains_key("created_time") { at(body, "created_time")? } else { ts };
    let title = page_title(body)?;
    let id = Uuid::new_v4();
    let props = match parent {
        Parent::DataSource(ds) => {
            vec![PropValue::None; store.data_sources.get(&ds).map(|d| d.schema.len()).unwrap_or(0)]
        }
        _ => Vec::new(),
    };
    let icon = body.get("icon").and_then(Value::as_str).map(str::to_string);
    let author = store.bot_id;
    store.pages.insert(
        id,
        Page {
            id,
            parent,
            title,
            props,
            icon,
            created,
            last_edited: ts,
            created_by: author,
            last_edited_by: author,
            in_trash: false,
        },
    );
    attach(store, id, parent, ts);
    if let Some(props) = body.get("properties").and_then(Value::as_object) {
        apply_props(store, &id, props)?;
    }
    let specs =
        body.get("blocks").or_else(|| body.get("children")).and_then(Value::as_array).cloned().unwrap_or_default();
    let blocks = insert_blocks(store, id, &specs, None, ts, 0)?;
    let p = store.pages.get(&id).ok_or_else(|| ApiError::not_found("page", id))?;
    Ok((id, page_json(p, blocks)))
}

/// `POST /__control/pages` `{parent, title, title_repeat?, blocks?, properties?, created_time?, at?}`
pub async fn create_page(State(app): State<App>, body: Bytes) -> ApiResult<Json<Value>> {
    let body = parse_body(&body)?;
    let mut store = app.store_mut();
    let parent = parse_parent(&store, body.get("parent").unwrap_or(&json!({"type": "workspace"})))?;
    let (id, out) = new_page(&mut store, &body, parent)?;
    app.note_created(&[id]);
    Ok(Json(out))
}

/// `POST /__control/data_sources/{id}/rows` `{title, properties?, blocks?, created_time?, at?}`
pub async fn add_row(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let ds = parse_id(&raw, "data_source")?;
    let body = parse_body(&body)?;
    let mut store = app.store_mut();
    if !store.data_sources.contains_key(&ds) {
        return Err(ApiError::not_found("data source", ds));
    }
    let (id, out) = new_page(&mut store, &body, Parent::DataSource(ds))?;
    app.note_created(&[id]);
    Ok(Json(out))
}

/// `PATCH /__control/pages/{id}` `{title?, text?, append_text?, properties?, icon?, at?}`: bumps last_edited_time.
pub async fn update_page(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "page")?;
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let mut store = app.store_mut();
    if !store.pages.contains_key(&id) {
        return Err(ApiError::not_found("page", id));
    }
    if let Some(props) = body.get("properties").and_then(Value::as_object) {
        apply_props(&mut store, &id, props)?;
    }
    let mut touched = Vec::new();
    if let Some(text) = body.get("text").and_then(Value::as_str) {
        let first = store
            .visible_children(&id)
            .find(|b| !b.text.is_empty() && !matches!(b.btype.as_str(), "child_page" | "child_database" | "table_row"))
            .map(|b| b.id);
        match first {
            Some(bid) => {
                if let Some(b) = store.blocks.get_mut(&bid) {
                    b.text = text.to_string();
                    b.last_edited = ts;
                }
                touched.push(bid);
            }
            None => touched.extend(insert_blocks(
                &mut store,
                id,
                &[json!({"type": "paragraph", "text": text})],
                None,
                ts,
                0,
            )?),
        }
    }
    if let Some(text) = body.get("append_text").and_then(Value::as_str) {
        touched.extend(insert_blocks(&mut store, id, &[json!({"type": "paragraph", "text": text})], None, ts, 0)?);
    }
    let bot = store.bot_id;
    let page = store.pages.get_mut(&id).ok_or_else(|| ApiError::not_found("page", id))?;
    if let Some(t) = body.get("title").and_then(Value::as_str) {
        page.title = t.to_string();
    }
    if let Some(icon) = body.get("icon") {
        page.icon = icon.as_str().map(str::to_string);
    }
    page.last_edited = ts;
    page.last_edited_by = bot;
    let p = store.pages.get(&id).ok_or_else(|| ApiError::not_found("page", id))?;
    Ok(Json(page_json(p, touched)))
}

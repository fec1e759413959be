//! Blocks: insert (nested) block specs, append children, edit and delete a block.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::at;
use crate::api::{parse_body, parse_id};
use crate::error::{ApiError, ApiResult};
use crate::model::{now_minute, Block, Id, Parent, Store, Ts};
use crate::state::App;

/// Plain text of a block spec: `text`, or the Notion-shaped `<type>.rich_text`.
fn spec_text(spec: &Value, btype: &str) -> String {
    if let Some(t) = spec.get("text").and_then(Value::as_str) {
        return t.to_string();
    }
    spec.get(btype)
        .and_then(|p| p.get("rich_text"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    i.get("plain_text").or_else(|| i.get("text").and_then(|t| t.get("content"))).and_then(Value::as_str)
                })
                .collect::<String>()
        })
        .unwrap_or_default()
}

/// Insert blocks described by `specs` into `container` (after `after`, or at the end). Returns the new ids.
pub(super) fn insert_blocks(
    store: &mut Store,
    container: Id,
    specs: &[Value],
    after: Option<Id>,
    ts: Ts,
    depth: usize,
) -> ApiResult<Vec<Id>> {
    if depth > 64 {
        return Err(ApiError::validation("blocks are nested too deeply"));
    }
    let parent = if store.pages.contains_key(&container) { Parent::Page(container) } else { Parent::Block(container) };
    let mut pos = match after {
        Some(a) => {
            let list = store.children.get(&container).map(|v| v.as_slice()).unwrap_or(&[]);
            Some(
                list.iter()
                    .position(|x| *x == a)
                    .ok_or_else(|| ApiError::validation("`after` is not a child of this block"))?
                    + 1,
            )
        }
        None => None,
    };
    let mut ids = Vec::new();
    for spec in specs {
        let btype = spec.get("type").and_then(Value::as_str).unwrap_or("paragraph").to_string();
        if matches!(btype.as_str(), "child_page" | "child_database") {
            return Err(ApiError::validation("create pages with POST /__control/pages"));
        }
        let text = spec_text(spec, &btype);
        let mut extra = spec.get("extra").and_then(Value::as_object).cloned().unwrap_or_default();
        for (key, internal) in
            [("file_id", "_file_id"), ("url", "_url"), ("synced_from", "_synced_from"), ("link_to", "_link_target")]
        {
            if let Some(v) = spec.get(key) {
                extra.insert(internal.into(), v.clone());
            }
        }
        let id = Uuid::new_v4();
        let block = Block {
            id,
            parent,
            btype,
            text,
            extra: if extra.is_empty() { None } else { Some(Box::new(extra)) },
            created: ts,
            last_edited: ts,
            created_by: store.bot_id,
            in_trash: false,
        };
        store.blocks.insert(id, block);
        let list = store.children.entry(container).or_default();
        match pos.as_mut() {
            Some(p) if *p <= list.len() => {
                list.insert(*p, id);
                *p += 1;
            }
            _ => list.push(id),
        }
        if let Some(kids) = spec.get("children").and_then(Value::as_array) {
            insert_blocks(store, id, kids, None, ts, depth + 1)?;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// `POST /__control/blocks/{id}/children` `{children: [{type, text, children?, extra?, file_id?, url?}], after?, at?}`
pub async fn append_children(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "block")?;
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let specs = body
        .get("children")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| ApiError::validation("children should be an array"))?;
    let after = match body.get("after").and_then(Value::as_str) {
        Some(a) => Some(parse_id(a, "after")?),
        None => None,
    };
    let mut store = app.store_mut();
    if !store.pages.contains_key(&id) && !store.blocks.contains_key(&id) {
        return Err(ApiError::not_found("block", id));
    }
    let ids = insert_blocks(&mut store, id, &specs, after, ts, 0)?;
    if let Some(p) = store.pages.get_mut(&id) {
        p.last_edited = ts;
    } else {
        store.touch_block(&id, ts);
    }
    Ok(Json(json!({ "ids": ids })))
}

/// `PATCH /__control/blocks/{id}` `{text?, type?, extra?, in_trash?, at?}`
pub async fn update_block(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "block")?;
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let mut store = app.store_mut();
    let b = store.blocks.get_mut(&id).ok_or_else(|| ApiError::not_found("block", id))?;
    if let Some(t) = body.get("text").and_then(Value::as_str) {
        b.text = t.to_string();
    }
    if let Some(t) = body.get("type").and_then(Value::as_str) {
        b.btype = t.to_string();
    }
    if let Some(x) = body.get("extra").and_then(Value::as_object) {
        let mut merged = b.extra.as_deref().cloned().unwrap_or_default();
        merged.extend(x.clone());
        b.extra = Some(Box::new(merged));
    }
    if let Some(t) = body.get("in_trash").and_then(Value::as_bool) {
        b.in_trash = t;
    }
    store.touch_block(&id, ts);
    Ok(Json(json!({ "id": id, "last_edited_time": crate::shapes::iso(ts) })))
}

/// `DELETE /__control/blocks/{id}`: moves the block to the trash (as the API's delete does).
pub async fn delete_block(State(app): State<App>, Path(raw): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "block")?;
    let ts = now_minute();
    let mut store = app.store_mut();
    let b = store.blocks.get_mut(&id).ok_or_else(|| ApiError::not_found("block", id))?;
    b.in_trash = true;
    let is_page = b.btype == "child_page";
    if is_page {
        if let Some(p) = store.pages.get_mut(&id) {
            p.in_trash = true;
        }
    }
    store.touch_block(&id, ts);
    Ok(Json(json!({ "id": id, "in_trash": true })))
}

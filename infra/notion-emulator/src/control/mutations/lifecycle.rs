//! Where a page lives and whether it is seen: attach and detach, delete, trash, move, unshare.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::{at, parse_parent};
use crate::api::{parse_body, parse_id};
use crate::error::{ApiError, ApiResult};
use crate::model::{now_minute, Block, Id, Parent, PropValue, Store, Ts};
use crate::state::App;

/// Attach a page to a parent (children list, child_page block, data source rows).
pub(super) fn attach(store: &mut Store, id: Id, parent: Parent, ts: Ts) {
    match parent {
        Parent::Page(c) | Parent::Block(c) => {
            let title = store.pages.get(&id).map(|p| p.title.clone()).unwrap_or_default();
            let in_trash = store.pages.get(&id).is_some_and(|p| p.in_trash);
            store.blocks.insert(
                id,
                Block {
                    id,
                    parent,
                    btype: "child_page".into(),
                    text: title,
                    extra: None,
                    created: ts,
                    last_edited: ts,
                    created_by: store.bot_id,
                    in_trash,
                },
            );
            store.children.entry(c).or_default().push(id);
            store.touch_block(&id, ts);
        }
        Parent::DataSource(ds) => {
            if let Some(d) = store.data_sources.get_mut(&ds) {
                d.rows.push(id);
            }
        }
        _ => {}
    }
}

fn detach(store: &mut Store, id: &Id, ts: Ts) {
    let Some(parent) = store.pages.get(id).map(|p| p.parent) else {
        return;
    };
    match parent {
        Parent::Page(c) | Parent::Block(c) => {
            store.touch_block(id, ts);
            if let Some(list) = store.children.get_mut(&c) {
                list.retain(|x| x != id);
            }
            store.blocks.remove(id);
        }
        Parent::DataSource(ds) => {
            if let Some(d) = store.data_sources.get_mut(&ds) {
                d.rows.retain(|x| x != id);
            }
        }
        _ => {}
    }
}

/// Pages under `id` (itself included), through child_page blocks at any depth.
fn page_subtree(store: &Store, id: &Id) -> Vec<Id> {
    let mut out = vec![*id];
    for b in store.subtree_blocks(id) {
        if store.blocks.get(&b).is_some_and(|x| x.btype == "child_page") && store.pages.contains_key(&b) {
            out.push(b);
        }
    }
    out
}

/// `DELETE /__control/pages/{id}`: gone for good (404), with its sub-pages and blocks.
pub async fn delete_page(State(app): State<App>, Path(raw): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "page")?;
    let ts = now_minute();
    let mut store = app.store_mut();
    if !store.pages.contains_key(&id) {
        return Err(ApiError::not_found("page", id));
    }
    detach(&mut store, &id, ts);
    let pages = page_subtree(&store, &id);
    let blocks = store.subtree_blocks(&id);
    for b in &blocks {
        store.blocks.remove(b);
        store.children.remove(b);
    }
    for p in &pages {
        store.pages.remove(p);
        store.children.remove(p);
    }
    store.comments.retain(|c| c.parent.id().is_none_or(|pid| !pages.contains(&pid) && !blocks.contains(&pid)));
    Ok(Json(json!({ "deleted_pages": pages, "deleted_blocks": blocks.len() })))
}

/// `POST /__control/pages/{id}/trash` `{in_trash?: bool (default true), at?}`: also trashes sub-pages.
pub async fn trash_page(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "page")?;
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let flag = body.get("in_trash").and_then(Value::as_bool).unwrap_or(true);
    let mut store = app.store_mut();
    if !store.pages.contains_key(&id) {
        return Err(ApiError::not_found("page", id));
    }
    let pages = page_subtree(&store, &id);
    for p in &pages {
        if let Some(pg) = store.pages.get_mut(p) {
            pg.in_trash = flag;
            pg.last_edited = ts;
        }
        if let Some(b) = store.blocks.get_mut(p) {
            b.in_trash = flag;
        }
    }
    Ok(Json(json!({ "pages": pages, "in_trash": flag })))
}

/// `POST /__control/pages/{id}/move` `{parent, at?}`
pub async fn move_page(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "page")?;
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let mut store = app.store_mut();
    if !store.pages.contains_key(&id) {
        return Err(ApiError::not_found("page", id));
    }
    let parent = parse_parent(&store, body.get("parent").ok_or_else(|| ApiError::validation("parent is required"))?)?;
    if parent.id() == Some(id) || page_subtree(&store, &id).iter().any(|p| Some(*p) == parent.id()) {
        return Err(ApiError::validation("cannot move a page under itself"));
    }
    detach(&mut store, &id, ts);
    let schema_len = match parent {
        Parent::DataSource(ds) => store.data_sources.get(&ds).map(|d| d.schema.len()),
        _ => None,
    };
    if let Some(p) = store.pages.get_mut(&id) {
        p.parent = parent;
        p.last_edited = ts;
        p.props = schema_len.map(|n| vec![PropValue::None; n]).unwrap_or_default();
    }
    attach(&mut store, id, parent, ts);
    Ok(Json(json!({ "id": id, "parent": parent.id() })))
}

/// `POST /__control/pages/{id}/unshare` (or `/objects/{id}/unshare`) `{unshared?: bool (default true)}`
pub async fn unshare(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "object")?;
    let body = parse_body(&body)?;
    let flag = body.get("unshared").and_then(Value::as_bool).unwrap_or(true);
    let mut store = app.store_mut();
    let exists = store.pages.contains_key(&id)
        || store.databases.contains_key(&id)
        || store.data_sources.contains_key(&id)
        || store.blocks.contains_key(&id);
    if !exists {
        return Err(ApiError::not_found("object", id));
    }
    if flag {
        store.unshared.insert(id);
    } else {
        store.unshared.remove(&id);
    }
    Ok(Json(json!({ "id": id, "unshared": flag })))
}

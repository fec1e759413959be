//! `GET /v1/blocks/{id}` and `GET /v1/blocks/{id}/children`.

use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use serde_json::{json, Value};

use crate::api::{parse_id, query_params};
use crate::cursor::{self, page_size_from_query};
use crate::error::{ApiError, ApiResult};
use crate::model::{Block, Id, Parent, Store};
use crate::shapes::{self, Ctx};
use crate::state::App;
use crate::version::ApiVersion;

/// A page or database seen as the block that holds it (for objects that have no block entry).
fn synthetic_block(store: &Store, id: &Id) -> Option<Block> {
    if let Some(p) = store.pages.get(id) {
        return Some(Block {
            id: *id,
            parent: p.parent,
            btype: "child_page".into(),
            text: p.title.clone(),
            extra: None,
            created: p.created,
            last_edited: p.last_edited,
            created_by: p.created_by,
            in_trash: p.in_trash,
        });
    }
    store.databases.get(id).map(|d| Block {
        id: *id,
        parent: d.parent,
        btype: "child_database".into(),
        text: d.title.clone(),
        extra: None,
        created: d.created,
        last_edited: d.last_edited,
        created_by: store.bot_id,
        in_trash: d.in_trash,
    })
}

pub async fn get(
    State(app): State<App>,
    Extension(v): Extension<ApiVersion>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "block")?;
    let links = app.file_links();
    let store = app.store();
    if store.unshared.contains(&id) {
        return Err(ApiError::not_found("block", id));
    }
    let ctx = Ctx { v, store: &store, files: &links };
    if let Some(b) = store.blocks.get(&id) {
        return Ok(Json(shapes::block(&ctx, b)));
    }
    let b = synthetic_block(&store, &id).ok_or_else(|| ApiError::not_found("block", id))?;
    let mut out = shapes::block(&ctx, &b);
    if matches!(b.parent, Parent::Workspace) {
        out["parent"] = json!({ "type": "workspace", "workspace": true });
    }
    Ok(Json(out))
}

pub async fn children(
    State(app): State<App>,
    Extension(v): Extension<ApiVersion>,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "block")?;
    let params = query_params(q.as_deref());
    let page_size = page_size_from_query(params.get("page_size").map(String::as_str))?;
    let mut links = app.file_links();
    if let Some(ttl) = app.config().list_file_url_ttl_secs {
        links.ttl_secs = ttl;
    }
    let store = app.store();
    if store.unshared.contains(&id) {
        return Err(ApiError::not_found("block", id));
    }
    let known = store.pages.contains_key(&id) || store.blocks.contains_key(&id) || store.databases.contains_key(&id);
    if !known {
        return Err(ApiError::not_found("block", id));
    }
    if store.blocks.get(&id).is_some_and(|b| b.btype == "ai_block") {
        return Err(ApiError::validation("Block type ai_block is not supported via the API for your bot type."));
    }
    let source = store.children_source(&id);
    if store.unshared.contains(&source) {
        return Err(ApiError::not_found("block", source));
    }
    let ids: Vec<Id> = store.visible_children(&source).map(|b| b.id).collect();
    let slice = cursor::slice('c', &ids, params.get("start_cursor").map(String::as_str), page_size)?;
    let ctx = Ctx { v, store: &store, files: &links };
    let results: Vec<Value> = ids[slice.start..slice.end]
        .iter()
        .filter_map(|i| store.blocks.get(i))
        .map(|b| shapes::block(&ctx, b))
        .collect();
    Ok(Json(cursor::list("block", results, slice.next_cursor)))
}

//! `GET /v1/comments?block_id=` (unresolved comments only) and `GET /v1/comments/{id}`.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::Value;

use crate::api::{parse_id, query_params};
use crate::cursor::{self, page_size_from_query};
use crate::error::{ApiError, ApiResult, INSUFFICIENT_PERMISSIONS};
use crate::model::{Comment, Id};
use crate::shapes;
use crate::state::App;

/// Reading comments is a capability of its own: 403 `restricted_resource` without it.
fn check_capability(app: &App) -> ApiResult<()> {
    if app.config().capabilities.comments {
        Ok(())
    } else {
        Err(ApiError::restricted(INSUFFICIENT_PERMISSIONS))
    }
}

pub async fn list(State(app): State<App>, RawQuery(q): RawQuery) -> ApiResult<Json<Value>> {
    check_capability(&app)?;
    let params = query_params(q.as_deref());
    let raw = params.get("block_id").ok_or_else(|| {
        ApiError::validation("query failed validation: query.block_id should be defined, instead was `undefined`.")
    })?;
    let id = parse_id(raw, "block")?;
    let page_size = page_size_from_query(params.get("page_size").map(String::as_str))?;
    let store = app.store();
    let exists = store.pages.contains_key(&id) || store.blocks.contains_key(&id);
    if !exists || store.unshared.contains(&id) {
        return Err(ApiError::not_found("block", id));
    }
    let mut found: Vec<&Comment> = store.comments.iter().filter(|c| !c.resolved && c.parent.id() == Some(id)).collect();
    found.sort_by_key(|c| (c.created, c.id));
    let ids: Vec<Id> = found.iter().map(|c| c.id).collect();
    let slice = cursor::slice('m', &ids, params.get("start_cursor").map(String::as_str), page_size)?;
    let results = found[slice.start..slice.end].iter().map(|c| shapes::comment(&store, c)).collect();
    Ok(Json(cursor::list("comment", results, slice.next_cursor)))
}

/// `GET /v1/comments/{id}`: one comment (resolved or not); 404 when unknown or its page/block is
/// unshared or gone.
pub async fn get(State(app): State<App>, Path(raw): Path<String>) -> ApiResult<Json<Value>> {
    check_capability(&app)?;
    let id = parse_id(&raw, "comment")?;
    let store = app.store();
    let comment = store.comments.iter().find(|c| c.id == id).ok_or_else(|| ApiError::not_found("comment", id))?;
    let parent_ok = comment.parent.id().is_some_and(|p| {
        (store.pages.contains_key(&p) || store.blocks.contains_key(&p)) && !store.unshared.contains(&p)
    });
    if !parent_ok {
        return Err(ApiError::not_found("comment", id));
    }
    Ok(Json(shapes::comment(&store, comment)))
}

//! `GET /v1/users/me`, `GET /v1/users`, `GET /v1/users/{id}`.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::Value;

use crate::api::{parse_id, query_params};
use crate::cursor::{self, page_size_from_query};
use crate::error::{ApiError, ApiResult};
use crate::model::Id;
use crate::shapes;
use crate::state::App;

pub async fn me(State(app): State<App>) -> ApiResult<Json<Value>> {
    let store = app.store();
    let bot =
        store.users.iter().find(|u| u.id == store.bot_id).ok_or_else(|| ApiError::not_found("user", store.bot_id))?;
    Ok(Json(shapes::user(&store, bot, true)))
}

pub async fn list(State(app): State<App>, RawQuery(q): RawQuery) -> ApiResult<Json<Value>> {
    let params = query_params(q.as_deref());
    let page_size = page_size_from_query(params.get("page_size").map(String::as_str))?;
    let store = app.store();
    let ids: Vec<Id> = store.users.iter().map(|u| u.id).collect();
    let slice = cursor::slice('u', &ids, params.get("start_cursor").map(String::as_str), page_size)?;
    let results = store.users[slice.start..slice.end].iter().map(|u| shapes::user(&store, u, false)).collect();
    Ok(Json(cursor::list("user", results, slice.next_cursor)))
}

pub async fn get(State(app): State<App>, Path(raw): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "user")?;
    let store = app.store();
    let u = store.users.iter().find(|u| u.id == id).ok_or_else(|| ApiError::not_found("user", id))?;
    Ok(Json(shapes::user(&store, u, u.id == store.bot_id)))
}

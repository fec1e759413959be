//! `GET /v1/users/me`, `GET /v1/users`, `GET /v1/users/{id}` (the last two need the user information capability;
//! `/me`, the bot itself, does not).

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::Value;

use crate::api::{parse_id, query_params};
use crate::config::UserCapability;
use crate::cursor::{self, page_size_from_query};
use crate::error::{ApiError, ApiResult, INSUFFICIENT_PERMISSIONS};
use crate::model::{Id, Store, User};
use crate::shapes;
use crate::state::App;

pub async fn me(State(app): State<App>) -> ApiResult<Json<Value>> {
    let store = app.store();
    let bot =
        store.users.iter().find(|u| u.id == store.bot_id).ok_or_else(|| ApiError::not_found("user", store.bot_id))?;
    Ok(Json(shapes::user(&store, bot, true)))
}

/// The users capability, or 403 `restricted_resource` without user information.
fn users_capability(app: &App) -> ApiResult<UserCapability> {
    let cap = app.config().capabilities.users;
    if cap == UserCapability::None {
        return Err(ApiError::restricted(INSUFFICIENT_PERMISSIONS));
    }
    Ok(cap)
}

/// A user object as the capability allows: without `person.email` under `no_email` (Notion sends `person: {}`).
fn user_shape(store: &Store, u: &User, me: bool, cap: UserCapability) -> Value {
    let mut v = shapes::user(store, u, me);
    if cap == UserCapability::NoEmail && v.get("person").is_some() {
        v["person"] = serde_json::json!({});
    }
    v
}

pub async fn list(State(app): State<App>, RawQuery(q): RawQuery) -> ApiResult<Json<Value>> {
    let cap = users_capability(&app)?;
    let params = query_params(q.as_deref());
    let page_size = page_size_from_query(params.get("page_size").map(String::as_str))?;
    let store = app.store();
    let ids: Vec<Id> = store.users.iter().map(|u| u.id).collect();
    let slice = cursor::slice('u', &ids, params.get("start_cursor").map(String::as_str), page_size)?;
    let results = store.users[slice.start..slice.end].iter().map(|u| user_shape(&store, u, false, cap)).collect();
    Ok(Json(cursor::list("user", results, slice.next_cursor)))
}

pub async fn get(State(app): State<App>, Path(raw): Path<String>) -> ApiResult<Json<Value>> {
    let cap = users_capability(&app)?;
    let id = parse_id(&raw, "user")?;
    let store = app.store();
    let u = store.users.iter().find(|u| u.id == id).ok_or_else(|| ApiError::not_found("user", id))?;
    Ok(Json(user_shape(&store, u, u.id == store.bot_id, cap)))
}

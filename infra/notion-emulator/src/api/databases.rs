//! Databases (`/v1/databases/*`) and data sources (`/v1/data_sources/*`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::Value;

use crate::api::query::{self, QueryOptions};
use crate::api::{parse_body, parse_id};
use crate::error::{ApiError, ApiResult};
use crate::model::{Database, Id, Store};
use crate::shapes::{self, Ctx};
use crate::state::App;
use crate::version::ApiVersion;

const MULTI_SOURCE: &str = "Databases with multiple data sources are not supported in this API version.";

fn find_database<'a>(store: &'a Store, id: &Id) -> ApiResult<&'a Database> {
    if store.unshared.contains(id) {
        return Err(ApiError::not_found("database", id));
    }
    store.databases.get(id).ok_or_else(|| ApiError::not_found("database", id))
}

pub async fn get_database(
    State(app): State<App>,
    Extension(v): Extension<ApiVersion>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "database")?;
    let links = app.file_links();
    let store = app.store();
    let db = find_database(&store, &id)?;
    if !v.has_data_sources() && db.data_sources.len() > 1 {
        return Err(ApiError::validation(MULTI_SOURCE));
    }
    let ctx = Ctx { v, store: &store, files: &links };
    Ok(Json(shapes::database(&ctx, db)))
}

pub async fn query_database(
    State(app): State<App>,
    Extension(v): Extension<ApiVersion>,
    Path(raw): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    if v.has_data_sources() {
        return Err(ApiError::invalid_url());
    }
    let id = parse_id(&raw, "database")?;
    let body = parse_body(&body)?;
    let links = app.file_links();
    let store = app.store();
    let db = find_database(&store, &id)?;
    if db.in_trash {
        return Err(ApiError::not_found("database", id));
    }
    if db.data_sources.len() > 1 {
        return Err(ApiError::validation(MULTI_SOURCE));
    }
    let ds = db.data_sources.first().copied().ok_or_else(|| ApiError::not_found("database", id))?;
    let ctx = Ctx { v, store: &store, files: &links };
    let out = query::run(&ctx, &ds, &body, &QueryOptions { cap: None, list_type: "page" }, &app)?;
    Ok(Json(out))
}

fn find_source(store: &Store, id: &Id) -> ApiResult<()> {
    if store.unshared.contains(id) || !store.data_sources.contains_key(id) {
        return Err(ApiError::not_found("data source", id));
    }
    Ok(())
}

pub async fn get_data_source(
    State(app): State<App>,
    Extension(v): Extension<ApiVersion>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    if !v.has_data_sources() {
        return Err(ApiError::invalid_url());
    }
    let id = parse_id(&raw, "data_source")?;
    let links = app.file_links();
    let store = app.store();
    find_source(&store, &id)?;
    let ds = store.data_sources.get(&id).ok_or_else(|| ApiError::not_found("data source", id))?;
    let ctx = Ctx { v, store: &store, files: &links };
    Ok(Json(shapes::data_source(&ctx, ds)))
}

pub async fn query_data_source(
    State(app): State<App>,
    Extension(v): Extension<ApiVersion>,
    Path(raw): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    if !v.has_data_sources() {
        return Err(ApiError::invalid_url());
    }
    let id = parse_id(&raw, "data_source")?;
    let body = parse_body(&body)?;
    let cap = app.config().query_row_cap;
    let links = app.file_links();
    let store = app.store();
    find_source(&store, &id)?;
    if !store.data_source_listed(&id) {
        return Err(ApiError::not_found("data source", id));
    }
    let ctx = Ctx { v, store: &store, files: &links };
    let out = query::run(&ctx, &id, &body, &QueryOptions { cap: Some(cap), list_type: "page_or_data_source" }, &app)?;
    Ok(Json(out))
}

//! Control API for tests under `/__control/` (no auth): config, stats, minimum, counts, expected, mutations, webhooks.

pub mod mutations;
pub mod webhook;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::api::{parse_body, parse_id, query_params};
use crate::config::{RuntimeConfig, WorkspaceKind};
use crate::error::{ApiError, ApiResult};
use crate::expected;
use crate::limits::{Bucket, Stats};
use crate::minimum;
use crate::state::App;
use crate::version::ApiVersion;

pub fn router(app: App) -> Router {
    Router::new()
        .route("/__control/config", get(get_config).post(set_config))
        .route("/__control/stats", get(stats))
        .route("/__control/stats/reset", post(reset_stats))
        .route("/__control/minimum", get(minimum_calls))
        .route("/__control/counts", get(counts))
        .route("/__control/expected", get(expected_index))
        .route("/__control/files", get(files))
        .route("/__control/reset", post(reset_workspace))
        .route("/__control/revoke", post(revoke))
        .route("/__control/pages", post(mutations::create_page))
        .route("/__control/databases", post(mutations::create_database))
        .route("/__control/comments", post(mutations::add_comment))
        .route("/__control/pages/{id}", axum::routing::patch(mutations::update_page).delete(mutations::delete_page))
        .route("/__control/pages/{id}/trash", post(mutations::trash_page))
        .route("/__control/pages/{id}/move", post(mutations::move_page))
        .route("/__control/pages/{id}/unshare", post(mutations::unshare))
        .route("/__control/objects/{id}/unshare", post(mutations::unshare))
        .route("/__control/blocks/{id}", axum::routing::patch(mutations::update_block).delete(mutations::delete_block))
        .route("/__control/blocks/{id}/children", post(mutations::append_children))
        .route("/__control/data_sources/{id}/rows", post(mutations::add_row))
        .route("/__control/webhooks/emit", post(webhook::emit))
        .route("/__control/webhooks/emit_batch", post(webhook::emit_batch))
        .with_state(app)
}

async fn get_config(State(app): State<App>) -> Json<RuntimeConfig> {
    Json(app.config())
}

/// Merge a partial config (any subset of the fields) into the current one.
async fn set_config(State(app): State<App>, body: Bytes) -> ApiResult<Json<RuntimeConfig>> {
    let patch = parse_body(&body)?;
    let throttle_set = patch.contains_key("throttle_after");
    let mut current = serde_json::to_value(app.config()).map_err(|e| ApiError::validation(e.to_string()))?;
    if let Value::Object(cur) = &mut current {
        for (k, v) in patch {
            cur.insert(k, v);
        }
    }
    let cfg: RuntimeConfig =
        serde_json::from_value(current).map_err(|e| ApiError::validation(format!("invalid config: {e}")))?;
    cfg.validate().map_err(ApiError::validation)?;
    if cfg.rate != app.config().rate || cfg.burst != app.config().burst {
        *app.bucket() = Bucket::default();
    }
    if throttle_set {
        // The one-shot counts from when it is set.
        *app.throttle() = Default::default();
    }
    tracing::info!(config = ?cfg, "config changed");
    app.set_config(cfg.clone());
    Ok(Json(cfg))
}

async fn stats(State(app): State<App>) -> Json<Stats> {
    Json(app.stats().clone())
}

async fn reset_stats(State(app): State<App>) -> Json<Stats> {
    let mut s = app.stats();
    let old = s.clone();
    *s = Stats::default();
    Json(old)
}

fn version_param(q: Option<&str>) -> ApiResult<ApiVersion> {
    let params = query_params(q);
    match params.get("version") {
        None => Ok(ApiVersion::V2025),
        Some(v) => ApiVersion::parse(v).ok_or_else(|| ApiError::validation(format!("unknown version `{v}`"))),
    }
}

async fn minimum_calls(State(app): State<App>, RawQuery(q): RawQuery) -> ApiResult<Json<minimum::Minimum>> {
    let v = version_param(q.as_deref())?;
    let cap = app.config().query_row_cap;
    let store = app.store();
    Ok(Json(minimum::minimum(&store, v, cap)))
}

async fn counts(State(app): State<App>) -> Json<Value> {
    let (kind, seed) = app.workspace();
    let mut c = expected::counts(&app.store());
    c["workspace"] = json!(kind.as_str());
    c["seed"] = json!(seed);
    Json(c)
}

async fn expected_index(State(app): State<App>, RawQuery(q): RawQuery) -> ApiResult<Json<Value>> {
    let v = version_param(q.as_deref())?;
    let params = query_params(q.as_deref());
    let only = match params.get("page_id") {
        Some(raw) => Some(parse_id(raw, "page")?),
        None => None,
    };
    let store = app.store();
    Ok(Json(expected::expected(&store, v, only)))
}

async fn files(State(app): State<App>) -> Json<Value> {
    let links = app.file_links();
    let store = app.store();
    let mut out: Vec<Value> = store
        .files
        .values()
        .map(|f| {
            let url = if f.external { links.external_url(&f.id) } else { links.signed_url(&f.id).0 };
            let blocks: Vec<_> =
                store.blocks.values().filter(|b| b.extra_id("_file_id") == Some(f.id)).map(|b| b.id).collect();
            json!({
                "id": f.id, "name": f.name, "content_type": f.content_type, "size": f.size(),
                "expected_text": f.expected_text, "expectation": f.expectation, "external": f.external,
                "url": url, "block_ids": blocks,
            })
        })
        .collect();
    out.sort_by_key(|f| f["name"].as_str().unwrap_or("").to_string());
    Json(json!({ "files": out }))
}

/// Regenerate the workspace (optionally another size or seed); stats are reset too.
async fn reset_workspace(State(app): State<App>, body: Bytes) -> ApiResult<Json<Value>> {
    let body = parse_body(&body)?;
    let (mut kind, mut seed) = app.workspace();
    if let Some(w) = body.get("workspace").and_then(Value::as_str) {
        kind = w.parse::<WorkspaceKind>().map_err(ApiError::validation)?;
    }
    if let Some(s) = body.get("seed").and_then(Value::as_u64) {
        seed = s;
    }
    let store = tokio::task::spawn_blocking(move || crate::gen::generate(kind, seed))
        .await
        .map_err(|e| ApiError::validation(format!("generation failed: {e}")))?;
    let c = expected::counts(&store);
    *app.store_mut() = store;
    app.forget_created();
    app.set_workspace(kind, seed);
    *app.stats() = Stats::default();
    Ok(Json(json!({ "workspace": kind.as_str(), "seed": seed, "counts": c })))
}

/// Revoke a token (default: the current one): every call with it gets 401.
async fn revoke(State(app): State<App>, body: Bytes) -> ApiResult<Json<RuntimeConfig>> {
    let body = parse_body(&body)?;
    let mut cfg = app.config();
    let token = body.get("token").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| cfg.token.clone());
    let restore = body.get("restore").and_then(Value::as_bool).unwrap_or(false);
    if restore {
        cfg.revoked_tokens.retain(|t| *t != token);
    } else if !cfg.revoked_tokens.contains(&token) {
        cfg.revoked_tokens.push(token);
    }
    app.set_config(cfg.clone());
    Ok(Json(cfg))
}

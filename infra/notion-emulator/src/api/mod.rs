//! The `/v1` Notion API: routing, the guard (auth, version, latency, rate limit, faults) and helpers.

pub mod blocks;
pub mod comments;
pub mod databases;
pub mod files;
pub mod pages;
pub mod query;
pub mod search;
pub mod users;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::config::RuntimeConfig;
use crate::error::{ApiError, ApiResult};
use crate::limits::{self, Fault};
use crate::state::App;
use crate::version::ApiVersion;

/// Marks a response whose connection must be closed without sending it.
#[derive(Clone, Copy, Debug)]
pub struct DropConnection;

pub fn router(app: App) -> Router {
    let v1 = Router::new()
        .route("/v1/users/me", get(users::me))
        .route("/v1/users", get(users::list))
        .route("/v1/users/{id}", get(users::get))
        .route("/v1/search", post(search::search))
        .route("/v1/pages/{id}", get(pages::get))
        .route("/v1/pages/{id}/properties/{property_id}", get(pages::property))
        .route("/v1/blocks/{id}", get(blocks::get))
        .route("/v1/blocks/{id}/children", get(blocks::children))
        .route("/v1/databases/{id}", get(databases::get_database))
        .route("/v1/databases/{id}/query", post(databases::query_database))
        .route("/v1/data_sources/{id}", get(databases::get_data_source))
        .route("/v1/data_sources/{id}/query", post(databases::query_data_source))
        .route("/v1/comments", get(comments::list))
        .route("/v1/comments/{id}", get(comments::get))
        .route_layer(middleware::from_fn_with_state(app.clone(), guard))
        .method_not_allowed_fallback(invalid_url);
    let files = Router::new()
        .route("/files/{id}", get(files::signed))
        .route("/external/{id}", get(files::external))
        .route_layer(middleware::from_fn_with_state(app.clone(), files::guard));
    v1.merge(files).with_state(app)
}

pub async fn invalid_url() -> Response {
    ApiError::invalid_url().into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let raw = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = raw.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Authentication and version check for one request.
pub fn check_request(cfg: &RuntimeConfig, headers: &HeaderMap) -> ApiResult<ApiVersion> {
    match bearer(headers) {
        Some(t) if t == cfg.token && !cfg.revoked_tokens.iter().any(|r| r == t) => {}
        _ => return Err(ApiError::unauthorized()),
    }
    let raw = headers.get("notion-version").ok_or_else(ApiError::missing_version)?;
    let s = raw.to_str().map_err(|_| ApiError::missing_version())?;
    ApiVersion::parse(s).ok_or_else(|| {
        ApiError::validation(format!(
            "Notion-Version header failed validation: Notion-Version header should be a supported version, instead was `{s}`."
        ))
    })
}

pub fn fault_response(f: Fault, cfg: &RuntimeConfig) -> Response {
    match f {
        Fault::Drop => {
            let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            r.extensions_mut().insert(DropConnection);
            r
        }
        Fault::Status429 => {
            ApiError::rate_limited(cfg.retry_after_429.max(1), &cfg.rate_limit_reason).into_response()
        }
        Fault::Status500 => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_server_error", "Unexpected error occurred.").into_response()
        }
        Fault::Status502 => {
            let mut r = (
                StatusCode::BAD_GATEWAY,
                [("content-type", "text/html")],
                "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>",
            )
                .into_response();
            r.headers_mut().insert("cf-ray", HeaderValue::from_static("8f0000000000abcd-IAD"));
            r
        }
        Fault::Status503 => {
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "Notion is unavailable, please try again later. This can occur when the time to respond to a request takes longer than 60 seconds.",
            );
            e.retry_after = cfg.retry_after_503;
            e.into_response()
        }
        Fault::Status504 => edge_html(
            504,
            "<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center><hr><center>cloudflare</center></body></html>".to_string(),
        ),
        Fault::Status520 => cloudflare_page(520, "Web server is returning an unknown error"),
        Fault::Status521 => cloudflare_page(521, "Web server is down"),
        Fault::Status522 => cloudflare_page(522, "Connection timed out"),
        Fault::Status523 => cloudflare_page(523, "Origin is unreachable"),
        Fault::Status524 => cloudflare_page(524, "A timeout occurred"),
        Fault::Status403Html => edge_html(
            403,
            "<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>Attention Required! | Cloudflare</title></head><body><div id=\"cf-wrapper\"><h1>Sorry, you have been blocked</h1><h2>You are unable to access notion.so</h2><p>This website is using a security service to protect itself from online attacks.</p><p>Cloudflare Ray ID: <strong>8f0000000000abcd</strong></p></div></body></html>".to_string(),
        ),
        Fault::Status529 => {
            let mut e = ApiError::new(
                StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                "service_overload",
                "Notion is experiencing high load. Please try again later.",
            );
            e.retry_after = Some(cfg.retry_after_529.max(1));
            e.into_response()
        }
    }
}

/// An HTML answer from the edge proxy (Cloudflare): `content-type: text/html`, `cf-ray`, no JSON, no Notion
/// request id. Clients that expect JSON error objects must cope.
fn edge_html(status: u16, body: String) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut r = (code, [("content-type", "text/html; charset=UTF-8")], body).into_response();
    r.headers_mut().insert("cf-ray", HeaderValue::from_static("8f0000000000abcd-IAD"));
    r.headers_mut().insert("server", HeaderValue::from_static("cloudflare"));
    r
}

/// Cloudflare's own error page for 520–524 (origin errors and timeouts).
fn cloudflare_page(status: u16, what: &str) -> Response {
    edge_html(
        status,
        format!(
            "<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>notion.so | {status}: {what}</title></head><body><div id=\"cf-wrapper\"><h1><span class=\"cf-error-type\">Error</span> <span class=\"cf-error-code\">{status}</span></h1><h2>{what}</h2><p>Cloudflare Ray ID: <strong>8f0000000000abcd</strong></p></div></body></html>"
        ),
    )
}

/// Count a request against the `throttle_after` one-shot: `Some(retry_after)` when it must answer 429. The last
/// 429 clears the switch from the config.
fn throttle_step(app: &App, cfg: &RuntimeConfig) -> Option<u64> {
    let t = cfg.throttle_after?;
    let step = app.throttle().step(&t);
    match step {
        limits::ThrottleStep::Pass => None,
        limits::ThrottleStep::Limit { last } => {
            if last {
                let mut now = app.config();
                if now.throttle_after == Some(t) {
                    now.throttle_after = None;
                    app.set_config(now);
                }
            }
            Some(t.retry_after)
        }
    }
}

async fn guard(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let endpoint = format!("{} {}", req.method(), path);
    app.stats().count_request(&endpoint);
    let cfg = app.config();
    let resp = match check_request(&cfg, req.headers()) {
        Err(e) => e.into_response(),
        Ok(v) => {
            let delay = limits::latency_ms(&cfg);
            if delay > 0 {
                app.stats().delayed += 1;
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let throttled = throttle_step(&app, &cfg);
            let limited = match cfg.effective_rate() {
                Some((rate, burst)) if throttled.is_none() => app.bucket().take(rate, burst, Instant::now()).err(),
                _ => None,
            };
            if let Some(secs) = throttled {
                app.stats().rate_limited += 1;
                ApiError::rate_limited(secs, &cfg.rate_limit_reason).into_response()
            } else if let Some(wait) = limited {
                app.stats().rate_limited += 1;
                ApiError::rate_limited(limits::retry_after_secs(wait), &cfg.rate_limit_reason).into_response()
            } else if let Some(f) = limits::pick_fault(&cfg, rand::random::<f64>()) {
                app.stats().count_fault(f);
                tracing::debug!(endpoint = %endpoint, fault = ?f, "injected fault");
                fault_response(f, &cfg)
            } else {
                req.extensions_mut().insert(v);
                next.run(req).await
            }
        }
    };
    app.stats().count_status(resp.status().as_u16());
    tracing::debug!(endpoint = %endpoint, status = resp.status().as_u16(), "request");
    resp
}

/// Parse an object id from a path segment (with or without dashes).
pub fn parse_id(raw: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw.trim()).map_err(|_| {
        ApiError::validation(format!(
            "path failed validation: path.{what}_id should be a valid uuid, instead was `\"{raw}\"`."
        ))
    })
}

/// A JSON object body (empty body = `{}`).
pub fn parse_body(body: &Bytes) -> ApiResult<Map<String, Value>> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::validation("body failed validation: body should be an object.")),
        Err(e) => Err(ApiError::invalid_json(format!("Error parsing JSON body: {e}"))),
    }
}

pub fn query_params(raw: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect()
}

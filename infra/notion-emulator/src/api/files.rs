//! File bytes: `GET /files/{id}?expires=&sig=` (signed, expiring, S3-like 403s) and `GET /external/{id}`.

use std::time::Duration;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::{fault_response, query_params};
use crate::files::s3_error;
use crate::limits;
use crate::state::App;

fn s3(status: StatusCode, code: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/xml")], s3_error(code)).into_response()
}

/// Latency and faults on file downloads, only when `faults_on_files` is set.
pub async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let cfg = app.config();
    app.stats().file_downloads += 1;
    if cfg.faults_on_files {
        let delay = limits::latency_ms(&cfg);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if let Some(f) = limits::pick_fault(&cfg, rand::random::<f64>()) {
            app.stats().count_fault(f);
            return fault_response(f, &cfg);
        }
    }
    next.run(req).await
}

async fn serve(app: &App, raw: &str) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(raw) else {
        return s3(StatusCode::NOT_FOUND, "NoSuchKey");
    };
    let found = app
        .store()
        .files
        .get(&id)
        .map(|a| (a.content_type.clone(), a.name.replace('"', ""), a.bytes.clone(), a.lazy.clone()));
    let Some((content_type, name, bytes, lazy)) = found else {
        return s3(StatusCode::NOT_FOUND, "NoSuchKey");
    };
    let bytes = match lazy {
        Some(l) => match tokio::task::spawn_blocking(move || l.get()).await {
            Ok(b) => b,
            Err(_) => return s3(StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        },
        None => bytes,
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response()
}

pub async fn signed(State(app): State<App>, Path(raw): Path<String>, RawQuery(q): RawQuery) -> Response {
    let params = query_params(q.as_deref());
    let Ok(id) = uuid::Uuid::parse_str(&raw) else {
        return s3(StatusCode::NOT_FOUND, "NoSuchKey");
    };
    let (Some(expires), Some(sig)) = (params.get("expires").and_then(|e| e.parse::<i64>().ok()), params.get("sig"))
    else {
        return s3(StatusCode::FORBIDDEN, "AccessDenied");
    };
    let links = app.file_links();
    if let Err(code) = links.check(&id, expires, sig) {
        if code == "AccessDenied" {
            app.stats().files_expired += 1;
        }
        return s3(StatusCode::FORBIDDEN, code);
    }
    serve(&app, &raw).await
}

pub async fn external(State(app): State<App>, Path(raw): Path<String>) -> Response {
    let ok = uuid::Uuid::parse_str(&raw).ok().is_some_and(|id| app.store().files.get(&id).is_some_and(|f| f.external));
    if !ok {
        return s3(StatusCode::NOT_FOUND, "NoSuchKey");
    }
    serve(&app, &raw).await
}

//! The sync routes: `POST /syncs` (start a run and its planner), `GET /syncs/{id}`, `GET /syncs`.

use serde_json::{json, Value};

use super::ports::RunStart;
use super::{unavailable, ApiContext, ApiResponse, RECENT_RUNS};
use crate::task::RunKind;

/// `POST /syncs` body, decoded. Errors name the problem (never the body's content).
pub fn decode_sync_request(body: &[u8]) -> Result<RunKind, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(r#"request body must be JSON: {"kind": "full" | "incremental"}"#.into());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("request body is not valid JSON (line {}, column {})", e.line(), e.column()))?;
    let Value::Object(map) = value else {
        return Err(r#"request body must be a JSON object: {"kind": "full" | "incremental"}"#.into());
    };
    match map.get("kind") {
        None => Err(r#"`kind` is required: "full" or "incremental""#.into()),
        Some(Value::String(k)) if k == "full" => Ok(RunKind::Full),
        Some(Value::String(k)) if k == "incremental" => Ok(RunKind::Incremental),
        Some(Value::String(k)) => {
            let shown: String = k.chars().take(40).collect();
            Err(format!(r#"unknown kind {shown:?}: expected "full" or "incremental""#))
        }
        Some(_) => Err(r#"`kind` must be a string: "full" or "incremental""#.into()),
    }
}

pub(super) async fn start_sync(ctx: &ApiContext, body: &[u8]) -> ApiResponse {
    let kind = match decode_sync_request(body) {
        Ok(kind) => kind,
        Err(problem) => return ApiResponse::error(400, problem),
    };
    let run_id = match ctx.runs.start_run(kind).await {
        Ok(RunStart::Started(id)) => id,
        Ok(RunStart::FullRunning(running)) => {
            tracing::info!(kind = kind.as_str(), running, "sync refused: a full sync is running");
            return ApiResponse::json(409, json!({"error": "a full sync is running", "run_id": running}));
        }
        Err(err) => return unavailable("run store", &err),
    };
    if let Err(err) = ctx.planner.start(kind, run_id).await {
        tracing::error!(run_id, kind = kind.as_str(), error = %err, "could not start the planner");
        if let Err(e) = ctx.runs.fail_run(run_id, &format!("could not start the planner: {err}")).await {
            tracing::error!(run_id, error = %e, "could not close the run");
        }
        return ApiResponse::error(502, "could not start the planner");
    }
    tracing::info!(run_id, kind = kind.as_str(), "sync started");
    ApiResponse::json(202, json!({"run_id": run_id, "kind": kind.as_str(), "state": "planning"}))
}

pub(super) async fn get_sync(ctx: &ApiContext, id: &str) -> ApiResponse {
    let Ok(run_id) = id.parse::<u64>() else {
        return ApiResponse::error(400, "run id must be a number");
    };
    match ctx.runs.run(run_id).await {
        Ok(Some(run)) => ApiResponse::json(200, run),
        Ok(None) => ApiResponse::error(404, format!("no sync run {run_id}")),
        Err(err) => unavailable("run store", &err),
    }
}

pub(super) async fn list_syncs(ctx: &ApiContext) -> ApiResponse {
    match ctx.runs.recent(RECENT_RUNS).await {
        Ok(runs) => ApiResponse::json(200, json!({"runs": runs})),
        Err(err) => unavailable("run store", &err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_requests_decode_or_name_the_problem() {
        assert_eq!(decode_sync_request(br#"{"kind":"full"}"#), Ok(RunKind::Full));
        assert_eq!(decode_sync_request(br#" {"kind":"incremental","x":1} "#), Ok(RunKind::Incremental));
        let cases: [(&[u8], &str); 7] = [
            (b"", "must be JSON"),
            (b"{", "not valid JSON (line 1, column 1)"),
            (b"[1]", "must be a JSON object"),
            (br#"{}"#, "`kind` is required"),
            (br#"{"kind":"weekly"}"#, r#"unknown kind "weekly""#),
            (br#"{"kind":"webhook"}"#, r#"unknown kind "webhook""#),
            (br#"{"kind":1}"#, "`kind` must be a string"),
        ];
        for (body, expected) in cases {
            let err = decode_sync_request(body).unwrap_err();
            assert!(err.contains(expected), "{}: {err}", String::from_utf8_lossy(body));
        }
    }
}

//! Engine operations shared by the content store and the run store: refresh, a document's source,
//! and synchronous delete-by-query.

use std::time::Duration;

use elasticsearch::http::Method;
use serde_json::{json, Map, Value};

use super::client::{Payload, SearchClient};
use super::path_segment;
use crate::index::IndexError;

/// `_delete_by_query` runs synchronously; it may take longer than an ordinary request.
const DELETE_BY_QUERY_TIMEOUT: Duration = Duration::from_secs(900);

/// `POST {index}/_refresh`.
pub(crate) async fn refresh(client: &SearchClient, index: &str) -> Result<(), IndexError> {
    let reply = client.json(Method::Post, &format!("{}/_refresh", path_segment(index)), &[], None).await?;
    reply.ok(&format!("refresh of {index}")).map(|_| ())
}

/// `GET {index}/_doc/{id}` → `_source`, `None` when absent.
pub(crate) async fn get_source(
    client: &SearchClient,
    index: &str,
    id: &str,
) -> Result<Option<Map<String, Value>>, IndexError> {
    let path = format!("{}/_doc/{}", path_segment(index), path_segment(id));
    let reply = client.json(Method::Get, &path, &[], None).await?;
    if reply.status == 404 {
        return Ok(None);
    }
    let mut body = reply.ok(&format!("get {id} from {index}"))?;
    match body.get_mut("_source").map(Value::take) {
        Some(Value::Object(source)) => Ok(Some(source)),
        _ => Err(IndexError::Protocol { what: format!("get {id} from {index}"), detail: "no _source".into() }),
    }
}

/// Synchronous `_delete_by_query` with `conflicts=proceed` and a refresh; returns the deleted
/// count. The index is refreshed first so the query sees every write acknowledged before the
/// call (a document re-indexed meanwhile is a version conflict, skipped). A missing index has
/// nothing to delete.
pub(crate) async fn delete_by_query(client: &SearchClient, index: &str, query: &Value) -> Result<u64, IndexError> {
    let reply = client.json(Method::Post, &format!("{}/_refresh", path_segment(index)), &[], None).await?;
    if reply.status == 404 && reply.error_type() == Some("index_not_found_exception") {
        return Ok(0);
    }
    reply.ok(&format!("refresh of {index}"))?;
    let path = format!("{}/_delete_by_query", path_segment(index));
    let params = [
        ("conflicts", "proceed".to_string()),
        ("refresh", "true".to_string()),
        ("wait_for_completion", "true".to_string()),
    ];
    let body = json!({"query": query});
    let reply =
        client.send(Method::Post, &path, &params, Some(Payload::Json(&body)), Some(DELETE_BY_QUERY_TIMEOUT)).await?;
    if reply.status == 404 && reply.error_type() == Some("index_not_found_exception") {
        return Ok(0);
    }
    let body = reply.ok(&format!("delete by query on {index}"))?;
    let deleted = body.get("deleted").and_then(Value::as_u64).unwrap_or(0);
    if let Some(first) = body.get("failures").and_then(Value::as_array).and_then(|f| f.first()) {
        return Err(IndexError::DeleteByQuery { index: index.to_string(), deleted, first: first.to_string() });
    }
    Ok(deleted)
}

//! Helpers of the small companion indices beside a content index (webhook events, pending
//! handshakes): safe document ids and creation with strict mappings.

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Value};

use crate::adapters::search::SearchClient;
use crate::api::ports::EdgeError;

/// A document `_id` for an outside id: kept when short and plain, else hashed.
pub(super) fn safe_doc_id(raw: &str) -> String {
    if !raw.is_empty() && raw.len() <= 128 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        raw.to_string()
    } else {
        use sha2::Digest;
        format!("sha256-{}", hex::encode(sha2::Sha256::digest(raw.as_bytes())))
    }
}

/// Creates a small companion index with explicit (strict) mappings, once per container; an
/// existing index is fine.
pub(super) async fn ensure_small_index(
    client: &SearchClient,
    index: &str,
    properties: Value,
    ready: &AtomicBool,
) -> Result<(), EdgeError> {
    if ready.load(Ordering::Relaxed) {
        return Ok(());
    }
    let body = json!({
        "settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}},
        "mappings": {"dynamic": "strict", "properties": properties},
    });
    let path = format!("/{}", super::path_segment(index));
    let reply = client.json(elasticsearch::http::Method::Put, &path, &[], Some(&body)).await.map_err(EdgeError::new)?;
    if !reply.is_success() && reply.error_type() != Some("resource_already_exists_exception") {
        return Err(EdgeError::new(reply.refused(&format!("create index {index}"))));
    }
    ready.store(true, Ordering::Relaxed);
    Ok(())
}

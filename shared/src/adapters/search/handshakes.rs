//! Pending webhook handshakes on the search engine ([`HandshakeStore`]).

use std::sync::atomic::AtomicBool;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::small_index::{ensure_small_index, safe_doc_id};
use crate::adapters::search::SearchClient;
use crate::api::ports::{EdgeError, HandshakeStore, PendingHandshake};
use crate::queue::BoxFuture;
use crate::secrets::SecretString;

/// Pending handshakes on the search engine: one document per entry in
/// `{index}-webhook-handshakes` (strict mappings; the token is kept in `_source` only, not indexed).
/// Writes refresh, so the next listing sees them.
pub struct SearchHandshakeStore {
    client: SearchClient,
    index: String,
    ready: AtomicBool,
}

impl SearchHandshakeStore {
    pub fn new(client: SearchClient, content_index: &str) -> Self {
        SearchHandshakeStore { client, index: handshakes_index(content_index), ready: AtomicBool::new(false) }
    }

    fn doc_path(&self, id: &str) -> String {
        format!("/{}/_doc/{}", self.index, safe_doc_id(id))
    }
}

/// The pending-handshake index beside a content index.
pub fn handshakes_index(content_index: &str) -> String {
    format!("{content_index}-webhook-handshakes")
}

impl HandshakeStore for SearchHandshakeStore {
    fn put<'a>(&'a self, entry: &'a PendingHandshake) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            let properties = json!({
                "verification_token": {"type": "keyword", "index": false, "doc_values": false},
                "received_at": {"type": "date"},
                "expires_at": {"type": "date"},
            });
            ensure_small_index(&self.client, &self.index, properties, &self.ready).await?;
            let body = json!({
                "verification_token": entry.token.expose(),
                "received_at": entry.received_at.to_rfc3339(),
                "expires_at": entry.expires_at.to_rfc3339(),
            });
            let reply = self
                .client
                .json(
                    elasticsearch::http::Method::Put,
                    &self.doc_path(&entry.id),
                    &[("refresh", "true".to_string())],
                    Some(&body),
                )
                .await
                .map_err(EdgeError::new)?;
            reply.ok("store a pending handshake").map(|_| ()).map_err(EdgeError::new)
        })
    }

    fn all(&self) -> BoxFuture<'_, Result<Vec<PendingHandshake>, EdgeError>> {
        Box::pin(async move {
            let body = json!({"size": 100, "sort": [{"received_at": "desc"}]});
            let path = format!("/{}/_search", self.index);
            let reply = self
                .client
                .json(elasticsearch::http::Method::Post, &path, &[], Some(&body))
                .await
                .map_err(EdgeError::new)?;
            if reply.status == 404 {
                return Ok(vec![]);
            }
            let response = reply.ok("list pending handshakes").map_err(EdgeError::new)?;
            let hits = response.pointer("/hits/hits").and_then(Value::as_array).cloned().unwrap_or_default();
            let date = |hit: &Value, field: &str| {
                hit.pointer(&format!("/_source/{field}"))
                    .and_then(Value::as_str)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
            };
            Ok(hits
                .iter()
                .filter_map(|hit| {
                    Some(PendingHandshake {
                        id: hit.get("_id")?.as_str()?.to_string(),
                        token: SecretString::new(hit.pointer("/_source/verification_token")?.as_str()?.to_string()),
                        received_at: date(hit, "received_at")?,
                        expires_at: date(hit, "expires_at")?,
                    })
                })
                .collect())
        })
    }

    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            let reply = self
                .client
                .json(elasticsearch::http::Method::Delete, &self.doc_path(id), &[("refresh", "true".to_string())], None)
                .await
                .map_err(EdgeError::new)?;
            match reply.status {
                200 | 404 => Ok(()),
                _ => Err(EdgeError::new(reply.refused("remove a pending handshake"))),
            }
        })
    }
}

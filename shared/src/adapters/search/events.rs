//! The webhook event log on the search engine ([`EventLog`]): which event ids had their tasks
//! queued, for de-duplication.

use std::sync::atomic::AtomicBool;

use chrono::Utc;
use serde_json::{json, Value};

use super::small_index::{ensure_small_index, safe_doc_id};
use crate::adapters::search::SearchClient;
use crate::api::ports::{EdgeError, EventLog};
use crate::queue::BoxFuture;

/// `{index}-webhook-events` (strict mappings), written once the event's tasks are queued.
pub struct SearchEventLog {
    client: SearchClient,
    index: String,
    ready: AtomicBool,
}

impl SearchEventLog {
    /// `content_index` is the content index name; the log is `{content_index}-webhook-events`.
    pub fn new(client: SearchClient, content_index: &str) -> Self {
        SearchEventLog { client, index: events_index(content_index), ready: AtomicBool::new(false) }
    }

    fn doc_path(&self, op: &str, event_id: &str) -> String {
        // Notion event ids are UUIDs; anything long or odd is hashed to a safe `_id`.
        format!("/{}/{op}/{}", self.index, safe_doc_id(event_id))
    }
}

/// The event log index beside a content index.
pub fn events_index(content_index: &str) -> String {
    format!("{content_index}-webhook-events")
}

impl EventLog for SearchEventLog {
    fn seen<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<bool, EdgeError>> {
        Box::pin(async move {
            let path = self.doc_path("_doc", event_id);
            let query = [("_source", "false".to_string())];
            let reply = self
                .client
                .json(elasticsearch::http::Method::Get, &path, &query, None)
                .await
                .map_err(EdgeError::new)?;
            match reply.status {
                200 => Ok(reply.body.get("found").and_then(Value::as_bool).unwrap_or(true)),
                404 => Ok(false),
                _ => Err(EdgeError::new(reply.refused("look up webhook event id"))),
            }
        })
    }

    fn record<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            let properties =
                json!({"event_id": {"type": "keyword", "ignore_above": 512}, "received_at": {"type": "date"}});
            ensure_small_index(&self.client, &self.index, properties, &self.ready).await?;
            let body = json!({"event_id": event_id, "received_at": Utc::now().to_rfc3339()});
            let path = self.doc_path("_create", event_id);
            let reply = self
                .client
                .json(elasticsearch::http::Method::Put, &path, &[], Some(&body))
                .await
                .map_err(EdgeError::new)?;
            match reply.status {
                200 | 201 | 409 => Ok(()),
                _ => Err(EdgeError::new(reply.refused("record webhook event id"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_log_ids_are_safe() {
        let log = SearchEventLog::new(
            SearchClient::new(&crate::index::SearchSettings::new("http://127.0.0.1:9", "i")).unwrap(),
            "i",
        );
        assert_eq!(log.doc_path("_create", "4a1b-c2"), "/i-webhook-events/_create/4a1b-c2");
        assert!(log.doc_path("_create", "../x y").starts_with("/i-webhook-events/_create/sha256-"));
    }
}

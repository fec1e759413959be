//! Notion integration webhooks, the pure part: signature check, lenient payload decoding, and the
//! mapping from an event to targeted tasks. The HTTP handling (dedup, runs, queue) is in `crate::api`.
//!
//! Facts (`../shared/reference/notion-api.md` §6): the header is `X-Notion-Signature: sha256=<hex>`,
//! the HMAC-SHA256 of the **raw** body keyed with the subscription's `verification_token`; the
//! one-time handshake body is `{"verification_token": "…"}`; events are signals, not content, so
//! each becomes a task that re-reads the entity from the API.
//!
//! Event → task (one webhook run per event; task ids are stable within that run):
//!
//! | event | task |
//! |---|---|
//! | `page.created`, `.content_updated`, `.properties_updated`, `.moved`, `.undeleted`, `.unlocked` | `Page { page: None }`: the worker fetches the page and re-walks it if the configuration selects it (`crate::sync::scope`) |
//! | `page.deleted` | `DeletePage`: checked with Notion first; only a 404 or a trashed page removes the page document and every document whose `page_id` is the page |
//! | `data_source.*` / `database.*` `created`, `undeleted`, `moved`, `schema_updated` | `Rows` re-query of the whole source |
//! | `data_source.*` / `database.*` `content_updated` | `Rows` re-query of rows edited since the event time less [`ROWS_OVERLAP`] |
//! | `data_source.deleted` / `database.deleted` | `DeletePage` with the source id (see below) |
//! | `comment.created`, `.updated`, `.deleted` | `Comment { comment_id, page_id: data.page_id }` (the worker deletes the document on 404) |
//! | anything else (`page.locked`, `file_upload.*`, `view.*`, linked-database `block` entities, …) | nothing (logged by the caller) |
//!
//! Choices:
//! - On `database.*` events the entity id is used as the rows source id. That is right on API
//!   2022-06-28 (rows come from the database query); on 2025-09-03+ Notion sends `data_source.*`
//!   events for the same changes, and a `database.*` entity id queried as a data source is a 404,
//!   which the worker skips with a warning.
//! - A deleted database or data source reuses `DeletePage`: it deletes the document whose `_id` is
//!   the id and every document whose `page_id` is that id. Row documents belong to their own row
//!   page (their `page_id` is the row), so they stay until the next full sync removes them (or
//!   until Notion's own `page.deleted` events for the rows arrive).
//! - A `Rows` task from a webhook carries only the time window; the worker adds the source's
//!   advanced-rule filter (or skips a source the configuration does not select) when it starts.
//! - Events are hints, never authority: a forged or reordered event can make the worker re-read
//!   an object, not index one outside the selection nor delete one Notion still has.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::task::{RowsCursor, Task};

/// The header Notion signs with (lower-case, as HTTP/2 and API Gateway deliver it).
pub const SIGNATURE_HEADER: &str = "x-notion-signature";

/// How far before the event time a `content_updated` rows re-query looks. Notion rounds
/// `last_edited_time` down to the minute, so at least one minute is needed.
pub const ROWS_OVERLAP: Duration = Duration::minutes(2);

/// The one text every refused signature shows (status 401), whatever the reason: a caller must not
/// learn whether a token is confirmed. The variant (logged with `?`) tells the operator why.
pub const SIGNATURE_REFUSED: &str = "missing or invalid signature";

/// Why a signature was refused. Never carries the token or the expected value; all variants
/// display as [`SIGNATURE_REFUSED`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing or invalid signature")]
    Missing,
    #[error("missing or invalid signature")]
    Malformed,
    #[error("missing or invalid signature")]
    Mismatch,
    /// No confirmed token to check against (checked after the header's format).
    #[error("missing or invalid signature")]
    NoToken,
}

/// Checks `X-Notion-Signature` against the raw body, in constant time (`Mac::verify_slice`). The
/// header's format is checked first, so an empty `token` answers `NoToken` only for a well-formed
/// header.
pub fn verify_signature(raw_body: &[u8], header: Option<&str>, token: &str) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let hex_part = header.strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    let given = hex::decode(hex_part).map_err(|_| SignatureError::Malformed)?;
    if given.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    if token.is_empty() {
        return Err(SignatureError::NoToken);
    }
    let mut mac = new_mac(token);
    mac.update(raw_body);
    mac.verify_slice(&given).map_err(|_| SignatureError::Mismatch)
}

/// The header value Notion would send for this body (tests, emulators, local tools).
pub fn sign(raw_body: &[u8], token: &str) -> String {
    let mut mac = new_mac(token);
    mac.update(raw_body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn new_mac(token: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes()).expect("HMAC takes keys of any length")
}

/// What a POST to the webhook URL carried.
#[derive(Debug, Clone)]
pub enum WebhookBody {
    /// The one-time subscription handshake. `Debug` of the token prints nothing.
    Handshake {
        verification_token: crate::secrets::SecretString,
    },
    Event(WebhookEvent),
}

/// `{id, type, entity}` of an object named by an event.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct EntityRef {
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: String,
    #[serde(default, rename = "type", deserialize_with = "lenient_string")]
    pub kind: String,
}

/// An event, decoded leniently: every field may be missing; `data` is kept as it came.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct WebhookEvent {
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: String,
    #[serde(default, rename = "type", deserialize_with = "lenient_string")]
    pub kind: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub timestamp: String,
    #[serde(default, deserialize_with = "lenient_entity")]
    pub entity: EntityRef,
    #[serde(default)]
    pub data: Value,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub attempt_number: u32,
}

impl WebhookEvent {
    /// `data.parent` as `{id, type}`, if present.
    pub fn parent(&self) -> Option<EntityRef> {
        let parent = self.data.get("parent")?;
        Some(EntityRef {
            id: parent.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
            kind: parent.get("type").and_then(Value::as_str).unwrap_or_default().to_string(),
        })
    }

    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.timestamp).ok().map(|t| t.with_timezone(&Utc))
    }
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        _ => String::new(),
    })
}

fn lenient_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(Value::deserialize(d)?.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0))
}

fn lenient_entity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<EntityRef, D::Error> {
    let value = Value::deserialize(d)?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

/// Why a body is not a webhook at all (the caller answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("webhook body is not valid JSON (line {line}, column {column})")]
    Json { line: usize, column: usize },
    #[error("webhook body must be a JSON object")]
    NotAnObject,
    #[error("webhook event has no `id`")]
    NoId,
    #[error("webhook event has no `type`")]
    NoType,
}

/// Decodes a webhook body: the handshake, or an event. Never panics, on any bytes.
pub fn decode_body(raw_body: &[u8]) -> Result<WebhookBody, PayloadError> {
    let value: Value =
        serde_json::from_slice(raw_body).map_err(|e| PayloadError::Json { line: e.line(), column: e.column() })?;
    let Value::Object(map) = &value else {
        return Err(PayloadError::NotAnObject);
    };
    if let Some(Value::String(token)) = map.get("verification_token") {
        if !map.contains_key("type") && !token.is_empty() {
            return Ok(WebhookBody::Handshake { verification_token: token.as_str().into() });
        }
    }
    let event: WebhookEvent = serde_json::from_value(value).map_err(|_| PayloadError::NotAnObject)?;
    if event.id.is_empty() {
        return Err(PayloadError::NoId);
    }
    if event.kind.is_empty() {
        return Err(PayloadError::NoType);
    }
    Ok(WebhookBody::Event(event))
}

/// The tasks an event asks for, with task ids unique within the event's run. Empty = ignored.
pub fn tasks_for_event(event: &WebhookEvent) -> Vec<(String, Task)> {
    let id = event.entity.id.trim();
    let (family, action) = event.kind.split_once('.').unwrap_or((event.kind.as_str(), ""));
    match (family, action) {
        (_, _) if id.is_empty() => vec![],
        ("page", "created" | "content_updated" | "properties_updated" | "moved" | "undeleted" | "unlocked") => {
            vec![(format!("p:{id}"), Task::Page { page_id: id.to_string(), page: None, path: vec![] })]
        }
        ("page", "deleted") => vec![(format!("delete:{id}"), Task::DeletePage { page_id: id.to_string() })],
        ("data_source" | "database", _) if event.entity.kind == "block" => vec![], // a linked database view
        ("data_source" | "database", "deleted") => {
            vec![(format!("delete:{id}"), Task::DeletePage { page_id: id.to_string() })]
        }
        ("data_source" | "database", "created" | "undeleted" | "moved" | "schema_updated" | "content_updated") => {
            let database_id = match (family, event.parent()) {
                ("data_source", Some(p)) if p.kind == "database" && !p.id.is_empty() => Some(p.id),
                _ => None,
            };
            let filter = if action == "content_updated" {
                event.timestamp().map(|t| {
                    let since = (t - ROWS_OVERLAP).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    json!({"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": since}})
                })
            } else {
                None
            };
            let cursor = RowsCursor::start(id, database_id, filter, vec![]);
            vec![(cursor.task_id(), Task::Rows(cursor))]
        }
        ("comment", "created" | "updated" | "deleted") => {
            let page_id = event
                .data
                .get("page_id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| event.parent().filter(|p| p.kind == "page" && !p.id.is_empty()).map(|p| p.id));
            match page_id {
                Some(page_id) => vec![(format!("comment:{id}"), Task::Comment { comment_id: id.to_string(), page_id })],
                None => vec![],
            }
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "secret_webhook_token";

    #[test]
    fn signature_round_trip_and_refusals() {
        let body = br#"{"id":"e1","type":"page.created"}"#;
        let header = sign(body, TOKEN);
        assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
        assert_eq!(verify_signature(body, Some(&header), TOKEN), Ok(()));
        assert_eq!(verify_signature(b"{\"id\":\"e2\"}", Some(&header), TOKEN), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(body, Some(&header), "other"), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(body, None, TOKEN), Err(SignatureError::Missing));
        assert_eq!(verify_signature(body, Some("sha256=zz"), TOKEN), Err(SignatureError::Malformed));
        assert_eq!(verify_signature(body, Some(&header[7..]), TOKEN), Err(SignatureError::Malformed));
        assert_eq!(verify_signature(body, Some("sha256=abcd"), TOKEN), Err(SignatureError::Malformed));
        assert_eq!(verify_signature(body, Some(&header), ""), Err(SignatureError::NoToken));
        assert_eq!(verify_signature(body, Some("sha256=zz"), ""), Err(SignatureError::Malformed));
        for err in
            [SignatureError::Missing, SignatureError::Malformed, SignatureError::Mismatch, SignatureError::NoToken]
        {
            assert_eq!(err.to_string(), SIGNATURE_REFUSED);
        }
    }

    #[test]
    fn handshake_is_detected_and_debug_hides_the_token() {
        let body = decode_body(br#"{"verification_token":"secret_abc"}"#).unwrap();
        match &body {
            WebhookBody::Handshake { verification_token } => {
                assert_eq!(verification_token.expose(), "secret_abc")
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{body:?}").contains("secret_abc"));
    }

    #[test]
    fn lenient_decoding() {
        let event =
            match decode_body(br#"{"id":"e","type":"page.created","entity":7,"data":null,"attempt_number":"x"}"#) {
                Ok(WebhookBody::Event(e)) => e,
                other => panic!("{other:?}"),
            };
        assert_eq!(event.entity, EntityRef::default());
        assert!(tasks_for_event(&event).is_empty());
        assert_eq!(decode_body(b"[]").unwrap_err(), PayloadError::NotAnObject);
        assert_eq!(decode_body(br#"{"type":"page.created"}"#).unwrap_err(), PayloadError::NoId);
        assert_eq!(decode_body(br#"{"id":"e"}"#).unwrap_err(), PayloadError::NoType);
        assert!(matches!(decode_body(b"{"), Err(PayloadError::Json { .. })));
    }

    fn event(kind: &str, entity_type: &str, data: Value) -> WebhookEvent {
        WebhookEvent {
            id: "evt".into(),
            kind: kind.into(),
            timestamp: "2026-11-25T10:30:45.123Z".into(),
            entity: EntityRef { id: "E1".into(), kind: entity_type.into() },
            data,
            attempt_number: 1,
        }
    }

    #[test]
    fn event_to_task_table() {
        let resync = |id: &str| (format!("p:{id}"), Task::Page { page_id: id.into(), page: None, path: vec![] });
        let delete = || ("delete:E1".to_string(), Task::DeletePage { page_id: "E1".into() });
        let comment = || ("comment:E1".to_string(), Task::Comment { comment_id: "E1".into(), page_id: "P9".into() });
        let page_data = json!({"parent": {"id": "P0", "type": "page"}});
        type Case<'a> = (&'a str, &'a str, Value, Vec<(String, Task)>);
        let cases: Vec<Case> = vec![
            ("page.created", "page", page_data.clone(), vec![resync("E1")]),
            (
                "page.content_updated",
                "page",
                json!({"updated_blocks": [{"id": "b", "type": "block"}]}),
                vec![resync("E1")],
            ),
            ("page.properties_updated", "page", page_data.clone(), vec![resync("E1")]),
            ("page.moved", "page", page_data.clone(), vec![resync("E1")]),
            ("page.undeleted", "page", page_data.clone(), vec![resync("E1")]),
            ("page.unlocked", "page", page_data.clone(), vec![resync("E1")]),
            ("page.locked", "page", page_data.clone(), vec![]),
            ("page.deleted", "page", page_data.clone(), vec![delete()]),
            ("data_source.deleted", "data_source", json!({}), vec![delete()]),
            ("database.deleted", "database", json!({}), vec![delete()]),
            ("database.created", "block", json!({}), vec![]),
            ("comment.created", "comment", json!({"page_id": "P9"}), vec![comment()]),
            ("comment.updated", "comment", json!({"page_id": "P9"}), vec![comment()]),
            ("comment.deleted", "comment", json!({"parent": {"id": "P9", "type": "page"}}), vec![comment()]),
            ("comment.deleted", "comment", json!({"parent": {"id": "B1", "type": "block"}}), vec![]),
            ("file_upload.completed", "file_upload", json!({}), vec![]),
            ("view.updated", "view", json!({}), vec![]),
            ("page.transcription_block.transcript_deleted", "page", json!({}), vec![]),
            ("nonsense", "page", json!({}), vec![]),
        ];
        for (kind, entity_type, data, expected) in cases {
            assert_eq!(tasks_for_event(&event(kind, entity_type, data)), expected, "{kind}");
        }
    }

    #[test]
    fn source_events_requery_rows() {
        for kind in ["data_source.created", "data_source.undeleted", "data_source.moved", "data_source.schema_updated"]
        {
            let tasks =
                tasks_for_event(&event(kind, "data_source", json!({"parent": {"id": "DB", "type": "database"}})));
            let [(id, Task::Rows(c))] = tasks.as_slice() else { panic!("{kind}: {tasks:?}") };
            assert_eq!(id, "rows:E1:0");
            assert_eq!(
                (c.source_id.as_str(), c.database_id.as_deref(), c.filter.as_ref()),
                ("E1", Some("DB"), None),
                "{kind}"
            );
        }
        let tasks = tasks_for_event(&event(
            "database.content_updated",
            "database",
            json!({"parent": {"id": "P", "type": "page"}}),
        ));
        let [(_, Task::Rows(c))] = tasks.as_slice() else { panic!("{tasks:?}") };
        assert_eq!(c.source_id, "E1");
        assert_eq!(c.database_id, None);
        assert_eq!(
            c.filter,
            Some(json!({"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": "2026-11-25T10:28:45Z"}}))
        );
    }
}

//! `POST /__control/webhooks/emit`: build a Notion webhook payload, sign it and POST it to a receiver.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

use crate::api::parse_body;
use crate::error::{ApiError, ApiResult};
use crate::model::{Id, Parent, Store};
use crate::state::App;

/// `sha256=<hex HMAC-SHA256 of the raw body keyed with the verification token>`
pub fn signature(token: &str, body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(token.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

/// The webhook `parent` of an entity, as Notion describes it.
fn parent_of(store: &Store, id: &Id) -> Value {
    let describe = |p: Parent| match p {
        Parent::Workspace => json!({ "id": store.workspace_id, "type": "space" }),
        Parent::Page(pid) => json!({ "id": pid, "type": "page" }),
        Parent::Block(bid) => json!({ "id": bid, "type": "block" }),
        Parent::DataSource(ds) => {
            let db = store.data_sources.get(&ds).map(|d| d.database_id);
            json!({ "id": db, "type": "database", "data_source_id": ds })
        }
        Parent::Database(db) => json!({ "id": db, "type": "database" }),
    };
    if let Some(p) = store.pages.get(id) {
        return describe(p.parent);
    }
    if let Some(d) = store.databases.get(id) {
        return describe(d.parent);
    }
    if let Some(ds) = store.data_sources.get(id) {
        return json!({ "id": ds.database_id, "type": "database" });
    }
    if let Some(c) = store.comments.iter().find(|c| c.id == *id) {
        return describe(c.parent);
    }
    json!({ "id": store.workspace_id, "type": "space" })
}

fn default_data(store: &Store, event: &str, id: &Id) -> Value {
    let mut data = json!({ "parent": parent_of(store, id) });
    if event.ends_with("content_updated") {
        data["updated_blocks"] = json!([{ "id": id, "type": "block" }]);
    }
    if event == "page.properties_updated" {
        data["updated_properties"] = json!(["title"]);
    }
    if event.starts_with("comment.") {
        let page = store.comments.iter().find(|c| c.id == *id).and_then(|c| match c.parent {
            Parent::Page(p) => Some(p),
            Parent::Block(b) => store.owning_page(&b),
            _ => None,
        });
        data["page_id"] = json!(page);
    }
    data
}

/// Body: `{url, verification_token, type, entity:{id, type}, data?, api_version?, attempt_number?, authors?,
/// subscription_id?, verification?: bool}`. With `verification: true` the handshake body
/// `{"verification_token": ...}` is sent instead of an event.
pub async fn emit(State(app): State<App>, body: Bytes) -> ApiResult<Json<Value>> {
    let req = parse_body(&body)?;
    let url =
        req.get("url").and_then(Value::as_str).ok_or_else(|| ApiError::validation("url is required"))?.to_string();
    let token = req
        .get("verification_token")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::validation("verification_token is required"))?
        .to_string();
    let payload = if req.get("verification").and_then(Value::as_bool).unwrap_or(false) {
        json!({ "verification_token": token })
    } else {
        let event = req
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::validation("type is required"))?
            .to_string();
        let entity = req.get("entity").cloned().ok_or_else(|| ApiError::validation("entity {id, type} is required"))?;
        let entity_id =
            entity.get("id").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok()).unwrap_or_default();
        let store = app.store();
        let author = store.users.first().map(|u| u.id).unwrap_or_default();
        let data = req.get("data").cloned().unwrap_or_else(|| default_data(&store, &event, &entity_id));
        json!({
            "id": Uuid::new_v4(),
            "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "workspace_id": store.workspace_id,
            "workspace_name": store.workspace_name,
            "subscription_id": req.get("subscription_id").cloned().unwrap_or_else(|| json!(Uuid::new_v4())),
            "integration_id": store.bot_id,
            "type": event,
            "authors": req.get("authors").cloned().unwrap_or_else(|| json!([{ "id": author, "type": "person" }])),
            "attempt_number": req.get("attempt_number").cloned().unwrap_or(json!(1)),
            "api_version": req.get("api_version").cloned().unwrap_or(json!("2025-09-03")),
            "entity": entity,
            "data": data,
        })
    };
    let raw = serde_json::to_vec(&payload).map_err(|e| ApiError::validation(e.to_string()))?;
    let sig = signature(&token, &raw);
    let sent = app
        .0
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("X-Notion-Signature", &sig)
        .body(raw.clone())
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    app.stats().webhooks_sent += 1;
    let (status, response, error) = match sent {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            (Some(status), Some(text.chars().take(2000).collect::<String>()), None)
        }
        Err(e) => (None, None, Some(e.to_string())),
    };
    Ok(Json(json!({
        "payload": payload,
        "body": String::from_utf8_lossy(&raw),
        "signature": sig,
        "status": status,
        "response": response,
        "error": error,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        let s = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(s, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}

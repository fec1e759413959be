//! `POST /__control/webhooks/emit` and `/emit_batch`: build Notion webhook payloads, sign them and POST them to a
//! receiver (repeated and out of order on request, as Notion's deliveries can be).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use hmac::{Hmac, Mac};
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use uuid::Uuid;

use crate::api::parse_body;
use crate::error::{ApiError, ApiResult};
use crate::gen::rng::SplitMix64;
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

/// Most deliveries of one event `repeat` may ask for (Notion retries up to 8 times; tests may want more).
const MAX_REPEAT: u64 = 100;

fn required_str(req: &Map<String, Value>, key: &str) -> ApiResult<String> {
    req.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::validation(format!("{key} is required")))
}

/// The payload of one emit body (an event, or the handshake with `verification: true`).
fn build_payload(app: &App, req: &Map<String, Value>, token: &str) -> ApiResult<Value> {
    if req.get("verification").and_then(Value::as_bool).unwrap_or(false) {
        return Ok(json!({ "verification_token": token }));
    }
    let event = required_str(req, "type")?;
    let entity = req.get("entity").cloned().ok_or_else(|| ApiError::validation("entity {id, type} is required"))?;
    let entity_id = entity.get("id").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok()).unwrap_or_default();
    let store = app.store();
    let author = store.users.first().map(|u| u.id).unwrap_or_default();
    let data = req.get("data").cloned().unwrap_or_else(|| default_data(&store, &event, &entity_id));
    Ok(json!({
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
    }))
}

/// Sign and POST one payload; the answer describes the delivery.
async fn deliver(app: &App, url: &str, token: &str, payload: &Value) -> ApiResult<Value> {
    let raw = serde_json::to_vec(payload).map_err(|e| ApiError::validation(e.to_string()))?;
    let sig = signature(token, &raw);
    let sent = app
        .0
        .http
        .post(url)
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
    Ok(json!({
        "payload": payload,
        "body": String::from_utf8_lossy(&raw),
        "signature": sig,
        "status": status,
        "response": response,
        "error": error,
    }))
}

/// Send one emit body: `repeat` deliveries of the same event (same `id`), `attempt_number` counting up from the
/// given one (default 1), as Notion's retries and duplicates do. The answer is the last delivery's, with every
/// delivery in `deliveries`.
async fn emit_one(app: &App, req: &Map<String, Value>, url: &str, token: &str) -> ApiResult<Value> {
    let repeat = match req.get("repeat").filter(|v| !v.is_null()) {
        None => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_REPEAT).contains(n))
            .ok_or_else(|| ApiError::validation(format!("repeat should be a number 1..={MAX_REPEAT}")))?,
    };
    let mut payload = build_payload(app, req, token)?;
    let first_attempt = payload.get("attempt_number").and_then(Value::as_u64).unwrap_or(1);
    let is_event = payload.get("attempt_number").is_some();
    let mut deliveries = Vec::new();
    for k in 0..repeat {
        if is_event && repeat > 1 {
            payload["attempt_number"] = json!(first_attempt + k);
        }
        deliveries.push(deliver(app, url, token, &payload).await?);
    }
    let mut out = deliveries.last().cloned().unwrap_or(Value::Null);
    out["deliveries"] = Value::Array(deliveries);
    Ok(out)
}

/// Body: `{url, verification_token, type, entity:{id, type}, data?, api_version?, attempt_number?, authors?,
/// subscription_id?, verification?: bool, repeat?}`. With `verification: true` the handshake body
/// `{"verification_token": ...}` is sent instead of an event.
pub async fn emit(State(app): State<App>, body: Bytes) -> ApiResult<Json<Value>> {
    let req = parse_body(&body)?;
    let url = required_str(&req, "url")?;
    let token = required_str(&req, "verification_token")?;
    Ok(Json(emit_one(&app, &req, &url, &token).await?))
}

/// The order in which `emit_batch` sends its events (indexes into the given list).
pub fn batch_order(len: usize, order: &str, seed: u64) -> ApiResult<Vec<usize>> {
    let mut idx: Vec<usize> = (0..len).collect();
    match order {
        "as_given" => {}
        "reversed" => idx.reverse(),
        "shuffled" => {
            // Fisher-Yates with the workspace generator's RNG: the same seed gives the same order.
            let mut rng = SplitMix64::seed_from_u64(seed);
            for i in (1..len).rev() {
                let j = rng.gen_range(0..=i);
                idx.swap(i, j);
            }
        }
        other => {
            return Err(ApiError::validation(format!(
                "order should be `as_given`, `reversed` or `shuffled`, instead was `{other}`"
            )))
        }
    }
    Ok(idx)
}

/// `POST /__control/webhooks/emit_batch` `{url, verification_token, events: [<emit bodies>], order?, seed?}`:
/// several events, sent one after the other in `order` (`as_given`, the default, `reversed` or `shuffled` by
/// `seed`), as Notion's out-of-order deliveries. Each event may override `url` and `verification_token` and use
/// `repeat`. The answer: `{results: [{index, ...the emit answer}]}` in sending order.
pub async fn emit_batch(State(app): State<App>, body: Bytes) -> ApiResult<Json<Value>> {
    let req = parse_body(&body)?;
    let url = required_str(&req, "url")?;
    let token = required_str(&req, "verification_token")?;
    let events =
        req.get("events").and_then(Value::as_array).ok_or_else(|| ApiError::validation("events should be an array"))?;
    let mut bodies = Vec::new();
    for (i, e) in events.iter().enumerate() {
        bodies.push(
            e.as_object().cloned().ok_or_else(|| ApiError::validation(format!("events[{i}] should be an object")))?,
        );
    }
    let order = req.get("order").and_then(Value::as_str).unwrap_or("as_given");
    let seed = req.get("seed").and_then(Value::as_u64).unwrap_or(0);
    let mut results = Vec::new();
    for i in batch_order(bodies.len(), order, seed)? {
        let e = &bodies[i];
        let url = e.get("url").and_then(Value::as_str).unwrap_or(&url).to_string();
        let token = e.get("verification_token").and_then(Value::as_str).unwrap_or(&token).to_string();
        let mut out = emit_one(&app, e, &url, &token).await?;
        out["index"] = json!(i);
        results.push(out);
    }
    Ok(Json(json!({ "results": results, "order": order })))
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

    #[test]
    fn batch_orders() {
        assert_eq!(batch_order(3, "as_given", 0).unwrap(), [0, 1, 2]);
        assert_eq!(batch_order(3, "reversed", 0).unwrap(), [2, 1, 0]);
        let a = batch_order(10, "shuffled", 7).unwrap();
        assert_eq!(a, batch_order(10, "shuffled", 7).unwrap());
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert!(batch_order(3, "random", 0).is_err());
        assert!(batch_order(0, "shuffled", 1).unwrap().is_empty());
    }
}

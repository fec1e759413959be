//! The webhook routes: `POST /webhooks/notion` (handshake or event, signature checked first),
//! `GET /webhooks/notion/pending` and `POST /webhooks/notion/confirm` (the operator's). The policy
//! is in the module doc of [`crate::api`].

use chrono::Utc;
use serde_json::{json, Value};

use super::ports::{EdgeError, PendingHandshake};
use super::{unavailable, ApiContext, ApiRequest, ApiResponse, MAX_PENDING_HANDSHAKES, UNSIGNED_BODY_LIMIT};
use crate::secrets::SecretString;
use crate::task::{FinalizeMessage, RunKind, TaskMessage};
use crate::webhook::{self, SignatureError, WebhookBody, WebhookEvent};

pub(super) async fn handle_webhook(ctx: &ApiContext, req: &ApiRequest) -> ApiResponse {
    let signed = req.get_header(webhook::SIGNATURE_HEADER).is_some();
    let refusal = if signed {
        // Verified before anything in the body is looked at.
        match check_signature(ctx, req).await {
            Ok(()) => {
                return match webhook::decode_body(&req.body) {
                    Ok(WebhookBody::Event(event)) => accept_event(ctx, &event).await,
                    Ok(WebhookBody::Handshake { verification_token }) => handshake(ctx, &verification_token).await,
                    Err(err) => ApiResponse::error(400, err.to_string()),
                };
            }
            Err(err) => err,
        }
    } else {
        SignatureError::Missing
    };
    // Not signed with the confirmed token: only a small handshake is looked at (Notion signs its
    // handshake with the token it carries, which no one can check yet).
    if req.body.len() <= UNSIGNED_BODY_LIMIT {
        if let Ok(WebhookBody::Handshake { verification_token }) = webhook::decode_body(&req.body) {
            return handshake(ctx, &verification_token).await;
        }
    }
    tracing::warn!(reason = ?refusal, body_bytes = req.body.len(), "webhook refused");
    refused()
}

/// The one answer to every unsigned or wrongly signed request.
fn refused() -> ApiResponse {
    ApiResponse::error(401, webhook::SIGNATURE_REFUSED)
}

/// Records a handshake as pending (never as the verification token) and keeps the pending list
/// bounded: expired entries and all but the [`MAX_PENDING_HANDSHAKES`] newest are removed. The
/// same token again changes nothing. The answer does not depend on the state.
async fn handshake(ctx: &ApiContext, token: &SecretString) -> ApiResponse {
    let now = Utc::now();
    let entry = PendingHandshake::new(token, now);
    let result: Result<bool, EdgeError> = async {
        let mut entries = ctx.handshakes.all().await?;
        let known = entries.iter().any(|e| e.id == entry.id && e.is_live(now));
        if !known {
            ctx.handshakes.put(&entry).await?;
            entries.retain(|e| e.id != entry.id);
            entries.push(entry.clone());
        }
        entries.sort_by(|a, b| b.received_at.cmp(&a.received_at).then_with(|| a.id.cmp(&b.id)));
        let mut kept = 0;
        for e in &entries {
            if e.is_live(now) && kept < MAX_PENDING_HANDSHAKES {
                kept += 1;
            } else if let Err(err) = ctx.handshakes.remove(&e.id).await {
                tracing::warn!(id = %e.id, error = %err, "could not remove a pending handshake");
            }
        }
        Ok(!known)
    }
    .await;
    match result {
        Ok(new) => {
            tracing::info!(
                token_received = true,
                pending_id = %entry.id,
                new,
                "webhook handshake recorded as pending: confirm it with POST /webhooks/notion/confirm"
            );
            ApiResponse::json(200, json!({"status": "received"}))
        }
        Err(err) => unavailable("handshake store", &err),
    }
}

/// The unexpired pending handshakes, newest first, at most [`MAX_PENDING_HANDSHAKES`].
async fn live_handshakes(ctx: &ApiContext) -> Result<Vec<PendingHandshake>, EdgeError> {
    let now = Utc::now();
    let mut entries: Vec<PendingHandshake> =
        ctx.handshakes.all().await?.into_iter().filter(|e| e.is_live(now)).collect();
    entries.sort_by(|a, b| b.received_at.cmp(&a.received_at).then_with(|| a.id.cmp(&b.id)));
    entries.truncate(MAX_PENDING_HANDSHAKES);
    Ok(entries)
}

/// `GET /webhooks/notion/pending` (authenticated): the operator pastes one token into Notion.
pub(super) async fn list_handshakes(ctx: &ApiContext) -> ApiResponse {
    match live_handshakes(ctx).await {
        Ok(entries) => {
            let pending: Vec<Value> = entries
                .iter()
                .map(|e| {
                    json!({
                        "id": e.id,
                        "received_at": e.received_at.to_rfc3339(),
                        "expires_at": e.expires_at.to_rfc3339(),
                        "verification_token": e.token.expose(),
                    })
                })
                .collect();
            ApiResponse::json(200, json!({"pending": pending}))
        }
        Err(err) => unavailable("handshake store", &err),
    }
}

/// `POST /webhooks/notion/confirm` `{"id"}` (authenticated): that pending token becomes the
/// confirmed one (replacing any earlier), then the pending entry is removed.
pub(super) async fn confirm_handshake(ctx: &ApiContext, body: &[u8]) -> ApiResponse {
    let id = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v.get("id").and_then(Value::as_str).map(str::to_string),
        Err(_) => None,
    };
    let Some(id) = id.filter(|i| !i.is_empty()) else {
        return ApiResponse::error(400, r#"request body must be {"id": "<id from GET /webhooks/notion/pending>"}"#);
    };
    let entry = match live_handshakes(ctx).await {
        Ok(entries) => entries.into_iter().find(|e| e.id == id),
        Err(err) => return unavailable("handshake store", &err),
    };
    let Some(entry) = entry else {
        return ApiResponse::error(404, "no pending handshake with this id (unknown or expired)");
    };
    if let Err(err) = ctx.secrets.store_verification_token(entry.token.expose()).await {
        return unavailable("secret store", &err);
    }
    ctx.webhook_token.set(Some(entry.token.clone()));
    if let Err(err) = ctx.handshakes.remove(&entry.id).await {
        tracing::warn!(id = %entry.id, error = %err, "confirmed, but could not remove the pending handshake");
    }
    tracing::info!(id = %entry.id, "webhook verification token confirmed by the operator");
    ApiResponse::json(200, json!({"status": "confirmed", "id": entry.id}))
}

/// Checks the signature against the confirmed token as cached. When it does not match (or none is
/// cached), the secret is re-read, at most once per
/// [`TOKEN_REFRESH_INTERVAL`](super::TOKEN_REFRESH_INTERVAL) (another container may have confirmed
/// a token); a malformed header costs no read.
async fn check_signature(ctx: &ApiContext, req: &ApiRequest) -> Result<(), SignatureError> {
    let header = req.get_header(webhook::SIGNATURE_HEADER);
    let cached = ctx.webhook_token.get();
    let first = webhook::verify_signature(&req.body, header, cached.as_ref().map_or("", |t| t.expose()));
    if !matches!(first, Err(SignatureError::Mismatch | SignatureError::NoToken)) || !ctx.webhook_token.may_refresh() {
        return first;
    }
    match ctx.secrets.verification_token().await {
        Ok(fresh) => {
            ctx.webhook_token.set(fresh.clone());
            match fresh {
                Some(fresh) if cached.as_ref().map(SecretString::expose) != Some(fresh.expose()) => {
                    webhook::verify_signature(&req.body, header, fresh.expose())
                }
                Some(_) => first,
                None => Err(SignatureError::NoToken),
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "could not read the webhook verification token");
            first
        }
    }
}

async fn accept_event(ctx: &ApiContext, event: &WebhookEvent) -> ApiResponse {
    let tasks = webhook::tasks_for_event(event);
    if tasks.is_empty() {
        tracing::info!(event_id = %event.id, event_type = %event.kind, entity_type = %event.entity.kind, "webhook event ignored");
        return ApiResponse::json(200, json!({"status": "ignored", "event_id": event.id}));
    }
    match ctx.events.seen(&event.id).await {
        Ok(false) => {}
        Ok(true) => {
            tracing::info!(event_id = %event.id, event_type = %event.kind, "duplicate webhook event ignored");
            return ApiResponse::json(200, json!({"status": "duplicate", "event_id": event.id}));
        }
        Err(err) => return unavailable("event log", &err),
    }
    let mut run_id = None;
    let result: Result<(u64, usize), EdgeError> = async {
        let id = ctx.runs.create_run(RunKind::Webhook).await?;
        run_id = Some(id);
        let messages: Vec<TaskMessage> =
            tasks.into_iter().map(|(task_id, task)| TaskMessage::new(id, RunKind::Webhook, task_id, task)).collect();
        ctx.runs.tasks_queued(id, &messages).await?;
        ctx.queue.send_tasks(&messages).await.map_err(EdgeError::new)?;
        ctx.runs.planning_done(id, messages.len() as u64).await?;
        ctx.queue.send_finalize(&FinalizeMessage::new(id), ctx.finalize_delay_seconds).await.map_err(EdgeError::new)?;
        Ok((id, messages.len()))
    }
    .await;
    match result {
        Ok((id, tasks)) => {
            // Recorded only now: a failure above leaves the id free for Notion's retry. A retry racing
            // this write queues the tasks twice, which is harmless (tasks are idempotent).
            if let Err(err) = ctx.events.record(&event.id).await {
                tracing::error!(event_id = %event.id, error = %err, "tasks queued, but the event id was not recorded");
            }
            tracing::info!(event_id = %event.id, event_type = %event.kind, run_id = id, tasks, "webhook event queued");
            ApiResponse::json(202, json!({"status": "accepted", "event_id": event.id, "run_id": id, "tasks": tasks}))
        }
        Err(err) => {
            if let Some(id) = run_id {
                if let Err(e) = ctx.runs.fail_run(id, &format!("webhook event {} not queued: {err}", event.id)).await {
                    tracing::error!(run_id = id, error = %e, "could not close the run");
                }
            }
            unavailable("task queue or run store", &err)
        }
    }
}

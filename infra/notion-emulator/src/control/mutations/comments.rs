//! Comments on a page or a block.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{at, parse_parent};
use crate::api::{parse_body, parse_id};
use crate::error::{ApiError, ApiResult};
use crate::model::{Comment, Parent, UserKind};
use crate::state::App;

/// `POST /__control/comments` `{parent, text, resolved?, author?, discussion_id?, at?}`: a comment on a page
/// (`{page_id}`) or a block (`{block_id}`), by `author` (a user id; default the first person user).
pub async fn add_comment(State(app): State<App>, body: Bytes) -> ApiResult<Json<Value>> {
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let mut store = app.store_mut();
    let parent = parse_parent(&store, body.get("parent").ok_or_else(|| ApiError::validation("parent is required"))?)?;
    let on = match parent {
        Parent::Page(id) | Parent::Block(id) => id,
        _ => return Err(ApiError::validation("a comment's parent should be a page_id or a block_id")),
    };
    // A page's id is also its child_page block's id: comments on it are the page's.
    let parent = if store.pages.contains_key(&on) { Parent::Page(on) } else { Parent::Block(on) };
    let author = match body.get("author").and_then(Value::as_str) {
        Some(raw) => {
            let id = parse_id(raw, "author")?;
            if !store.users.iter().any(|u| u.id == id) {
                return Err(ApiError::not_found("user", id));
            }
            id
        }
        None => {
            store.users.iter().find(|u| matches!(u.kind, UserKind::Person { .. })).map(|u| u.id).unwrap_or(store.bot_id)
        }
    };
    let discussion_id = match body.get("discussion_id").and_then(Value::as_str) {
        Some(raw) => parse_id(raw, "discussion")?,
        None => Uuid::new_v4(),
    };
    let comment = Comment {
        id: Uuid::new_v4(),
        parent,
        discussion_id,
        text: body.get("text").and_then(Value::as_str).unwrap_or_default().to_string(),
        created: ts,
        author,
        resolved: body.get("resolved").and_then(Value::as_bool).unwrap_or(false),
    };
    let out = json!({
        "id": comment.id, "parent_id": on, "discussion_id": discussion_id, "author": author,
        "author_name": store.user_name(&author), "created_time": crate::shapes::iso(ts), "resolved": comment.resolved,
    });
    store.comments.push(comment);
    Ok(Json(out))
}

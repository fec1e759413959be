//! Control mutations: add, edit, delete, trash, move and unshare pages; append, edit and delete blocks; add databases
//! and rows.
//!
//! One module per kind of change (`pages`, `lifecycle`, `blocks`, `databases`, `comments`); here, what they share:
//! a mutation's timestamp and its parent.

mod blocks;
mod comments;
mod databases;
mod lifecycle;
mod pages;

pub use blocks::{append_children, delete_block, update_block};
pub use comments::add_comment;
pub use databases::create_database;
pub use lifecycle::{delete_page, move_page, trash_page, unshare};
pub use pages::{add_row, create_page, update_page};

use serde_json::{Map, Value};

use crate::api::parse_id;
use crate::error::{ApiError, ApiResult};
use crate::filter::parse_date;
use crate::model::{now_minute, round_minute, Id, Parent, Store, Ts};

type Body = Map<String, Value>;

/// The timestamp of a mutation: `at` (ISO, rounded down to the minute) or now.
fn at(body: &Body, key: &str) -> ApiResult<Ts> {
    match body.get(key).and_then(Value::as_str) {
        Some(s) => parse_date(s)
            .map(|d| round_minute(d.start))
            .ok_or_else(|| ApiError::validation(format!("`{key}` is not an ISO date"))),
        None => Ok(now_minute()),
    }
}

fn id_field(v: &Value, key: &str) -> ApiResult<Id> {
    let raw =
        v.get(key).and_then(Value::as_str).ok_or_else(|| ApiError::validation(format!("parent.{key} is required")))?;
    parse_id(raw, key.trim_end_matches("_id"))
}

/// `{type:"workspace"}`, `{type:"page_id", page_id}`, `{type:"block_id", block_id}`, `{type:"data_source_id", data_source_id}`
/// (the `type` may be left out when exactly one id key is given).
fn parse_parent(store: &Store, v: &Value) -> ApiResult<Parent> {
    let t = v.get("type").and_then(Value::as_str).map(str::to_string).or_else(|| {
        ["page_id", "block_id", "data_source_id", "workspace"]
            .iter()
            .find(|k| v.get(**k).is_some())
            .map(|k| k.to_string())
    });
    let parent = match t.as_deref() {
        Some("workspace") => Parent::Workspace,
        Some("page_id") => Parent::Page(id_field(v, "page_id")?),
        Some("block_id") => Parent::Block(id_field(v, "block_id")?),
        Some("data_source_id") => Parent::DataSource(id_field(v, "data_source_id")?),
        _ => return Err(ApiError::validation("parent should be workspace, page_id, block_id or data_source_id")),
    };
    let ok = match parent {
        Parent::Workspace => true,
        Parent::Page(id) => store.pages.contains_key(&id),
        Parent::Block(id) => store.blocks.contains_key(&id),
        Parent::DataSource(id) => store.data_sources.contains_key(&id),
        Parent::Database(_) => false,
    };
    if !ok {
        return Err(ApiError::not_found("parent", parent.id().map(|i| i.to_string()).unwrap_or_default()));
    }
    Ok(parent)
}

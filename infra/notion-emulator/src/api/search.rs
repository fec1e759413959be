//! `POST /v1/search`: pages and data sources (databases before 2025-09-03), title match, last_edited_time sort.

use std::collections::HashSet;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{Map, Value};

use crate::api::parse_body;
use crate::config::RuntimeConfig;
use crate::cursor::{self, cursor_from_json, page_size_from_json};
use crate::error::{ApiError, ApiResult};
use crate::model::{Id, Parent, Store, Ts};
use crate::shapes::{self, Ctx};
use crate::state::App;
use crate::version::ApiVersion;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Page,
    Database,
    DataSource,
}

#[derive(Clone, Copy, Debug)]
pub struct Item {
    pub kind: Kind,
    pub id: Id,
    pub last_edited: Ts,
}

/// What a search with no query and no filter can return, for a version, unordered.
pub fn searchable(store: &Store, v: ApiVersion, only: Option<Kind>, query: &str) -> Vec<Item> {
    let q = query.trim().to_lowercase();
    let title_ok = |t: &str| q.is_empty() || t.to_lowercase().contains(&q);
    let mut out = Vec::new();
    if only.is_none_or(|k| k == Kind::Page) {
        for p in store.pages.values() {
            if store.page_listed(p) && title_ok(&p.title) {
                out.push(Item { kind: Kind::Page, id: p.id, last_edited: p.last_edited });
            }
        }
    }
    if v.has_data_sources() {
        if only.is_none_or(|k| k == Kind::DataSource) {
            for ds in store.data_sources.values() {
                if store.data_source_listed(&ds.id) && title_ok(&ds.name) {
                    out.push(Item { kind: Kind::DataSource, id: ds.id, last_edited: ds.last_edited });
                }
            }
        }
    } else if only.is_none_or(|k| k == Kind::Database) {
        for db in store.databases.values() {
            if store.database_listed(&db.id) && title_ok(&db.title) {
                out.push(Item { kind: Kind::Database, id: db.id, last_edited: db.last_edited });
            }
        }
    }
    out
}

/// Salt of the drop roll, so that `search_drop_rate` picks objects unrelated to any other use of the ids.
const DROP_SALT: u64 = 0x5ea5_c4d0_0b1e_55ed;

/// A number in [0, 1) fixed by the id (FNV-1a then a SplitMix64 finaliser): the same on every call and run.
pub fn drop_roll(id: &Id) -> f64 {
    let mut h = DROP_SALT ^ 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Directly shared objects sit under the workspace: Notion guarantees those in search. Sub-pages, rows and the
/// data sources (databases) of inline databases are reached through their parent's share only.
fn directly_shared(store: &Store, item: &Item) -> bool {
    let db_top = |db: &Id| store.databases.get(db).is_some_and(|d| d.parent == Parent::Workspace);
    match item.kind {
        Kind::Page => store.pages.get(&item.id).is_some_and(|p| p.parent == Parent::Workspace),
        Kind::Database => db_top(&item.id),
        Kind::DataSource => store.data_sources.get(&item.id).is_some_and(|ds| db_top(&ds.database_id)),
    }
}

/// What search leaves out on top of trash and unsharing: real search's incompleteness and index lag.
pub struct Omit {
    rate: f64,
    ids: HashSet<Id>,
    recent: HashSet<Id>,
}

impl Omit {
    /// `None` when the config omits nothing (the usual case: the cached list is served as is).
    pub fn new(cfg: &RuntimeConfig, app: &App) -> Option<Omit> {
        let ids: HashSet<Id> =
            cfg.search_drop_ids.iter().filter_map(|s| uuid::Uuid::parse_str(s.trim()).ok()).collect();
        let recent = app.created_within(Duration::from_secs(cfg.search_index_lag_secs));
        let rate = cfg.search_drop_rate;
        (rate > 0.0 || !ids.is_empty() || !recent.is_empty()).then_some(Omit { rate, ids, recent })
    }

    pub fn hides(&self, store: &Store, item: &Item) -> bool {
        let database = match item.kind {
            Kind::DataSource => store.data_sources.get(&item.id).map(|d| d.database_id),
            _ => None,
        };
        let named = |set: &HashSet<Id>| set.contains(&item.id) || database.is_some_and(|db| set.contains(&db));
        named(&self.ids)
            || named(&self.recent)
            || (self.rate > 0.0 && drop_roll(&item.id) < self.rate && !directly_shared(store, item))
    }
}

fn parse_filter(v: ApiVersion, f: Option<&Value>) -> ApiResult<Option<Kind>> {
    let Some(f) = f.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    let obj = f
        .as_object()
        .ok_or_else(|| ApiError::validation("body failed validation: body.filter should be an object."))?;
    if obj.get("property").and_then(Value::as_str) != Some("object") {
        return Err(ApiError::validation("body failed validation: body.filter.property should be `\"object\"`."));
    }
    let value = obj.get("value").and_then(Value::as_str).unwrap_or("");
    match (value, v.has_data_sources()) {
        ("page", _) => Ok(Some(Kind::Page)),
        ("data_source", true) => Ok(Some(Kind::DataSource)),
        ("database", false) => Ok(Some(Kind::Database)),
        (other, true) => Err(ApiError::validation(format!(
            "body failed validation: body.filter.value should be `\"page\"` or `\"data_source\"`, instead was `\"{other}\"`."
        ))),
        (other, false) => Err(ApiError::validation(format!(
            "body failed validation: body.filter.value should be `\"page\"` or `\"database\"`, instead was `\"{other}\"`."
        ))),
    }
}

/// `true` for descending (the default).
fn parse_sort(s: Option<&Value>) -> ApiResult<bool> {
    let Some(s) = s.filter(|s| !s.is_null()) else {
        return Ok(true);
    };
    let obj =
        s.as_object().ok_or_else(|| ApiError::validation("body failed validation: body.sort should be an object."))?;
    if obj.get("property").and_then(Value::as_str) == Some("relevance") {
        return Ok(true);
    }
    if obj.get("timestamp").and_then(Value::as_str) != Some("last_edited_time") {
        return Err(ApiError::validation(
            "body failed validation: body.sort.timestamp should be `\"last_edited_time\"`.",
        ));
    }
    match obj.get("direction").and_then(Value::as_str) {
        Some("ascending") => Ok(false),
        Some("descending") => Ok(true),
        _ => Err(ApiError::validation(
            "body failed validation: body.sort.direction should be `\"ascending\"` or `\"descending\"`.",
        )),
    }
}

pub fn sorted(mut items: Vec<Item>, descending: bool) -> Vec<Item> {
    items.sort_by(|a, b| {
        let o = a.last_edited.cmp(&b.last_edited).then(a.id.cmp(&b.id));
        if descending {
            o.reverse()
        } else {
            o
        }
    });
    items
}

pub fn run(ctx: &Ctx, body: &Map<String, Value>, app: Option<&App>) -> ApiResult<Value> {
    let query = match body.get("query") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ApiError::validation("body failed validation: body.query should be a string.")),
    };
    let only = parse_filter(ctx.v, body.get("filter"))?;
    let descending = parse_sort(body.get("sort"))?;
    let page_size = page_size_from_json(body.get("page_size"))?;
    let start = cursor_from_json(body.get("start_cursor"))?;
    let make = || sorted(searchable(ctx.store, ctx.v, only, query), descending);
    let items = match app {
        Some(app) => app.cached_search(format!("{:?}|{only:?}|{descending}|{query}", ctx.v), make),
        None => std::sync::Arc::new(make()),
    };
    let omit = app.and_then(|a| Omit::new(&a.config(), a));
    let items = match omit {
        Some(o) => std::sync::Arc::new(items.iter().filter(|i| !o.hides(ctx.store, i)).copied().collect()),
        None => items,
    };
    let slice = cursor::slice_by('s', items.len(), |i| items[i].id, start.as_deref(), page_size)?;
    let results: Vec<Value> = items[slice.start..slice.end]
        .iter()
        .filter_map(|i| match i.kind {
            Kind::Page => ctx.store.pages.get(&i.id).map(|p| shapes::page(ctx, p)),
            Kind::Database => ctx.store.databases.get(&i.id).map(|d| shapes::database(ctx, d)),
            Kind::DataSource => ctx.store.data_sources.get(&i.id).map(|d| shapes::data_source(ctx, d)),
        })
        .collect();
    let list_type = if ctx.v.has_data_sources() { "page_or_data_source" } else { "page_or_database" };
    Ok(cursor::list(list_type, results, slice.next_cursor))
}

pub async fn search(
    State(app): State<App>,
    Extension(v): Extension<ApiVersion>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body = parse_body(&body)?;
    let links = app.file_links();
    let store = app.store();
    let ctx = Ctx { v, store: &store, files: &links };
    Ok(Json(run(&ctx, &body, Some(&app))?))
}

//! Running a data source query (shared by the 2022 database query and the data source query).

use serde_json::{json, Map, Value};

use crate::cursor::{self, cursor_from_json, page_size_from_json};
use crate::error::ApiResult;
use crate::filter::{self, Filter, Sort};
use crate::model::{Id, Page, Store};
use crate::shapes::{self, Ctx};
use crate::state::App;

pub struct QueryOptions {
    /// Row cap of one query (`None` = no cap).
    pub cap: Option<usize>,
    /// List `type` (`page_or_data_source` or `page`).
    pub list_type: &'static str,
}

/// The rows of a data source a query returns, in order (filters and sorts applied).
pub fn matching_rows<'a>(store: &'a Store, ds_id: &Id, filter: Option<&Filter>, sorts: &[Sort]) -> Vec<&'a Page> {
    let Some(ds) = store.data_sources.get(ds_id) else {
        return Vec::new();
    };
    let mut rows: Vec<&Page> = ds
        .rows
        .iter()
        .filter_map(|id| store.pages.get(id))
        .filter(|p| !p.in_trash && !store.unshared.contains(&p.id))
        .filter(|p| filter.is_none_or(|f| filter::matches(f, p, &ds.schema)))
        .collect();
    rows.sort_by(|a, b| filter::compare(a, b, sorts, &ds.schema));
    rows
}

pub fn run(ctx: &Ctx, ds_id: &Id, body: &Map<String, Value>, opts: &QueryOptions, app: &App) -> ApiResult<Value> {
    let store = ctx.store;
    let schema = store.data_sources.get(ds_id).map(|d| d.schema.as_slice()).unwrap_or(&[]);
    let page_size = page_size_from_json(body.get("page_size"))?;
    let start = cursor_from_json(body.get("start_cursor"))?;
    let filter = match body.get("filter") {
        None | Some(Value::Null) => None,
        Some(f) => {
            if let Some(max) = app.config().filter_max_depth {
                filter::check_nesting(f, max, 0, "body.filter")?;
            }
            Some(filter::parse_filter(f, schema, 0)?)
        }
    };
    let sorts = match body.get("sorts") {
        None | Some(Value::Null) => Vec::new(),
        Some(s) => filter::parse_sorts(s, schema)?,
    };
    let key = format!(
        "{ds_id}|{}|{}",
        body.get("filter").map(|f| f.to_string()).unwrap_or_default(),
        body.get("sorts").map(|f| f.to_string()).unwrap_or_default()
    );
    let ids =
        app.cached_rows(key, || matching_rows(store, ds_id, filter.as_ref(), &sorts).iter().map(|p| p.id).collect());
    let slice = cursor::slice_by('q', ids.len(), |i| ids[i], start.as_deref(), page_size)?;
    let mut end = slice.end;
    let mut next = slice.next_cursor;
    let mut incomplete = false;
    if let Some(cap) = opts.cap {
        let allowed = cap.saturating_sub(slice.served_before);
        if end - slice.start >= allowed {
            end = slice.start + allowed;
            if end < ids.len() {
                incomplete = true;
                next = None;
            }
        }
    }
    let results: Vec<Value> =
        ids[slice.start..end].iter().filter_map(|id| store.pages.get(id)).map(|p| shapes::page(ctx, p)).collect();
    let mut out = cursor::list(opts.list_type, results, next);
    if incomplete {
        out["request_status"] = json!({ "type": "incomplete", "incomplete_reason": "query_result_limit_reached" });
    }
    Ok(out)
}

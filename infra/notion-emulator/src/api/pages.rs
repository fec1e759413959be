//! `GET /v1/pages/{id}` and `GET /v1/pages/{id}/properties/{property_id}`.

use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::{parse_id, query_params};
use crate::cursor::{self, page_size_from_query};
use crate::error::{ApiError, ApiResult};
use crate::model::{Page, PropKind, PropValue, Store};
use crate::shapes::{self, rich_text, Ctx};
use crate::state::App;
use crate::version::ApiVersion;

pub fn find_page<'a>(store: &'a Store, id: &Uuid) -> ApiResult<&'a Page> {
    if store.unshared.contains(id) {
        return Err(ApiError::not_found("page", id));
    }
    store.pages.get(id).ok_or_else(|| ApiError::not_found("page", id))
}

pub async fn get(
    State(app): State<App>,
    Extension(v): Extension<ApiVersion>,
    Path(raw): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "page")?;
    let links = app.file_links();
    let store = app.store();
    let page = find_page(&store, &id)?;
    let ctx = Ctx { v, store: &store, files: &links };
    Ok(Json(shapes::page(&ctx, page)))
}

fn pct_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

pub async fn property(
    State(app): State<App>,
    Extension(v): Extension<ApiVersion>,
    Path((raw, prop_raw)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "page")?;
    let params = query_params(q.as_deref());
    let page_size = page_size_from_query(params.get("page_size").map(String::as_str))?;
    let links = app.file_links();
    let store = app.store();
    let page = find_page(&store, &id)?;
    let ctx = Ctx { v, store: &store, files: &links };
    let wanted = pct_decode(&prop_raw);
    let not_found = || ApiError::not_found("property", &prop_raw);

    let (schema, value) = match shapes::row_schema(&store, page) {
        Some(ds) => {
            let idx = ds
                .schema
                .iter()
                .position(|s| pct_decode(&s.id) == wanted || s.id == prop_raw || s.name == wanted)
                .ok_or_else(not_found)?;
            (ds.schema[idx].clone(), page.props.get(idx).cloned().unwrap_or(PropValue::None))
        }
        None if wanted == "title" => (
            crate::model::PropSchema { id: "title".into(), name: "title".into(), kind: PropKind::Title },
            PropValue::None,
        ),
        None => return Err(not_found()),
    };
    let type_name = schema.kind.type_name();
    // Paginated property types: one property_item per rich text item or person.
    let items: Option<Vec<Value>> = match (&schema.kind, &value) {
        (PropKind::Title, _) => Some(as_items(rich_text(&page.title))),
        (PropKind::RichText, PropValue::Text(t)) => Some(as_items(rich_text(t))),
        (PropKind::RichText, _) => Some(Vec::new()),
        (PropKind::People, PropValue::People(ids)) => Some(
            ids.iter()
                .map(|u| match store.users.iter().find(|x| x.id == *u) {
                    Some(user) => shapes::user(&store, user, false),
                    None => shapes::user_ref(u),
                })
                .collect(),
        ),
        (PropKind::People, _) => Some(Vec::new()),
        _ => None,
    };
    let Some(items) = items else {
        let value = shapes::prop_value(&ctx, page, &schema, &value, usize::MAX);
        let mut obj = json!({ "object": "property_item", "id": schema.id, "type": type_name });
        obj[type_name] = value;
        return Ok(Json(obj));
    };
    let keys: Vec<Uuid> = (0..items.len() as u128).map(Uuid::from_u128).collect();
    let cur = params.get("start_cursor").map(String::as_str);
    let slice = cursor::slice('p', &keys, cur, page_size)?;
    let results: Vec<Value> = items[slice.start..slice.end]
        .iter()
        .map(|item| {
            let mut obj = json!({ "object": "property_item", "id": schema.id, "type": type_name });
            obj[type_name] = item.clone();
            obj
        })
        .collect();
    let mut list = cursor::list("property_item", results, slice.next_cursor);
    let mut pi = json!({ "id": schema.id, "type": type_name, "next_url": null });
    pi[type_name] = json!({});
    list["property_item"] = pi;
    Ok(Json(list))
}

fn as_items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

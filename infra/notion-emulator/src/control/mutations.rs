//! Control mutations: add, edit, delete, trash, move and unshare pages; append, edit and delete blocks; add databases
//! and rows.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::api::{parse_body, parse_id};
use crate::error::{ApiError, ApiResult};
use crate::filter::parse_date;
use crate::model::{
    now_minute, round_minute, Block, Comment, DataSource, Database, Id, Page, Parent, PropKind, PropSchema, PropValue,
    Store, Ts, UserKind,
};
use crate::state::App;

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

/// Plain text of a block spec: `text`, or the Notion-shaped `<type>.rich_text`.
fn spec_text(spec: &Value, btype: &str) -> String {
    if let Some(t) = spec.get("text").and_then(Value::as_str) {
        return t.to_string();
    }
    spec.get(btype)
        .and_then(|p| p.get("rich_text"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    i.get("plain_text").or_else(|| i.get("text").and_then(|t| t.get("content"))).and_then(Value::as_str)
                })
                .collect::<String>()
        })
        .unwrap_or_default()
}

/// Insert blocks described by `specs` into `container` (after `after`, or at the end). Returns the new ids.
fn insert_blocks(
    store: &mut Store,
    container: Id,
    specs: &[Value],
    after: Option<Id>,
    ts: Ts,
    depth: usize,
) -> ApiResult<Vec<Id>> {
    if depth > 64 {
        return Err(ApiError::validation("blocks are nested too deeply"));
    }
    let parent = if store.pages.contains_key(&container) { Parent::Page(container) } else { Parent::Block(container) };
    let mut pos = match after {
        Some(a) => {
            let list = store.children.get(&container).map(|v| v.as_slice()).unwrap_or(&[]);
            Some(
                list.iter()
                    .position(|x| *x == a)
                    .ok_or_else(|| ApiError::validation("`after` is not a child of this block"))?
                    + 1,
            )
        }
        None => None,
    };
    let mut ids = Vec::new();
    for spec in specs {
        let btype = spec.get("type").and_then(Value::as_str).unwrap_or("paragraph").to_string();
        if matches!(btype.as_str(), "child_page" | "child_database") {
            return Err(ApiError::validation("create pages with POST /__control/pages"));
        }
        let text = spec_text(spec, &btype);
        let mut extra = spec.get("extra").and_then(Value::as_object).cloned().unwrap_or_default();
        for (key, internal) in
            [("file_id", "_file_id"), ("url", "_url"), ("synced_from", "_synced_from"), ("link_to", "_link_target")]
        {
            if let Some(v) = spec.get(key) {
                extra.insert(internal.into(), v.clone());
            }
        }
        let id = Uuid::new_v4();
        let block = Block {
            id,
            parent,
            btype,
            text,
            extra: if extra.is_empty() { None } else { Some(Box::new(extra)) },
            created: ts,
            last_edited: ts,
            created_by: store.bot_id,
            in_trash: false,
        };
        store.blocks.insert(id, block);
        let list = store.children.entry(container).or_default();
        match pos.as_mut() {
            Some(p) if *p <= list.len() => {
                list.insert(*p, id);
                *p += 1;
            }
            _ => list.push(id),
        }
        if let Some(kids) = spec.get("children").and_then(Value::as_array) {
            insert_blocks(store, id, kids, None, ts, depth + 1)?;
        }
        ids.push(id);
    }
    Ok(ids)
}

fn prop_value(kind: &PropKind, v: &Value) -> PropValue {
    match kind {
        PropKind::RichText => PropValue::Text(v.as_str().unwrap_or_default().to_string()),
        PropKind::Select(_) => PropValue::Select(v.as_str().map(str::to_string)),
        PropKind::MultiSelect(_) => PropValue::MultiSelect(
            v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default(),
        ),
        PropKind::Checkbox => PropValue::Checkbox(v.as_bool().unwrap_or(false)),
        PropKind::Number => PropValue::Number(v.as_f64()),
        PropKind::People => PropValue::People(
            v.as_array()
                .map(|a| a.iter().filter_map(Value::as_str).filter_map(|s| Uuid::parse_str(s).ok()).collect())
                .unwrap_or_default(),
        ),
        PropKind::Date => PropValue::Date(v.as_str().map(str::to_string)),
        PropKind::Url => PropValue::Url(v.as_str().map(str::to_string)),
        _ => PropValue::None,
    }
}

/// Apply `{name: value}` properties to a row.
fn apply_props(store: &mut Store, page_id: &Id, props: &Map<String, Value>) -> ApiResult<()> {
    let Some(Parent::DataSource(ds)) = store.pages.get(page_id).map(|p| p.parent) else {
        return Err(ApiError::validation("only database rows have properties besides the title"));
    };
    let schema = store.data_sources.get(&ds).map(|d| d.schema.clone()).unwrap_or_default();
    let page = store.pages.get_mut(page_id).ok_or_else(|| ApiError::not_found("page", page_id))?;
    page.props.resize(schema.len(), PropValue::None);
    for (name, v) in props {
        let idx = schema
            .iter()
            .position(|s| s.name == *name || s.id == *name)
            .ok_or_else(|| ApiError::validation(format!("no property `{name}`")))?;
        if schema[idx].kind == PropKind::Title {
            page.title = v.as_str().unwrap_or_default().to_string();
        } else {
            page.props[idx] = prop_value(&schema[idx].kind, v);
        }
    }
    Ok(())
}

/// Attach a page to a parent (children list, child_page block, data source rows).
fn attach(store: &mut Store, id: Id, parent: Parent, ts: Ts) {
    match parent {
        Parent::Page(c) | Parent::Block(c) => {
            let title = store.pages.get(&id).map(|p| p.title.clone()).unwrap_or_default();
            let in_trash = store.pages.get(&id).is_some_and(|p| p.in_trash);
            store.blocks.insert(
                id,
                Block {
                    id,
                    parent,
                    btype: "child_page".into(),
                    text: title,
                    extra: None,
                    created: ts,
                    last_edited: ts,
                    created_by: store.bot_id,
                    in_trash,
                },
            );
            store.children.entry(c).or_default().push(id);
            store.touch_block(&id, ts);
        }
        Parent::DataSource(ds) => {
            if let Some(d) = store.data_sources.get_mut(&ds) {
                d.rows.push(id);
            }
        }
        _ => {}
    }
}

fn detach(store: &mut Store, id: &Id, ts: Ts) {
    let Some(parent) = store.pages.get(id).map(|p| p.parent) else {
        return;
    };
    match parent {
        Parent::Page(c) | Parent::Block(c) => {
            store.touch_block(id, ts);
            if let Some(list) = store.children.get_mut(&c) {
                list.retain(|x| x != id);
            }
            store.blocks.remove(id);
        }
        Parent::DataSource(ds) => {
            if let Some(d) = store.data_sources.get_mut(&ds) {
                d.rows.retain(|x| x != id);
            }
        }
        _ => {}
    }
}

fn page_json(p: &Page, blocks: Vec<Id>) -> Value {
    json!({ "id": p.id, "object": "page", "title": p.title, "last_edited_time": crate::shapes::iso(p.last_edited), "blocks": blocks })
}

/// Largest title `title_repeat` builds (bytes): far beyond Notion's limits, small enough for a test machine.
const MAX_REPEATED_TITLE: usize = 64 * 1024 * 1024;

/// `title`, repeated `title_repeat` times when given: built here, so that a test can make a 20 MB title without
/// sending 20 MB (axum refuses bodies over 2 MB).
fn page_title(body: &Body) -> ApiResult<String> {
    let title = body.get("title").and_then(Value::as_str).unwrap_or_default();
    let Some(raw) = body.get("title_repeat").filter(|v| !v.is_null()) else {
        return Ok(title.to_string());
    };
    let n = raw
        .as_u64()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::validation("title_repeat should be a positive integer"))?;
    let total = (title.len() as u64).saturating_mul(n);
    if total > MAX_REPEATED_TITLE as u64 {
        return Err(ApiError::validation(format!(
            "title_repeat would build {total} bytes; at most {MAX_REPEATED_TITLE} are allowed"
        )));
    }
    Ok(title.repeat(n as usize))
}

fn new_page(store: &mut Store, body: &Body, parent: Parent) -> ApiResult<(Id, Value)> {
    let ts = at(body, "at")?;
    let created = if body.contains_key("created_time") { at(body, "created_time")? } else { ts };
    let title = page_title(body)?;
    let id = Uuid::new_v4();
    let props = match parent {
        Parent::DataSource(ds) => {
            vec![PropValue::None; store.data_sources.get(&ds).map(|d| d.schema.len()).unwrap_or(0)]
        }
        _ => Vec::new(),
    };
    let icon = body.get("icon").and_then(Value::as_str).map(str::to_string);
    let author = store.bot_id;
    store.pages.insert(
        id,
        Page {
            id,
            parent,
            title,
            props,
            icon,
            created,
            last_edited: ts,
            created_by: author,
            last_edited_by: author,
            in_trash: false,
        },
    );
    attach(store, id, parent, ts);
    if let Some(props) = body.get("properties").and_then(Value::as_object) {
        apply_props(store, &id, props)?;
    }
    let specs =
        body.get("blocks").or_else(|| body.get("children")).and_then(Value::as_array).cloned().unwrap_or_default();
    let blocks = insert_blocks(store, id, &specs, None, ts, 0)?;
    let p = store.pages.get(&id).ok_or_else(|| ApiError::not_found("page", id))?;
    Ok((id, page_json(p, blocks)))
}

/// `POST /__control/pages` `{parent, title, title_repeat?, blocks?, properties?, created_time?, at?}`
pub async fn create_page(State(app): State<App>, body: Bytes) -> ApiResult<Json<Value>> {
    let body = parse_body(&body)?;
    let mut store = app.store_mut();
    let parent = parse_parent(&store, body.get("parent").unwrap_or(&json!({"type": "workspace"})))?;
    let (id, out) = new_page(&mut store, &body, parent)?;
    app.note_created(&[id]);
    Ok(Json(out))
}

/// `POST /__control/data_sources/{id}/rows` `{title, properties?, blocks?, created_time?, at?}`
pub async fn add_row(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let ds = parse_id(&raw, "data_source")?;
    let body = parse_body(&body)?;
    let mut store = app.store_mut();
    if !store.data_sources.contains_key(&ds) {
        return Err(ApiError::not_found("data source", ds));
    }
    let (id, out) = new_page(&mut store, &body, Parent::DataSource(ds))?;
    app.note_created(&[id]);
    Ok(Json(out))
}

/// Options of a select / multi-select property spec: `{"type": "select", "options": ["a", "b"]}`.
fn spec_options(spec: &Value) -> Vec<String> {
    spec.get("options")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| o.as_str().or_else(|| o.get("name").and_then(Value::as_str)))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A property kind from its Notion type name (`"checkbox"`) or `{"type": "select", "options": [...]}`.
fn prop_kind(name: &str, spec: &Value) -> ApiResult<PropKind> {
    let type_name = spec.as_str().or_else(|| spec.get("type").and_then(Value::as_str)).ok_or_else(|| {
        ApiError::validation(format!("property `{name}` should be a type name or an object with a `type`"))
    })?;
    Ok(match type_name {
        "title" => PropKind::Title,
        "rich_text" => PropKind::RichText,
        "select" => PropKind::Select(spec_options(spec)),
        "multi_select" => PropKind::MultiSelect(spec_options(spec)),
        "checkbox" => PropKind::Checkbox,
        "number" => PropKind::Number,
        "people" => PropKind::People,
        "date" => PropKind::Date,
        "url" => PropKind::Url,
        "created_time" => PropKind::CreatedTime,
        "last_edited_time" => PropKind::LastEditedTime,
        other => return Err(ApiError::validation(format!("property `{name}`: unsupported type `{other}`"))),
    })
}

/// The schema of a new data source: `{name: type}` in the given order, with a title property (`title_property`,
/// default `Name`) first unless one is given. No `properties`: the generated workspaces' standard schema.
fn database_schema(body: &Body) -> ApiResult<Vec<PropSchema>> {
    let Some(props) = body.get("properties") else {
        return Ok(crate::gen::builder::Builder::standard_schema());
    };
    let props = props.as_object().ok_or_else(|| ApiError::validation("properties should be an object {name: type}"))?;
    let mut schema = Vec::new();
    for (i, (name, spec)) in props.iter().enumerate() {
        let kind = prop_kind(name, spec)?;
        let id = if kind == PropKind::Title { "title".to_string() } else { format!("p{i}%3A{}", name.len()) };
        schema.push(PropSchema { id, name: name.clone(), kind });
    }
    match schema.iter().filter(|s| s.kind == PropKind::Title).count() {
        0 => {
            let name = body.get("title_property").and_then(Value::as_str).unwrap_or("Name").to_string();
            schema.insert(0, PropSchema { id: "title".into(), name, kind: PropKind::Title });
        }
        1 => {}
        _ => return Err(ApiError::validation("a database has exactly one title property")),
    }
    let mut names = std::collections::HashSet::new();
    if let Some(dup) = schema.iter().find(|s| !names.insert(s.name.as_str())) {
        return Err(ApiError::validation(format!("property `{}` is given twice", dup.name)));
    }
    Ok(schema)
}

/// `POST /__control/databases` `{parent?, title, properties?, title_property?, data_sources?, created_time?, at?}`:
/// a database with `data_sources` (default 1) data sources sharing one schema, under the workspace (default), a page
/// or a block (then inline, with its `child_database` block). Rows are added with `POST /__control/data_sources/{id}/rows`.
pub async fn create_database(State(app): State<App>, body: Bytes) -> ApiResult<Json<Value>> {
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let created = if body.contains_key("created_time") { at(&body, "created_time")? } else { ts };
    let title = body.get("title").and_then(Value::as_str).unwrap_or_default().to_string();
    let schema = database_schema(&body)?;
    let sources = match body.get("data_sources") {
        None => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=10).contains(n))
            .ok_or_else(|| ApiError::validation("data_sources should be a number 1..=10"))? as usize,
    };
    let mut store = app.store_mut();
    let parent = parse_parent(&store, body.get("parent").unwrap_or(&json!({"type": "workspace"})))?;
    let container = match parent {
        Parent::Workspace => None,
        Parent::Page(c) | Parent::Block(c) => Some(c),
        _ => return Err(ApiError::validation("a database's parent should be the workspace, a page or a block")),
    };
    let id = Uuid::new_v4();
    let mut ds_ids = Vec::new();
    for i in 0..sources {
        let ds = Uuid::new_v4();
        let name = if i == 0 { title.clone() } else { format!("{title} (source {})", i + 1) };
        store.data_sources.insert(
            ds,
            DataSource {
                id: ds,
                database_id: id,
                name,
                schema: schema.clone(),
                rows: Vec::new(),
                created,
                last_edited: ts,
                in_trash: false,
            },
        );
        ds_ids.push(ds);
    }
    store.databases.insert(
        id,
        Database {
            id,
            parent,
            title: title.clone(),
            is_inline: container.is_some(),
            data_sources: ds_ids.clone(),
            created,
            last_edited: ts,
            in_trash: false,
        },
    );
    if let Some(c) = container {
        let bot = store.bot_id;
        store.blocks.insert(
            id,
            Block {
                id,
                parent,
                btype: "child_database".into(),
                text: title.clone(),
                extra: None,
                created,
                last_edited: ts,
                created_by: bot,
                in_trash: false,
            },
        );
        store.children.entry(c).or_default().push(id);
        store.touch_block(&id, ts);
    }
    let mut created_ids = ds_ids.clone();
    created_ids.push(id);
    app.note_created(&created_ids);
    let properties: Vec<Value> =
        schema.iter().map(|s| json!({"id": s.id, "name": s.name, "type": s.kind.type_name()})).collect();
    Ok(Json(json!({
        "id": id, "object": "database", "title": title, "data_source_id": ds_ids[0],
        "data_sources": ds_ids, "properties": properties, "last_edited_time": crate::shapes::iso(ts),
    })))
}

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

/// `PATCH /__control/pages/{id}` `{title?, text?, append_text?, properties?, icon?, at?}`: bumps last_edited_time.
pub async fn update_page(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "page")?;
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let mut store = app.store_mut();
    if !store.pages.contains_key(&id) {
        return Err(ApiError::not_found("page", id));
    }
    if let Some(props) = body.get("properties").and_then(Value::as_object) {
        apply_props(&mut store, &id, props)?;
    }
    let mut touched = Vec::new();
    if let Some(text) = body.get("text").and_then(Value::as_str) {
        let first = store
            .visible_children(&id)
            .find(|b| !b.text.is_empty() && !matches!(b.btype.as_str(), "child_page" | "child_database" | "table_row"))
            .map(|b| b.id);
        match first {
            Some(bid) => {
                if let Some(b) = store.blocks.get_mut(&bid) {
                    b.text = text.to_string();
                    b.last_edited = ts;
                }
                touched.push(bid);
            }
            None => touched.extend(insert_blocks(
                &mut store,
                id,
                &[json!({"type": "paragraph", "text": text})],
                None,
                ts,
                0,
            )?),
        }
    }
    if let Some(text) = body.get("append_text").and_then(Value::as_str) {
        touched.extend(insert_blocks(&mut store, id, &[json!({"type": "paragraph", "text": text})], None, ts, 0)?);
    }
    let bot = store.bot_id;
    let page = store.pages.get_mut(&id).ok_or_else(|| ApiError::not_found("page", id))?;
    if let Some(t) = body.get("title").and_then(Value::as_str) {
        page.title = t.to_string();
    }
    if let Some(icon) = body.get("icon") {
        page.icon = icon.as_str().map(str::to_string);
    }
    page.last_edited = ts;
    page.last_edited_by = bot;
    let p = store.pages.get(&id).ok_or_else(|| ApiError::not_found("page", id))?;
    Ok(Json(page_json(p, touched)))
}

/// Pages under `id` (itself included), through child_page blocks at any depth.
fn page_subtree(store: &Store, id: &Id) -> Vec<Id> {
    let mut out = vec![*id];
    for b in store.subtree_blocks(id) {
        if store.blocks.get(&b).is_some_and(|x| x.btype == "child_page") && store.pages.contains_key(&b) {
            out.push(b);
        }
    }
    out
}

/// `DELETE /__control/pages/{id}`: gone for good (404), with its sub-pages and blocks.
pub async fn delete_page(State(app): State<App>, Path(raw): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "page")?;
    let ts = now_minute();
    let mut store = app.store_mut();
    if !store.pages.contains_key(&id) {
        return Err(ApiError::not_found("page", id));
    }
    detach(&mut store, &id, ts);
    let pages = page_subtree(&store, &id);
    let blocks = store.subtree_blocks(&id);
    for b in &blocks {
        store.blocks.remove(b);
        store.children.remove(b);
    }
    for p in &pages {
        store.pages.remove(p);
        store.children.remove(p);
    }
    store.comments.retain(|c| c.parent.id().is_none_or(|pid| !pages.contains(&pid) && !blocks.contains(&pid)));
    Ok(Json(json!({ "deleted_pages": pages, "deleted_blocks": blocks.len() })))
}

/// `POST /__control/pages/{id}/trash` `{in_trash?: bool (default true), at?}`: also trashes sub-pages.
pub async fn trash_page(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "page")?;
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let flag = body.get("in_trash").and_then(Value::as_bool).unwrap_or(true);
    let mut store = app.store_mut();
    if !store.pages.contains_key(&id) {
        return Err(ApiError::not_found("page", id));
    }
    let pages = page_subtree(&store, &id);
    for p in &pages {
        if let Some(pg) = store.pages.get_mut(p) {
            pg.in_trash = flag;
            pg.last_edited = ts;
        }
        if let Some(b) = store.blocks.get_mut(p) {
            b.in_trash = flag;
        }
    }
    Ok(Json(json!({ "pages": pages, "in_trash": flag })))
}

/// `POST /__control/pages/{id}/move` `{parent, at?}`
pub async fn move_page(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "page")?;
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let mut store = app.store_mut();
    if !store.pages.contains_key(&id) {
        return Err(ApiError::not_found("page", id));
    }
    let parent = parse_parent(&store, body.get("parent").ok_or_else(|| ApiError::validation("parent is required"))?)?;
    if parent.id() == Some(id) || page_subtree(&store, &id).iter().any(|p| Some(*p) == parent.id()) {
        return Err(ApiError::validation("cannot move a page under itself"));
    }
    detach(&mut store, &id, ts);
    let schema_len = match parent {
        Parent::DataSource(ds) => store.data_sources.get(&ds).map(|d| d.schema.len()),
        _ => None,
    };
    if let Some(p) = store.pages.get_mut(&id) {
        p.parent = parent;
        p.last_edited = ts;
        p.props = schema_len.map(|n| vec![PropValue::None; n]).unwrap_or_default();
    }
    attach(&mut store, id, parent, ts);
    Ok(Json(json!({ "id": id, "parent": parent.id() })))
}

/// `POST /__control/pages/{id}/unshare` (or `/objects/{id}/unshare`) `{unshared?: bool (default true)}`
pub async fn unshare(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "object")?;
    let body = parse_body(&body)?;
    let flag = body.get("unshared").and_then(Value::as_bool).unwrap_or(true);
    let mut store = app.store_mut();
    let exists = store.pages.contains_key(&id)
        || store.databases.contains_key(&id)
        || store.data_sources.contains_key(&id)
        || store.blocks.contains_key(&id);
    if !exists {
        return Err(ApiError::not_found("object", id));
    }
    if flag {
        store.unshared.insert(id);
    } else {
        store.unshared.remove(&id);
    }
    Ok(Json(json!({ "id": id, "unshared": flag })))
}

/// `POST /__control/blocks/{id}/children` `{children: [{type, text, children?, extra?, file_id?, url?}], after?, at?}`
pub async fn append_children(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "block")?;
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let specs = body
        .get("children")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| ApiError::validation("children should be an array"))?;
    let after = match body.get("after").and_then(Value::as_str) {
        Some(a) => Some(parse_id(a, "after")?),
        None => None,
    };
    let mut store = app.store_mut();
    if !store.pages.contains_key(&id) && !store.blocks.contains_key(&id) {
        return Err(ApiError::not_found("block", id));
    }
    let ids = insert_blocks(&mut store, id, &specs, after, ts, 0)?;
    if let Some(p) = store.pages.get_mut(&id) {
        p.last_edited = ts;
    } else {
        store.touch_block(&id, ts);
    }
    Ok(Json(json!({ "ids": ids })))
}

/// `PATCH /__control/blocks/{id}` `{text?, type?, extra?, in_trash?, at?}`
pub async fn update_block(State(app): State<App>, Path(raw): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "block")?;
    let body = parse_body(&body)?;
    let ts = at(&body, "at")?;
    let mut store = app.store_mut();
    let b = store.blocks.get_mut(&id).ok_or_else(|| ApiError::not_found("block", id))?;
    if let Some(t) = body.get("text").and_then(Value::as_str) {
        b.text = t.to_string();
    }
    if let Some(t) = body.get("type").and_then(Value::as_str) {
        b.btype = t.to_string();
    }
    if let Some(x) = body.get("extra").and_then(Value::as_object) {
        let mut merged = b.extra.as_deref().cloned().unwrap_or_default();
        merged.extend(x.clone());
        b.extra = Some(Box::new(merged));
    }
    if let Some(t) = body.get("in_trash").and_then(Value::as_bool) {
        b.in_trash = t;
    }
    store.touch_block(&id, ts);
    Ok(Json(json!({ "id": id, "last_edited_time": crate::shapes::iso(ts) })))
}

/// `DELETE /__control/blocks/{id}`: moves the block to the trash (as the API's delete does).
pub async fn delete_block(State(app): State<App>, Path(raw): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id(&raw, "block")?;
    let ts = now_minute();
    let mut store = app.store_mut();
    let b = store.blocks.get_mut(&id).ok_or_else(|| ApiError::not_found("block", id))?;
    b.in_trash = true;
    let is_page = b.btype == "child_page";
    if is_page {
        if let Some(p) = store.pages.get_mut(&id) {
            p.in_trash = true;
        }
    }
    store.touch_block(&id, ts);
    Ok(Json(json!({ "id": id, "in_trash": true })))
}

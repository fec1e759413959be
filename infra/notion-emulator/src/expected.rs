//! What a correct full sync must index (for end-to-end assertions), and object counts.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::api::search::searchable;
use crate::model::{Block, Id, Parent, Store};
use crate::version::ApiVersion;

/// The plain text a block contributes.
pub fn block_text(store: &Store, b: &Block) -> String {
    match b.btype.as_str() {
        "child_page" => store.pages.get(&b.id).map(|p| p.title.clone()).unwrap_or_default(),
        "child_database" => store.databases.get(&b.id).map(|d| d.title.clone()).unwrap_or_default(),
        "table_row" => b.text.split('\t').filter(|c| !c.is_empty()).collect::<Vec<_>>().join(" "),
        _ => b.text.clone(),
    }
}

struct Walk<'a> {
    store: &'a Store,
    blocks: Vec<Value>,
    body: Vec<String>,
    files: Vec<Value>,
    seen: HashSet<Id>,
}

impl Walk<'_> {
    fn visit(&mut self, container: Id, depth: usize) {
        if depth > 200 || !self.seen.insert(container) {
            return;
        }
        let store = self.store;
        if store.blocks.get(&container).is_some_and(|b| b.btype == "ai_block") {
            return;
        }
        let src = store.children_source(&container);
        if store.unshared.contains(&src) {
            return;
        }
        for b in store.visible_children(&src) {
            let text = block_text(store, b);
            if !text.is_empty() {
                self.body.push(text.clone());
            }
            self.blocks.push(json!({ "id": b.id, "type": b.btype, "text": text, "depth": depth }));
            if let Some(f) = b.extra_id("_file_id").and_then(|id| store.files.get(&id)) {
                self.files.push(json!({
                    "block_id": b.id, "file_id": f.id, "name": f.name, "size": f.size(),
                    "expected_text": f.expected_text, "expectation": f.expectation, "external": f.external,
                }));
            }
            if !matches!(b.btype.as_str(), "child_page" | "child_database") {
                self.visit(b.id, depth + 1);
            }
        }
    }
}

fn parent_id(store: &Store, p: &Parent) -> Value {
    match p {
        Parent::DataSource(ds) => json!(store.data_sources.get(ds).map(|d| d.database_id)),
        other => json!(other.id()),
    }
}

/// One entry per page or row a full sync must index.
pub fn page_entry(store: &Store, id: &Id) -> Option<Value> {
    let p = store.pages.get(id)?;
    let mut w = Walk { store, blocks: Vec::new(), body: Vec::new(), files: Vec::new(), seen: HashSet::new() };
    w.visit(p.id, 0);
    let data_source = match p.parent {
        Parent::DataSource(ds) => Some(ds),
        _ => None,
    };
    Some(json!({
        "id": p.id,
        "object": "page",
        "title": p.title,
        "parent_id": parent_id(store, &p.parent),
        "data_source_id": data_source,
        "is_row": data_source.is_some(),
        "body": w.body.join("\n"),
        "blocks": w.blocks,
        "files": w.files,
    }))
}

pub fn expected(store: &Store, v: ApiVersion, only: Option<Id>) -> Value {
    let mut ids: Vec<Id> = store.pages.values().filter(|p| store.page_listed(p)).map(|p| p.id).collect();
    ids.sort();
    if let Some(one) = only {
        ids.retain(|i| *i == one);
    }
    let pages: Vec<Value> = ids.iter().filter_map(|id| page_entry(store, id)).collect();
    let mut dbs: Vec<Value> = store
        .databases
        .values()
        .filter(|d| store.database_listed(&d.id))
        .map(|d| {
            let sources: Vec<Value> = d
                .data_sources
                .iter()
                .filter_map(|s| store.data_sources.get(s))
                .filter(|s| store.data_source_listed(&s.id))
                .map(|s| {
                    let rows =
                        s.rows.iter().filter(|r| store.pages.get(r).is_some_and(|p| store.page_listed(p))).count();
                    json!({ "id": s.id, "name": s.name, "rows": rows })
                })
                .collect();
            json!({ "id": d.id, "title": d.title, "data_sources": sources, "multi_source": d.data_sources.len() > 1 })
        })
        .collect();
    dbs.sort_by_key(|d| d["id"].as_str().unwrap_or("").to_string());
    let users: Vec<Value> = store
        .users
        .iter()
        .map(|u| json!({ "id": u.id, "name": u.name, "type": match u.kind { crate::model::UserKind::Bot => "bot", _ => "person" } }))
        .collect();
    let comments: Vec<Value> = store
        .comments
        .iter()
        .filter(|c| !c.resolved)
        .map(|c| json!({ "id": c.id, "parent_id": c.parent.id(), "text": c.text }))
        .collect();
    let mut files: Vec<Value> = store
        .files
        .values()
        .map(|f| {
            json!({
                "id": f.id, "name": f.name, "content_type": f.content_type, "size": f.size(),
                "expected_text": f.expected_text, "expectation": f.expectation, "external": f.external,
            })
        })
        .collect();
    files.sort_by_key(|f| f["name"].as_str().unwrap_or("").to_string());
    let mut trashed: Vec<Id> = store.pages.values().filter(|p| p.in_trash).map(|p| p.id).collect();
    trashed.sort();
    let mut unshared: Vec<Id> = store.unshared.iter().copied().collect();
    unshared.sort();
    json!({
        "version": v.as_str(),
        "search_results": searchable(store, v, None, "").len(),
        "pages": pages,
        "databases": dbs,
        "users": users,
        "comments": comments,
        "files": files,
        "not_indexed": { "trashed_pages": trashed, "unshared": unshared },
    })
}

pub fn counts(store: &Store) -> Value {
    let rows = store.pages.values().filter(|p| matches!(p.parent, Parent::DataSource(_))).count();
    let listed_pages =
        store.pages.values().filter(|p| store.page_listed(p) && !matches!(p.parent, Parent::DataSource(_))).count();
    let listed_rows =
        store.pages.values().filter(|p| store.page_listed(p) && matches!(p.parent, Parent::DataSource(_))).count();
    let bots = store.users.iter().filter(|u| matches!(u.kind, crate::model::UserKind::Bot)).count();
    let max_rows = store.data_sources.values().map(|d| d.rows.len()).max().unwrap_or(0);
    let max_children = store.children.values().map(|c| c.len()).max().unwrap_or(0);
    json!({
        "pages": store.pages.len() - rows,
        "rows": rows,
        "listed_pages": listed_pages,
        "listed_rows": listed_rows,
        "databases": store.databases.len(),
        "data_sources": store.data_sources.len(),
        "blocks": store.block_count(),
        "users": store.users.len(),
        "people": store.users.len() - bots,
        "bots": bots,
        "comments": store.comments.iter().filter(|c| !c.resolved).count(),
        "resolved_comments": store.comments.iter().filter(|c| c.resolved).count(),
        "files": store.files.len(),
        "trashed_pages": store.pages.values().filter(|p| p.in_trash).count(),
        "trashed_blocks": store.blocks.values().filter(|b| b.in_trash && b.btype != "child_page").count(),
        "unshared": store.unshared.len(),
        "largest_data_source_rows": max_rows,
        "largest_children_list": max_children,
        "search_results_2022": searchable(store, ApiVersion::V2022, None, "").len(),
        "search_results_2025": searchable(store, ApiVersion::V2025, None, "").len(),
    })
}

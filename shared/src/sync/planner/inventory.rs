//! What search found (an [`Inventory`]) and the tasks it becomes: pure, tested here.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::document::{is_row, parent_id, title_of};
use crate::task::{RowsCursor, Task};

/// Bytes of objects per `objects` task (each object is at most `task::MAX_EMBEDDED_OBJECT`).
const MAX_OBJECTS_BYTES: usize = 256 * 1024;

/// What search found, before it becomes tasks.
#[derive(Default)]
pub struct Inventory {
    /// Pages to walk, in search order (database rows only when a rule selected them directly).
    pub pages: Vec<Value>,
    /// Data sources (2025-09-03+) or databases (2022-06-28): their rows come from queries.
    pub sources: Vec<Value>,
    /// Notion filters from `database_query_filters`, by source id: one query per filter (usually one).
    pub source_filters: HashMap<String, Vec<Value>>,
    /// Database containers (2025-09-03+), fetched once each.
    pub databases: Vec<Value>,
    /// Sources selected only by `database_query_filters`: their rows are indexed, not the source
    /// (nor its database) itself.
    pub rows_only: HashSet<String>,
    /// Titles and parents of every object seen, for breadcrumbs and selection.
    pub titles: HashMap<String, (String, Option<String>)>,
    /// Whether the person users are indexed (not with advanced rules, as in the Elastic connector).
    pub users: bool,
    pub api_calls: u64,
    /// The newest `last_edited_time` seen: where the next incremental sync starts.
    pub newest: Option<chrono::DateTime<chrono::Utc>>,
}

impl Inventory {
    /// Records a search result: its title and parent, the newest edit time, and (unless it is a
    /// database row) the page or source itself.
    pub(crate) fn add(&mut self, object: Value, with_rows: bool) {
        let Some(id) = object.get("id").and_then(Value::as_str).map(str::to_string) else { return };
        self.titles.insert(id.clone(), (title_of(&object), parent_id(&object)));
        self.newest = self.newest.max(crate::sync::incremental::edited_at(&object));
        let seen = |list: &Vec<Value>| list.iter().any(|o| o.get("id").and_then(Value::as_str) == Some(id.as_str()));
        match object.get("object").and_then(Value::as_str) {
            Some("page") if is_row(&object) && !with_rows => {}
            Some("page") if !seen(&self.pages) => self.pages.push(object),
            Some("data_source") | Some("database") if !seen(&self.sources) => self.sources.push(object),
            _ => {}
        }
    }
}

/// Turns an inventory into tasks with stable ids: one per page, one rows task per data source,
/// one objects task for the containers, one users task.
pub fn tasks_for(inv: &Inventory, data_sources: bool) -> Vec<(String, Task)> {
    let mut tasks = Vec::with_capacity(inv.pages.len() + inv.sources.len() + 2);
    if inv.users {
        tasks.push(("users".to_string(), Task::Users));
    }
    let mut objects = Vec::new();
    let listed = |o: &&Value| !o.get("id").and_then(Value::as_str).is_some_and(|id| inv.rows_only.contains(id));
    let containers: HashSet<&str> = inv
        .sources
        .iter()
        .filter(listed)
        .filter_map(|s| s.pointer("/parent/database_id").and_then(Value::as_str))
        .collect();
    let databases =
        inv.databases.iter().filter(|d| d.get("id").and_then(Value::as_str).is_some_and(|id| containers.contains(id)));
    let mut too_large = Vec::new();
    for db in databases.chain(inv.sources.iter().filter(listed)) {
        if crate::task::embeddable(db) {
            objects.push((db.clone(), breadcrumb(&inv.titles, parent_id(db))));
        } else {
            // Fetched again by the worker, with its data sources.
            let database = db.pointer("/parent/database_id").or_else(|| db.get("id")).and_then(Value::as_str);
            if let Some(id) = database.filter(|id| !too_large.contains(id)) {
                too_large.push(id);
                let path = breadcrumb(&inv.titles, parent_id(db));
                tasks.push((format!("database:{id}"), Task::Database { database_id: id.to_string(), path }));
            }
        }
    }
    for (i, chunk) in object_chunks(objects).into_iter().enumerate() {
        let (objects, paths) = chunk.into_iter().unzip();
        tasks.push((format!("objects:{i}"), Task::Objects { objects, paths }));
    }
    for source in &inv.sources {
        let Some(id) = source.get("id").and_then(Value::as_str) else { continue };
        let mut path = breadcrumb(&inv.titles, parent_id(source));
        push_crumb(&mut path, title_of(source));
        let database_id = if data_sources {
            source.pointer("/parent/database_id").and_then(Value::as_str).map(str::to_string)
        } else {
            None
        };
        let filters: Vec<Option<Value>> = match inv.source_filters.get(id) {
            Some(filters) if !filters.is_empty() => filters.iter().cloned().map(Some).collect(),
            _ => vec![None],
        };
        for (query, filter) in filters.into_iter().enumerate() {
            let cursor =
                RowsCursor { query: query as u32, ..RowsCursor::start(id, database_id.clone(), filter, path.clone()) };
            tasks.push((cursor.task_id(), Task::Rows(cursor)));
        }
    }
    for page in &inv.pages {
        let Some(id) = page.get("id").and_then(Value::as_str) else { continue };
        let embedded = crate::task::embeddable(page);
        tasks.push((
            format!("p:{id}"),
            Task::Page {
                page_id: id.to_string(),
                page: embedded.then(|| page.clone()),
                path: breadcrumb(&inv.titles, parent_id(page)),
            },
        ));
    }
    tasks
}

/// Objects (with their breadcrumbs) in chunks of at most 50 and [`MAX_OBJECTS_BYTES`].
pub(crate) fn object_chunks(objects: Vec<(Value, Vec<String>)>) -> Vec<Vec<(Value, Vec<String>)>> {
    let mut chunks: Vec<Vec<(Value, Vec<String>)>> = Vec::new();
    let mut bytes = 0;
    for (object, path) in objects {
        let size = crate::queue::serialized_len(&object);
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < 50 && bytes + size <= MAX_OBJECTS_BYTES => chunk.push((object, path)),
            _ => {
                chunks.push(vec![(object, path)]);
                bytes = 0;
            }
        }
        bytes += size;
    }
    chunks
}

/// Ancestor titles, outermost first, following parents through the objects search returned.
/// A parent search did not return (a block, the workspace) ends the chain.
pub fn breadcrumb(titles: &HashMap<String, (String, Option<String>)>, mut parent: Option<String>) -> Vec<String> {
    let mut path = Vec::new();
    let mut seen = HashSet::new();
    while let Some(id) = parent {
        if !seen.insert(id.clone()) {
            break;
        }
        match titles.get(&id) {
            Some((title, grandparent)) => {
                path.push(title.clone());
                parent = grandparent.clone();
            }
            None => break,
        }
    }
    path.reverse();
    let mut crumbs = Vec::with_capacity(path.len());
    for title in path {
        push_crumb(&mut crumbs, title);
    }
    crumbs
}

/// Adds a crumb unless it repeats the last one: a data source is usually named after its
/// database, and one crumb says it.
fn push_crumb(path: &mut Vec<String>, title: String) {
    if path.last() != Some(&title) {
        path.push(title);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn breadcrumb_follows_parents_and_stops_on_cycles() {
        let mut titles = HashMap::new();
        titles.insert("a".to_string(), ("A".to_string(), None));
        titles.insert("b".to_string(), ("B".to_string(), Some("a".to_string())));
        titles.insert("x".to_string(), ("X".to_string(), Some("y".to_string())));
        titles.insert("y".to_string(), ("Y".to_string(), Some("x".to_string())));
        assert_eq!(breadcrumb(&titles, Some("b".into())), vec!["A", "B"]);
        assert_eq!(breadcrumb(&titles, Some("unknown".into())), Vec::<String>::new());
        titles.insert("ds".to_string(), ("A".to_string(), Some("a".to_string())));
        assert_eq!(breadcrumb(&titles, Some("ds".into())), vec!["A"], "a data source named like its database");
        assert_eq!(breadcrumb(&titles, Some("x".into())).len(), 2);
    }

    #[test]
    fn sources_selected_for_their_rows_only_are_not_indexed_themselves() {
        let mut inv = Inventory::default();
        for (ds, db) in [("ds1", "db1"), ("ds2", "db2")] {
            inv.sources
                .push(json!({"object": "data_source", "id": ds, "parent": {"type": "database_id", "database_id": db}}));
            inv.databases.push(json!({"object": "database", "id": db}));
        }
        inv.rows_only.insert("ds2".into());
        let tasks = tasks_for(&inv, true);
        let ids: Vec<&str> = tasks.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, vec!["objects:0", "rows:ds1:0", "rows:ds2:0"]);
        match &tasks[0].1 {
            Task::Objects { objects, .. } => {
                assert_eq!(objects.iter().map(|o| o["id"].as_str().unwrap()).collect::<Vec<_>>(), vec!["db1", "ds1"])
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rows_are_left_to_their_data_source() {
        let mut inv = Inventory { users: true, ..Inventory::default() };
        inv.pages.push(json!({"object": "page", "id": "p1", "parent": {"type": "workspace", "workspace": true}}));
        inv.sources.push(
            json!({"object": "data_source", "id": "ds1", "parent": {"type": "database_id", "database_id": "db1"}}),
        );
        let tasks = tasks_for(&inv, true);
        let ids: Vec<&str> = tasks.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, vec!["users", "objects:0", "rows:ds1:0", "p:p1"]);
        match &tasks[2].1 {
            Task::Rows(c) => assert_eq!(c.database_id.as_deref(), Some("db1")),
            other => panic!("unexpected {other:?}"),
        }
    }
}

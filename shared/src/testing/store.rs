//! `MemoryStore`: the content index in memory, with the semantics of `crate::index::SearchStore` that the
//! sync relies on. A document is written in run order: its `sync_run` is its version, compared as the
//! engine's `external_gte` does, so an older run's write (or versioned deletion) never undoes a newer run's.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::document::Document;
use crate::index::{BulkReport, FailedDoc, IndexError};
use crate::ports::{BoxFuture, DocumentStore};

/// One stored document: its source and the run that wrote it (`None` for a write without `sync_run`).
#[derive(Debug, Clone)]
struct Stored {
    source: Map<String, Value>,
    version: Option<u64>,
}

impl Stored {
    fn text(&self, field: &str) -> Option<&str> {
        self.source.get(field).and_then(Value::as_str)
    }

    /// The `sync_run` field, as the engine's range queries see it (a document without one matches none).
    fn sync_run(&self) -> Option<u64> {
        self.source.get("sync_run").and_then(Value::as_u64)
    }
}

/// The content index in memory. `Debug` prints the index name and the document count only.
pub struct MemoryStore {
    index: String,
    docs: Mutex<BTreeMap<String, Stored>>,
    /// The index's identity: `None` once "deleted", a new value once "recreated" (see [`MemoryStore::recreate`]).
    uuid: Mutex<Option<String>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("index", &self.index).field("docs", &self.len()).finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new("content")
    }
}

impl MemoryStore {
    pub fn new(index: &str) -> Self {
        MemoryStore {
            index: index.to_string(),
            docs: Mutex::default(),
            uuid: Mutex::new(Some(format!("{index}-uuid-1"))),
        }
    }

    fn docs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Stored>> {
        self.docs.lock().expect("memory store lock")
    }

    /// Every document's source, by id (what an e2e test reads with a `match_all` search).
    pub fn documents(&self) -> BTreeMap<String, Map<String, Value>> {
        self.docs().iter().map(|(id, d)| (id.clone(), d.source.clone())).collect()
    }

    /// One document's source.
    pub fn source(&self, id: &str) -> Option<Map<String, Value>> {
        self.docs().get(id).map(|d| d.source.clone())
    }

    pub fn len(&self) -> usize {
        self.docs().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts a document in place as an earlier run would have written it (tests set up stale documents this way).
    pub fn put(&self, id: &str, source: Value) {
        let source = match source {
            Value::Object(map) => map,
            other => panic!("a document source is an object, not {other}"),
        };
        let version = source.get("sync_run").and_then(Value::as_u64);
        self.docs().insert(id.to_string(), Stored { source, version });
    }

    /// Replaces the index by a new, empty one with another uuid (the index deleted and auto-created mid-run).
    pub fn recreate(&self) {
        self.docs().clear();
        let mut uuid = self.uuid.lock().expect("memory store lock");
        let n = uuid.as_deref().and_then(|u| u.rsplit('-').next()?.parse::<u64>().ok()).unwrap_or(0) + 1;
        *uuid = Some(format!("{}-uuid-{n}", self.index));
    }

    /// Writes documents by id, the last of a repeated id winning; a versioned write older than the stored version
    /// is `skipped` (a newer run's document stays).
    pub fn bulk_index_now(&self, docs: Vec<Document>) -> BulkReport {
        let mut report = BulkReport { requests: 1, ..BulkReport::default() };
        let mut latest: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for doc in docs {
            latest.insert(doc.id, doc.source);
        }
        let mut stored = self.docs();
        for (id, source) in latest {
            if serde_json::to_vec(&source).is_err() {
                report.failed.push(FailedDoc { id, status: 0, reason: "not encodable".into() });
                continue;
            }
            let version = source.get("sync_run").and_then(Value::as_u64);
            let current = stored.get(&id).and_then(|d| d.version);
            match (version, current) {
                (Some(new), Some(old)) if new < old => report.skipped += 1,
                // An unversioned write replaces the source and keeps the stored version (the engine bumps its
                // internal version, which a run id, milliseconds since the epoch, still passes).
                (None, old) => {
                    stored.insert(id, Stored { source, version: old });
                    report.indexed += 1;
                }
                (Some(new), _) => {
                    stored.insert(id, Stored { source, version: Some(new) });
                    report.indexed += 1;
                }
            }
        }
        report
    }

    /// Removes the documents for which `doomed` holds; returns how many.
    fn delete_where(&self, doomed: impl Fn(&str, &Stored) -> bool) -> u64 {
        let mut docs = self.docs();
        let before = docs.len();
        docs.retain(|id, d| !doomed(id, d));
        (before - docs.len()) as u64
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl DocumentStore for MemoryStore {
    fn index(&self) -> &str {
        &self.index
    }

    fn bulk_index(&self, docs: Vec<Document>) -> BoxFuture<'_, Result<BulkReport, IndexError>> {
        ready(Ok(self.bulk_index_now(docs)))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Map<String, Value>>, IndexError>> {
        ready(Ok(self.docs().get(id).map(|d| d.source.clone())))
    }

    fn sources<'a>(
        &'a self,
        ids: &'a [String],
        fields: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<(String, Map<String, Value>)>, IndexError>> {
        let docs = self.docs();
        let found = ids
            .iter()
            .filter_map(|id| {
                let doc = docs.get(id)?;
                let picked = doc.source.iter().filter(|(k, _)| fields.contains(&k.as_str()));
                Some((id.clone(), picked.map(|(k, v)| (k.clone(), v.clone())).collect()))
            })
            .collect();
        ready(Ok(found))
    }

    fn delete_ids_of_run<'a>(&'a self, ids: &'a [String], run_id: u64) -> BoxFuture<'a, Result<u64, IndexError>> {
        // A versioned deletion: what a newer run wrote stays.
        let deleted = self.delete_where(|id, d| ids.iter().any(|i| i == id) && d.version.is_none_or(|v| v <= run_id));
        ready(Ok(deleted))
    }

    fn delete_page<'a>(&'a self, page_id: &'a str) -> BoxFuture<'a, Result<u64, IndexError>> {
        ready(Ok(self.delete_where(|id, d| id == page_id || d.text("page_id") == Some(page_id))))
    }

    fn delete_removed_blocks<'a>(
        &'a self,
        page_id: &'a str,
        run_id: u64,
        open_runs: &'a [u64],
    ) -> BoxFuture<'a, Result<u64, IndexError>> {
        let deleted = self.delete_where(|_, d| {
            d.text("page_id") == Some(page_id)
                && d.text("object") == Some("block")
                && d.sync_run().is_some_and(|r| r < run_id && !open_runs.contains(&r))
        });
        ready(Ok(deleted))
    }

    fn delete_stale_except<'a>(
        &'a self,
        before_run: u64,
        keep: &'a [&'a str],
        open_runs: &'a [u64],
    ) -> BoxFuture<'a, Result<u64, IndexError>> {
        let deleted = self.delete_where(|_, d| {
            d.sync_run().is_some_and(|r| r < before_run && !open_runs.contains(&r))
                && !d.text("object").is_some_and(|o| keep.contains(&o))
        });
        ready(Ok(deleted))
    }

    fn delete_own<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<u64, IndexError>> {
        let listed = |s: Option<&str>| s.is_some_and(|s| ids.iter().any(|i| i == s));
        let deleted = self.delete_where(|id, d| {
            listed(Some(id)) || (listed(d.text("page_id")) && matches!(d.text("object"), Some("block" | "comment")))
        });
        ready(Ok(deleted))
    }

    fn stale_objects<'a>(
        &'a self,
        before_run: u64,
        objects: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, IndexError>> {
        // By id, as the engine's sorted search returns them (the map is ordered).
        let stale = self
            .docs()
            .iter()
            .filter(|(_, d)| d.sync_run().is_some_and(|r| r < before_run))
            .filter_map(|(id, d)| d.text("object").filter(|o| objects.contains(o)).map(|o| (id.clone(), o.to_string())))
            .collect();
        ready(Ok(stale))
    }

    fn index_uuid(&self) -> BoxFuture<'_, Result<Option<String>, IndexError>> {
        ready(Ok(self.uuid.lock().expect("memory store lock").clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(id: &str, run: u64, extra: Value) -> Document {
        let mut source = json!({"id": id, "object": "block", "sync_run": run});
        source.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        Document { id: id.into(), source: source.as_object().cloned().unwrap() }
    }

    #[tokio::test]
    async fn an_older_run_never_replaces_or_deletes_a_newer_runs_document() {
        let store = MemoryStore::default();
        let report = store.bulk_index(vec![doc("a", 5, json!({"body": "new"}))]).await.unwrap();
        assert_eq!((report.indexed, report.skipped), (1, 0));
        let report = store.bulk_index(vec![doc("a", 4, json!({"body": "old"})), doc("b", 4, json!({}))]).await.unwrap();
        assert_eq!((report.indexed, report.skipped), (1, 1));
        assert_eq!(store.get("a").await.unwrap().unwrap()["body"], "new");
        // The same run again replaces (a redelivered task), a newer one too.
        store.bulk_index(vec![doc("a", 5, json!({"body": "again"}))]).await.unwrap();
        assert_eq!(store.get("a").await.unwrap().unwrap()["body"], "again");
        let ids = vec!["a".to_string(), "b".to_string(), "missing".to_string()];
        assert_eq!(store.delete_ids_of_run(&ids, 4).await.unwrap(), 1, "only b, written by run 4");
        assert!(store.get("a").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn stale_removal_keeps_classes_open_runs_and_documents_without_a_run() {
        let store = MemoryStore::default();
        store.put("page", json!({"object": "page", "sync_run": 1}));
        store.put("block", json!({"object": "block", "sync_run": 1, "page_id": "page"}));
        store.put("open", json!({"object": "block", "sync_run": 2}));
        store.put("fresh", json!({"object": "block", "sync_run": 3}));
        store.put("unversioned", json!({"object": "block"}));
        let stale = store.stale_objects(3, &["page", "database"]).await.unwrap();
        assert_eq!(stale, vec![("page".to_string(), "page".to_string())]);
        assert_eq!(store.delete_stale_except(3, &["page"], &[2]).await.unwrap(), 1);
        let left: Vec<String> = store.documents().into_keys().collect();
        assert_eq!(left, ["fresh", "open", "page", "unversioned"]);
    }

    #[tokio::test]
    async fn page_deletions_follow_page_id() {
        let store = MemoryStore::default();
        store.put("p", json!({"object": "page", "sync_run": 1}));
        store.put("b1", json!({"object": "block", "sync_run": 1, "page_id": "p"}));
        store.put("b2", json!({"object": "block", "sync_run": 2, "page_id": "p"}));
        store.put("c", json!({"object": "comment", "sync_run": 1, "page_id": "p"}));
        store.put("sub", json!({"object": "database", "sync_run": 1, "page_id": "p"}));
        // Blocks of run 2 (this walk) and of open runs stay.
        assert_eq!(store.delete_removed_blocks("p", 2, &[]).await.unwrap(), 1);
        assert_eq!(store.delete_own(&["p".to_string()]).await.unwrap(), 3, "p, b2 and c; not the database");
        assert_eq!(store.delete_page("sub").await.unwrap(), 1);
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn sources_pick_fields_and_a_recreated_index_has_a_new_uuid() {
        let store = MemoryStore::default();
        store.put("a", json!({"object": "page", "title": "A", "sync_run": 1}));
        let ids = vec!["a".to_string(), "b".to_string()];
        let found = store.sources(&ids, &["title"]).await.unwrap();
        assert_eq!(found, vec![("a".to_string(), json!({"title": "A"}).as_object().cloned().unwrap())]);
        let before = store.index_uuid().await.unwrap().unwrap();
        store.recreate();
        assert!(store.is_empty());
        assert_ne!(store.index_uuid().await.unwrap().unwrap(), before);
    }
}

//! An in-memory [`DocumentStore`] for unit tests of the sync logic.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::bulk::{BulkReport, FailedDoc};
use super::{DocumentStore, IndexError};
use crate::document::Document;

/// Documents by id. `reject(id)` makes later writes of that id fail as a mapping error would.
#[derive(Debug, Default)]
pub struct MemoryStore {
    docs: Mutex<BTreeMap<String, Map<String, Value>>>,
    rejected: Mutex<HashSet<String>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Later writes of `id` are reported as failed (HTTP 400).
    pub fn reject(&self, id: &str) {
        lock(&self.rejected).insert(id.to_string());
    }

    /// A copy of every document, by id.
    pub fn snapshot(&self) -> BTreeMap<String, Map<String, Value>> {
        lock(&self.docs).clone()
    }

    pub fn get(&self, id: &str) -> Option<Map<String, Value>> {
        lock(&self.docs).get(id).cloned()
    }

    pub fn len(&self) -> usize {
        lock(&self.docs).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DocumentStore for MemoryStore {
    async fn bulk_index(&self, docs: Vec<Document>) -> Result<BulkReport, IndexError> {
        let rejected = lock(&self.rejected).clone();
        let mut store = lock(&self.docs);
        let mut report = BulkReport { requests: u64::from(!docs.is_empty()), ..Default::default() };
        for doc in docs {
            if rejected.contains(&doc.id) {
                report.failed.push(FailedDoc {
                    id: doc.id,
                    status: 400,
                    reason: "mapper_parsing_exception: rejected by test".into(),
                });
            } else {
                store.insert(doc.id, doc.source);
                report.indexed += 1;
            }
        }
        Ok(report)
    }

    async fn delete_ids(&self, ids: &[String]) -> Result<u64, IndexError> {
        let mut store = lock(&self.docs);
        Ok(ids.iter().filter(|id| store.remove(id.as_str()).is_some()).count() as u64)
    }

    async fn delete_page(&self, page_id: &str) -> Result<u64, IndexError> {
        let mut store = lock(&self.docs);
        let before = store.len();
        store.retain(|id, source| id != page_id && source.get("page_id").and_then(Value::as_str) != Some(page_id));
        Ok((before - store.len()) as u64)
    }

    async fn delete_stale(&self, before_run: u64) -> Result<u64, IndexError> {
        let mut store = lock(&self.docs);
        let before = store.len();
        store.retain(|_, source| source.get("sync_run").and_then(Value::as_u64).is_none_or(|run| run >= before_run));
        Ok((before - store.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(id: &str, page: &str, run: u64) -> Document {
        let source = json!({"id": id, "page_id": page, "sync_run": run});
        Document { id: id.into(), source: source.as_object().cloned().unwrap_or_default() }
    }

    #[tokio::test]
    async fn behaves_like_the_index() {
        let store = MemoryStore::new();
        store.reject("bad");
        let report = store
            .bulk_index(vec![doc("p", "p", 1), doc("b1", "p", 1), doc("x", "q", 2), doc("bad", "q", 2)])
            .await
            .unwrap();
        assert_eq!((report.indexed, report.failed.len()), (3, 1));
        assert_eq!(store.delete_stale(2).await.unwrap(), 2);
        assert_eq!(store.len(), 1);
        store.bulk_index(vec![doc("p", "p", 3), doc("b1", "p", 3)]).await.unwrap();
        assert_eq!(store.delete_page("p").await.unwrap(), 2);
        assert_eq!(store.delete_ids(&["x".into(), "nope".into()]).await.unwrap(), 1);
        assert!(store.is_empty());
    }
}

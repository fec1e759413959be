//! The content index: creation, bulk indexing, deletions, and small read helpers for tests and
//! the demo.

use std::collections::HashSet;

use elasticsearch::http::Method;
use serde_json::{json, Map, Value};

use super::client::SearchClient;
use super::mapping::{content_mappings, index_body, runs_mappings, tasks_mappings};
use super::ops::{delete_by_query, get_source, refresh};
use super::path_segment;
use super::sender::{send_bulk, EncodedOp};
use crate::document::Document;
use crate::index::bulk::{
    encode_versioned_action, encode_versioned_source, BulkLimits, BulkOp, BulkReport, FailedDoc, Versioned,
};
use crate::index::{runs_index, tasks_index, IndexError, SearchSettings};
use crate::ports::{BoxFuture, DocumentStore, Source};

/// The content index `{index}` (and the creation of its `-runs` and `-tasks` companions).
#[derive(Debug, Clone)]
pub struct SearchStore {
    client: SearchClient,
    index: String,
    limits: BulkLimits,
    shards: u32,
    replicas: u32,
}

impl SearchStore {
    /// Builds the client and the store (no I/O).
    pub fn connect(settings: &SearchSettings) -> Result<Self, IndexError> {
        Ok(Self::new(SearchClient::new(settings)?, settings))
    }

    pub fn new(client: SearchClient, settings: &SearchSettings) -> Self {
        SearchStore {
            client,
            index: settings.index.clone(),
            limits: settings.bulk.clone(),
            shards: settings.shards,
            replicas: settings.replicas,
        }
    }

    pub fn client(&self) -> &SearchClient {
        &self.client
    }

    pub fn index(&self) -> &str {
        &self.index
    }

    /// Creates the content, runs and tasks indices when missing (idempotent; a concurrent
    /// creation is fine). On an existing index the mapping is updated with any new fields; a
    /// conflicting existing mapping is logged, not fatal.
    pub async fn ensure_indices(&self) -> Result<(), IndexError> {
        let wanted = [
            (self.index.clone(), content_mappings()),
            (runs_index(&self.index), runs_mappings()),
            (tasks_index(&self.index), tasks_mappings()),
        ];
        for (name, mappings) in wanted {
            let path = path_segment(&name);
            let exists = self.client.json(Method::Head, &path, &[], None).await?;
            if exists.is_success() {
                let reply = self.client.json(Method::Put, &format!("{path}/_mapping"), &[], Some(&mappings)).await?;
                if !reply.is_success() {
                    tracing::warn!(index = %name, error = %reply.refused("mapping update"), "existing index keeps its mapping");
                }
                continue;
            }
            let body = index_body(mappings, self.shards, self.replicas);
            let reply = self.client.json(Method::Put, &path, &[], Some(&body)).await?;
            if reply.is_success() {
                tracing::info!(index = %name, "index created");
            } else if reply.error_type() != Some("resource_already_exists_exception") {
                return Err(reply.refused(&format!("creating index {name}")));
            }
        }
        Ok(())
    }

    /// Deletes the three indices (tests, resets). Missing ones are fine.
    pub async fn delete_indices(&self) -> Result<(), IndexError> {
        for name in [self.index.clone(), runs_index(&self.index), tasks_index(&self.index)] {
            let reply = self.client.json(Method::Delete, &path_segment(&name), &[], None).await?;
            if !reply.is_success() && reply.status != 404 {
                return Err(reply.refused(&format!("deleting index {name}")));
            }
        }
        Ok(())
    }

    /// Indexes documents by `_id` (create or replace). When the same id appears twice, the last
    /// one wins. A rejected document is reported in `failed`; the others are indexed regardless.
    ///
    /// A document with a `sync_run` is written in run order (`version = sync_run`,
    /// `external_gte`): a newer run's document stays, and the write counts as `skipped`.
    pub async fn bulk_index(&self, docs: Vec<Document>) -> Result<BulkReport, IndexError> {
        let mut seen = HashSet::with_capacity(docs.len());
        let mut ops = Vec::with_capacity(docs.len());
        let mut unencodable = Vec::new();
        for doc in docs.iter().rev() {
            if !seen.insert(doc.id.as_str()) {
                continue;
            }
            let version = doc.source.get("sync_run").and_then(Value::as_u64).map(Versioned);
            match encode_versioned_source(BulkOp::Index, &doc.id, version, &doc.source) {
                Ok(bytes) => ops.push(EncodedOp { id: doc.id.clone(), bytes }),
                Err(e) => {
                    unencodable.push(FailedDoc { id: doc.id.clone(), status: 0, reason: format!("not encodable: {e}") })
                }
            }
        }
        ops.reverse();
        let mut outcome = send_bulk(&self.client, &self.index, BulkOp::Index, &ops, &self.limits).await?;
        outcome.report.failed.extend(unencodable);
        if outcome.report.skipped > 0 {
            tracing::info!(index = %self.index, skipped = outcome.report.skipped, "documents already written by a newer run left as they are");
        }
        tracing::debug!(index = %self.index, indexed = outcome.report.indexed, failed = outcome.report.failed.len(),
            requests = outcome.report.requests, retried = outcome.report.retried_items, "bulk indexed");
        Ok(outcome.report)
    }

    /// Deletes documents by id; returns how many existed. Absent ids are fine; an operation that
    /// fails for good makes the call fail (after the others were applied).
    pub async fn delete_ids(&self, ids: &[String]) -> Result<u64, IndexError> {
        self.delete_ids_versioned(ids, None).await
    }

    /// [`SearchStore::delete_ids`] for run `run_id`: a document a newer run wrote is left alone
    /// (the deletion carries the run's version), as is any other version conflict.
    pub async fn delete_ids_of_run(&self, ids: &[String], run_id: u64) -> Result<u64, IndexError> {
        self.delete_ids_versioned(ids, Some(Versioned(run_id))).await
    }

    async fn delete_ids_versioned(&self, ids: &[String], version: Option<Versioned>) -> Result<u64, IndexError> {
        let ops: Vec<EncodedOp> = ids
            .iter()
            .map(|id| EncodedOp { id: id.clone(), bytes: encode_versioned_action(BulkOp::Delete, id, version) })
            .collect();
        let outcome = send_bulk(&self.client, &self.index, BulkOp::Delete, &ops, &self.limits).await?;
        if let Some(first) = outcome.report.failed.first() {
            return Err(IndexError::DeleteFailed {
                failed: outcome.report.failed.len(),
                total: ids.len(),
                first: format!("{}: {}", first.id, first.reason),
            });
        }
        Ok(outcome.deleted)
    }

    /// Deletes a page's document and every document whose `page_id` is the page (its blocks,
    /// comments); returns how many were deleted.
    pub async fn delete_page(&self, page_id: &str) -> Result<u64, IndexError> {
        let query = json!({"bool": {"should": [{"ids": {"values": [page_id]}}, {"term": {"page_id": page_id}}], "minimum_should_match": 1}});
        delete_by_query(&self.client, &self.index, &query).await
    }

    /// Deletes a page's block documents that run `run_id` did not write: the blocks removed from
    /// a page that an incremental or webhook run has just walked completely. Blocks of the runs in
    /// `open_runs` (runs still planning or running) are kept whatever their id: such a run may have
    /// walked the page after this one and written blocks this walk never saw. Returns how many.
    pub async fn delete_removed_blocks(
        &self,
        page_id: &str,
        run_id: u64,
        open_runs: &[u64],
    ) -> Result<u64, IndexError> {
        let query = json!({"bool": {
            "filter": [
                {"term": {"page_id": page_id}}, {"term": {"object": "block"}}, {"range": {"sync_run": {"lt": run_id}}}
            ],
            "must_not": [{"terms": {"sync_run": open_runs}}]
        }});
        delete_by_query(&self.client, &self.index, &query).await
    }

    /// Stale removal: deletes every document with `sync_run < before_run`; returns how many.
    pub async fn delete_stale(&self, before_run: u64) -> Result<u64, IndexError> {
        self.delete_stale_except(before_run, &[], &[]).await
    }

    /// Stale removal of everything but the `object` classes in `keep` (those verified one by one, and
    /// those a run could not read) and the documents of `open_runs` (older runs still writing, whose
    /// late walks may have seen what this run did not): deletes documents with `sync_run < before_run`;
    /// returns how many.
    pub async fn delete_stale_except(
        &self,
        before_run: u64,
        keep: &[&str],
        open_runs: &[u64],
    ) -> Result<u64, IndexError> {
        let query = json!({"bool": {
            "filter": [{"range": {"sync_run": {"lt": before_run}}}],
            "must_not": [{"terms": {"object": keep}}, {"terms": {"sync_run": open_runs}}]
        }});
        let deleted = delete_by_query(&self.client, &self.index, &query).await?;
        tracing::info!(index = %self.index, before_run, deleted, ?keep, ?open_runs, "stale documents deleted");
        Ok(deleted)
    }

    /// `(id, object)` of the documents of the given `object` classes with `sync_run < before_run`, by id.
    pub async fn stale_objects(&self, before_run: u64, objects: &[&str]) -> Result<Vec<(String, String)>, IndexError> {
        self.refresh().await?;
        let mut out = Vec::new();
        let mut after: Option<Value> = None;
        loop {
            let mut body = json!({
                "size": 1000,
                "_source": ["object"],
                "sort": [{"id": "asc"}],
                "query": {"bool": {"filter": [
                    {"range": {"sync_run": {"lt": before_run}}}, {"terms": {"object": objects}}
                ]}}
            });
            if let Some(after) = after.take() {
                body["search_after"] = after;
            }
            let page = self.search(&body).await?;
            let hits = page.pointer("/hits/hits").and_then(Value::as_array).cloned().unwrap_or_default();
            for hit in &hits {
                let id = hit.get("_id").and_then(Value::as_str).unwrap_or_default();
                let object = hit.pointer("/_source/object").and_then(Value::as_str).unwrap_or_default();
                if !id.is_empty() {
                    out.push((id.to_string(), object.to_string()));
                }
            }
            match hits.last().and_then(|h| h.get("sort")) {
                Some(sort) if hits.len() == 1000 => after = Some(sort.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// The content index's uuid (`index.uuid`), `None` when the index does not exist. A deleted
    /// and recreated (or auto-created) index has a new one.
    pub async fn index_uuid(&self) -> Result<Option<String>, IndexError> {
        let path = format!("{}/_settings/index.uuid", path_segment(&self.index));
        let reply = self.client.json(Method::Get, &path, &[], None).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let body = reply.ok(&format!("settings of {}", self.index))?;
        // `{"<index>": {"settings": {"index": {"uuid": "..."}}}}`
        let uuid =
            body.get(&self.index).and_then(|i| i.pointer("/settings/index/uuid")).and_then(Value::as_str).ok_or_else(
                || IndexError::Protocol { what: format!("settings of {}", self.index), detail: "no index.uuid".into() },
            )?;
        Ok(Some(uuid.to_string()))
    }

    /// The `fields` of the documents of `ids` that exist, by id (at most 1,000 ids a call).
    pub async fn sources(
        &self,
        ids: &[String],
        fields: &[&str],
    ) -> Result<Vec<(String, Map<String, Value>)>, IndexError> {
        let body = json!({"size": ids.len(), "_source": fields, "query": {"ids": {"values": ids}}});
        let reply = self.search(&body).await?;
        let hits = reply.pointer("/hits/hits").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(hits
            .into_iter()
            .filter_map(|mut hit| {
                let id = hit.get("_id").and_then(Value::as_str)?.to_string();
                match hit.get_mut("_source").map(Value::take) {
                    Some(Value::Object(source)) => Some((id, source)),
                    _ => None,
                }
            })
            .collect())
    }

    /// Deletes the own documents of objects `ids`: each object's document, and the blocks and comments of a
    /// page (not the databases or pages below it, which are objects of their own); returns how many.
    pub async fn delete_own(&self, ids: &[String]) -> Result<u64, IndexError> {
        let query = json!({"bool": {"should": [
            {"ids": {"values": ids}},
            {"bool": {"filter": [{"terms": {"page_id": ids}}, {"terms": {"object": ["block", "comment"]}}]}}
        ], "minimum_should_match": 1}});
        delete_by_query(&self.client, &self.index, &query).await
    }

    /// Makes everything indexed so far searchable.
    pub async fn refresh(&self) -> Result<(), IndexError> {
        refresh(&self.client, &self.index).await
    }

    /// A document's `_source`, if it exists.
    pub async fn get(&self, id: &str) -> Result<Option<Map<String, Value>>, IndexError> {
        get_source(&self.client, &self.index, id).await
    }

    /// How many documents match `query` (all when `None`).
    pub async fn count(&self, query: Option<&Value>) -> Result<u64, IndexError> {
        let body = query.map(|q| json!({"query": q}));
        let reply = self
            .client
            .json(Method::Post, &format!("{}/_count", path_segment(&self.index)), &[], body.as_ref())
            .await?;
        let body = reply.ok(&format!("count on {}", self.index))?;
        body.get("count")
            .and_then(Value::as_u64)
            .ok_or_else(|| IndexError::Protocol { what: format!("count on {}", self.index), detail: "no count".into() })
    }

    /// A raw `_search` (tests, the demo): the engine's response as is.
    pub async fn search(&self, body: &Value) -> Result<Value, IndexError> {
        let reply =
            self.client.json(Method::Post, &format!("{}/_search", path_segment(&self.index)), &[], Some(body)).await?;
        reply.ok(&format!("search on {}", self.index))
    }
}

impl DocumentStore for SearchStore {
    fn index(&self) -> &str {
        &self.index
    }

    fn bulk_index(&self, docs: Vec<Document>) -> BoxFuture<'_, Result<BulkReport, IndexError>> {
        Box::pin(SearchStore::bulk_index(self, docs))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Map<String, Value>>, IndexError>> {
        Box::pin(SearchStore::get(self, id))
    }

    fn sources<'a>(
        &'a self,
        ids: &'a [String],
        fields: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<(String, Source)>, IndexError>> {
        Box::pin(SearchStore::sources(self, ids, fields))
    }

    fn delete_ids_of_run<'a>(&'a self, ids: &'a [String], run_id: u64) -> BoxFuture<'a, Result<u64, IndexError>> {
        Box::pin(SearchStore::delete_ids_of_run(self, ids, run_id))
    }

    fn delete_page<'a>(&'a self, page_id: &'a str) -> BoxFuture<'a, Result<u64, IndexError>> {
        Box::pin(SearchStore::delete_page(self, page_id))
    }

    fn delete_removed_blocks<'a>(
        &'a self,
        page_id: &'a str,
        run_id: u64,
        open_runs: &'a [u64],
    ) -> BoxFuture<'a, Result<u64, IndexError>> {
        Box::pin(SearchStore::delete_removed_blocks(self, page_id, run_id, open_runs))
    }

    fn delete_stale_except<'a>(
        &'a self,
        before_run: u64,
        keep: &'a [&'a str],
        open_runs: &'a [u64],
    ) -> BoxFuture<'a, Result<u64, IndexError>> {
        Box::pin(SearchStore::delete_stale_except(self, before_run, keep, open_runs))
    }

    fn delete_own<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<u64, IndexError>> {
        Box::pin(SearchStore::delete_own(self, ids))
    }

    fn stale_objects<'a>(
        &'a self,
        before_run: u64,
        objects: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, IndexError>> {
        Box::pin(SearchStore::stale_objects(self, before_run, objects))
    }

    fn index_uuid(&self) -> BoxFuture<'_, Result<Option<String>, IndexError>> {
        Box::pin(SearchStore::index_uuid(self))
    }
}

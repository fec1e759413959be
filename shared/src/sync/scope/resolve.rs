//! Scope checks that read: the nodes a decision needs (from the index, then from Notion), the rows Notion says a
//! filter selects, and the removal of what is out of scope.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{chain, edited_since_and, Kind, Node, Nodes, RowsScope, Selection, Verdict};
use crate::sync::{SyncContext, SyncError};

/// Pages of one filtered rows query read, at most, looking for changed rows.
const MAX_MATCH_PAGES: usize = 10;

/// Removes the own documents of out-of-scope objects; returns how many went.
pub async fn remove_own(ctx: &SyncContext, ids: &[String]) -> Result<u64, SyncError> {
    let mut deleted = 0;
    for chunk in ids.chunks(1000) {
        deleted += ctx.store.delete_own(chunk).await?;
    }
    if deleted > 0 {
        tracing::info!(objects = ids.len(), deleted, "documents of objects out of the configured scope removed");
    }
    Ok(deleted)
}

/// Collects the nodes scope decisions need: from the index, then from Notion.
pub struct Resolver<'a> {
    ctx: &'a SyncContext,
    pub nodes: Nodes,
    /// Ids neither the index nor Notion could give (not shared, deleted): the chain ends there.
    unknown: HashSet<String>,
    pub api_calls: u64,
}

impl<'a> Resolver<'a> {
    pub fn new(ctx: &'a SyncContext) -> Self {
        Resolver { ctx, nodes: Nodes::new(), unknown: HashSet::new(), api_calls: 0 }
    }

    /// Adds an object the caller holds.
    pub fn add(&mut self, object: &Value) -> Option<String> {
        let (id, node) = Node::of_object(object)?;
        self.nodes.insert(id.clone(), node);
        Some(id)
    }

    /// Makes sure `id` (an object of `kind`) is known, if it exists.
    pub async fn ensure(&mut self, id: &str, kind: Kind) -> Result<(), SyncError> {
        self.lookup(vec![(id.to_string(), kind)]).await
    }

    /// Looks up the ancestors of `ids` that are not known yet, `depth` levels at most.
    pub async fn ancestors(&mut self, ids: &[String], depth: usize) -> Result<(), SyncError> {
        for _ in 0..depth {
            let mut missing: Vec<(String, Kind)> = ids.iter().filter_map(|id| self.first_missing(id)).collect();
            missing.sort_by(|a, b| a.0.cmp(&b.0));
            missing.dedup_by(|a, b| a.0 == b.0);
            if missing.is_empty() {
                break;
            }
            self.lookup(missing).await?;
        }
        Ok(())
    }

    /// The first ancestor of `id` that is neither known nor known to be unreachable.
    fn first_missing(&self, id: &str) -> Option<(String, Kind)> {
        let chain = chain(&self.nodes, id);
        let (_, last) = chain.last()?;
        let (parent, kind) = last.parent.as_ref()?;
        (!self.nodes.contains_key(parent) && !self.unknown.contains(parent)).then(|| (parent.clone(), *kind))
    }

    async fn lookup(&mut self, wanted: Vec<(String, Kind)>) -> Result<(), SyncError> {
        let wanted: Vec<(String, Kind)> = wanted.into_iter().filter(|(id, _)| !self.nodes.contains_key(id)).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = wanted.iter().map(|(id, _)| id.clone()).collect();
        for chunk in ids.chunks(1000) {
            let fields = ["id", "object", "title", "parent", "parent_id", "data_sources"];
            match self.ctx.store.sources(chunk, &fields).await {
                Ok(sources) => {
                    for (_, source) in sources {
                        if let Some((id, node)) = Node::of_document(&Value::Object(source)) {
                            self.nodes.insert(id, node);
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "ancestors not read from the index; asking Notion"),
            }
        }
        for (id, kind) in wanted {
            if self.nodes.contains_key(&id) {
                continue;
            }
            self.api_calls += 1;
            let notion = &self.ctx.notion;
            let fetched = match kind {
                Kind::Page | Kind::Row => notion.get_page(id.as_str()).await,
                Kind::Database => notion.get_database(id.as_str()).await,
                Kind::DataSource => notion.get_data_source(id.as_str()).await,
                Kind::Block => notion.get_block(id.as_str()).await,
            };
            match fetched {
                Ok(object) => match Node::of_object(&object) {
                    Some((_, node)) => {
                        self.nodes.insert(id, node);
                    }
                    None => {
                        self.unknown.insert(id);
                    }
                },
                Err(err) if err.is_not_found() || err.is_restricted() || err.code() == Some("validation_error") => {
                    tracing::debug!(id, error = %err, "ancestor unreadable: the chain ends there");
                    self.unknown.insert(id);
                }
                Err(crate::notion::NotionError::Unsupported { .. }) => {
                    self.unknown.insert(id);
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }
}

/// Splits `objects` (pages, rows, data sources, databases) into those in scope and the ids of those out of it,
/// with the calls it took. Rows that must match a filter are asked of Notion, one query per source and filter.
pub async fn partition(
    ctx: &SyncContext,
    selection: &Selection,
    objects: Vec<Value>,
    api_calls: &mut u64,
) -> Result<(Vec<Value>, Vec<String>), SyncError> {
    let mut resolver = Resolver::new(ctx);
    let ids: Vec<String> = objects.iter().filter_map(|o| resolver.add(o)).collect();
    resolver.ancestors(&ids, selection.depth()).await?;
    *api_calls += resolver.api_calls;
    let mut out: Vec<String> = Vec::new();
    let mut keep: HashSet<String> = HashSet::new();
    // Rows to ask about, by source: the filters, and each row with its edit time.
    type Rows = Vec<(String, Option<DateTime<Utc>>)>;
    let mut ask: HashMap<String, (Vec<Value>, Rows)> = HashMap::new();
    for object in &objects {
        let Some(id) = object.get("id").and_then(Value::as_str) else { continue };
        match selection.verdict(&resolver.nodes, id) {
            Verdict::In => {
                keep.insert(id.to_string());
            }
            Verdict::Out => out.push(id.to_string()),
            Verdict::Matching(filters) => {
                let source = crate::document::parent_id(object).unwrap_or_default();
                let entry = ask.entry(source).or_insert_with(|| (filters, Vec::new()));
                entry.1.push((id.to_string(), crate::sync::incremental::edited_at(object)));
            }
        }
    }
    for (source, (filters, rows)) in ask {
        let wanted: HashSet<String> = rows.iter().map(|(id, _)| id.clone()).collect();
        let since = rows.iter().filter_map(|(_, t)| *t).min().unwrap_or(DateTime::UNIX_EPOCH);
        let found = matching_rows(ctx, &source, &filters, since, &wanted, api_calls).await?;
        for id in wanted {
            if found.contains(&id) {
                keep.insert(id);
            } else {
                out.push(id);
            }
        }
    }
    let kept: Vec<Value> = objects
        .into_iter()
        .filter(|o| o.get("id").and_then(Value::as_str).is_some_and(|id| keep.contains(id)))
        .collect();
    tracing::info!(in_scope = kept.len(), out_of_scope = out.len(), scope_calls = resolver.api_calls, "scope checked");
    Ok((kept, out))
}

/// Which of `wanted` (rows of `source` edited on or after `since`) one of `filters` selects.
async fn matching_rows(
    ctx: &SyncContext,
    source: &str,
    filters: &[Value],
    since: DateTime<Utc>,
    wanted: &HashSet<String>,
    api_calls: &mut u64,
) -> Result<HashSet<String>, SyncError> {
    let mut found = HashSet::new();
    for filter in filters {
        let mut body = json!({"page_size": 100, "filter": edited_since_and(since, filter)});
        for _ in 0..MAX_MATCH_PAGES {
            *api_calls += 1;
            let page = match ctx.notion.query_rows(source, &body).await {
                Ok(page) => page,
                Err(err) if err.is_not_found() || err.code() == Some("validation_error") => {
                    tracing::warn!(source, error = %err, "rows filter not checked: rows treated as not matching");
                    return Ok(found);
                }
                Err(err) => return Err(err.into()),
            };
            found.extend(
                page.results
                    .iter()
                    .filter_map(|r| r.get("id").and_then(Value::as_str))
                    .filter(|id| wanted.contains(*id))
                    .map(str::to_string),
            );
            match (page.has_more, page.next_cursor) {
                (true, Some(next)) if found.len() < wanted.len() => body["start_cursor"] = json!(next),
                _ => break,
            }
        }
        if found.len() == wanted.len() {
            break;
        }
    }
    Ok(found)
}

/// Which rows of `source` (a data source, or a 2022-06-28 database) are in scope, with the calls it took; also the
/// source's own verdict (`None` when Notion does not know the source).
pub async fn rows_scope(
    ctx: &SyncContext,
    selection: &Selection,
    source: &str,
    database_id: Option<&str>,
    api_calls: &mut u64,
) -> Result<(RowsScope, Option<Verdict>), SyncError> {
    let mut resolver = Resolver::new(ctx);
    let kind = if ctx.notion.version().has_data_sources() { Kind::DataSource } else { Kind::Database };
    let depth = selection.depth();
    if depth > 0 || matches!(selection, Selection::Titles { .. }) {
        resolver.ensure(source, kind).await?;
        resolver.ancestors(&[source.to_string()], depth).await?;
    }
    *api_calls += resolver.api_calls;
    let chain = chain(&resolver.nodes, source);
    let verdict = resolver.nodes.contains_key(source).then(|| selection.verdict(&resolver.nodes, source));
    Ok((selection.rows_of(&chain, source, database_id), verdict))
}

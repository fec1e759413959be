//! Scope outside full runs. A full run's planner applies the selection (`pages` / `databases` titles with what the
//! tree reaches below them, or the advanced rules); incremental and webhook runs reach objects one by one, so each
//! is checked here the same way before it is indexed. What is out of scope is not indexed, and its own documents
//! (the object, and a page's blocks and comments) are removed in case an older scope indexed them.
//!
//! - Title lists: an object is in scope when it, or an ancestor, is selected (the same title matching as the
//!   planner), as `selection::retain_selected` and the walk's discovery make it in a full run: a page below a
//!   selected page or below a database in scope; a database (or data source) below a selected database, or
//!   below a selected page; a row when its source is in scope.
//! - Advanced rules: only what a rule selects, as the planner does (no discovery through the tree): a page or row
//!   whose title a `searches` rule matches, a source a `searches` rule matches with every row, or a row of a
//!   `database_query_filters` source that matches the rule's filter (asked of Notion: one filtered query of the
//!   source, the filter and-ed with the row's edit minute).
//!
//! Ancestors come from the index first (documents carry `parent` and `title`) and from Notion (paced, counted)
//! only for those the index lacks, at most [`MAX_DEPTH`] levels up. Nothing here runs when the configuration
//! selects everything ([`Selection::of`] is `None`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Timelike, Utc};
use serde_json::{json, Value};

use crate::config::{ConnectorConfig, TitleSelection};
use crate::rules::{normalize_database_id, normalize_title, AdvancedRules, SearchObject};

use super::{SyncContext, SyncError};

/// Ancestor levels looked up above an object, at most.
pub const MAX_DEPTH: usize = 32;

/// Pages of one filtered rows query read, at most, looking for changed rows.
const MAX_MATCH_PAGES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Page,
    Row,
    Database,
    DataSource,
    Block,
}

/// What scope needs to know of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    /// Its title; for a database also its data sources' names (either selects it, as in the planner).
    pub titles: Vec<String>,
    /// Its parent and what kind of object that is (a `Page` parent may turn out to be a row).
    pub parent: Option<(String, Kind)>,
    /// The database of a row or data source (2025-09-03+), as its `parent` names it.
    pub database_id: Option<String>,
}

impl Node {
    /// From a Notion object (page, database, data source, block).
    pub fn of_object(object: &Value) -> Option<(String, Node)> {
        Self::build(object, crate::document::title_of(object))
    }

    /// From a document's `_source` (raw Notion fields plus the connector's `title` string).
    pub fn of_document(source: &Value) -> Option<(String, Node)> {
        let title = source.get("title").and_then(Value::as_str).unwrap_or_default().to_string();
        Self::build(source, title)
    }

    fn build(object: &Value, title: String) -> Option<(String, Node)> {
        let id = object.get("id")?.as_str()?.to_string();
        let kind = match object.get("object")?.as_str()? {
            "page" if crate::document::is_row(object) => Kind::Row,
            "page" => Kind::Page,
            "database" => Kind::Database,
            "data_source" => Kind::DataSource,
            "block" => Kind::Block,
            _ => return None,
        };
        let mut titles = vec![title];
        for source in object.get("data_sources").and_then(Value::as_array).into_iter().flatten() {
            titles.extend(source.get("name").and_then(Value::as_str).map(str::to_string));
        }
        let parent = object.get("parent").and_then(|p| {
            let kind = match p.get("type")?.as_str()? {
                "page_id" => Kind::Page,
                "database_id" => Kind::Database,
                "data_source_id" => Kind::DataSource,
                "block_id" => Kind::Block,
                _ => return None,
            };
            Some((crate::document::parent_id(object)?, kind))
        });
        // A document too large for its raw fields keeps `parent_id` (the kind only matters to ask Notion).
        let parent = parent.or_else(|| {
            let id = object.get("parent_id").and_then(Value::as_str).filter(|p| !p.is_empty())?;
            Some((id.to_string(), Kind::Page))
        });
        let database_id = object.pointer("/parent/database_id").and_then(Value::as_str).map(str::to_string);
        Some((id, Node { kind, titles, parent, database_id }))
    }
}

pub type Nodes = HashMap<String, Node>;

/// `id` and its ancestors as far as `nodes` knows them, innermost first (bounded: parent cycles end it).
pub fn chain<'a>(nodes: &'a Nodes, id: &str) -> Vec<(&'a str, &'a Node)> {
    let mut out: Vec<(&str, &Node)> = Vec::new();
    let mut current = nodes.get_key_value(id);
    while let Some((id, node)) = current {
        if out.len() > MAX_DEPTH || out.iter().any(|(seen, _)| *seen == id.as_str()) {
            break;
        }
        out.push((id.as_str(), node));
        current = node.parent.as_ref().and_then(|(parent, _)| nodes.get_key_value(parent));
    }
    out
}

/// Whether an object is in scope.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    In,
    Out,
    /// A row, in scope if its source's query with one of these filters returns it.
    Matching(Vec<Value>),
}

/// Which rows of a source are in scope.
#[derive(Debug, Clone, PartialEq)]
pub enum RowsScope {
    All,
    /// Those one of these filters selects (queries of their own, or-ed).
    Matching(Vec<Value>),
    None,
}

/// The configured selection, as scope checks use it.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Normalized titles; `None` selects everything of that kind.
    Titles {
        pages: Option<HashSet<String>>,
        databases: Option<HashSet<String>>,
    },
    Advanced(AdvancedRules),
}

fn titles(selection: &TitleSelection) -> Option<HashSet<String>> {
    match selection {
        TitleSelection::All => None,
        TitleSelection::Titles(titles) => Some(titles.iter().map(|t| normalize_title(t)).collect()),
    }
}

impl Selection {
    /// `None` when the configuration selects everything: then nothing is checked (and nothing costs a call).
    pub fn of(config: &ConnectorConfig) -> Option<Selection> {
        if let Some(rules) = &config.sync_rules.advanced {
            return Some(Selection::Advanced(rules.clone()));
        }
        if config.pages.is_all() && config.databases.is_all() {
            return None;
        }
        Some(Selection::Titles { pages: titles(&config.pages), databases: titles(&config.databases) })
    }

    /// How many ancestor levels a decision needs: all of them for title lists, a row's source (for a `searches`
    /// rule that can select it) under advanced rules.
    pub fn depth(&self) -> usize {
        match self {
            Selection::Titles { .. } => MAX_DEPTH,
            Selection::Advanced(rules) => {
                usize::from(rules.searches.iter().any(|s| s.filter != Some(SearchObject::Page)))
            }
        }
    }

    /// Whether the known object `id` is in scope.
    pub fn verdict(&self, nodes: &Nodes, id: &str) -> Verdict {
        let chain = chain(nodes, id);
        let Some((_, node)) = chain.first() else { return Verdict::Out };
        let rows = |chain: &[(&str, &Node)]| {
            let source = node.parent.as_ref().map(|(id, _)| id.as_str()).unwrap_or_default();
            match self.rows_of(chain, source, node.database_id.as_deref()) {
                RowsScope::All => Verdict::In,
                RowsScope::Matching(filters) => Verdict::Matching(filters),
                RowsScope::None => Verdict::Out,
            }
        };
        match self {
            Selection::Titles { pages, databases } => {
                let in_scope = match node.kind {
                    Kind::Database | Kind::DataSource => database_in(pages, databases, &chain),
                    Kind::Row => return rows(&chain[1..]),
                    Kind::Page => {
                        let below_database =
                            chain[1..].iter().any(|(_, n)| matches!(n.kind, Kind::Database | Kind::DataSource));
                        pages.is_none()
                            || hits(pages, &chain, true)
                            || (below_database && (databases.is_none() || hits(databases, &chain, false)))
                    }
                    Kind::Block => false,
                };
                if in_scope {
                    Verdict::In
                } else {
                    Verdict::Out
                }
            }
            Selection::Advanced(rules) => match node.kind {
                Kind::Page if searched(rules, node, SearchObject::Page) => Verdict::In,
                Kind::Row if searched(rules, node, SearchObject::Page) => Verdict::In,
                Kind::Row => rows(&chain[1..]),
                Kind::Database | Kind::DataSource if searched(rules, node, SearchObject::Database) => Verdict::In,
                _ => Verdict::Out,
            },
        }
    }

    /// Which rows of `source` are in scope; `chain` is the source and its ancestors (empty when unknown).
    pub fn rows_of(&self, chain: &[(&str, &Node)], source: &str, database_id: Option<&str>) -> RowsScope {
        match self {
            Selection::Titles { pages, databases } if database_in(pages, databases, chain) => RowsScope::All,
            Selection::Titles { .. } => RowsScope::None,
            Selection::Advanced(rules) => {
                let source_node = chain.first().filter(|(id, _)| *id == source).map(|(_, n)| *n);
                if source_node.is_some_and(|n| searched(rules, n, SearchObject::Database)) {
                    return RowsScope::All;
                }
                let database_id = database_id.or(source_node.and_then(|n| n.database_id.as_deref()));
                let ids: Vec<String> =
                    [Some(source), database_id].into_iter().flatten().map(normalize_database_id).collect();
                let rules: Vec<_> = rules
                    .database_query_filters
                    .iter()
                    .filter(|r| ids.contains(&normalize_database_id(&r.database_id)))
                    .collect();
                if rules.is_empty() {
                    RowsScope::None
                } else if rules.iter().any(|r| r.filter.is_none()) {
                    RowsScope::All
                } else {
                    let filters: Vec<Value> = rules.iter().filter_map(|r| r.filter.clone()).collect();
                    RowsScope::Matching(crate::rules::nesting::union(&filters))
                }
            }
        }
    }
}

/// Whether a node of `chain` of the right kind (pages and rows, or databases and data sources) has a title in `set`.
fn hits(set: &Option<HashSet<String>>, chain: &[(&str, &Node)], pages: bool) -> bool {
    let Some(set) = set else { return false };
    chain.iter().any(|(_, n)| {
        let kind_ok = match n.kind {
            Kind::Page | Kind::Row => pages,
            Kind::Database | Kind::DataSource => !pages,
            Kind::Block => false,
        };
        kind_ok && n.titles.iter().any(|t| set.contains(&normalize_title(t)))
    })
}

/// A database or data source under title lists: every one, one below a listed database, or one inside a listed
/// page (as `retain_selected` keeps them, and the walk discovers them when pages are listed).
fn database_in(pages: &Option<HashSet<String>>, databases: &Option<HashSet<String>>, chain: &[(&str, &Node)]) -> bool {
    databases.is_none() || hits(databases, chain, false) || (pages.is_some() && hits(pages, chain, true))
}

/// Whether a `searches` rule of that object type would return `node` (a title search: the title contains the
/// query, case aside; `""` finds everything), as the planner's searches and `validate_searches` read them.
fn searched(rules: &AdvancedRules, node: &Node, object: SearchObject) -> bool {
    rules.searches.iter().any(|s| {
        let query = normalize_title(&s.query);
        s.filter.is_none_or(|f| f == object) && node.titles.iter().any(|t| normalize_title(t).contains(&query))
    })
}

/// The filter of a query for rows edited on or after `since`'s minute and matching `filter`.
pub fn edited_since_and(since: DateTime<Utc>, filter: &Value) -> Value {
    let minute = since.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(since);
    let window = json!({"timestamp": "last_edited_time",
        "last_edited_time": {"on_or_after": minute.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}});
    crate::rules::nesting::and_with(window, filter)
}

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
                entry.1.push((id.to_string(), super::incremental::edited_at(object)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn page(id: &str, title: &str, parent: Option<(&str, &str)>) -> Value {
        let parent = match parent {
            Some(("page", p)) => json!({"type": "page_id", "page_id": p}),
            Some(("block", p)) => json!({"type": "block_id", "block_id": p}),
            Some(("source", p)) => {
                json!({"type": "data_source_id", "data_source_id": p, "database_id": p.replacen("ds-", "db-", 1)})
            }
            Some(_) => unreachable!(),
            None => json!({"type": "workspace", "workspace": true}),
        };
        json!({"object": "page", "id": id, "parent": parent,
            "properties": {"Name": {"type": "title", "title": [{"plain_text": title}]}}})
    }

    fn database(id: &str, title: &str, parent: &str, sources: &[(&str, &str)]) -> Value {
        let sources: Vec<Value> = sources.iter().map(|(id, name)| json!({"id": id, "name": name})).collect();
        json!({"object": "database", "id": id, "title": [{"plain_text": title}],
            "parent": {"type": "page_id", "page_id": parent}, "data_sources": sources})
    }

    fn source(id: &str, title: &str, db: &str) -> Value {
        json!({"object": "data_source", "id": id, "title": [{"plain_text": title}],
            "parent": {"type": "database_id", "database_id": db}})
    }

    /// home > wiki > (block b1) > notes;  home > [Tasks db > ds-tasks > row1 > row-child];  other > [Misc db]
    fn world() -> Nodes {
        let objects = [
            page("home", "Home", None),
            page("wiki", "Wiki", Some(("page", "home"))),
            json!({"object": "block", "id": "b1", "type": "toggle", "parent": {"type": "page_id", "page_id": "wiki"}}),
            page("notes", "Notes", Some(("block", "b1"))),
            database("db-tasks", "Tasks", "home", &[("ds-tasks", "Tasks")]),
            source("ds-tasks", "Tasks", "db-tasks"),
            page("row1", "Row one", Some(("source", "ds-tasks"))),
            page("row-child", "Row child", Some(("page", "row1"))),
            page("other", "Other", None),
            database("db-misc", "Misc", "other", &[("ds-misc", "Misc")]),
            source("ds-misc", "Misc", "db-misc"),
            page("misc-row", "Misc row", Some(("source", "ds-misc"))),
        ];
        let mut nodes = Nodes::new();
        for o in &objects {
            let (id, node) = Node::of_object(o).unwrap();
            nodes.insert(id, node);
        }
        nodes
    }

    fn titled(pages: &[&str], databases: &[&str]) -> Selection {
        let set = |t: &[&str]| (!t.is_empty()).then(|| t.iter().map(|s| normalize_title(s)).collect());
        Selection::Titles { pages: set(pages), databases: set(databases) }
    }

    fn ins(selection: &Selection, nodes: &Nodes) -> Vec<&'static str> {
        let all = [
            "home",
            "wiki",
            "notes",
            "db-tasks",
            "ds-tasks",
            "row1",
            "row-child",
            "other",
            "db-misc",
            "ds-misc",
            "misc-row",
        ];
        all.into_iter().filter(|id| selection.verdict(nodes, id) == Verdict::In).collect()
    }

    #[test]
    fn nothing_is_checked_when_everything_is_selected() {
        assert!(Selection::of(&ConnectorConfig::default()).is_none());
        let config = ConnectorConfig { pages: TitleSelection::Titles(vec!["Home".into()]), ..Default::default() };
        assert!(matches!(Selection::of(&config), Some(Selection::Titles { pages: Some(_), databases: None })));
    }

    #[test]
    fn listed_pages_bring_their_subtree_and_every_database() {
        let nodes = world();
        // Pages below the root, through a block; every database (`databases` is `*`) and what its rows hold.
        assert_eq!(
            ins(&titled(&["home"], &[]), &nodes),
            ["home", "wiki", "notes", "db-tasks", "ds-tasks", "row1", "row-child", "db-misc", "ds-misc", "misc-row"]
        );
        assert_eq!(
            ins(&titled(&[" WIKI "], &[]), &nodes),
            ["wiki", "notes", "db-tasks", "ds-tasks", "row1", "row-child", "db-misc", "ds-misc", "misc-row"]
        );
    }

    #[test]
    fn listed_databases_with_every_page_or_with_listed_pages() {
        let nodes = world();
        // pages `*`: every page that is not a row; rows and databases only of the listed database.
        assert_eq!(
            ins(&titled(&[], &["Tasks"]), &nodes),
            ["home", "wiki", "notes", "db-tasks", "ds-tasks", "row1", "row-child", "other"]
        );
        // both listed: databases inside the listed pages too, and pages below rows in scope.
        assert_eq!(
            ins(&titled(&["Other"], &["Tasks"]), &nodes),
            ["db-tasks", "ds-tasks", "row1", "row-child", "other", "db-misc", "ds-misc", "misc-row"]
        );
        assert_eq!(ins(&titled(&["Wiki"], &["Nothing"]), &nodes), ["wiki", "notes"]);
    }

    #[test]
    fn unknown_ancestors_and_cycles_end_the_chain() {
        let mut nodes = world();
        nodes.remove("wiki");
        assert_eq!(titled(&["home"], &[]).verdict(&nodes, "notes"), Verdict::Out, "the chain ends at the block");
        assert_eq!(titled(&["home"], &[]).verdict(&nodes, "nowhere"), Verdict::Out);
        let (a, b) = (page("a", "A", Some(("page", "b"))), page("b", "B", Some(("page", "a"))));
        let mut nodes = Nodes::new();
        for o in [a, b] {
            let (id, node) = Node::of_object(&o).unwrap();
            nodes.insert(id, node);
        }
        assert_eq!(chain(&nodes, "a").len(), 2);
        assert_eq!(titled(&["C"], &[]).verdict(&nodes, "a"), Verdict::Out);
    }

    #[test]
    fn documents_make_the_same_nodes_as_objects() {
        let object = database("db-tasks", "Tasks", "home", &[("ds-tasks", "Task list")]);
        let doc = json!({"id": "db-tasks", "object": "database", "title": "Tasks", "parent": object["parent"],
            "data_sources": object["data_sources"]});
        assert_eq!(Node::of_document(&doc), Node::of_object(&object));
        let (_, node) = Node::of_object(&object).unwrap();
        assert_eq!(node.titles, ["Tasks", "Task list"]);
        assert_eq!(node.parent, Some(("home".to_string(), Kind::Page)));
        let (_, row) = Node::of_object(&page("r", "R", Some(("source", "ds-x")))).unwrap();
        assert_eq!(
            (row.kind, row.parent, row.database_id.as_deref()),
            (Kind::Row, Some(("ds-x".into(), Kind::DataSource)), Some("db-x"))
        );
    }

    fn advanced(rules: Value) -> Selection {
        Selection::Advanced(AdvancedRules::from_json(&rules).unwrap())
    }

    #[test]
    fn advanced_rules_select_what_their_searches_return_and_nothing_below() {
        let nodes = world();
        let rules = advanced(json!({"searches": [{"query": "wiki", "filter": {"value": "page"}}]}));
        assert_eq!(ins(&rules, &nodes), ["wiki"], "no discovery below a searched page");
        assert_eq!(rules.depth(), 0);
        let rules = advanced(json!({"searches": [{"query": "task", "filter": {"value": "database"}}]}));
        assert_eq!(ins(&rules, &nodes), ["db-tasks", "ds-tasks", "row1"], "a searched source with every row");
        assert_eq!(rules.depth(), 1);
        let rules = advanced(json!({"searches": [{"query": ""}]}));
        assert_eq!(ins(&rules, &nodes).len(), 11, "an empty query finds everything");
    }

    #[test]
    fn advanced_rows_must_match_their_source_filter() {
        let nodes = world();
        let done = json!({"property": "Done", "checkbox": {"equals": true}});
        let rules = advanced(json!({"database_query_filters": [{"database_id": "DB-TASKS", "filter": done}]}));
        assert_eq!(rules.verdict(&nodes, "row1"), Verdict::Matching(vec![done.clone()]), "by database id");
        assert_eq!(rules.verdict(&nodes, "ds-tasks"), Verdict::Out, "a rows-only source is not indexed itself");
        assert_eq!(rules.verdict(&nodes, "misc-row"), Verdict::Out);
        assert_eq!(rules.verdict(&nodes, "row-child"), Verdict::Out);
        let rules = advanced(json!({"database_query_filters": [{"database_id": "ds-tasks"}]}));
        assert_eq!(rules.verdict(&nodes, "row1"), Verdict::In, "a rule without filter takes every row");
        let other = json!({"property": "Score", "number": {"greater_than": 3}});
        let rules = advanced(json!({"database_query_filters": [
            {"database_id": "db-tasks", "filter": done}, {"database_id": "ds-tasks", "filter": other}]}));
        assert_eq!(
            rules.rows_of(&[], "ds-tasks", Some("db-tasks")),
            RowsScope::Matching(vec![json!({"or": [done, other]})])
        );
        assert_eq!(rules.rows_of(&[], "ds-misc", None), RowsScope::None);
    }

    #[test]
    fn the_edit_window_is_and_ed_into_the_rule() {
        let since = DateTime::parse_from_rfc3339("2026-11-25T10:30:45.5Z").unwrap().with_timezone(&Utc);
        let done = json!({"property": "Done", "checkbox": {"equals": true}});
        let window =
            json!({"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": "2026-11-25T10:30:00Z"}});
        assert_eq!(edited_since_and(since, &done), json!({"and": [window, done]}));
    }
}

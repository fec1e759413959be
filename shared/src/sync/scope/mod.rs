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
//!
//! This module holds the pure decisions (what an object is, whether it is in scope); [`resolve`] gathers what they
//! need from the index and from Notion, and removes what is out of scope.

mod resolve;
#[cfg(test)]
mod tests;

pub use resolve::{partition, remove_own, rows_scope, Resolver};

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Timelike, Utc};
use serde_json::{json, Value};

use crate::config::{ConnectorConfig, TitleSelection};
use crate::rules::{normalize_database_id, normalize_title, AdvancedRules, SearchObject};

/// Ancestor levels looked up above an object, at most.
pub const MAX_DEPTH: usize = 32;

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

//! Advanced sync rules of the Notion connector: exactly the Elastic connector's JSON.
//!
//! ```json
//! {
//!   "searches": [{"query": "Demo Page", "filter": {"value": "page"}}],
//!   "database_query_filters": [{"database_id": "…", "filter": {"property": "Done", "checkbox": {"equals": true}}}]
//! }
//! ```
//!
//! - `searches[]`: a Notion title search (`query`, may be `""` for everything), optionally restricted to pages or
//!   databases with `filter.value`. Matching pages are indexed with their content; matching databases with their rows.
//! - `database_query_filters[]`: the rows of one database (`database_id`, with or without dashes), optionally filtered
//!   by a Notion database query `filter`, passed through unchanged. Unlike the reference, the rows' page content is
//!   indexed too.
//!
//! Checked in three steps:
//! 1. [`ADVANCED_RULES_SCHEMA`], the reference's JSON Schema (draft 7), so errors point at the offending path;
//! 2. semantic checks the schema leaves out: keys other than the documented ones inside `searches[]` /
//!    `database_query_filters[]` items, a blank `database_id`, a `searches[].filter.property` other than `"object"`,
//!    rules that select nothing (empty arrays: the sync would index nothing and delete everything);
//! 3. against the workspace ([`validate_against_workspace`]): every `database_id` must be a database shared with the
//!    integration; every non-empty search query must find something of its type.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::titles::normalize_title;
use super::{json_type, pointer, RulesError};

/// The reference's schema (`validator.py`), unchanged.
pub const ADVANCED_RULES_SCHEMA: &str = r#"{ "type":"object", "minProperties":1, "additionalProperties":false,
  "properties":{
    "database_query_filters": {"type":"array","items":{"type":"object",
        "properties":{"database_id":{"type":"string","minLength":1},
                      "filter":{"type":"object",
                                "properties":{"property":{"type":"string","minLength":1}},
                                "additionalProperties":{"type":["object","array"]}}},
        "required":["database_id"]}},
    "searches": {"type":"array","items":{"type":"object",
        "properties":{"query":{"type":"string"},
                      "filter":{"type":"object",
                                "properties":{"value":{"type":"string","enum":["page","database"]}},
                                "required":["value"]}},
        "required":["query"]}}}}"#;

/// What a search is restricted to (`filter.value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchObject {
    Page,
    Database,
}

impl SearchObject {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchObject::Page => "page",
            SearchObject::Database => "database",
        }
    }
}

impl fmt::Display for SearchObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `searches[]` item.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRule {
    /// Title search text; `""` finds everything.
    pub query: String,
    /// `filter.value`; `None` = pages and databases.
    pub filter: Option<SearchObject>,
}

/// One `database_query_filters[]` item.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseQueryFilter {
    /// As written in the rules (dashes or not); compare with [`normalize_database_id`].
    pub database_id: String,
    /// A Notion database-query filter, passed through to the (data source) query unchanged.
    pub filter: Option<Value>,
}

/// Validated advanced rules. When present they replace the `databases` / `pages` selection (as in the reference).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdvancedRules {
    pub searches: Vec<SearchRule>,
    pub database_query_filters: Vec<DatabaseQueryFilter>,
}

/// A database id without dashes, lower-case: how ids are compared.
pub fn normalize_database_id(id: &str) -> String {
    id.trim().chars().filter(|c| *c != '-').flat_map(char::to_lowercase).collect()
}

fn schema_validator() -> Result<&'static jsonschema::Validator, RulesError> {
    static VALIDATOR: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema: Value = serde_json::from_str(ADVANCED_RULES_SCHEMA).map_err(|e| e.to_string())?;
            jsonschema::draft7::new(&schema).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            RulesError::invalid("", format!("internal error: the advanced rules schema does not compile: {e}"))
        })
}

const MAX_SHOWN_ERRORS: usize = 5;

impl AdvancedRules {
    /// Parses advanced rules from JSON text.
    pub fn from_json_str(text: &str) -> Result<Self, RulesError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            RulesError::invalid("", format!("not valid JSON (line {}, column {})", e.line(), e.column()))
        })?;
        Self::from_json(&value)
    }

    /// Validates against [`ADVANCED_RULES_SCHEMA`] and the semantic checks, then builds the typed rules.
    /// Errors point at the offending path, e.g. `/searches/0/filter/value: "block" is not one of "page" or "database"`.
    pub fn from_json(value: &Value) -> Result<Self, RulesError> {
        let validator = schema_validator()?;
        let mut errors = validator.iter_errors(value).map(|e| {
            let path = e.instance_path().to_string();
            let mut message = e.to_string();
            if message.len() > 300 {
                let cut = (0..=300).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
                message.truncate(cut);
                message.push('…');
            }
            (path, message)
        });
        if let Some((path, message)) = errors.next() {
            let rest: Vec<String> =
                errors.take(MAX_SHOWN_ERRORS).map(|(p, m)| format!("{}: {m}", or_root(&p))).collect();
            let message = if rest.is_empty() { message } else { format!("{message} (also: {})", rest.join("; ")) };
            return Err(RulesError::Invalid { path, message });
        }
        // The schema has passed: the shapes below are guaranteed; still no unwraps on them.
        let obj = value
            .as_object()
            .ok_or_else(|| RulesError::invalid("", format!("must be an object, found {}", json_type(value))))?;
        let mut rules = AdvancedRules::default();
        for (i, item) in array(obj, "searches").iter().enumerate() {
            rules.searches.push(parse_search(item, &pointer("/searches", i))?);
        }
        for (i, item) in array(obj, "database_query_filters").iter().enumerate() {
            rules.database_query_filters.push(parse_database_filter(item, &pointer("/database_query_filters", i))?);
        }
        if rules.searches.is_empty() && rules.database_query_filters.is_empty() {
            // The reference would index nothing and then delete everything indexed before.
            return Err(RulesError::invalid(
                "",
                "selects nothing: give at least one searches[] or database_query_filters[] item, or leave the \
                 advanced rules out",
            ));
        }
        Ok(rules)
    }

    /// The rules as the documented JSON.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        if !self.searches.is_empty() {
            let searches = self
                .searches
                .iter()
                .map(|s| match s.filter {
                    Some(f) => json!({"query": s.query, "filter": {"value": f.as_str()}}),
                    None => json!({"query": s.query}),
                })
                .collect();
            out.insert("searches".into(), Value::Array(searches));
        }
        if !self.database_query_filters.is_empty() {
            let filters = self
                .database_query_filters
                .iter()
                .map(|d| match &d.filter {
                    Some(f) => json!({"database_id": d.database_id, "filter": f}),
                    None => json!({"database_id": d.database_id}),
                })
                .collect();
            out.insert("database_query_filters".into(), Value::Array(filters));
        }
        Value::Object(out)
    }
}

fn or_root(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

fn array<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    obj.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn reject_unknown_keys(obj: &Map<String, Value>, known: &[&str], path: &str) -> Result<(), RulesError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => {
            Err(RulesError::invalid(pointer(path, key), format!("unknown key {key:?} (allowed: {})", known.join(", "))))
        }
        None => Ok(()),
    }
}

fn parse_search(item: &Value, path: &str) -> Result<SearchRule, RulesError> {
    let obj = item
        .as_object()
        .ok_or_else(|| RulesError::invalid(path, format!("must be an object, found {}", json_type(item))))?;
    reject_unknown_keys(obj, &["query", "filter"], path)?;
    let query = obj
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(|| RulesError::invalid(path, "\"query\" is a required property"))?
        .to_owned();
    let filter = match obj.get("filter") {
        None => None,
        Some(f) => {
            let fpath = format!("{path}/filter");
            let fobj = f
                .as_object()
                .ok_or_else(|| RulesError::invalid(&fpath, format!("must be an object, found {}", json_type(f))))?;
            reject_unknown_keys(fobj, &["value", "property"], &fpath)?;
            match fobj.get("property") {
                None => {}
                Some(Value::String(p)) if p == "object" => {}
                Some(other) => {
                    return Err(RulesError::invalid(
                        format!("{fpath}/property"),
                        format!("must be \"object\" (or left out), found {other}"),
                    ))
                }
            }
            Some(match fobj.get("value").and_then(Value::as_str) {
                Some("page") => SearchObject::Page,
                Some("database") => SearchObject::Database,
                _ => return Err(RulesError::invalid(format!("{fpath}/value"), "must be \"page\" or \"database\"")),
            })
        }
    };
    Ok(SearchRule { query, filter })
}

fn parse_database_filter(item: &Value, path: &str) -> Result<DatabaseQueryFilter, RulesError> {
    let obj = item
        .as_object()
        .ok_or_else(|| RulesError::invalid(path, format!("must be an object, found {}", json_type(item))))?;
    reject_unknown_keys(obj, &["database_id", "filter"], path)?;
    let database_id = obj
        .get("database_id")
        .and_then(Value::as_str)
        .ok_or_else(|| RulesError::invalid(path, "\"database_id\" is a required property"))?;
    if normalize_database_id(database_id).is_empty() {
        return Err(RulesError::invalid(
            format!("{path}/database_id"),
            format!("{database_id:?} is blank: give the database's id"),
        ));
    }
    let filter = obj.get("filter").cloned();
    if let Some(depth) = filter.as_ref().map(super::nesting::normalize).map(|f| super::nesting::depth(&f)) {
        if depth > super::nesting::MAX_FILTER_DEPTH {
            return Err(RulesError::invalid(
                format!("{path}/filter"),
                format!(
                    "compound filters nest {depth} levels deep; Notion accepts at most {} (a property filter, or \
                     and/or groups holding property filters or one more and/or group)",
                    super::nesting::MAX_FILTER_DEPTH
                ),
            ));
        }
    }
    Ok(DatabaseQueryFilter { database_id: database_id.trim().to_owned(), filter })
}

/// Every `database_query_filters[].database_id` must be among `known_database_ids` (the ids of all databases the
/// integration can see; compared without dashes, case-insensitively). The error names the first unknown id.
pub fn validate_database_ids(rules: &AdvancedRules, known_database_ids: &HashSet<String>) -> Result<(), RulesError> {
    let known: HashSet<String> = known_database_ids.iter().map(|id| normalize_database_id(id)).collect();
    for (i, f) in rules.database_query_filters.iter().enumerate() {
        if !known.contains(&normalize_database_id(&f.database_id)) {
            return Err(RulesError::UnknownDatabase {
                path: format!("{}/database_id", pointer("/database_query_filters", i)),
                database_id: f.database_id.clone(),
            });
        }
    }
    Ok(())
}

/// `found_titles[i]` holds the titles of the objects that the search of `rules.searches[i]` returned (the planner runs
/// each search once, with its filter, and passes the titles in; pages without a title as `""`).
/// A non-empty query must be contained (case-insensitively) in at least one title; an empty query always passes.
/// Searches without a `filter` are checked the same way against pages and databases together.
pub fn validate_searches(rules: &AdvancedRules, found_titles: &[Vec<String>]) -> Result<(), RulesError> {
    for (i, search) in rules.searches.iter().enumerate() {
        let query = normalize_title(&search.query);
        if query.is_empty() {
            continue;
        }
        let titles = found_titles.get(i).map(Vec::as_slice).unwrap_or(&[]);
        if !titles.iter().any(|t| normalize_title(t).contains(&query)) {
            return Err(RulesError::NoSearchMatch {
                path: format!("{}/query", pointer("/searches", i)),
                query: search.query.clone(),
                object: search.filter.unwrap_or(SearchObject::Page),
            });
        }
    }
    Ok(())
}

/// Remote validation as a pure function over what the workspace holds: [`validate_database_ids`], then
/// [`validate_searches`] when `found_titles` is given.
pub fn validate_against_workspace(
    rules: &AdvancedRules,
    known_database_ids: &HashSet<String>,
    found_titles: Option<&[Vec<String>]>,
) -> Result<(), RulesError> {
    validate_database_ids(rules, known_database_ids)?;
    if let Some(found) = found_titles {
        validate_searches(rules, found)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

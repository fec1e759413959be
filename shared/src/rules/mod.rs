//! Sync rules, as the Elastic connector framework has them.
//!
//! - [`basic`]: ordered include/exclude rules on a top-level document field, applied to every document before indexing.
//! - [`advanced`]: the Notion connector's advanced rules (`searches`, `database_query_filters`), validated with the
//!   reference's JSON Schema and then against the workspace.
//! - [`titles`]: the `databases` / `pages` title check (one search per configured title, exact case-insensitive match).
//!
//! Every error carries a JSON pointer to the offending place, relative to the rules document; the configuration
//! loader prefixes it (e.g. `/sync_rules/advanced/searches/0/filter/value`).

pub mod advanced;
pub mod basic;
pub mod nesting;
pub mod titles;

pub use advanced::{
    normalize_database_id, validate_against_workspace, validate_database_ids, validate_searches, AdvancedRules,
    DatabaseQueryFilter, SearchObject, SearchRule, ADVANCED_RULES_SCHEMA,
};
pub use basic::{BasicRule, BasicRules, Decision, Operator, Policy};
pub use titles::{missing_titles, normalize_title, notion_title};

/// An invalid rule. Messages name the place (a JSON pointer) and what is wrong; they never hold document content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// The rule document is malformed (schema or semantic check).
    #[error("{}: {message}", display_path(path))]
    Invalid { path: String, message: String },
    /// A `database_query_filters[].database_id` that the workspace does not hold.
    #[error(
        "{}: invalid database id {database_id:?}: no database with this id is shared with the integration",
        display_path(path)
    )]
    UnknownDatabase { path: String, database_id: String },
    /// A `searches[]` query that found nothing of its type in the workspace.
    #[error("{}: query {query:?} finds no {object} whose title contains it", display_path(path))]
    NoSearchMatch { path: String, query: String, object: SearchObject },
}

impl RulesError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        RulesError::Invalid { path: path.into(), message: message.into() }
    }

    /// The JSON pointer of the offending place (`""` = the rules document itself).
    pub fn path(&self) -> &str {
        match self {
            RulesError::Invalid { path, .. }
            | RulesError::UnknownDatabase { path, .. }
            | RulesError::NoSearchMatch { path, .. } => path,
        }
    }

    /// Prefixes the path, e.g. with `/sync_rules/advanced` when the rules sit inside the configuration.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        match &mut self {
            RulesError::Invalid { path, .. }
            | RulesError::UnknownDatabase { path, .. }
            | RulesError::NoSearchMatch { path, .. } => path.insert_str(0, prefix),
        }
        self
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// Appends one JSON-pointer segment (RFC 6901 escaping).
pub(crate) fn pointer(base: &str, segment: impl std::fmt::Display) -> String {
    let segment = segment.to_string().replace('~', "~0").replace('/', "~1");
    format!("{base}/{segment}")
}

/// "a string", "an object", … for error messages.
pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

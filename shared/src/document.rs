//! Documents written to the content index: one per Notion object, `_id` = the Notion id.

use serde_json::{Map, Value};

/// A document ready for the index: its `_id` and its whole `_source`.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub source: Map<String, Value>,
}

//! Index bodies (settings + mappings) for the content, runs and tasks indices.
//!
//! The content mapping is explicit with `dynamic: false` at the root: the raw Notion fields stay
//! in `_source` (compatible with the Elastic connector's documents) but are not indexed, so
//! Notion's inconsistent shapes can never cause a mapping conflict. Raw fields we do index
//! (dates, keywords) are lenient: malformed dates are ignored, over-long keywords are not indexed.

use serde_json::{json, Value};

/// Settings shared by the three indices.
pub fn settings(shards: u32, replicas: u32) -> Value {
    json!({"index": {"number_of_shards": shards, "number_of_replicas": replicas}})
}

fn keyword(ignore_above: u32) -> Value {
    json!({"type": "keyword", "ignore_above": ignore_above})
}

fn lenient_date() -> Value {
    json!({"type": "date", "ignore_malformed": true})
}

/// The content index's mappings (docs/DESIGN.md "Indices").
pub fn content_mappings() -> Value {
    json!({
        "dynamic": false,
        "properties": {
            "id": keyword(512),
            "object": keyword(256),
            "type": keyword(256),
            "url": keyword(4096),
            "parent_id": keyword(512),
            "page_id": keyword(512),
            "title": {"type": "text", "fields": {"keyword": keyword(256)}},
            "body": {"type": "text"},
            "path": {"type": "text", "fields": {"keyword": keyword(1024)}},
            // Comments: who wrote them.
            "author": keyword(512),
            // `properties` as a JSON string: searchable text, never parsed as an object.
            "details": {"type": "text", "index": true},
            "_timestamp": lenient_date(),
            "created_time": lenient_date(),
            "last_edited_time": lenient_date(),
            "sync_run": {"type": "long"},
            // Attachment extraction (issue 5), beside the block's raw `file`/`pdf` payload.
            "attachment": {
                "type": "object",
                "properties": {
                    "name": {"type": "text", "fields": {"keyword": keyword(512)}},
                    "content_type": keyword(256),
                    "size": {"type": "long", "ignore_malformed": true},
                    "extracted": {"type": "boolean"},
                    "error": keyword(1024)
                }
            }
        }
    })
}

/// The runs index's mappings: one document per run, `_id` = run id.
pub fn runs_mappings() -> Value {
    json!({
        "dynamic": false,
        "properties": {
            "id": {"type": "long"},
            "kind": {"type": "keyword"},
            "state": {"type": "keyword"},
            "planning_done": {"type": "boolean"},
            "planned": {"type": "long"},
            "started_at": {"type": "date"},
            "planned_at": {"type": "date"},
            "finished_at": {"type": "date"},
            "watermark": {"type": "keyword"},
            "abort_reason": {"type": "text"}
        }
    })
}

/// The tasks index's mappings: one document per task, `_id` = task id. `body_part` is kept in
/// `_source` only.
pub fn tasks_mappings() -> Value {
    json!({
        "dynamic": false,
        "properties": {
            "run_id": {"type": "long"},
            "task_id": {"type": "keyword"},
            "state": {"type": "keyword"},
            "page_id": {"type": "keyword"},
            "segment": {"type": "long"},
            "indexed": {"type": "long"},
            "skipped": {"type": "long"},
            "deleted": {"type": "long"},
            "errors": {"type": "long"},
            "api_calls": {"type": "long"},
            "retries": {"type": "long"},
            "has_body_part": {"type": "boolean"},
            "updated_at": {"type": "date"}
        }
    })
}

/// A full create-index body.
pub fn index_body(mappings: Value, shards: u32, replicas: u32) -> Value {
    json!({"settings": settings(shards, replicas), "mappings": mappings})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_mapping_is_closed_at_the_root() {
        let m = content_mappings();
        assert_eq!(m["dynamic"], false);
        for field in ["id", "object", "type", "url", "parent_id", "page_id"] {
            assert_eq!(m["properties"][field]["type"], "keyword", "{field}");
        }
        assert_eq!(m["properties"]["title"]["fields"]["keyword"]["type"], "keyword");
        assert_eq!(m["properties"]["details"]["type"], "text");
        assert_eq!(m["properties"]["sync_run"]["type"], "long");
        assert_eq!(m["properties"]["attachment"]["properties"]["extracted"]["type"], "boolean");
        let body = index_body(m, 1, 0);
        assert_eq!(body["settings"]["index"]["number_of_replicas"], 0);
    }
}

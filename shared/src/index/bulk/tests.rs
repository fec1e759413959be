use super::*;
use serde_json::json;

#[test]
fn encoder_bytes() {
    let mut source = Map::new();
    source.insert("sync_run".into(), json!(7));
    source.insert("title".into(), json!("Ünïcode \"quoted\"\nline"));
    let bytes = encode_source(BulkOp::Index, "a-1", &source).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "{\"index\":{\"_id\":\"a-1\"}}\n{\"sync_run\":7,\"title\":\"Ünïcode \\\"quoted\\\"\\nline\"}\n"
    );
    assert_eq!(encode_action(BulkOp::Delete, "x\"y"), b"{\"delete\":{\"_id\":\"x\\\"y\"}}\n".to_vec());
    let versioned = encode_versioned_source(BulkOp::Index, "p", Some(Versioned(1_764_000_000_000)), &source).unwrap();
    assert!(String::from_utf8(versioned)
        .unwrap()
        .starts_with("{\"index\":{\"_id\":\"p\",\"version\":1764000000000,\"version_type\":\"external_gte\"}}\n"));
    assert_eq!(
        encode_versioned_action(BulkOp::Delete, "p", Some(Versioned(9))),
        b"{\"delete\":{\"_id\":\"p\",\"version\":9,\"version_type\":\"external_gte\"}}\n".to_vec()
    );
    let created = encode_source(BulkOp::Create, "t:1", &json!({"state": "queued"})).unwrap();
    assert_eq!(created, b"{\"create\":{\"_id\":\"t:1\"}}\n{\"state\":\"queued\"}\n".to_vec());
}

#[test]
fn batches_by_count() {
    let limits = BulkLimits { max_docs: 2, max_bytes: 1000, concurrency: 1 };
    assert_eq!(plan_batches(&[1, 1, 1, 1, 1], &limits), vec![0..2, 2..4, 4..5]);
    assert_eq!(plan_batches(&[], &limits), Vec::<Range<usize>>::new());
    assert_eq!(plan_batches(&[1, 1], &limits), vec![0..2]);
}

#[test]
fn batches_by_bytes() {
    let limits = BulkLimits { max_docs: 100, max_bytes: 10, concurrency: 1 };
    // 4+4 fit, +4 would be 12; a 15-byte operation goes alone; 10 exactly fits.
    assert_eq!(plan_batches(&[4, 4, 4, 15, 3, 10, 5, 5], &limits), vec![0..2, 2..3, 3..4, 4..5, 5..6, 6..8]);
    let zero_docs = BulkLimits { max_docs: 0, max_bytes: 10, concurrency: 1 };
    assert_eq!(plan_batches(&[1, 1], &zero_docs), vec![0..1, 1..2]);
}

#[test]
fn a_document_over_the_byte_budget_goes_alone_wherever_it_is() {
    let limits = BulkLimits { max_docs: 500, max_bytes: 100, concurrency: 1 };
    assert_eq!(plan_batches(&[1000, 10, 10], &limits), vec![0..1, 1..3]);
    assert_eq!(plan_batches(&[10, 10, 1000], &limits), vec![0..2, 2..3]);
    assert_eq!(plan_batches(&[10, 1000, 10], &limits), vec![0..1, 1..2, 2..3]);
    assert_eq!(plan_batches(&[1000, 1000], &limits), vec![0..1, 1..2]);
}

#[test]
fn refused_requests_split_until_one_operation_is_left() {
    assert_eq!(split_refused(&[4, 5, 6, 7, 8]), Some((vec![4, 5], vec![6, 7, 8])));
    assert_eq!(split_refused(&[4, 5]), Some((vec![4], vec![5])));
    assert_eq!(split_refused(&[4]), None);
    assert_eq!(split_refused(&[]), None);
}

#[test]
fn retry_decision_table() {
    use BulkOp::*;
    use ItemDecision::*;
    let cases: &[(BulkOp, u16, Option<&str>, ItemDecision)] = &[
        (Index, 200, None, Done),
        (Index, 201, None, Done),
        (Index, 429, Some("es_rejected_execution_exception"), Retry),
        (Index, 429, None, Retry),
        (Index, 503, Some("unavailable_shards_exception"), Retry),
        (Index, 500, None, Retry),
        (Index, 400, Some("mapper_parsing_exception"), Fail),
        (Index, 400, Some("document_parsing_exception"), Fail),
        (Index, 400, Some("illegal_argument_exception"), Fail),
        (Index, 409, Some("version_conflict_engine_exception"), Skipped),
        (Delete, 409, Some("version_conflict_engine_exception"), Skipped),
        (Index, 409, Some("other_conflict"), Fail),
        (Index, 404, Some("index_not_found_exception"), Fail),
        (Index, 403, Some("cluster_block_exception"), Retry),
        (Index, 400, Some("rejected_execution_exception"), Retry),
        (Create, 409, Some("version_conflict_engine_exception"), Done),
        (Create, 400, Some("mapper_parsing_exception"), Fail),
        (Delete, 404, None, Done),
        (Delete, 429, None, Retry),
    ];
    for &(op, status, ty, want) in cases {
        assert_eq!(decide_item(op, status, ty), want, "{op:?} {status} {ty:?}");
    }
}

#[test]
fn plan_items_sorts_a_mixed_response() {
    let response = json!({"errors": true, "items": [
        {"index": {"_id": "a", "status": 201, "result": "created"}},
        {"index": {"_id": "b", "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
        {"index": {"_id": "c", "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [sync_run]",
            "caused_by": {"type": "illegal_argument_exception", "reason": "For input string: \"x\""}}}},
        {"index": {"_id": "d", "status": 200, "result": "updated"}},
        {"index": {"_id": "e", "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "current version [9] is higher"}}}
    ]});
    let plan = plan_items(BulkOp::Index, &response, &[10, 11, 12, 13, 14]).unwrap();
    assert_eq!(plan.done, vec![10, 13]);
    assert_eq!(plan.skipped, vec![14]);
    assert_eq!(plan.retry, vec![(11, 429, "es_rejected_execution_exception: queue full".to_string())]);
    assert_eq!(plan.failed.len(), 1);
    assert_eq!(plan.failed[0].0, 12);
    assert_eq!(
        plan.failed[0].2,
        "mapper_parsing_exception: failed to parse field [sync_run] (caused by illegal_argument_exception: For input string: \"x\")"
    );
}

#[test]
fn plan_items_counts_real_deletions_and_rejects_mismatches() {
    let response = json!({"items": [
        {"delete": {"_id": "a", "status": 200, "result": "deleted"}},
        {"delete": {"_id": "b", "status": 404, "result": "not_found"}}
    ]});
    let plan = plan_items(BulkOp::Delete, &response, &[0, 1]).unwrap();
    assert_eq!((plan.done.len(), plan.deleted), (2, 1));
    assert!(plan_items(BulkOp::Delete, &response, &[0]).is_err());
    assert!(plan_items(BulkOp::Index, &json!({"took": 1}), &[]).is_err());
    assert!(plan_items(BulkOp::Index, &json!({"items": [{"index": {"_id": "a"}}]}), &[0]).is_err());
}

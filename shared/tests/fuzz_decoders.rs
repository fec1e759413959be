//! Fuzzing (property-based) of the decoders that read untrusted input and had no such test yet:
//! SQS bodies (`TaskMessage::decode`, `FinalizeMessage::decode`) and the planner's event
//! (`requested_kind`). Configuration, sync rules, webhook bodies and API requests are fuzzed in
//! `config_rules.rs` and `webhook_api.rs`. The property everywhere: an error, never a panic; and
//! what decodes, re-encodes to the same message.

use proptest::prelude::*;
use serde_json::{json, Value};
use shared::sync::planner::requested_kind;
use shared::task::{
    Continuation, FinalizeMessage, FrontierEntry, RowsCursor, RunKind, Task, TaskMessage, TASK_VERSION,
};

/// JSON values biased towards the keys and values the decoders look at.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "full",
            "incremental",
            "webhook",
            "page",
            "users",
            "rows",
            "objects",
            "continuation",
            "comments",
            "comment",
            "delete_page",
            "Scheduled Event",
            "teleport",
            "",
        ])
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop::sample::select(vec![
            "v",
            "run_id",
            "task_id",
            "run_kind",
            "task",
            "type",
            "page_id",
            "page",
            "path",
            "checks",
            "source_id",
            "start_cursor",
            "skip_ids",
            "segment",
            "frontier",
            "block_id",
            "depth",
            "objects",
            "paths",
            "block_ids",
            "comment_id",
            "kind",
            "detail-type",
            "detail",
            "resources",
            "x",
        ])
        .prop_map(str::to_string);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_strings() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("\\PC{0,8}", 0..3)
}

fn arb_task() -> impl Strategy<Value = Task> {
    let id = "[0-9a-f-]{0,36}";
    prop_oneof![
        (id, prop::option::of(Just(json!({"object": "page", "id": "x"}))), arb_strings())
            .prop_map(|(page_id, page, path)| Task::Page { page_id, page, path }),
        (
            id,
            any::<u32>(),
            prop::collection::vec((id, prop::option::of("\\PC{0,8}"), any::<u32>(), any::<u32>(), any::<bool>()), 0..3),
            arb_strings()
        )
            .prop_map(|(page_id, segment, frontier, path)| Task::Continuation(Continuation {
                page_id,
                page: None,
                path,
                segment,
                frontier: frontier
                    .into_iter()
                    .map(|(block_id, cursor, skip, depth, text_only)| FrontierEntry {
                        block_id,
                        cursor,
                        skip,
                        depth,
                        text_only
                    })
                    .collect(),
            })),
        (id, prop::option::of(id), prop::option::of("\\PC{0,8}"), arb_strings(), any::<u32>()).prop_map(
            |(source_id, database_id, start_cursor, skip_ids, seq)| Task::Rows(RowsCursor {
                source_id,
                database_id,
                start_cursor,
                after_created: None,
                skip_ids,
                filter: None,
                path: vec![],
                seq,
                query: 0,
            })
        ),
        Just(Task::Users),
        (prop::collection::vec(id.prop_map(String::from), 0..3), id)
            .prop_map(|(block_ids, page_id)| Task::Comments { block_ids, page_id }),
        id.prop_map(|page_id| Task::DeletePage { page_id: page_id.to_string() }),
        (id, id).prop_map(|(comment_id, page_id)| Task::Comment {
            comment_id: comment_id.to_string(),
            page_id: page_id.to_string()
        }),
    ]
}

fn arb_kind() -> impl Strategy<Value = RunKind> {
    prop::sample::select(vec![RunKind::Full, RunKind::Incremental, RunKind::Webhook])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any text (SQS bodies are arbitrary strings): an error or a message, never a panic.
    #[test]
    fn sqs_bodies_never_panic(body in "\\PC{0,256}") {
        let _ = TaskMessage::decode(&body);
        let _ = FinalizeMessage::decode(&body);
    }

    /// JSON-shaped bodies with the right keys in odd places. Whatever decodes re-encodes to itself.
    #[test]
    fn json_shaped_bodies_decode_or_fail_cleanly(v in arb_json()) {
        let body = v.to_string();
        if let Ok(msg) = TaskMessage::decode(&body) {
            prop_assert_eq!(msg.v, TASK_VERSION);
            prop_assert_eq!(TaskMessage::decode(&msg.encode()).unwrap(), msg);
        }
        if let Ok(msg) = FinalizeMessage::decode(&body) {
            prop_assert_eq!(msg.v, TASK_VERSION);
            prop_assert_eq!(FinalizeMessage::decode(&msg.encode()).unwrap(), msg);
        }
        // The same value as the `task` of an otherwise valid message.
        let wrapped = json!({"v": 1, "run_id": 1, "task_id": "t", "run_kind": "full", "task": v}).to_string();
        let _ = TaskMessage::decode(&wrapped);
    }

    /// Valid messages round-trip; truncated or corrupted ones are errors (or still valid), never panics.
    #[test]
    fn valid_messages_round_trip_and_survive_corruption(
        run_id in any::<u64>(), kind in arb_kind(), task_id in "\\PC{0,16}", task in arb_task(),
        cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), byte in any::<u8>(),
        version in any::<u32>(),
    ) {
        let msg = TaskMessage::new(run_id, kind, task_id, task);
        let body = msg.encode();
        prop_assert_eq!(TaskMessage::decode(&body).unwrap(), msg.clone());

        let truncated = &body.as_bytes()[..cut.index(body.len())];
        let _ = TaskMessage::decode(&String::from_utf8_lossy(truncated));
        let mut corrupted = body.clone().into_bytes();
        let at = flip.index(corrupted.len());
        corrupted[at] = byte;
        let _ = TaskMessage::decode(&String::from_utf8_lossy(&corrupted));

        // Another version is refused as such, before the shape is looked at.
        let mut other = serde_json::to_value(&msg).unwrap();
        other["v"] = json!(version);
        let result = TaskMessage::decode(&other.to_string());
        if version == TASK_VERSION {
            prop_assert!(result.is_ok());
        } else {
            let err = result.unwrap_err().to_string();
            prop_assert!(err.contains("version"), "{}", err);
        }

        let fin = FinalizeMessage { checks: (run_id % 1000) as u32, ..FinalizeMessage::new(run_id) };
        prop_assert_eq!(FinalizeMessage::decode(&fin.encode()).unwrap(), fin);
    }

    /// The planner's event: `{"kind": ...}`, a scheduled event, or anything else.
    #[test]
    fn planner_events_never_panic(v in arb_json(), kind in arb_json(), resources in arb_json(), detail in arb_json()) {
        let _ = requested_kind(&v);
        let _ = requested_kind(&json!({"kind": kind.clone()}));
        let scheduled = json!({"detail-type": "Scheduled Event", "resources": resources, "detail": detail});
        let _ = requested_kind(&scheduled);
        let with_kind = json!({"detail-type": "Scheduled Event", "resources": resources, "detail": {"kind": kind.clone()}});
        let _ = requested_kind(&with_kind);
        // Only the two documented kinds (or null = full) are accepted, and the error names the value.
        match (&kind, requested_kind(&json!({"kind": kind.clone()}))) {
            (Value::Null, result) => prop_assert_eq!(result.unwrap(), RunKind::Full),
            (Value::String(s), Ok(k)) => prop_assert_eq!(s.as_str(), k.as_str()),
            (other, Ok(k)) => prop_assert!(false, "{} accepted as {:?}", other, k),
            (_, Err(err)) => prop_assert!(err.to_string().contains("kind"), "{}", err),
        }
    }

    /// Raw bytes as the planner's event (the Lambda runtime hands it over as JSON).
    #[test]
    fn planner_event_text_never_panics(s in "\\PC{0,128}") {
        if let Ok(v) = serde_json::from_str::<Value>(&s) {
            let _ = requested_kind(&v);
        }
    }
}

#[test]
fn the_known_bad_bodies_are_named() {
    let err = TaskMessage::decode(r#"{"v": 2, "run_id": 1}"#).unwrap_err().to_string();
    assert!(err.contains("version 2"), "{err}");
    assert!(TaskMessage::decode("").is_err());
    assert!(TaskMessage::decode("null").is_err());
    assert!(TaskMessage::decode(
        r#"{"v": 1, "run_id": -1, "task_id": "x", "run_kind": "full", "task": {"type": "users"}}"#
    )
    .is_err());
    assert!(FinalizeMessage::decode(r#"{"v": 1}"#).is_err());
    assert!(FinalizeMessage::decode(r#"{"v": 1, "run_id": 18446744073709551616}"#).is_err());
    // A message of an earlier build (no checks, no token) still decodes.
    let old = FinalizeMessage::decode(r#"{"v": 1, "run_id": 7}"#).unwrap();
    assert_eq!((old.run_id, old.checks, old.token.as_str()), (7, 0, ""));
}

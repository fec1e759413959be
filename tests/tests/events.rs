//! Every sample in `events/` decodes with the types its function uses (`aws_lambda_events` 1.2.1,
//! `shared::task`, `shared::api`, `shared::webhook`), and says what it claims to say. The samples
//! are what `cargo lambda invoke --data-file events/<x>.json` and the local runner send.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::Value;
use shared::api::{decode_sync_request, route, Route};
use shared::task::{FinalizeMessage, RunKind, Task, TaskMessage};
use shared::webhook::{decode_body, verify_signature, WebhookBody};

/// The local webhook verification token (infra/scripts/env.sh, `WEBHOOK_VERIFICATION_TOKEN`).
const WEBHOOK_TOKEN: &str = "secret_local_webhook_token";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(name: &str) -> String {
    let path = root().join("events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decode<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&read(name)).unwrap_or_else(|e| panic!("events/{name} does not decode: {e}"))
}

fn template() -> String {
    std::fs::read_to_string(root().join("template.yaml")).unwrap()
}

#[test]
fn every_sample_is_covered() {
    let found: BTreeSet<String> = std::fs::read_dir(root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let covered: BTreeSet<String> = [
        "schedule-full.json",
        "schedule-incremental.json",
        "planner-full.json",
        "planner-incremental.json",
        "sqs-work-batch.json",
        "sqs-finalize.json",
        "api-start-sync.json",
        "api-get-sync.json",
        "api-list-syncs.json",
        "webhook-page-updated.json",
        "webhook-verification.json",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(found, covered, "events/ and this test disagree: add a check for each new sample");
    for name in &found {
        let v: Value = serde_json::from_str(&read(name)).unwrap_or_else(|e| panic!("events/{name}: {e}"));
        assert!(v.is_object(), "events/{name} is not a JSON object");
    }
}

// ---- planner ---------------------------------------------------------------------------------

#[test]
fn scheduled_events_decode() {
    for (name, rule) in
        [("schedule-full.json", "notion-es-full-sync"), ("schedule-incremental.json", "notion-es-incremental-sync")]
    {
        let ev: EventBridgeEvent<Value> = decode(name);
        assert_eq!(ev.detail_type, "Scheduled Event", "{name}");
        assert_eq!(ev.source, "aws.events", "{name}");
        assert_eq!(ev.detail, serde_json::json!({}), "{name}: a scheduled event's detail is empty");
        assert!(ev.time.is_some() && ev.id.is_some() && ev.account.is_some() && ev.region.is_some(), "{name}");
        let resources = ev.resources.unwrap_or_default();
        assert_eq!(resources.len(), 1, "{name}");
        assert!(resources[0].ends_with(&format!(":rule/{rule}")), "{name}: {resources:?}");
    }
}

/// With `Input` on the rule target (template.yaml), the planner receives exactly this constant.
#[test]
fn planner_inputs_are_what_the_rules_send() {
    let template = template();
    for (name, kind) in [("planner-full.json", "full"), ("planner-incremental.json", "incremental")] {
        let v: Value = decode(name);
        assert_eq!(v, serde_json::json!({ "kind": kind }), "{name}");
        let compact = serde_json::to_string(&v).unwrap();
        assert!(template.contains(&format!("Input: '{compact}'")), "template.yaml sends no `Input: '{compact}'`");
        // The API's POST /syncs body is the same document.
        let want = if kind == "full" { RunKind::Full } else { RunKind::Incremental };
        assert_eq!(decode_sync_request(compact.as_bytes()), Ok(want), "{name}");
    }
}

// ---- worker / reaper -------------------------------------------------------------------------

#[test]
fn work_batch_decodes_into_tasks() {
    let ev: SqsEvent = decode("sqs-work-batch.json");
    assert!((2..=10).contains(&ev.records.len()), "a batch of 2..10 records");
    let mut kinds = BTreeSet::new();
    let mut ids = BTreeSet::new();
    let mut receive_counts = vec![];
    for r in &ev.records {
        let id = r.message_id.clone().expect("messageId");
        assert!(ids.insert(id.clone()), "duplicate messageId {id}");
        assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
        assert!(r.event_source_arn.as_deref().unwrap_or_default().ends_with(":notion-es-work"), "{id}: eventSourceARN");
        assert!(r.receipt_handle.is_some(), "{id}: receiptHandle");
        let count: u32 = r
            .attributes
            .get("ApproximateReceiveCount")
            .unwrap_or_else(|| panic!("{id}: no ApproximateReceiveCount"))
            .parse()
            .unwrap();
        receive_counts.push(count);
        let body = r.body.as_deref().expect("body");
        let msg = TaskMessage::decode(body).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(msg.run_kind, RunKind::Full);
        assert_eq!(TaskMessage::decode(&msg.encode()).unwrap(), msg, "{id}: round trip");
        kinds.insert(match &msg.task {
            Task::Page { page, .. } => {
                assert!(page.is_some(), "the planner embeds the page object");
                "page"
            }
            Task::Rows(_) => "rows",
            Task::Continuation(c) => {
                assert!(!c.frontier.is_empty() && c.segment >= 1);
                "continuation"
            }
            _ => "other",
        });
    }
    assert!(kinds.len() >= 2, "the batch mixes task types: {kinds:?}");
    assert!(receive_counts.contains(&1), "a first delivery");
    assert!(receive_counts.iter().any(|&c| c >= 3), "a delivery on its last attempt (MAX_RECEIVE_COUNT 3)");
}

#[test]
fn finalize_batch_decodes() {
    let ev: SqsEvent = decode("sqs-finalize.json");
    assert_eq!(ev.records.len(), 1, "the reaper's event source has BatchSize 1");
    let r = &ev.records[0];
    assert!(r.event_source_arn.as_deref().unwrap_or_default().ends_with(":notion-es-finalize"));
    assert!(r.attributes.contains_key("ApproximateReceiveCount"));
    let msg = FinalizeMessage::decode(r.body.as_deref().unwrap()).unwrap();
    let work: SqsEvent = decode("sqs-work-batch.json");
    let run = TaskMessage::decode(work.records[0].body.as_deref().unwrap()).unwrap().run_id;
    assert_eq!(msg.run_id, run, "finalize message of the same run as the work batch");
    assert_eq!(msg.checks, 0);
}

// ---- api -------------------------------------------------------------------------------------

fn http(name: &str) -> ApiGatewayV2httpRequest {
    let req: ApiGatewayV2httpRequest = decode(name);
    assert_eq!(req.version.as_deref(), Some("2.0"), "{name}: payload format 2.0");
    assert_eq!(req.request_context.stage.as_deref(), Some("$default"), "{name}");
    // The route key API Gateway reports is "<METHOD> <path template>" and agrees with the request.
    let route_key = req.route_key.clone().expect("routeKey");
    assert_eq!(req.request_context.route_key.as_deref(), Some(route_key.as_str()), "{name}");
    let method = req.request_context.http.method.as_str().to_string();
    assert!(route_key.starts_with(&format!("{method} ")), "{name}: {route_key} vs {method}");
    assert_eq!(req.raw_path, req.request_context.http.path, "{name}");
    req
}

fn iam_authorized(req: &ApiGatewayV2httpRequest) -> bool {
    req.request_context.authorizer.as_ref().and_then(|a| a.iam.as_ref()).and_then(|i| i.user_arn.as_ref()).is_some()
}

#[test]
fn api_requests_decode() {
    let start = http("api-start-sync.json");
    assert_eq!(start.route_key.as_deref(), Some("POST /syncs"));
    assert_eq!(route("POST", start.raw_path.as_deref().unwrap()), Route::StartSync);
    assert!(!start.is_base64_encoded);
    assert_eq!(decode_sync_request(start.body.as_deref().unwrap().as_bytes()), Ok(RunKind::Full));
    assert!(iam_authorized(&start), "/syncs routes arrive with an IAM authorizer context");

    let get = http("api-get-sync.json");
    assert_eq!(get.route_key.as_deref(), Some("GET /syncs/{id}"));
    let id = get.path_parameters.get("id").expect("pathParameters.id").clone();
    assert!(id.parse::<u64>().is_ok(), "run ids are numbers");
    assert_eq!(route("GET", get.raw_path.as_deref().unwrap()), Route::GetSync(id));
    assert!(iam_authorized(&get));

    let list = http("api-list-syncs.json");
    assert_eq!(list.route_key.as_deref(), Some("GET /syncs"));
    assert_eq!(route("GET", list.raw_path.as_deref().unwrap()), Route::ListSyncs);
    assert!(iam_authorized(&list));
}

#[test]
fn webhooks_decode_and_are_signed() {
    for name in ["webhook-page-updated.json", "webhook-verification.json"] {
        let req = http(name);
        assert_eq!(req.route_key.as_deref(), Some("POST /webhooks/notion"), "{name}");
        assert_eq!(route("POST", req.raw_path.as_deref().unwrap()), Route::Webhook, "{name}");
        assert!(!iam_authorized(&req), "{name}: the webhook route has no authorizer");
        let body = req.body.as_deref().expect("body");
        let signature = req.headers.get("x-notion-signature").map(|v| v.to_str().unwrap());
        verify_signature(body.as_bytes(), signature, WEBHOOK_TOKEN)
            .unwrap_or_else(|e| panic!("{name}: signature does not verify: {e:?}"));
        assert!(verify_signature(body.as_bytes(), signature, "another_token").is_err(), "{name}");
        // Independent of shared::webhook: HMAC-SHA256 of the raw body, hex, "sha256=" prefix.
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_TOKEN.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        assert_eq!(signature.unwrap(), format!("sha256={}", hex::encode(mac.finalize().into_bytes())), "{name}");

        match (name, decode_body(body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e:?}"))) {
            ("webhook-verification.json", WebhookBody::Handshake { .. }) => {
                let v: Value = serde_json::from_str(body).unwrap();
                assert_eq!(v["verification_token"], WEBHOOK_TOKEN);
            }
            ("webhook-page-updated.json", WebhookBody::Event(ev)) => {
                assert_eq!(ev.kind, "page.content_updated");
                assert_eq!(ev.entity.kind, "page");
                assert!(!ev.id.is_empty() && ev.attempt_number >= 1);
                assert!(ev.data["updated_blocks"].as_array().is_some_and(|b| !b.is_empty()));
                let tasks = shared::webhook::tasks_for_event(&ev);
                assert!(
                    matches!(tasks.as_slice(), [(_, Task::Page { page_id, .. })] if *page_id == ev.entity.id),
                    "a content update re-syncs the page: {tasks:?}"
                );
            }
            (name, other) => panic!("{name} decoded as {other:?}"),
        }
    }
}

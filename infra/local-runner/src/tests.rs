use super::*;
use aws_lambda_events::event::sqs::SqsBatchResponse;

#[test]
fn the_worker_gets_the_invocation_budget_after_its_margin() {
    let ms = Duration::from_millis;
    let budgets =
        [ms(1), ms(300), ms(8_000), ms(20_000), ms(89_000), ms(90_000), ms(91_000), ms(270_000), ms(3_600_000)];
    for margin in [Duration::ZERO, Duration::from_secs(2), Duration::from_secs(30)] {
        for budget in budgets {
            let deadline = worker::deadline(lambda_deadline_ms(Some(budget), margin), margin).expect("a deadline");
            let left = deadline.saturating_duration_since(Instant::now());
            // Whole milliseconds on the Lambda clock, and the time the test itself takes.
            assert!(
                left <= budget + ms(2) && left + ms(50) >= budget,
                "budget {budget:?}, margin {margin:?}: {left:?}"
            );
        }
    }
    // No budget: a year, no deadline in practice.
    let margin = Duration::from_secs(30);
    let deadline = worker::deadline(lambda_deadline_ms(None, margin), margin).expect("a deadline");
    assert!(deadline.saturating_duration_since(Instant::now()) > Duration::from_secs(364 * 86_400));
}

#[test]
fn the_pumps_records_decode_as_lambdas_sqs_event() {
    let message = Message::builder()
        .message_id("m-1")
        .receipt_handle("h-1")
        .body(r#"{"task_id":"p:1"}"#)
        .md5_of_body("5d41402abc4b2a76b9719d911017c592")
        .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
        .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000000")
        .build();
    let payload = sqs_event_json(&[message], "http://127.0.0.1:4566/000000000000/e2e-work");
    let event = sqs_event(payload).expect("an SqsEvent");
    assert_eq!(event.records.len(), 1);
    let record = &event.records[0];
    assert_eq!(record.message_id.as_deref(), Some("m-1"));
    assert_eq!(record.receipt_handle.as_deref(), Some("h-1"));
    assert_eq!(record.body.as_deref(), Some(r#"{"task_id":"p:1"}"#));
    assert_eq!(record.md5_of_body.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
    assert_eq!(record.attributes.get("ApproximateReceiveCount").map(String::as_str), Some("3"));
    assert_eq!(record.attributes.get("SentTimestamp").map(String::as_str), Some("1700000000000"));
    assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
    assert_eq!(record.event_source_arn.as_deref(), Some("arn:aws:sqs:us-east-1:000000000000:e2e-work"));
    assert_eq!(record.aws_region.as_deref(), Some("us-east-1"));
    assert!(sqs_event(json!({"records": []})).is_err(), "Lambda's field is `Records`");
}

#[test]
fn batch_responses_encode_as_the_pump_reads_them() {
    let mut response = SqsBatchResponse::default();
    response.add_failure("m-2");
    response.add_failure("m-5");
    let encoded = serde_json::to_value(&response).unwrap();
    assert_eq!(encoded, json!({"batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-5"}]}));
    assert_eq!(batch_item_failures(&encoded), ["m-2", "m-5"]);
    assert!(batch_item_failures(&serde_json::to_value(SqsBatchResponse::default()).unwrap()).is_empty());
}

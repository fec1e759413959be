use super::*;
use crate::task::{RunKind, Task};
use serde_json::{json, Value};

/// A task whose body is about `text_bytes` long (built directly: `TaskMessage::new` would
/// leave a large page object out).
fn task_with(id: &str, text_bytes: usize) -> TaskMessage {
    let page = json!({"id": id, "title": "x".repeat(text_bytes)});
    let task = Task::Page { page_id: id.into(), page: Some(page), path: vec![] };
    TaskMessage { v: crate::task::TASK_VERSION, run_id: 1, task_id: id.into(), run_kind: RunKind::Full, task }
}

#[test]
fn batches_hold_ten_entries_at_most() {
    let sizes = vec![100; 25];
    assert_eq!(size_batches(&sizes).unwrap(), vec![0..10, 10..20, 20..25]);
    assert_eq!(size_batches(&[]).unwrap(), Vec::<Range<usize>>::new());
}

#[test]
fn batches_hold_the_byte_budget_at_most() {
    let big = 300 * 1024;
    // Three 300 KiB bodies fit (900 KiB); a fourth would pass the budget.
    assert_eq!(size_batches(&[big, big, big, big, big]).unwrap(), vec![0..3, 3..5]);
    // A body of exactly the message limit goes alone; the budget is reached exactly, not passed.
    let half = MAX_BATCH_BYTES / 2;
    assert_eq!(size_batches(&[half, MAX_BATCH_BYTES - half, 1]).unwrap(), vec![0..2, 2..3]);
    assert_eq!(size_batches(&[1, MAX_MESSAGE_BYTES, 1]).unwrap(), vec![0..1, 1..2, 2..3]);
    for batch in size_batches(&[big, 10, big, big, 700 * 1024, 5, big]).unwrap() {
        assert!(batch.len() <= MAX_BATCH_ENTRIES);
    }
}

#[test]
fn batches_of_the_field_failure_fit() {
    // The field failure: ten ~134 KB page tasks in one batch, 1.34 MB in total.
    let sizes = vec![134_000; 10];
    let batches = size_batches(&sizes).unwrap();
    assert!(batches.len() >= 2);
    for batch in batches {
        assert!(sizes[batch].iter().sum::<usize>() <= MAX_BATCH_BYTES);
    }
}

#[test]
fn an_oversize_body_is_named_and_nothing_is_planned() {
    assert_eq!(
        size_batches(&[10, MAX_MESSAGE_BYTES + 1, 10]),
        Err(Oversize { index: 1, bytes: MAX_MESSAGE_BYTES + 1 })
    );
    let tasks = vec![task_with("small", 10), task_with("huge-page", 2 * 1024 * 1024)];
    let err = encode_batches(&tasks).unwrap_err().to_string();
    assert!(err.contains("task huge-page"), "{err}");
    assert!(err.contains(&tasks[1].encode().len().to_string()), "{err}");
    assert!(err.contains("not sent"), "{err}");
}

#[test]
fn retry_delays_double_and_are_jittered() {
    assert_eq!(retry_delay(0, 0.0), Duration::from_millis(100));
    assert_eq!(retry_delay(0, 1.0), Duration::from_millis(200));
    assert_eq!(retry_delay(2, 0.5), Duration::from_millis(600));
    assert_ne!(retry_delay(3, 0.1), retry_delay(3, 0.9));
    assert_eq!(retry_delay(1, 7.0), retry_delay(1, 1.0));
    assert!(retry_delay(u32::MAX, 1.0) > Duration::ZERO);
}

#[test]
fn serialized_len_and_budget_match_the_encoded_string() {
    let value = json!({"a": "Ünïcode \"quoted\"\n", "b": [1, 2.5, null, true], "c": {"\u{1}": "x"}});
    let encoded = serde_json::to_string(&value).unwrap();
    assert_eq!(serialized_len(&value), encoded.len());
    assert!(fits_in_message(&value, encoded.len()));
    assert!(!fits_in_message(&value, encoded.len() - 1));
    assert!(fits_in_message(&Value::Null, 4));
    assert!(!fits_in_message(&Value::Null, 3));
    let huge = json!({"title": "x".repeat(5 * 1024 * 1024)});
    assert!(!fits_in_message(&huge, MAX_MESSAGE_BYTES));
    let msg = task_with("p", 1000);
    assert_eq!(serialized_len(&msg), msg.encode().len());
}

#[tokio::test]
async fn memory_queue_refuses_oversize_bodies_and_records_the_largest() {
    let queue = MemoryQueue::default();
    queue.send_tasks(&[task_with("a", 100), task_with("b", 5000)]).await.unwrap();
    let largest = task_with("b", 5000).encode().len();
    assert_eq!(queue.max_body_bytes(), largest);
    let err = queue.send_tasks(&[task_with("c", 10), task_with("big", MAX_MESSAGE_BYTES)]).await.unwrap_err();
    assert!(err.to_string().contains("task big"), "{err}");
    // Refused whole, as SQS would refuse: nothing of the call was recorded.
    assert_eq!(queue.take_tasks().len(), 2);
    assert_eq!(queue.max_body_bytes(), largest);
}

#[tokio::test]
async fn measured_queue_forwards_and_records_sizes() {
    let queue = MeasuredQueue::new(Arc::new(MemoryQueue::default()));
    let tasks: Vec<TaskMessage> = (0..12).map(|i| task_with(&format!("t{i}"), 200 * 1024)).collect();
    queue.send_tasks(&tasks).await.unwrap();
    queue.send_finalize(&FinalizeMessage::new(1), 60).await.unwrap();
    assert_eq!(queue.inner().take_tasks().len(), 12);
    assert_eq!(queue.inner().finalizes.lock().unwrap().len(), 1);
    assert_eq!(queue.messages(), 13);
    assert_eq!(queue.max_body_bytes(), tasks.iter().map(|t| t.encode().len()).max().unwrap());
    let batch = queue.max_batch_bytes();
    assert!(batch > 4 * 200 * 1024 && batch <= MAX_BATCH_BYTES, "{batch}");
    // An oversize message is measured, then refused by the inner queue.
    let err = queue.send_tasks(&[task_with("big", 2 * 1024 * 1024)]).await.unwrap_err();
    assert!(err.to_string().contains("task big"));
    assert!(queue.max_body_bytes() > MAX_MESSAGE_BYTES);
}

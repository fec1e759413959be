//! The work queue as the domain sees it: send task messages and delayed finalize messages.
//! The SQS adapter is in `adapters/aws/sqs.rs`; `MemoryQueue` serves unit tests and `MeasuredQueue` wraps any
//! queue to record message sizes for end-to-end tests.
//!
//! Sizes are planned here, without AWS: SQS refuses a message body over 1 MiB and a
//! `SendMessageBatch` whose bodies together exceed 1 MiB (`BatchRequestTooLong`), so every
//! adapter splits and checks with [`size_batches`] before sending.

use std::future::Future;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::task::{FinalizeMessage, TaskMessage};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Largest message body we send. SQS allows 1 MiB (1,048,576 bytes) per message since August
/// 2025, message attributes included; 16 KiB stay free for attributes the SDK or a later change
/// may add.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024 - 16 * 1024;

/// Largest total of the bodies of one `SendMessageBatch`: SQS allows 1 MiB per batch, with the
/// same margin as [`MAX_MESSAGE_BYTES`]. A batch over it is refused whole (`BatchRequestTooLong`).
pub const MAX_BATCH_BYTES: usize = 1024 * 1024 - 16 * 1024;

/// Most entries of one `SendMessageBatch` (an SQS limit).
pub const MAX_BATCH_ENTRIES: usize = 10;

#[derive(Debug, thiserror::Error)]
#[error("queue error: {0}")]
pub struct QueueError(pub String);

impl QueueError {
    /// The error for a message that cannot be sent at all: it names the task and its size, so the
    /// producer that built it can be found.
    pub fn oversize(task_id: &str, bytes: usize) -> Self {
        QueueError(format!(
            "task {task_id}: message body of {bytes} bytes is over the limit of {MAX_MESSAGE_BYTES} bytes; not sent"
        ))
    }
}

/// A message body over [`MAX_MESSAGE_BYTES`]: its position in the input and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversize {
    pub index: usize,
    pub bytes: usize,
}

/// Splits message bodies (given by their sizes in bytes) into consecutive batches of at most
/// [`MAX_BATCH_ENTRIES`] entries and at most [`MAX_BATCH_BYTES`] in total. A body over
/// [`MAX_MESSAGE_BYTES`] can go in no batch: the first one found is returned as the error, before
/// any batch is planned, so a caller sends all of its messages or none.
pub fn size_batches(bodies: &[usize]) -> Result<Vec<Range<usize>>, Oversize> {
    if let Some((index, &bytes)) = bodies.iter().enumerate().find(|(_, &b)| b > MAX_MESSAGE_BYTES) {
        return Err(Oversize { index, bytes });
    }
    let mut batches = Vec::new();
    let mut start = 0;
    let mut total = 0;
    for (i, &size) in bodies.iter().enumerate() {
        if i > start && (i - start >= MAX_BATCH_ENTRIES || total + size > MAX_BATCH_BYTES) {
            batches.push(start..i);
            start = i;
            total = 0;
        }
        total += size;
    }
    if start < bodies.len() {
        batches.push(start..bodies.len());
    }
    Ok(batches)
}

/// Encodes task messages and plans their batches; an oversize body is a [`QueueError`] naming its
/// task. Shared by every adapter so they refuse exactly what SQS would.
pub fn encode_batches(tasks: &[TaskMessage]) -> Result<(Vec<String>, Vec<Range<usize>>), QueueError> {
    let bodies: Vec<String> = tasks.iter().map(TaskMessage::encode).collect();
    let sizes: Vec<usize> = bodies.iter().map(String::len).collect();
    match size_batches(&sizes) {
        Ok(batches) => Ok((bodies, batches)),
        Err(Oversize { index, bytes }) => {
            let task_id = tasks.get(index).map_or("?", |t| t.task_id.as_str());
            Err(QueueError::oversize(task_id, bytes))
        }
    }
}

/// Delay before retry `attempt` (0 = first) of a send: 200 ms doubling, with "equal jitter" (half
/// fixed, half scaled by `jitter` in `[0, 1]`) so that workers refused together do not all come
/// back at the same moment.
pub fn retry_delay(attempt: u32, jitter: f64) -> Duration {
    SEND_BACKOFF.delay(attempt, jitter)
}

/// The send backoff of [`retry_delay`]: 200 ms doubling 16 times at most (then 3 h 38 min: the loop gives up long
/// before).
const SEND_BACKOFF: crate::backoff::Backoff =
    crate::backoff::Backoff::new(Duration::from_millis(200), Duration::from_millis(200 << 16));

/// An `io::Write` that only counts, and fails once the count passes `limit`, so measuring a huge
/// value stops early and allocates nothing.
struct Counter {
    bytes: usize,
    limit: usize,
}

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes = self.bytes.saturating_add(buf.len());
        if self.bytes > self.limit {
            return Err(io::Error::other("over budget"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The length in bytes of `value` serialized as compact JSON (as `serde_json::to_string` would
/// give), computed without building the string. A value that cannot be serialized counts as 0.
pub fn serialized_len<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = Counter { bytes: 0, limit: usize::MAX };
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.bytes,
        Err(_) => 0,
    }
}

/// Whether `value`, serialized as compact JSON, takes at most `budget` bytes. Stops counting as
/// soon as the budget is passed, so asking about a 20 MB object is cheap. Producers use it to
/// decide whether an object rides along in a message or is fetched again by the worker.
pub fn fits_in_message(value: &serde_json::Value, budget: usize) -> bool {
    let mut counter = Counter { bytes: 0, limit: budget };
    serde_json::to_writer(&mut counter, value).is_ok()
}

/// Sends messages. Implementations must not report success for a message that was not accepted.
pub trait TaskQueue: Send + Sync {
    fn send_tasks<'a>(&'a self, tasks: &'a [TaskMessage]) -> BoxFuture<'a, Result<(), QueueError>> {
        self.send_tasks_after(tasks, 0)
    }
    /// Sends task messages that become visible after `delay_seconds` (SQS caps the delay at 900 s).
    fn send_tasks_after<'a>(
        &'a self,
        tasks: &'a [TaskMessage],
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>>;
    fn send_finalize<'a>(
        &'a self,
        msg: &'a FinalizeMessage,
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>>;
}

/// A shared queue is a queue (so `MeasuredQueue` can wrap the context's `Arc<dyn TaskQueue>`).
impl<T: TaskQueue + ?Sized> TaskQueue for Arc<T> {
    fn send_tasks_after<'a>(
        &'a self,
        tasks: &'a [TaskMessage],
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        (**self).send_tasks_after(tasks, delay_seconds)
    }

    fn send_finalize<'a>(
        &'a self,
        msg: &'a FinalizeMessage,
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        (**self).send_finalize(msg, delay_seconds)
    }
}

/// An in-memory queue for tests: records what was sent. It refuses what SQS would refuse (a body
/// over [`MAX_MESSAGE_BYTES`], and then none of the call's messages are recorded), so domain
/// tests catch oversize messages, and it keeps the largest body it accepted.
#[derive(Default)]
pub struct MemoryQueue {
    pub tasks: Mutex<Vec<TaskMessage>>,
    pub finalizes: Mutex<Vec<(FinalizeMessage, u32)>>,
    /// `(task_id, delay_seconds)` of the tasks sent with a delay (they are in `tasks` too).
    pub delayed: Mutex<Vec<(String, u32)>>,
    max_body: AtomicUsize,
}

impl MemoryQueue {
    pub fn take_tasks(&self) -> Vec<TaskMessage> {
        std::mem::take(&mut *self.tasks.lock().expect("queue lock"))
    }

    /// The largest message body (task or finalize) this queue accepted, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body.load(Ordering::Relaxed)
    }
}

impl TaskQueue for MemoryQueue {
    fn send_tasks_after<'a>(
        &'a self,
        tasks: &'a [TaskMessage],
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let (bodies, _) = encode_batches(tasks)?;
            let largest = bodies.iter().map(String::len).max().unwrap_or(0);
            self.max_body.fetch_max(largest, Ordering::Relaxed);
            if delay_seconds > 0 {
                let mut delayed = self.delayed.lock().expect("queue lock");
                delayed.extend(tasks.iter().map(|t| (t.task_id.clone(), delay_seconds)));
            }
            self.tasks.lock().expect("queue lock").extend_from_slice(tasks);
            Ok(())
        })
    }

    fn send_finalize<'a>(
        &'a self,
        msg: &'a FinalizeMessage,
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            self.max_body.fetch_max(msg.encode().len(), Ordering::Relaxed);
            self.finalizes.lock().expect("queue lock").push((msg.clone(), delay_seconds));
            Ok(())
        })
    }
}

/// Forwards to an inner queue and records the largest message body and the largest batch (as
/// [`size_batches`] plans it for SQS) it was asked to send, so end-to-end tests can assert that no
/// message came near the SQS limits. Sizes are recorded before forwarding, also for messages the
/// inner queue then refuses.
pub struct MeasuredQueue<Q> {
    inner: Q,
    max_body: AtomicUsize,
    max_batch: AtomicUsize,
    messages: AtomicUsize,
}

impl<Q: TaskQueue> MeasuredQueue<Q> {
    pub fn new(inner: Q) -> Self {
        MeasuredQueue {
            inner,
            max_body: AtomicUsize::new(0),
            max_batch: AtomicUsize::new(0),
            messages: AtomicUsize::new(0),
        }
    }

    pub fn inner(&self) -> &Q {
        &self.inner
    }

    /// The largest message body (task or finalize) seen, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body.load(Ordering::Relaxed)
    }

    /// The largest total of bodies of one planned `SendMessageBatch`, in bytes (a call with an
    /// oversize body counts as one batch of all its bodies).
    pub fn max_batch_bytes(&self) -> usize {
        self.max_batch.load(Ordering::Relaxed)
    }

    /// How many messages (tasks and finalizes) were given to this queue.
    pub fn messages(&self) -> usize {
        self.messages.load(Ordering::Relaxed)
    }

    fn record(&self, sizes: &[usize]) {
        self.messages.fetch_add(sizes.len(), Ordering::Relaxed);
        self.max_body.fetch_max(sizes.iter().copied().max().unwrap_or(0), Ordering::Relaxed);
        let batch = match size_batches(sizes) {
            Ok(batches) => batches.into_iter().map(|r| sizes[r].iter().sum()).max().unwrap_or(0),
            Err(_) => sizes.iter().sum(),
        };
        self.max_batch.fetch_max(batch, Ordering::Relaxed);
    }
}

impl<Q: TaskQueue> TaskQueue for MeasuredQueue<Q> {
    fn send_tasks_after<'a>(
        &'a self,
        tasks: &'a [TaskMessage],
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        let sizes: Vec<usize> = tasks.iter().map(serialized_len).collect();
        self.record(&sizes);
        self.inner.send_tasks_after(tasks, delay_seconds)
    }

    fn send_finalize<'a>(
        &'a self,
        msg: &'a FinalizeMessage,
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        self.record(&[serialized_len(msg)]);
        self.inner.send_finalize(msg, delay_seconds)
    }
}

#[cfg(test)]
mod tests;

//! The work queue as the domain sees it: send task messages and delayed finalize messages.
//! The SQS adapter is in `aws.rs`; `MemoryQueue` serves unit tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use crate::task::{FinalizeMessage, TaskMessage};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
#[error("queue error: {0}")]
pub struct QueueError(pub String);

/// Sends messages. Implementations must not report success for a message that was not accepted.
pub trait TaskQueue: Send + Sync {
    fn send_tasks<'a>(&'a self, tasks: &'a [TaskMessage]) -> BoxFuture<'a, Result<(), QueueError>>;
    fn send_finalize<'a>(
        &'a self,
        msg: &'a FinalizeMessage,
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>>;
}

/// An in-memory queue for tests: records what was sent.
#[derive(Default)]
pub struct MemoryQueue {
    pub tasks: Mutex<Vec<TaskMessage>>,
    pub finalizes: Mutex<Vec<(FinalizeMessage, u32)>>,
}

impl MemoryQueue {
    pub fn take_tasks(&self) -> Vec<TaskMessage> {
        std::mem::take(&mut *self.tasks.lock().expect("queue lock"))
    }
}

impl TaskQueue for MemoryQueue {
    fn send_tasks<'a>(&'a self, tasks: &'a [TaskMessage]) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
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
            self.finalizes.lock().expect("queue lock").push((msg.clone(), delay_seconds));
            Ok(())
        })
    }
}

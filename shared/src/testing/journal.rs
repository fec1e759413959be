//! The order in which task records were written and task messages sent, so tests can check the invariant
//! "a task's follow-ups are recorded (`queued`) and sent before the task marks itself done" (docs/DESIGN.md).
//! `MemoryLedger` notes record writes; `JournalQueue` notes sends and forwards them to a `MemoryQueue`.

use std::sync::{Arc, Mutex};

use crate::queue::{BoxFuture, MemoryQueue, QueueError, TaskQueue};
use crate::runs::TaskState;
use crate::task::{FinalizeMessage, TaskMessage};

/// One step, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A task record was created (only its first write: a record that exists is left as it is).
    Recorded { run_id: u64, task_id: String, state: TaskState },
    /// A task record was marked done.
    Done { run_id: u64, task_id: String },
    /// A task record was marked failed.
    Failed { run_id: u64, task_id: String },
    /// A task message was accepted by the queue.
    Sent { run_id: u64, task_id: String },
}

/// A shared, append-only list of [`Event`]s.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<Event>>>);

impl Journal {
    pub fn note(&self, event: Event) {
        self.0.lock().expect("journal lock").push(event);
    }

    pub fn events(&self) -> Vec<Event> {
        self.0.lock().expect("journal lock").clone()
    }

    /// Where the first event matching `wanted` is, if any.
    pub fn position(&self, wanted: impl Fn(&Event) -> bool) -> Option<usize> {
        self.0.lock().expect("journal lock").iter().position(wanted)
    }

    /// Where task `task_id` of run `run_id` was first recorded `queued`.
    pub fn recorded_queued(&self, run_id: u64, task_id: &str) -> Option<usize> {
        self.position(|e| {
            matches!(e, Event::Recorded { run_id: r, task_id: t, state: TaskState::Queued } if *r == run_id && t == task_id)
        })
    }

    /// Where task `task_id` of run `run_id` was first sent.
    pub fn sent(&self, run_id: u64, task_id: &str) -> Option<usize> {
        self.position(|e| matches!(e, Event::Sent { run_id: r, task_id: t } if *r == run_id && t == task_id))
    }

    /// Where task `task_id` of run `run_id` was first marked done.
    pub fn done(&self, run_id: u64, task_id: &str) -> Option<usize> {
        self.position(|e| matches!(e, Event::Done { run_id: r, task_id: t } if *r == run_id && t == task_id))
    }
}

/// A `MemoryQueue` whose task sends are noted in a [`Journal`] (only those the queue accepted).
pub struct JournalQueue {
    pub inner: Arc<MemoryQueue>,
    pub journal: Journal,
}

impl TaskQueue for JournalQueue {
    fn send_tasks_after<'a>(
        &'a self,
        tasks: &'a [TaskMessage],
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            self.inner.send_tasks_after(tasks, delay_seconds).await?;
            for task in tasks {
                self.journal.note(Event::Sent { run_id: task.run_id, task_id: task.task_id.clone() });
            }
            Ok(())
        })
    }

    fn send_finalize<'a>(
        &'a self,
        msg: &'a FinalizeMessage,
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        self.inner.send_finalize(msg, delay_seconds)
    }
}

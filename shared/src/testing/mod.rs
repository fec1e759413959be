//! In-memory fakes of the sync domain's ports (`crate::ports`) and a harness over them, for tests: planner,
//! worker and reaper run against them and the emulated Notion served in-process, without a search engine or
//! LocalStack. Compiled only with the `test-support` feature (the crate's own tests enable it).
//!
//! - [`MemoryStore`]: the content index (`DocumentStore`), versioned by `sync_run` like the engine.
//! - [`MemoryLedger`]: run and task records (`RunLedger`) and page parts (`BodyParts`), like `RunStore`.
//! - [`World`]: a `SyncContext` over them, `crate::queue::MemoryQueue` and the emulator, and a [`Pump`] that
//!   delivers the queue's messages to the worker and the reaper (duplicates, deadlines, held-back messages).
//! - [`Journal`]: the order of record writes and sends, for the ordering invariants of docs/DESIGN.md.

mod journal;
mod ledger;
mod store;
mod tasks;
mod world;

pub use journal::{Event, Journal, JournalQueue};
pub use ledger::MemoryLedger;
pub use notion_emulator::WorkspaceKind;
pub use store::MemoryStore;
pub use world::{Pump, Pumped, World};

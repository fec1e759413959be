//! notion-es domain library. Everything the Lambda functions do lives here, free of Lambda types,
//! so it can be tested without AWS. See docs/DESIGN.md for the contracts.

pub mod adapters;
pub mod api;
pub mod backoff;
pub mod bootstrap;
pub mod config;
pub mod document;
pub mod extract;
pub mod index;
pub mod notion;
pub mod ports;
pub mod queue;
pub mod rules;
pub mod runs;
pub mod secrets;
pub mod sync;
pub mod task;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod webhook;

//! Search-engine adapters (Elasticsearch / OpenSearch REST): the content store, run and task
//! records, body parts, the webhook event log and handshakes.

pub mod events;
pub mod handshakes;
pub mod run_book;
mod small_index;

pub use events::{events_index, SearchEventLog};
pub use handshakes::{handshakes_index, SearchHandshakeStore};
pub use run_book::SearchRunBook;

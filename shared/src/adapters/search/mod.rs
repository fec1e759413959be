//! Search-engine adapters (Elasticsearch / OpenSearch REST): the content store, run and task
//! records, body parts, the webhook event log and handshakes.

pub mod client;
pub mod events;
pub mod handshakes;
pub mod mapping;
pub(crate) mod ops;
pub mod run_book;
pub mod runs;
pub mod sender;
mod small_index;
pub mod store;

pub use client::SearchClient;
pub use events::{events_index, SearchEventLog};
pub use handshakes::{handshakes_index, SearchHandshakeStore};
pub use run_book::SearchRunBook;
pub use runs::RunStore;
pub use store::SearchStore;

/// Percent-encodes one URL path segment (ids like `p:abc` or `rows:x:1` travel in paths).
pub(crate) fn path_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_segment("p:ab-c_1.2"), "p%3Aab-c_1.2");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(path_segment("é"), "%C3%A9");
    }
}

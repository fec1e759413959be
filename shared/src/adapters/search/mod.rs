//! Search-engine adapters (Elasticsearch / OpenSearch REST): the content store, run and task
//! records, body parts, the webhook event log and handshakes.

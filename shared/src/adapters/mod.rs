//! Adapters by technology: the only code that names an SDK's or the search engine's types, or
//! builds an engine path. The sync domain sees them through the ports (`crate::ports`).

pub mod aws;
pub mod search;

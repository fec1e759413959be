//! Typed Notion API client: reqwest, paced (one [`Pacer`] per client, shared by clones), retried per a pure
//! [`retry::decide`] policy (its waits bounded by a task-local [`with_deadline`]), with lazy cursor streams
//! ([`paginate`], list pages checked by [`ListPage::check`]) and counters ([`NotionClient::stats`]).
//!
//! Objects stay `serde_json::Value` (leniency: unknown fields and block types are kept). One module per resource:
//! [`users`], [`search`], [`pages`], [`blocks`], [`databases`], [`comments`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), shared::notion::NotionError> {
//! use futures::TryStreamExt;
//! use shared::notion::{ApiVersion, ClientConfig, NotionClient, Token};
//! let config = ClientConfig::new("https://api.notion.com", ApiVersion::V2025_09_03, 3.0 / 2.0);
//! let client = NotionClient::new(Token::new("secret"), config)?;
//! let blocks: Vec<_> = client.children("page-id").try_collect().await?;
//! # Ok(()) }
//! ```

pub mod blocks;
pub mod client;
pub mod comments;
pub mod databases;
pub mod deadline;
pub mod error;
pub mod ids;
pub mod list;
pub mod pacer;
pub mod pages;
pub mod retry;
pub mod search;
pub mod stats;
pub mod users;
pub mod version;

pub use client::{ClientConfig, NotionClient, Token, DEFAULT_BASE_URL, USER_AGENT};
pub use deadline::{current_deadline, with_deadline};
pub use error::{NotionError, TransportKind, WaitReason};
pub use ids::{BlockId, CommentId, DataSourceId, DatabaseId, PageId, UserId};
pub use list::{collect_all, paginate, paginate_pages, ListPage, PAGE_SIZE};
pub use pacer::{Pacer, PacerConfig, PastDeadline};
pub use retry::RetryPolicy;
pub use search::{SearchFilter, SearchQuery, SortDirection};
pub use stats::{counting_retries, StatsSnapshot};
pub use version::{ApiVersion, UnknownVersion};

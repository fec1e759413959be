//! `GET /v1/comments?block_id=`, `GET /v1/comments/{id}`.

use futures::Stream;
use serde_json::Value;

use super::client::NotionClient;
use super::error::NotionError;
use super::ids::{BlockId, CommentId};
use super::list::{paginate, ListPage};

impl NotionClient {
    /// One page of the unresolved comments on a page or block (checked like [`NotionClient::list_children`]).
    pub async fn list_comments(
        &self,
        block_id: impl Into<BlockId>,
        cursor: Option<&str>,
    ) -> Result<ListPage, NotionError> {
        let id = block_id.into();
        let url = self.list_url(&["comments"], cursor, &[("block_id", id.as_str())]);
        self.get_list(url, cursor).await
    }

    /// Every unresolved comment on a page or block, lazily.
    pub fn comments(
        &self,
        block_id: impl Into<BlockId>,
    ) -> impl Stream<Item = Result<Value, NotionError>> + Send + 'static {
        let client = self.clone();
        let id = block_id.into();
        paginate(move |cursor| {
            let client = client.clone();
            let id = id.clone();
            async move { client.list_comments(id, cursor.as_deref()).await }
        })
    }

    pub async fn get_comment(&self, id: impl Into<CommentId>) -> Result<Value, NotionError> {
        let id = id.into();
        self.get(self.url(&["comments", id.as_str()])).await
    }
}

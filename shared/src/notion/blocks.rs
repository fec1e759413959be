//! `GET /v1/blocks/{id}`, `GET /v1/blocks/{id}/children`.

use futures::Stream;
use serde_json::Value;

use super::client::NotionClient;
use super::error::NotionError;
use super::ids::BlockId;
use super::list::{paginate, ListPage};

impl NotionClient {
    pub async fn get_block(&self, id: impl Into<BlockId>) -> Result<Value, NotionError> {
        let id = id.into();
        self.get(self.url(&["blocks", id.as_str()])).await
    }

    /// One page (up to 100) of a block's or page's direct children. Unknown block types are kept as they are.
    /// A page failing [`ListPage::check`] (e.g. `has_more` without a cursor) is a [`NotionError::Pagination`].
    pub async fn list_children(
        &self,
        block_id: impl Into<BlockId>,
        cursor: Option<&str>,
    ) -> Result<ListPage, NotionError> {
        let id = block_id.into();
        let url = self.list_url(&["blocks", id.as_str(), "children"], cursor, &[]);
        self.get_list(url, cursor).await
    }

    /// Every direct child of a block or page, lazily.
    pub fn children(
        &self,
        block_id: impl Into<BlockId>,
    ) -> impl Stream<Item = Result<Value, NotionError>> + Send + 'static {
        let client = self.clone();
        let id = block_id.into();
        paginate(move |cursor| {
            let client = client.clone();
            let id = id.clone();
            async move { client.list_children(id, cursor.as_deref()).await }
        })
    }
}

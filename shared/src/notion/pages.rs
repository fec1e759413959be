//! `GET /v1/pages/{id}`, `GET /v1/pages/{id}/properties/{property_id}`.

use serde_json::Value;

use super::client::NotionClient;
use super::error::NotionError;
use super::ids::PageId;

impl NotionClient {
    pub async fn get_page(&self, id: impl Into<PageId>) -> Result<Value, NotionError> {
        let id = id.into();
        self.get(self.url(&["pages", id.as_str()])).await
    }

    /// A property value in full (past the 25-reference cap of `get_page`). Paginated types (title, rich_text,
    /// relation, people, rollup) answer a list (decode with [`super::ListPage::from_value`]); others a
    /// `property_item` object.
    pub async fn get_page_property(
        &self,
        page_id: impl Into<PageId>,
        property_id: &str,
        cursor: Option<&str>,
    ) -> Result<Value, NotionError> {
        let page_id = page_id.into();
        let url = self.list_url(&["pages", page_id.as_str(), "properties", property_id], cursor, &[]);
        self.get(url).await
    }
}

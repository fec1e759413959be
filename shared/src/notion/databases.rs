//! `GET /v1/databases/{id}`, `GET /v1/data_sources/{id}`, and row queries:
//! `POST /v1/data_sources/{id}/query` (2025-09-03+) or `POST /v1/databases/{id}/query` (2022-06-28).

use futures::Stream;
use serde_json::Value;

use super::client::{decode_list, NotionClient};
use super::error::NotionError;
use super::ids::{DataSourceId, DatabaseId};
use super::list::{paginate, ListPage};
use super::search::{list_body, sent_cursor};

impl NotionClient {
    /// A database. On 2025-09-03+ a container listing `data_sources: [{id, name}]` (no `properties`).
    pub async fn get_database(&self, id: impl Into<DatabaseId>) -> Result<Value, NotionError> {
        let id = id.into();
        self.get(self.url(&["databases", id.as_str()])).await
    }

    /// A data source (schema in `properties`). 2025-09-03+ only.
    pub async fn get_data_source(&self, id: impl Into<DataSourceId>) -> Result<Value, NotionError> {
        if !self.version().has_data_sources() {
            return Err(NotionError::Unsupported { what: "GET /v1/data_sources", version: self.version().as_str() });
        }
        let id = id.into();
        self.get(self.url(&["data_sources", id.as_str()])).await
    }

    /// One page of rows. `source_id` is a data source id on 2025-09-03+ and a database id on 2022-06-28. `body`
    /// holds `filter` / `sorts` / `start_cursor` (a null cursor is dropped; `page_size` defaults to 100). Check
    /// [`ListPage::hit_result_limit`] for the 10,000-row cap. A page failing [`ListPage::check`] is a
    /// [`NotionError::Pagination`].
    pub async fn query_rows(&self, source_id: impl Into<DataSourceId>, body: &Value) -> Result<ListPage, NotionError> {
        let id = source_id.into();
        let url = if self.version().has_data_sources() {
            self.url(&["data_sources", id.as_str(), "query"])
        } else {
            self.url(&["databases", id.as_str(), "query"])
        };
        let body = list_body(body, None);
        let value = self.post(url.clone(), &body).await?;
        decode_list("POST", &url, value, sent_cursor(&body))
    }

    /// Every row of one query (up to Notion's 10,000-row cap), lazily.
    pub fn rows(
        &self,
        source_id: impl Into<DataSourceId>,
        body: Value,
    ) -> impl Stream<Item = Result<Value, NotionError>> + Send + 'static {
        let client = self.clone();
        let id = source_id.into();
        paginate(move |cursor| {
            let client = client.clone();
            let id = id.clone();
            let body = list_body(&body, cursor.as_deref());
            async move { client.query_rows(id, &body).await }
        })
    }
}

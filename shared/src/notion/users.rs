//! `GET /v1/users/me`, `GET /v1/users`, `GET /v1/users/{id}`.

use futures::Stream;
use serde_json::Value;

use super::client::NotionClient;
use super::error::NotionError;
use super::ids::UserId;
use super::list::{paginate, ListPage};

impl NotionClient {
    /// The bot user of the token (`bot.workspace_name`...). A cheap token check.
    pub async fn users_me(&self) -> Result<Value, NotionError> {
        self.get(self.url(&["users", "me"])).await
    }

    /// One page of users (checked like [`NotionClient::list_children`]).
    pub async fn list_users(&self, cursor: Option<&str>) -> Result<ListPage, NotionError> {
        let url = self.list_url(&["users"], cursor, &[]);
        self.get_list(url, cursor).await
    }

    /// Every user, lazily.
    pub fn users(&self) -> impl Stream<Item = Result<Value, NotionError>> + Send + 'static {
        let client = self.clone();
        paginate(move |cursor| {
            let client = client.clone();
            async move { client.list_users(cursor.as_deref()).await }
        })
    }

    pub async fn get_user(&self, id: impl Into<UserId>) -> Result<Value, NotionError> {
        let id = id.into();
        self.get(self.url(&["users", id.as_str()])).await
    }
}

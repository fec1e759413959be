//! `POST /v1/search` and a small typed body builder.

use futures::Stream;
use serde_json::{json, Map, Value};

use super::client::{decode_list, NotionClient};
use super::error::NotionError;
use super::list::{paginate, ListPage, PAGE_SIZE};
use super::version::ApiVersion;

/// The object type a search is filtered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchFilter {
    Page,
    /// 2025-09-03+.
    DataSource,
    /// 2022-06-28.
    Database,
}

impl SearchFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchFilter::Page => "page",
            SearchFilter::DataSource => "data_source",
            SearchFilter::Database => "database",
        }
    }

    /// `data_source` or `database`, whichever the version searches for.
    pub fn tables(version: ApiVersion) -> Self {
        if version.has_data_sources() {
            SearchFilter::DataSource
        } else {
            SearchFilter::Database
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDirection {
    Ascending,
    Descending,
}

/// Builds a search body: `{query?, filter?, sort?, start_cursor?, page_size: 100}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    pub query: Option<String>,
    pub filter: Option<SearchFilter>,
    /// Sort by `last_edited_time`.
    pub sort: Option<SortDirection>,
    pub start_cursor: Option<String>,
}

impl SearchQuery {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn query(mut self, text: impl Into<String>) -> Self {
        self.query = Some(text.into());
        self
    }

    pub fn filter(mut self, filter: SearchFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    pub fn sort_last_edited(mut self, direction: SortDirection) -> Self {
        self.sort = Some(direction);
        self
    }

    pub fn start_cursor(mut self, cursor: Option<String>) -> Self {
        self.start_cursor = cursor;
        self
    }

    pub fn to_body(&self) -> Value {
        let mut body = Map::new();
        if let Some(q) = &self.query {
            body.insert("query".into(), json!(q));
        }
        if let Some(f) = self.filter {
            body.insert("filter".into(), json!({ "property": "object", "value": f.as_str() }));
        }
        if let Some(d) = self.sort {
            let direction = match d {
                SortDirection::Ascending => "ascending",
                SortDirection::Descending => "descending",
            };
            body.insert("sort".into(), json!({ "timestamp": "last_edited_time", "direction": direction }));
        }
        if let Some(c) = self.start_cursor.as_deref().filter(|c| !c.is_empty()) {
            body.insert("start_cursor".into(), json!(c));
        }
        body.insert("page_size".into(), json!(PAGE_SIZE));
        Value::Object(body)
    }
}

/// A caller-built list body made safe to send: no null/empty `start_cursor`, `page_size` 100 when absent,
/// `start_cursor` replaced by `cursor` when given.
pub(crate) fn list_body(body: &Value, cursor: Option<&str>) -> Value {
    let mut body = match body {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    if let Some(c) = cursor {
        body.insert("start_cursor".into(), json!(c));
    }
    if body.get("start_cursor").is_some_and(|c| c.as_str().is_none_or(str::is_empty)) {
        body.remove("start_cursor");
    }
    body.entry("page_size").or_insert(json!(PAGE_SIZE));
    Value::Object(body)
}

/// The `start_cursor` of a body made by [`list_body`] (the cursor a page is checked against).
pub(crate) fn sent_cursor(body: &Value) -> Option<&str> {
    body.get("start_cursor").and_then(Value::as_str)
}

impl NotionClient {
    /// One page of search results. `body` is a search body (see [`SearchQuery::to_body`]); a null `start_cursor`
    /// is dropped and `page_size` defaults to 100. A page failing [`ListPage::check`] is a
    /// [`NotionError::Pagination`].
    pub async fn search(&self, body: &Value) -> Result<ListPage, NotionError> {
        let url = self.url(&["search"]);
        let body = list_body(body, None);
        let value = self.post(url.clone(), &body).await?;
        decode_list("POST", &url, value, sent_cursor(&body))
    }

    /// Every search result for `body`, lazily.
    pub fn search_all(&self, body: Value) -> impl Stream<Item = Result<Value, NotionError>> + Send + 'static {
        let client = self.clone();
        paginate(move |cursor| {
            let client = client.clone();
            let body = list_body(&body, cursor.as_deref());
            async move { client.search(&body).await }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_bodies() {
        assert_eq!(SearchQuery::new().to_body(), json!({ "page_size": 100 }));
        let body = SearchQuery::new()
            .query("roadmap")
            .filter(SearchFilter::tables(ApiVersion::V2022_06_28))
            .sort_last_edited(SortDirection::Descending)
            .start_cursor(Some("c1".into()))
            .to_body();
        assert_eq!(
            body,
            json!({
                "query": "roadmap",
                "filter": { "property": "object", "value": "database" },
                "sort": { "timestamp": "last_edited_time", "direction": "descending" },
                "start_cursor": "c1",
                "page_size": 100
            })
        );
        assert_eq!(SearchFilter::tables(ApiVersion::V2025_09_03), SearchFilter::DataSource);
        assert_eq!(SearchQuery::new().start_cursor(Some(String::new())).to_body(), json!({ "page_size": 100 }));
    }

    #[test]
    fn list_body_never_sends_a_null_cursor() {
        assert_eq!(list_body(&json!({ "start_cursor": null }), None), json!({ "page_size": 100 }));
        assert_eq!(list_body(&json!({ "start_cursor": "" }), None), json!({ "page_size": 100 }));
        assert_eq!(
            list_body(&json!({ "start_cursor": "a", "page_size": 10 }), Some("b")),
            json!({ "start_cursor": "b", "page_size": 10 })
        );
        assert_eq!(list_body(&Value::Null, Some("b")), json!({ "start_cursor": "b", "page_size": 100 }));
        assert_eq!(
            list_body(&json!({ "filter": { "x": 1 } }), None),
            json!({ "filter": { "x": 1 }, "page_size": 100 })
        );
    }
}

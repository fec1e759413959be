//! List responses and the one cursor loop: [`paginate`] turns a page fetcher into a lazy stream.

use std::future::Future;

use futures::stream::{self, Stream, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::NotionError;

/// Notion's maximum (and our only) page size.
pub const PAGE_SIZE: u32 = 100;

/// One page of a list response (`{object:"list", results, next_cursor, has_more, request_status?}`); unknown fields
/// are ignored, objects are kept as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListPage {
    #[serde(default)]
    pub results: Vec<Value>,
    #[serde(default)]
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_status: Option<Value>,
}

impl ListPage {
    /// Decodes a list body leniently (missing `results` = empty, `results: null` = empty).
    pub fn from_value(value: Value) -> Result<ListPage, serde_json::Error> {
        let mut value = value;
        if let Some(obj) = value.as_object_mut() {
            if obj.get("results").is_some_and(Value::is_null) {
                obj.remove("results");
            }
        }
        serde_json::from_value(value)
    }

    /// The cursor of the next page, if there is one.
    pub fn next(&self) -> Option<&str> {
        if self.has_more {
            self.next_cursor.as_deref().filter(|c| !c.is_empty())
        } else {
            None
        }
    }

    /// Refuses a page that would make a cursor loop spin or lie, with what was wrong: `has_more` without a
    /// `next_cursor`, a `next_cursor` equal to `requested` (the cursor this page was fetched with), or more than
    /// [`PAGE_SIZE`] results. The client's list methods apply it, so callers that loop on
    /// `(has_more, next_cursor)` themselves get an error instead of an endless loop or a silent stop.
    pub fn check(&self, requested: Option<&str>) -> Result<(), String> {
        if self.results.len() > PAGE_SIZE as usize {
            return Err(format!("{} results in one page (at most {PAGE_SIZE} expected)", self.results.len()));
        }
        if !self.has_more {
            return Ok(());
        }
        match self.next_cursor.as_deref() {
            None | Some("") => Err("has_more is true but next_cursor is empty".into()),
            Some(next) if requested == Some(next) => {
                Err(format!("next_cursor {:?} repeats the cursor just requested", shorten(next)))
            }
            Some(_) => Ok(()),
        }
    }

    /// True when a query stopped at Notion's 10,000-row cap
    /// (`request_status.incomplete_reason == "query_result_limit_reached"`; `has_more` is then false).
    pub fn hit_result_limit(&self) -> bool {
        self.request_status
            .as_ref()
            .and_then(|s| s.get("incomplete_reason"))
            .and_then(Value::as_str)
            .is_some_and(|r| r == "query_result_limit_reached")
    }
}

/// A cursor for a message: cursors are opaque ids, but nothing bounds what a broken server sends.
fn shorten(cursor: &str) -> &str {
    let mut end = cursor.len().min(80);
    while !cursor.is_char_boundary(end) {
        end -= 1;
    }
    &cursor[..end]
}

/// A lazy stream of pages: calls `fetch(None)`, then `fetch(Some(next_cursor))` while `has_more`. Stops after the
/// first error (which it yields), and if the server repeats a cursor.
pub fn paginate_pages<F, Fut>(fetch: F) -> impl Stream<Item = Result<ListPage, NotionError>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<ListPage, NotionError>>,
{
    enum Next {
        Fetch(Option<String>),
        Done,
    }
    stream::try_unfold((fetch, Next::Fetch(None)), |(mut fetch, next)| async move {
        let cursor = match next {
            Next::Fetch(cursor) => cursor,
            Next::Done => return Ok(None),
        };
        let page = fetch(cursor.clone()).await?;
        let next = match page.next() {
            Some(c) if cursor.as_deref() == Some(c) => {
                tracing::warn!(cursor = c, "notion returned the same cursor again; stopping pagination");
                Next::Done
            }
            Some(c) => Next::Fetch(Some(c.to_string())),
            None => Next::Done,
        };
        Ok(Some((page, (fetch, next))))
    })
}

/// A lazy stream of every result over all pages (see [`paginate_pages`]).
pub fn paginate<F, Fut>(fetch: F) -> impl Stream<Item = Result<Value, NotionError>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<ListPage, NotionError>>,
{
    paginate_pages(fetch).map_ok(|page| stream::iter(page.results.into_iter().map(Ok))).try_flatten()
}

/// Collects a stream of results (convenience for small lists such as users).
pub async fn collect_all<S>(stream: S) -> Result<Vec<Value>, NotionError>
where
    S: Stream<Item = Result<Value, NotionError>>,
{
    stream.try_collect().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    fn page(ids: std::ops::Range<u32>, next: Option<&str>) -> ListPage {
        ListPage {
            results: ids.map(|i| json!({ "id": i })).collect(),
            next_cursor: next.map(str::to_string),
            has_more: next.is_some(),
            request_status: None,
        }
    }

    #[tokio::test]
    async fn streams_all_pages_lazily() {
        let calls = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
        let log = Arc::clone(&calls);
        let stream = paginate(move |cursor| {
            log.lock().unwrap().push(cursor.clone());
            async move {
                Ok(match cursor.as_deref() {
                    None => page(0..100, Some("c1")),
                    Some("c1") => page(100..200, Some("c2")),
                    _ => page(200..250, None),
                })
            }
        });
        let first: Vec<Value> = stream.take(3).try_collect().await.unwrap();
        assert_eq!(first.len(), 3);
        assert_eq!(calls.lock().unwrap().len(), 1, "lazy: one page fetched for three items");

        let log = Arc::clone(&calls);
        let all = collect_all(paginate(move |cursor| {
            log.lock().unwrap().push(cursor.clone());
            async move {
                Ok(match cursor.as_deref() {
                    None => page(0..100, Some("c1")),
                    Some("c1") => page(100..200, Some("c2")),
                    _ => page(200..250, None),
                })
            }
        }))
        .await
        .unwrap();
        assert_eq!(all.len(), 250);
        assert_eq!(all[249]["id"], 249);
        let calls = calls.lock().unwrap();
        assert_eq!(calls[1..], [None, Some("c1".into()), Some("c2".into())]);
    }

    #[tokio::test]
    async fn stops_on_error_and_on_repeated_cursor() {
        let results: Vec<Result<Value, NotionError>> = paginate(|cursor: Option<String>| async move {
            match cursor {
                None => Ok(page(0..2, Some("c1"))),
                Some(_) => Err(NotionError::Config("boom".into())),
            }
        })
        .collect()
        .await;
        assert_eq!(results.len(), 3);
        assert!(results[2].is_err());

        let pages: Vec<_> = paginate_pages(|_cursor| async { Ok(page(0..1, Some("same"))) }).collect().await;
        assert_eq!(pages.len(), 2, "first page, then the page for `same`, which repeats itself");
    }

    #[test]
    fn decodes_leniently_and_detects_row_cap() {
        let p = ListPage::from_value(json!({
            "object": "list", "results": [{"id": "a", "new_field": 1}], "next_cursor": null, "has_more": false,
            "type": "page_or_data_source", "page_or_data_source": {},
            "request_status": {"type": "incomplete", "incomplete_reason": "query_result_limit_reached"}
        }))
        .unwrap();
        assert!(p.hit_result_limit());
        assert_eq!(p.next(), None);
        assert_eq!(p.results[0]["new_field"], 1);
        let p = ListPage::from_value(json!({"results": null, "has_more": true, "next_cursor": "x"})).unwrap();
        assert!(p.results.is_empty());
        assert_eq!(p.next(), Some("x"));
        assert!(!p.hit_result_limit());
        let p = ListPage::from_value(json!({"has_more": true, "next_cursor": ""})).unwrap();
        assert_eq!(p.next(), None);
        assert!(ListPage::from_value(json!([1])).is_err());
    }

    #[test]
    fn check_refuses_pages_that_would_loop() {
        let ok = |p: &ListPage, requested: Option<&str>| p.check(requested).is_ok();
        assert!(ok(&page(0..100, Some("c2")), Some("c1")));
        assert!(ok(&page(0..100, Some("c2")), None));
        assert!(ok(&page(0..3, None), Some("c1")));
        // `has_more: false` ends the list whatever the cursor says.
        let mut last = page(0..3, Some("c1"));
        last.has_more = false;
        assert!(ok(&last, Some("c1")));

        let no_cursor = ListPage { has_more: true, ..page(0..3, None) };
        assert_eq!(no_cursor.check(None).unwrap_err(), "has_more is true but next_cursor is empty");
        let empty = ListPage { next_cursor: Some(String::new()), ..no_cursor.clone() };
        assert!(empty.check(Some("c1")).unwrap_err().contains("next_cursor is empty"));
        let repeated = page(0..3, Some("c1")).check(Some("c1")).unwrap_err();
        assert!(repeated.contains("\"c1\" repeats the cursor just requested"), "{repeated}");
        let too_many = page(0..101, None).check(None).unwrap_err();
        assert!(too_many.contains("101 results"), "{too_many}");
        let long = "é".repeat(100);
        let repeated = page(0..1, Some(&long)).check(Some(&long)).unwrap_err();
        assert!(repeated.len() < 150, "{repeated}");
    }
}

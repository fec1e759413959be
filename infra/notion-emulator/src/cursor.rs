//! Opaque pagination cursors and the Notion list shape.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

pub const MAX_PAGE_SIZE: usize = 100;

/// Where the next page of a list starts: the id of its first item, and how many items the
/// list has served before it (used for the data source query row cap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub kind: char,
    pub next_id: Uuid,
    pub served: usize,
}

impl Cursor {
    pub fn encode(&self) -> String {
        hex::encode(format!("{}:{}:{}", self.kind, self.served, self.next_id.simple()))
    }

    pub fn decode(kind: char, raw: &str) -> ApiResult<Cursor> {
        let bad = || ApiError::invalid_cursor(raw);
        let bytes = hex::decode(raw.trim()).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = text.splitn(3, ':');
        let k = parts.next().and_then(|s| s.chars().next()).ok_or_else(bad)?;
        let served = parts.next().and_then(|s| s.parse::<usize>().ok()).ok_or_else(bad)?;
        let next_id = parts.next().and_then(|s| Uuid::parse_str(s).ok()).ok_or_else(bad)?;
        if k != kind {
            return Err(bad());
        }
        Ok(Cursor { kind, next_id, served })
    }
}

/// Validate a page size given as a JSON value (POST bodies).
pub fn page_size_from_json(v: Option<&Value>) -> ApiResult<usize> {
    match v {
        None | Some(Value::Null) => Ok(MAX_PAGE_SIZE),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) => check_page_size(n),
            None => {
                Err(ApiError::validation(format!("body.page_size should be a positive integer, instead was `{n}`.")))
            }
        },
        Some(other) => Err(ApiError::validation(format!("body.page_size should be a number, instead was `{other}`."))),
    }
}

/// Validate a page size given as a query string value (GET lists).
pub fn page_size_from_query(v: Option<&str>) -> ApiResult<usize> {
    match v {
        None => Ok(MAX_PAGE_SIZE),
        Some(s) => match s.trim().parse::<u64>() {
            Ok(n) => check_page_size(n),
            Err(_) => Err(ApiError::validation(format!("query.page_size should be a number, instead was `{s}`."))),
        },
    }
}

fn check_page_size(n: u64) -> ApiResult<usize> {
    if n == 0 || n > MAX_PAGE_SIZE as u64 {
        return Err(ApiError::validation(format!(
            "body failed validation: page_size should be ≤ 100 and ≥ 1, instead was `{n}`."
        )));
    }
    Ok(n as usize)
}

pub fn cursor_from_json(v: Option<&Value>) -> ApiResult<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => {
            Err(ApiError::validation(format!("body.start_cursor should be a string, instead was `{other}`.")))
        }
    }
}

/// One page of an ordered list of ids.
pub struct Slice {
    pub start: usize,
    pub end: usize,
    pub next_cursor: Option<String>,
    pub served_before: usize,
}

/// Cut a page out of `ids` starting at `cursor` (by id; falls back to nothing: an id that is no
/// longer in the list makes the cursor invalid).
pub fn slice(kind: char, ids: &[Uuid], cursor: Option<&str>, page_size: usize) -> ApiResult<Slice> {
    slice_by(kind, ids.len(), |i| ids[i], cursor, page_size)
}

/// `slice` over a list of `len` items whose ids are given by `id_at`.
pub fn slice_by(
    kind: char,
    len: usize,
    id_at: impl Fn(usize) -> Uuid,
    cursor: Option<&str>,
    page_size: usize,
) -> ApiResult<Slice> {
    let (start, served_before) = match cursor {
        None => (0, 0),
        Some(raw) => {
            let c = Cursor::decode(kind, raw)?;
            // The cursor's own position first (the list did not change), else a scan.
            let guess = c.served.min(len);
            let pos = if guess < len && id_at(guess) == c.next_id {
                guess
            } else {
                (0..len).find(|i| id_at(*i) == c.next_id).ok_or_else(|| ApiError::invalid_cursor(raw))?
            };
            (pos, c.served)
        }
    };
    let end = (start + page_size).min(len);
    let next_cursor = if end < len {
        Some(Cursor { kind, next_id: id_at(end), served: served_before + (end - start) }.encode())
    } else {
        None
    };
    Ok(Slice { start, end, next_cursor, served_before })
}

/// `{object:"list", results, next_cursor, has_more, type, <type>:{}}`
pub fn list(kind: &str, results: Vec<Value>, next_cursor: Option<String>) -> Value {
    let has_more = next_cursor.is_some();
    let mut v = json!({
        "object": "list",
        "results": results,
        "next_cursor": next_cursor,
        "has_more": has_more,
        "type": kind,
    });
    v[kind] = json!({});
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_kind_check() {
        let c = Cursor { kind: 'c', next_id: Uuid::from_u128(7), served: 300 };
        let raw = c.encode();
        assert_eq!(Cursor::decode('c', &raw).unwrap(), c);
        assert!(Cursor::decode('s', &raw).is_err());
        assert!(Cursor::decode('c', "not-a-cursor").is_err());
        assert!(Cursor::decode('c', "").is_err());
    }

    #[test]
    fn slices_pages() {
        let ids: Vec<Uuid> = (0..250u128).map(Uuid::from_u128).collect();
        let s = slice('c', &ids, None, 100).unwrap();
        assert_eq!((s.start, s.end), (0, 100));
        let s2 = slice('c', &ids, s.next_cursor.as_deref(), 100).unwrap();
        assert_eq!((s2.start, s2.end, s2.served_before), (100, 200, 100));
        let s3 = slice('c', &ids, s2.next_cursor.as_deref(), 100).unwrap();
        assert_eq!((s3.start, s3.end), (200, 250));
        assert!(s3.next_cursor.is_none());
    }

    #[test]
    fn page_size_limits() {
        assert_eq!(page_size_from_query(None).unwrap(), 100);
        assert!(page_size_from_query(Some("101")).is_err());
        assert!(page_size_from_query(Some("0")).is_err());
        assert!(page_size_from_query(Some("abc")).is_err());
        assert_eq!(page_size_from_json(Some(&json!(5))).unwrap(), 5);
        assert!(page_size_from_json(Some(&json!(500))).is_err());
        assert!(page_size_from_json(Some(&json!("5"))).is_err());
    }
}

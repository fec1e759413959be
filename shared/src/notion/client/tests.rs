//! Unit tests of the client core: the token, URLs, config, error bodies.

use super::send::{display_base, error_fields};
use super::*;

fn client(base: &str) -> NotionClient {
    NotionClient::new(Token::new("secret_abc"), ClientConfig { base_url: base.into(), ..Default::default() }).unwrap()
}

#[test]
fn token_debug_prints_nothing() {
    let t = Token::new("secret_abc");
    assert!(!format!("{t:?}").contains("secret"));
    let c = client("http://127.0.0.1:1");
    assert!(!format!("{c:?}").contains("secret_abc"));
}

#[test]
fn builds_urls_with_and_without_trailing_slash_or_prefix() {
    let c = client("http://127.0.0.1:8787");
    assert_eq!(c.url(&["pages", "a b/c"]).as_str(), "http://127.0.0.1:8787/v1/pages/a%20b%2Fc");
    let c = client("http://127.0.0.1:8787/");
    assert_eq!(c.url(&["users", "me"]).as_str(), "http://127.0.0.1:8787/v1/users/me");
    let c = client("http://host/notion/");
    assert_eq!(c.url(&["search"]).as_str(), "http://host/notion/v1/search");
    let c = client("https://api.notion.com");
    assert_eq!(
        c.list_url(&["blocks", "b1", "children"], Some("cur sor"), &[]).as_str(),
        "https://api.notion.com/v1/blocks/b1/children?page_size=100&start_cursor=cur+sor"
    );
    assert_eq!(c.list_url(&["users"], Some(""), &[]).as_str(), "https://api.notion.com/v1/users?page_size=100");
    assert_eq!(
        c.list_url(&["comments"], None, &[("block_id", "b1")]).as_str(),
        "https://api.notion.com/v1/comments?block_id=b1&page_size=100"
    );
}

#[test]
fn rejects_bad_config() {
    let cfg = |base: &str| ClientConfig { base_url: base.into(), ..Default::default() };
    assert!(NotionClient::new(Token::new("t"), cfg("not a url")).is_err());
    assert!(NotionClient::new(Token::new("t"), cfg("ftp://x")).is_err());
    assert!(NotionClient::new(Token::new(" "), cfg("http://x")).is_err());
    let err = NotionClient::new(Token::new("bad\ntoken"), cfg("http://x")).unwrap_err();
    assert!(!err.to_string().contains("bad"), "{err}");
    let mut bad_rate = cfg("http://x");
    bad_rate.pacer.rate = 0.0;
    assert!(NotionClient::new(Token::new("t"), bad_rate).is_err());
}

#[test]
fn error_fields_are_lenient() {
    let (code, msg, rid) =
        error_fields(br#"{"object":"error","status":404,"code":"object_not_found","message":"gone","request_id":"r"}"#);
    assert_eq!((code.as_str(), msg.as_str(), rid.as_deref()), ("object_not_found", "gone", Some("r")));
    let (code, msg, rid) = error_fields(b"<html>bad gateway</html>");
    assert_eq!((code.as_str(), msg.as_str(), rid), ("", "<html>bad gateway</html>", None));
    let long = "é".repeat(600);
    let (_, msg, _) = error_fields(long.as_bytes());
    assert!(msg.len() <= MAX_ERROR_TEXT);
}

#[test]
fn base_urls_are_shown_without_credentials() {
    let base = Url::parse("https://user:pw@x.example/notion/?k=v#f").unwrap();
    assert_eq!(display_base(&base), "https://x.example/notion/");
    assert_eq!(display_base(&Url::parse("https://x.example").unwrap()), "https://x.example/");
}

#[test]
fn list_pages_are_checked_with_the_requested_cursor() {
    let url = Url::parse("https://x.example/v1/users").unwrap();
    let page = serde_json::json!({ "results": [], "has_more": true, "next_cursor": "c1" });
    assert!(decode_list("GET", &url, page.clone(), None).is_ok());
    assert!(decode_list("GET", &url, page.clone(), Some("")).is_ok());
    let err = decode_list("GET", &url, page, Some("c1")).unwrap_err();
    assert!(matches!(err, NotionError::Pagination { .. }), "{err:?}");
    assert!(err.to_string().starts_with("Notion GET /v1/users: broken pagination"), "{err}");
}

#[test]
fn redacts_the_token() {
    let c = client("http://127.0.0.1:1");
    assert_eq!(c.redact("token secret_abc leaked"), "token <redacted> leaked");
}

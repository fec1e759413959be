//! Unit tests of the settings and the configuration document.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::*;
use crate::notion::ApiVersion;

fn base_env() -> HashMap<String, String> {
    HashMap::from([
        ("WORK_QUEUE_URL".into(), "http://127.0.0.1:4566/000000000000/notion-es-work".into()),
        ("FINALIZE_QUEUE_URL".into(), "http://127.0.0.1:4566/000000000000/notion-es-finalize".into()),
    ])
}

fn env_with(name: &str, value: &str) -> HashMap<String, String> {
    let mut env = base_env();
    env.insert(name.into(), value.into());
    env
}

fn env_err_of(name: &str, value: &str) -> String {
    Settings::from_map(&env_with(name, value)).unwrap_err().to_string()
}

#[test]
fn defaults() {
    let s = Settings::from_map(&base_env()).unwrap();
    assert_eq!(s.secret_id, "notion-es/secrets");
    assert_eq!(s.notion_base_url.as_str(), "https://api.notion.com/");
    assert_eq!(s.notion_version, ApiVersion::V2025_09_03);
    assert_eq!(s.notion_rate, 3.0);
    assert_eq!(s.worker_concurrency, 2);
    assert_eq!(s.worker_rate(), 1.5);
    assert_eq!(s.index_name, "search-notion");
    assert_eq!(s.tasks_index(), "search-notion-tasks");
    assert_eq!(s.max_receive_count, 3);
    assert_eq!(s.finalize_delay_seconds, 60);
    assert_eq!((s.planning_lease_seconds, s.run_lease_seconds), (1200, 3900));
    assert_eq!(s.leases().planning, std::time::Duration::from_secs(1200));
    assert!(s.connector.selects_everything());
    assert_eq!(s.connector.concurrent_downloads, 30);
    assert_eq!(s.connector.max_file_size, 10 * 1024 * 1024);
}

#[test]
fn env_errors_name_the_variable() {
    let cases = [
        ("NOTION_RATE", "0", "environment variable NOTION_RATE: \"0\" must be a positive number"),
        ("NOTION_RATE", "-1", "environment variable NOTION_RATE: \"-1\" must be a positive number"),
        ("NOTION_RATE", "fast", "environment variable NOTION_RATE: \"fast\" is not a number"),
        ("NOTION_RATE", "NaN", "environment variable NOTION_RATE: \"NaN\" must be a positive number"),
        ("NOTION_VERSION", "2024-01-01", "environment variable NOTION_VERSION: unknown Notion API version"),
        (
            "NOTION_BASE_URL",
            "api.notion.com",
            "environment variable NOTION_BASE_URL: \"api.notion.com\" is not a valid URL",
        ),
        ("NOTION_BASE_URL", "https://api.notion.com/v1", "environment variable NOTION_BASE_URL: must not include /v1"),
        ("SEARCH_URL", "ftp://x", "environment variable SEARCH_URL: \"ftp://x\" must be an http"),
        (
            "SEARCH_URL",
            "http://elastic:changeme@localhost:9200",
            "environment variable SEARCH_URL: must not contain credentials",
        ),
        ("WORKER_CONCURRENCY", "0", "environment variable WORKER_CONCURRENCY: 0 is out of range (1..=1000)"),
        ("WORKER_CONCURRENCY", "2.5", "environment variable WORKER_CONCURRENCY: \"2.5\" is not a whole number"),
        ("MAX_RECEIVE_COUNT", "x", "environment variable MAX_RECEIVE_COUNT: \"x\" is not a whole number"),
        ("FINALIZE_DELAY_SECONDS", "901", "environment variable FINALIZE_DELAY_SECONDS: 901 is out of range (0..=900)"),
        ("PLANNING_LEASE_SECONDS", "0", "environment variable PLANNING_LEASE_SECONDS: 0 is out of range (1..=86400)"),
        (
            "RUN_LEASE_SECONDS",
            "60",
            "environment variable RUN_LEASE_SECONDS: 60 must be longer than FINALIZE_DELAY_SECONDS (60)",
        ),
        ("INDEX_NAME", "Search-Notion", "environment variable INDEX_NAME: \"Search-Notion\" must be lower-case"),
        ("INDEX_NAME", "_x", "environment variable INDEX_NAME: \"_x\" must not start with"),
        ("WORK_QUEUE_URL", " ", "environment variable WORK_QUEUE_URL: is required but empty"),
        (
            "CONNECTOR_CONFIG",
            "{\"pages\": 3}",
            "environment variable CONNECTOR_CONFIG: configuration /pages: must be a comma-separated string",
        ),
        (
            "CONNECTOR_CONFIG",
            "/nonexistent/notion-es.json",
            "environment variable CONNECTOR_CONFIG: configuration file /nonexistent/notion-es.json:",
        ),
    ];
    for (name, value, expected) in cases {
        let e = env_err_of(name, value);
        assert!(e.starts_with(expected), "{name}={value}: {e}");
    }
    assert!(!env_err_of("SEARCH_URL", "http://elastic:changeme@localhost:9200").contains("changeme"));
    let mut env = base_env();
    env.remove("FINALIZE_QUEUE_URL");
    assert_eq!(
        Settings::from_map(&env).unwrap_err().to_string(),
        "environment variable FINALIZE_QUEUE_URL: is required but not set"
    );
}

#[test]
fn each_stack_has_its_own_default_index() {
    let index_of = |stack: Option<&str>| {
        let mut env = base_env();
        env.remove("INDEX_NAME");
        if let Some(stack) = stack {
            env.insert("STACK_NAME".into(), stack.into());
        }
        Settings::from_map(&env).unwrap().index_name
    };
    assert_eq!(index_of(None), "search-notion");
    assert_eq!(index_of(Some("notion-es")), "search-notion");
    assert_eq!(index_of(Some("Notion-Staging")), "search-notion-notion-staging");
    assert_ne!(index_of(Some("a")), index_of(Some("b")));
}

#[test]
fn document_overrides_version_and_index() {
    let s = Settings::from_map(&env_with(
        "CONNECTOR_CONFIG",
        r#"{"notion_version": "2022-06-28", "index_name": "notion-a"}"#,
    ))
    .unwrap();
    assert_eq!(s.notion_version, ApiVersion::V2022_06_28);
    assert_eq!(s.index_name, "notion-a");
    let mut env = env_with("NOTION_VERSION", "2026-03-11");
    env.insert("INDEX_NAME".into(), "other".into());
    let s = Settings::from_map(&env).unwrap();
    assert_eq!(s.notion_version, ApiVersion::V2026_03_11);
    assert_eq!(s.index_name, "other");
}

#[test]
fn config_from_file() {
    let dir = std::env::temp_dir().join(format!("notion-es-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    std::fs::write(&path, r#"{"pages": ["Roadmap"], "index_comments": true}"#).unwrap();
    let s = Settings::from_map(&env_with("CONNECTOR_CONFIG", path.to_str().unwrap())).unwrap();
    assert_eq!(s.connector.pages, TitleSelection::Titles(vec!["Roadmap".into()]));
    assert!(s.connector.index_comments);
    std::fs::write(&path, "{").unwrap();
    assert!(ConnectorConfig::from_file(&path).unwrap_err().to_string().contains("not valid JSON"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn title_lists() {
    let c = |v: Value| ConnectorConfig::from_json(&json!({ "pages": v })).map(|c| c.pages);
    assert_eq!(c(json!("*")).unwrap(), TitleSelection::All);
    assert_eq!(
        c(json!(" Roadmap , ,Team Wiki,")).unwrap(),
        TitleSelection::Titles(vec!["Roadmap".into(), "Team Wiki".into()])
    );
    assert_eq!(c(json!(["Roadmap", " roadmap "])).unwrap(), TitleSelection::Titles(vec!["Roadmap".into()]));
    assert_eq!(c(json!("Roadmap, *")).unwrap(), TitleSelection::All);
    assert_eq!(c(json!(null)).unwrap(), TitleSelection::All);
    assert_eq!(
        c(json!(" , ")).unwrap_err().to_string(),
        "configuration /pages: lists no title: give titles or \"*\" (everything)"
    );
    assert_eq!(c(json!(["a", 1])).unwrap_err().to_string(), "configuration /pages/1: must be a string, found a number");
}

#[test]
fn document_errors_name_the_path() {
    let e = |v: Value| ConnectorConfig::from_json(&v).unwrap_err().to_string();
    assert_eq!(e(json!([])), "configuration /: must be a JSON object, found an array");
    assert!(
        e(json!({"page": "*"})).starts_with("configuration /page: unknown key \"page\" (known keys: databases, pages")
    );
    assert!(e(json!({"notion_secret_key": "x"})).contains("put it in the secret"));
    assert_eq!(
        e(json!({"index_comments": "yes"})),
        "configuration /index_comments: must be true or false, found a string"
    );
    assert_eq!(
        e(json!({"concurrent_downloads": 0})),
        "configuration /concurrent_downloads: 0 is out of range (1..=100)"
    );
    assert_eq!(
        e(json!({"concurrent_downloads": 2.5})),
        "configuration /concurrent_downloads: must be a whole number in 1..=100, found 2.5"
    );
    assert_eq!(
        e(json!({"max_file_size": -1})),
        "configuration /max_file_size: must be a whole number in 0..=104857600, found -1"
    );
    assert!(
        e(json!({"notion_version": "2023"})).starts_with("configuration /notion_version: unknown Notion API version")
    );
    assert_eq!(
        e(json!({"sync_rules": []})),
        "configuration /sync_rules: must be an object {\"basic\": [...], \"advanced\": {...}}, found an array"
    );
    assert!(e(json!({"sync_rules": {"advance": {}}})).starts_with("configuration /sync_rules/advance: unknown key"));
    assert!(e(json!({"sync_rules": {"basic": [{"policy": "drop", "field": "a", "rule": "equals", "value": "b"}]}}))
        .starts_with("configuration /sync_rules/basic/0/policy: \"drop\" is not one of"));
    assert_eq!(
        e(json!({"sync_rules": {"advanced": {"searches": [{"query": "x", "filter": {"value": "block"}}]}}})),
        r#"configuration /sync_rules/advanced/searches/0/filter/value: "block" is not one of "page" or "database""#
    );
}

#[test]
fn advanced_rules_empty_means_none() {
    let c = ConnectorConfig::from_json(&json!({"sync_rules": {"advanced": {}, "basic": []}})).unwrap();
    assert!(!c.has_advanced_rules());
    let c = ConnectorConfig::from_json(&json!({"sync_rules": {"advanced": {"searches": [{"query": ""}]}}})).unwrap();
    assert!(c.has_advanced_rules());
    assert!(!c.selects_everything());
}

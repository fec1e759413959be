//! Configuration and sync rules: the seed page's eight advanced-rule examples, invalid rules, basic rules, settings,
//! secrets, and decoders fed arbitrary JSON (they must return errors, never panic).

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use shared::config::{ConfigError, ConnectorConfig, Settings, TitleSelection};
use shared::rules::{missing_titles, validate_against_workspace, AdvancedRules, BasicRules, SearchObject, SearchRule};
use shared::secrets::Secrets;

/// The eight examples of the seed page, verbatim.
const EXAMPLES: [&str; 8] = [
    r#"{ "searches": [ { "filter": { "value": "page" }, "query": "Demo Page" } ] }"#,
    r#"{ "searches": [ { "filter": { "value": "database" }, "query": "Demo Database" } ] }"#,
    r#"{ "searches": [ { "filter": { "value": "database" }, "query": "Demo Database" },
                       { "filter": { "value": "page" }, "query": "Demo Page" } ] }"#,
    r#"{ "searches": [ { "filter": { "value": "page" }, "query": "" } ] }"#,
    r#"{ "searches":[ { "query":"" } ] }"#,
    r#"{ "database_query_filters": [ { "filter": { "property": "Task completed", "checkbox": { "equals": true } },
                                       "database_id": "database_id" } ] }"#,
    r#"{ "database_query_filters": [ { "database_id": "database_id" } ] }"#,
    r#"{ "searches":[ { "query":"External tasks", "filter":{ "value":"database" } },
                      { "query":"External tasks", "filter":{ "value":"page" } } ],
         "database_query_filters":[ { "database_id":"notion_database_id1",
                                      "filter":{ "property":"Task completed", "checkbox":{ "equals":true } } } ] }"#,
];

fn search(query: &str, filter: Option<SearchObject>) -> SearchRule {
    SearchRule { query: query.into(), filter }
}

#[test]
fn the_eight_seed_examples_parse_and_validate() {
    let parsed: Vec<AdvancedRules> = EXAMPLES
        .iter()
        .map(|text| AdvancedRules::from_json_str(text).unwrap_or_else(|e| panic!("{text}: {e}")))
        .collect();
    use SearchObject::{Database, Page};
    assert_eq!(parsed[0].searches, vec![search("Demo Page", Some(Page))]);
    assert_eq!(parsed[1].searches, vec![search("Demo Database", Some(Database))]);
    assert_eq!(parsed[2].searches, vec![search("Demo Database", Some(Database)), search("Demo Page", Some(Page))]);
    assert_eq!(parsed[3].searches, vec![search("", Some(Page))]);
    assert_eq!(parsed[4].searches, vec![search("", None)]);
    assert_eq!(parsed[5].database_query_filters[0].database_id, "database_id");
    assert_eq!(
        parsed[5].database_query_filters[0].filter,
        Some(json!({"property": "Task completed", "checkbox": {"equals": true}}))
    );
    assert_eq!(parsed[6].database_query_filters[0].filter, None);
    assert_eq!(parsed[7].searches.len(), 2);
    assert_eq!(parsed[7].database_query_filters[0].database_id, "notion_database_id1");

    // Against a workspace holding those databases (and pages/databases whose titles contain the queries).
    let known: HashSet<String> = ["database_id", "notion_database_id1"].map(String::from).into();
    for (i, rules) in parsed.iter().enumerate() {
        let found: Vec<Vec<String>> = rules.searches.iter().map(|s| vec![format!("The {} (2024)", s.query)]).collect();
        validate_against_workspace(rules, &known, Some(&found)).unwrap_or_else(|e| panic!("example {}: {e}", i + 1));
        // The same rules inside a configuration document.
        let doc: Value =
            serde_json::from_str(&format!(r#"{{"sync_rules": {{"advanced": {}}}}}"#, EXAMPLES[i])).unwrap();
        let config = ConnectorConfig::from_json(&doc).unwrap();
        assert_eq!(config.sync_rules.advanced.as_ref(), Some(rules));
        assert!(config.has_advanced_rules());
    }
    // Examples 6–8 name databases a workspace without them does not hold.
    let err = validate_against_workspace(&parsed[7], &HashSet::new(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/database_query_filters/0/database_id: invalid database id \"notion_database_id1\": no database with this id \
         is shared with the integration"
    );
}

fn advanced_err(v: Value) -> String {
    let doc = json!({"sync_rules": {"advanced": v}});
    ConnectorConfig::from_json(&doc).unwrap_err().to_string()
}

#[test]
fn invalid_advanced_rules_are_rejected_with_their_path() {
    let cases = [
        // unknown key
        (
            json!({"searches": [{"query": "x"}], "database_filters": []}),
            "configuration /sync_rules/advanced: Additional properties are not allowed ('database_filters' was unexpected)",
        ),
        (
            json!({"searches": [{"query": "x", "limit": 3}]}),
            "configuration /sync_rules/advanced/searches/0/limit: unknown key \"limit\"",
        ),
        // missing query
        (
            json!({"searches": [{"query": "a"}, {"filter": {"value": "page"}}]}),
            "configuration /sync_rules/advanced/searches/1: \"query\" is a required property",
        ),
        // bad filter.value
        (
            json!({"searches": [{"query": "x", "filter": {"value": "block"}}]}),
            "configuration /sync_rules/advanced/searches/0/filter/value: \"block\" is not one of \"page\" or \"database\"",
        ),
        (
            json!({"searches": [{"query": "x", "filter": {}}]}),
            "configuration /sync_rules/advanced/searches/0/filter: \"value\" is a required property",
        ),
        // empty database_id
        (
            json!({"database_query_filters": [{"database_id": ""}]}),
            "configuration /sync_rules/advanced/database_query_filters/0/database_id: \"\" is shorter than 1 character",
        ),
        (
            json!({"database_query_filters": [{"filter": {}}]}),
            "configuration /sync_rules/advanced/database_query_filters/0: \"database_id\" is a required property",
        ),
        // wrong JSON types
        (
            json!({"searches": "Demo"}),
            "configuration /sync_rules/advanced/searches: \"Demo\" is not of type \"array\"",
        ),
        (
            json!({"searches": [{"query": 7}]}),
            "configuration /sync_rules/advanced/searches/0/query: 7 is not of type \"string\"",
        ),
        (
            json!({"database_query_filters": [{"database_id": ["a"]}]}),
            "configuration /sync_rules/advanced/database_query_filters/0/database_id: [\"a\"] is not of type \"string\"",
        ),
        (
            json!({"database_query_filters": [{"database_id": "a", "filter": {"property": "Done", "checkbox": true}}]}),
            "configuration /sync_rules/advanced/database_query_filters/0/filter/checkbox: true is not of types \"array\", \"object\"",
        ),
        (
            json!(["searches"]),
            "configuration /sync_rules/advanced: [\"searches\"] is not of type \"object\"",
        ),
    ];
    for (input, expected) in cases {
        let e = advanced_err(input.clone());
        assert!(e.starts_with(expected), "{input}\n  got:      {e}\n  expected: {expected}");
    }
}

#[test]
fn unknown_database_is_named() {
    let rules = AdvancedRules::from_json(&json!({"database_query_filters": [
        {"database_id": "1c2d3e4f-0000-4000-8000-00000000000a"},
        {"database_id": "1C2D3E4F00004000800000000000000B"}
    ]}))
    .unwrap();
    let known: HashSet<String> = ["1c2d3e4f00004000800000000000000a".to_string()].into();
    let e = validate_against_workspace(&rules, &known, None).unwrap_err();
    assert_eq!(e.path(), "/database_query_filters/1/database_id");
    assert!(e.to_string().contains("\"1C2D3E4F00004000800000000000000B\""), "{e}");
}

fn doc(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn basic_rules_combinations() {
    let config = ConnectorConfig::from_json(&json!({"sync_rules": {"basic": [
        {"id": "keep-specs", "policy": "include", "field": "title", "rule": "regex", "value": "(?i)spec"},
        {"id": "no-blocks", "policy": "exclude", "field": "object", "rule": "equals", "value": "block"},
        {"id": "old", "policy": "exclude", "field": "last_edited_time", "rule": "<", "value": "2023-01-01"},
        {"id": "big", "policy": "exclude", "field": "size", "rule": ">", "value": "1000"}
    ]}}))
    .unwrap();
    let rules = &config.sync_rules.basic;
    let cases = [
        (json!({"object": "block", "title": "Spec: search"}), true), // include comes first
        (json!({"object": "block", "title": "Notes"}), false),
        (json!({"object": "page", "last_edited_time": "2022-06-01T00:00:00.000Z"}), false),
        (json!({"object": "page", "last_edited_time": "2024-06-01T00:00:00.000Z"}), true),
        (json!({"object": "page", "size": 999}), true),
        (json!({"object": "page", "size": 1001}), false),
        (json!({"object": "page", "size": "20000"}), false),
        (json!({"object": "user"}), true), // no rule matches: included
    ];
    for (d, expected) in cases {
        assert_eq!(rules.includes(&doc(d.clone())), expected, "{d}");
    }
    // Order matters: the same two rules the other way round.
    let reversed = BasicRules::from_json(&json!([
        {"policy": "exclude", "field": "object", "rule": "equals", "value": "block"},
        {"policy": "include", "field": "title", "rule": "regex", "value": "(?i)spec"}
    ]))
    .unwrap();
    assert!(!reversed.includes(&doc(json!({"object": "block", "title": "Spec"}))));
    // Whitelist: include pages, exclude the rest.
    let whitelist = BasicRules::from_json(&json!([
        {"policy": "include", "field": "object", "rule": "equals", "value": "page"},
        {"policy": "exclude", "field": "id", "rule": "regex", "value": ".*"}
    ]))
    .unwrap();
    assert!(whitelist.includes(&doc(json!({"object": "page", "id": "a"}))));
    assert!(!whitelist.includes(&doc(json!({"object": "block", "id": "b"}))));
}

#[test]
fn invalid_basic_rules_name_the_path() {
    let e = |v: Value| ConnectorConfig::from_json(&json!({"sync_rules": {"basic": v}})).unwrap_err().to_string();
    assert!(e(json!([{"policy": "include", "field": "title", "rule": "regex", "value": "a(b"}]))
        .starts_with("configuration /sync_rules/basic/0/value: invalid regex \"a(b\""));
    assert!(e(json!([{"policy": "exclude", "field": "title", "rule": "regex", "value": ".*"}]))
        .starts_with("configuration /sync_rules/basic/0: rule 0 excludes every document"));
    assert!(e(json!([{"policy": "include", "field": "title", "rule": "matches", "value": "x"}]))
        .starts_with("configuration /sync_rules/basic/0/rule: \"matches\" is not a known rule"));
    assert!(
        e(json!({"policy": "include"})).starts_with("configuration /sync_rules/basic: basic rules must be an array")
    );
}

#[test]
fn star_and_lists_combine_as_documented() {
    let c = |v: Value| ConnectorConfig::from_json(&v).unwrap();
    let all = c(json!({}));
    assert!(all.selects_everything());
    let some_pages = c(json!({"pages": "Roadmap, Team Wiki", "databases": "*"}));
    assert!(!some_pages.selects_everything());
    assert!(some_pages.databases.is_all());
    assert_eq!(some_pages.pages.titles(), ["Roadmap", "Team Wiki"]);
    let star_wins = c(json!({"pages": ["Roadmap", "*"], "databases": ["Tasks"]}));
    assert!(star_wins.pages.is_all());
    assert_eq!(star_wins.databases, TitleSelection::Titles(vec!["Tasks".into()]));

    // Title check: one search per configured title, exact case-insensitive match, pages without title as "".
    let found = HashMap::from([
        ("Roadmap".to_string(), vec!["roadmap".to_string(), "Roadmap 2025".into()]),
        ("Team Wiki".to_string(), vec!["".to_string(), "Team Wiki (old)".into()]),
    ]);
    assert_eq!(missing_titles(some_pages.pages.titles(), &found), vec!["Team Wiki".to_string()]);
}

#[test]
fn settings_errors_name_the_variable() {
    let mut env: HashMap<String, String> = HashMap::from([
        ("WORK_QUEUE_URL".into(), "http://localhost:4566/000000000000/notion-es-work".into()),
        ("FINALIZE_QUEUE_URL".into(), "http://localhost:4566/000000000000/notion-es-finalize".into()),
    ]);
    assert!(Settings::from_map(&env).is_ok());
    env.insert("NOTION_RATE".into(), "0".into());
    let e = Settings::from_map(&env).unwrap_err();
    assert!(matches!(e, ConfigError::Env { name: "NOTION_RATE", .. }), "{e}");
    env.insert("NOTION_RATE".into(), "10".into());
    env.insert("CONNECTOR_CONFIG".into(), r#"{"concurrent_downloads": 500}"#.into());
    assert_eq!(
        Settings::from_map(&env).unwrap_err().to_string(),
        "environment variable CONNECTOR_CONFIG: configuration /concurrent_downloads: 500 is out of range (1..=100)"
    );
}

#[test]
fn secrets_debug_never_shows_values() {
    let s = Secrets::from_json(r#"{"notion_token": "ntn_very_secret", "search_api_key": "c2VjcmV0"}"#).unwrap();
    let shown = format!("{s:?}");
    assert!(!shown.contains("ntn_very_secret") && !shown.contains("c2VjcmV0"), "{shown}");
    assert_eq!(s.notion_token.expose(), "ntn_very_secret");
    let e = Secrets::from_json(r#"{"notion_token": "ntn_very_secret", "api_key": 12345678}"#).unwrap_err();
    assert_eq!(e.to_string(), "secret key `api_key` must be a string, found a number");
}

// ---- fuzzed decoders ------------------------------------------------------------------------------------------

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            ".*",
            "[a-z_*<>(){}\\[\\]\\\\.|?+^$ -]{0,12}",
            Just("page".to_string()),
            Just("database".to_string()),
            Just("include".to_string()),
            Just("exclude".to_string()),
            Just("regex".to_string()),
            Just(">".to_string()),
            Just("*".to_string()),
            Just("2025-09-03".to_string()),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("searches".to_string()),
            Just("database_query_filters".to_string()),
            Just("query".to_string()),
            Just("filter".to_string()),
            Just("value".to_string()),
            Just("property".to_string()),
            Just("database_id".to_string()),
            Just("policy".to_string()),
            Just("field".to_string()),
            Just("rule".to_string()),
            Just("id".to_string()),
            Just("order".to_string()),
            Just("basic".to_string()),
            Just("advanced".to_string()),
            Just("pages".to_string()),
            Just("databases".to_string()),
            Just("sync_rules".to_string()),
            Just("concurrent_downloads".to_string()),
            Just("notion_token".to_string()),
            "[a-z~/]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic(v in arb_json(), d in arb_json()) {
        let _ = ConnectorConfig::from_json(&v);
        let _ = ConnectorConfig::from_json(&json!({"sync_rules": {"basic": v.clone(), "advanced": v.clone()}}));
        let _ = ConnectorConfig::from_json(&json!({"pages": v.clone(), "databases": v.clone()}));
        let _ = Secrets::from_value(&v);
        if let Ok(rules) = AdvancedRules::from_json(&v) {
            let _ = validate_against_workspace(&rules, &HashSet::new(), Some(&[]));
            let round_trip = rules.to_json();
            prop_assert_eq!(AdvancedRules::from_json(&round_trip), Ok(rules));
        }
        if let Ok(rules) = BasicRules::from_json(&v) {
            if let Value::Object(doc) = d {
                let _ = rules.decide(&doc);
            }
        }
    }

    #[test]
    fn text_decoders_never_panic(s in "\\PC{0,64}") {
        let _ = ConnectorConfig::from_json_str(&s);
        let _ = AdvancedRules::from_json_str(&s);
        let _ = Secrets::from_json(&s);
    }

    #[test]
    fn basic_rule_values_never_panic(value in "\\PC{0,24}", op in prop::sample::select(vec![
        "equals", "contains", "starts_with", "ends_with", "regex", "<", ">",
    ]), field_value in arb_json()) {
        let rules = BasicRules::from_json(&json!([{"policy": "include", "field": "f", "rule": op, "value": value}]));
        if let Ok(rules) = rules {
            let _ = rules.decide(&doc(json!({"f": field_value})));
        }
    }
}

#[test]
fn documented_example_parses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONFIGURATION.md");
    let text = std::fs::read_to_string(path).expect("docs/CONFIGURATION.md");
    let start = text.find("### A complete example").expect("example heading");
    let block = &text[start..];
    let open = block.find("```json\n").expect("json block") + "```json\n".len();
    let close = block[open..].find("```").expect("block end");
    let config = ConnectorConfig::from_json_str(&block[open..open + close]).unwrap();
    assert_eq!(config.pages.titles(), ["Engineering Wiki".to_string(), "Roadmap".to_string()]);
    assert_eq!(config.sync_rules.basic.rules().len(), 3);
    assert!(config.index_comments);
}

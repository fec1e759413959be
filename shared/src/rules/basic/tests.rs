//! Unit tests of the basic rules: parsing, validation as a set, matching.

use super::*;
use serde_json::json;

fn rules(v: Value) -> BasicRules {
    BasicRules::from_json(&v).unwrap()
}

fn doc(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn err(v: Value) -> String {
    BasicRules::from_json(&v).unwrap_err().to_string()
}

#[test]
fn empty_rules_include_everything() {
    let r = rules(json!([]));
    assert!(r.includes(&doc(json!({"object": "page"}))));
    assert!(rules(Value::Null).is_empty());
}

#[test]
fn first_match_wins_and_default_is_include() {
    let r = rules(json!([
        {"policy": "include", "field": "type", "rule": "equals", "value": "heading_1"},
        {"policy": "exclude", "field": "object", "rule": "equals", "value": "block"},
    ]));
    assert!(r.includes(&doc(json!({"object": "block", "type": "heading_1"}))));
    assert!(!r.includes(&doc(json!({"object": "block", "type": "paragraph"}))));
    assert!(r.includes(&doc(json!({"object": "page"}))));
    assert_eq!(r.decide(&doc(json!({"object": "page"}))).rule, None);
    assert_eq!(r.decide(&doc(json!({"object": "block", "type": "x"}))).rule, Some(1));
}

#[test]
fn operators() {
    let d = doc(json!({"title": "Quarterly report", "n": 42, "flag": true, "when": "2024-03-01T00:00:00.000Z"}));
    let m = |field: &str, op: &str, value: Value| {
        rules(json!([{"policy": "exclude", "field": field, "rule": op, "value": value}])).decide(&d).rule == Some(0)
    };
    assert!(m("title", "equals", json!("Quarterly report")));
    assert!(!m("title", "equals", json!("quarterly report")));
    assert!(m("title", "contains", json!("report")));
    assert!(m("title", "starts_with", json!("Quarterly")));
    assert!(m("title", "ends_with", json!("report")));
    assert!(m("title", "regex", json!("Q.*rt")));
    assert!(!m("title", "regex", json!("report")), "regex is anchored at the start, like re.match");
    assert!(m("title", "regex", json!(".*report$")));
    assert!(m("n", ">", json!("9")), "numeric, not text, comparison");
    assert!(m("n", "greater_than", json!(41.5)));
    assert!(m("n", "<", json!("100")));
    assert!(m("n", "less_than", json!(100)));
    assert!(m("n", "equals", json!("42.0")));
    assert!(m("flag", "equals", json!("True")));
    assert!(m("flag", "equals", json!(true)));
    assert!(m("when", ">", json!("2024-01-31")));
    assert!(m("when", "<", json!("2025")));
    assert!(!m("missing", "contains", json!("a")));
    assert!(m("title", "<", json!("R")), "text order when not numbers");
}

#[test]
fn numeric_strings_compare_numerically() {
    let r = rules(json!([{"policy": "exclude", "field": "size", "rule": ">", "value": "100"}]));
    assert!(!r.includes(&doc(json!({"size": "250"}))));
    assert!(r.includes(&doc(json!({"size": "99"}))), "99 < 100 numerically although \"99\" > \"100\" as text");
}

#[test]
fn include_then_exclude_everything_else() {
    let r = rules(json!([
        {"policy": "include", "field": "object", "rule": "equals", "value": "page"},
        {"policy": "exclude", "field": "object", "rule": "regex", "value": ".*"},
    ]));
    assert!(r.includes(&doc(json!({"object": "page"}))));
    assert!(!r.includes(&doc(json!({"object": "block"}))));
    // Elastic's default rule as the last rule.
    let r = rules(json!([
        {"id": "1", "policy": "exclude", "field": "type", "rule": "equals", "value": "divider", "order": 0},
        {"id": "DEFAULT", "policy": "include", "field": "_", "rule": "regex", "value": ".*", "order": 1},
    ]));
    assert!(!r.includes(&doc(json!({"type": "divider"}))));
    assert_eq!(r.decide(&doc(json!({"type": "paragraph"}))).rule, Some(1));
}

#[test]
fn order_key_sorts() {
    let r = rules(json!([
        {"policy": "include", "field": "object", "rule": "equals", "value": "block", "order": 2},
        {"policy": "exclude", "field": "type", "rule": "equals", "value": "divider", "order": 1},
    ]));
    assert!(!r.includes(&doc(json!({"object": "block", "type": "divider"}))));
    assert!(err(json!([
        {"policy": "include", "field": "a", "rule": "equals", "value": "b", "order": 1},
        {"policy": "include", "field": "a", "rule": "equals", "value": "c"},
    ]))
    .starts_with("/1: has no `order`"));
}

#[test]
fn validation_messages() {
    let cases = [
        (json!({}), "/: basic rules must be an array of rules, found an object"),
        (json!([1]), "/0: a rule must be an object, found a number"),
        (json!([{"policy": "keep", "field": "a", "rule": "equals", "value": "b"}]), "/0/policy: \"keep\" is not one of"),
        (json!([{"policy": "include", "field": "a", "rule": "like", "value": "b"}]), "/0/rule: \"like\" is not a known rule"),
        (json!([{"policy": "include", "field": "a", "rule": "regex", "value": "(unclosed"}]), "/0/value: invalid regex \"(unclosed\""),
        (json!([{"policy": "include", "field": "", "rule": "equals", "value": "b"}]), "/0/field: must not be empty"),
        (json!([{"policy": "include", "field": "a", "rule": "equals", "value": ""}]), "/0/value: must not be empty"),
        (json!([{"policy": "include", "field": "a", "rule": "equals"}]), "/0: \"value\" is a required property"),
        (json!([{"policy": "include", "field": 3, "rule": "equals", "value": "b"}]), "/0/field: must be a string, found a number"),
        (json!([{"policy": "include", "field": "a", "rule": "equals", "value": "b", "colour": "red"}]), "/0/colour: unknown key \"colour\""),
        (json!([{"policy": "exclude", "field": "a", "rule": "regex", "value": ".*"}]), "/0: rule 0 excludes every document"),
        (json!([
            {"policy": "include", "field": "a", "rule": "regex", "value": "(.*)"},
            {"policy": "exclude", "field": "b", "rule": "equals", "value": "c"},
        ]), "/0: rule 0 matches every value of \"a\" (regex \"(.*)\"); a match-everything rule is only allowed as the last rule"),
        (json!([
            {"id": "x", "policy": "include", "field": "a", "rule": "equals", "value": "c"},
            {"id": "y", "policy": "exclude", "field": "a", "rule": "equals", "value": "c"},
        ]), "/1: rule 1 (id \"y\") can never apply: rule 0 (id \"x\") has the same field, rule and value"),
    ];
    for (input, expected) in cases {
        let e = err(input.clone());
        assert!(e.starts_with(expected), "{input}: {e}");
    }
}

//! Unit tests of the advanced rules: schema, parsing, validation against the workspace.

use super::*;

fn err(v: Value) -> String {
    AdvancedRules::from_json(&v).unwrap_err().to_string()
}

#[test]
fn schema_compiles() {
    assert!(schema_validator().is_ok());
}

#[test]
fn parses_and_round_trips() {
    let v = json!({
        "searches": [{"query": "Demo", "filter": {"value": "page"}}, {"query": ""}],
        "database_query_filters": [{"database_id": "abc", "filter": {"property": "Done", "checkbox": {"equals": true}}}]
    });
    let rules = AdvancedRules::from_json(&v).unwrap();
    assert_eq!(rules.searches[0].filter, Some(SearchObject::Page));
    assert_eq!(rules.searches[1].filter, None);
    assert_eq!(rules.to_json(), v);
}

#[test]
fn schema_errors_point_at_the_path() {
    assert_eq!(
        err(json!({"searches": [{"query": "x", "filter": {"value": "block"}}]})),
        r#"/searches/0/filter/value: "block" is not one of "page" or "database""#
    );
    assert!(err(json!({"searches": [{"filter": {"value": "page"}}]}))
        .starts_with(r#"/searches/0: "query" is a required property"#));
    assert!(err(json!({"database_query_filters": [{"database_id": ""}]}))
        .starts_with(r#"/database_query_filters/0/database_id: "" is shorter than 1 character"#));
    assert!(err(json!({"search": []})).contains("Additional properties are not allowed ('search' was unexpected)"));
    assert!(err(json!({})).starts_with("/: {} has less than 1 property"), "{}", err(json!({})));
    assert!(err(json!({"searches": {"query": "x"}})).starts_with(r#"/searches: {"query":"x"} is not of type "array""#));
    assert!(err(json!({"searches": [{"query": 3}]})).starts_with(r#"/searches/0/query: 3 is not of type "string""#));
}

#[test]
fn semantic_errors() {
    assert!(err(json!({"searches": []})).starts_with("/: selects nothing"));
    assert_eq!(
        err(json!({"database_query_filters": [{"database_id": " - "}]})),
        r#"/database_query_filters/0/database_id: " - " is blank: give the database's id"#
    );
    assert!(
        err(json!({"searches": [{"query": "x", "sort": {}}]})).starts_with(r#"/searches/0/sort: unknown key "sort""#)
    );
    assert!(err(json!({"searches": [{"query": "x", "filter": {"value": "page", "property": "title"}}]}))
        .starts_with("/searches/0/filter/property: must be \"object\""));
}

#[test]
fn workspace_validation() {
    let rules = AdvancedRules::from_json(&json!({
        "database_query_filters": [
            {"database_id": "0D1B2A3C-4d5e-6f70-8192-a3b4c5d6e7f8"},
            {"database_id": "ffffffffffffffffffffffffffffffff"}
        ]
    }))
    .unwrap();
    let known = HashSet::from(["0d1b2a3c4d5e6f708192a3b4c5d6e7f8".to_string()]);
    assert_eq!(
        validate_against_workspace(&rules, &known, None).unwrap_err().to_string(),
        "/database_query_filters/1/database_id: invalid database id \"ffffffffffffffffffffffffffffffff\": no database \
         with this id is shared with the integration"
    );
    let known2 =
        HashSet::from(["0d1b2a3c-4d5e-6f70-8192-a3b4c5d6e7f8".into(), "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF".into()]);
    assert!(validate_against_workspace(&rules, &known2, None).is_ok());

    let searches = AdvancedRules::from_json(&json!({"searches": [
        {"query": "", "filter": {"value": "page"}},
        {"query": "demo page", "filter": {"value": "page"}},
        {"query": "Tasks", "filter": {"value": "database"}}
    ]}))
    .unwrap();
    let found = vec![vec![], vec!["The Demo Page".into()], vec!["Projects".into()]];
    assert_eq!(
        validate_searches(&searches, &found).unwrap_err().to_string(),
        "/searches/2/query: query \"Tasks\" finds no database whose title contains it"
    );
}

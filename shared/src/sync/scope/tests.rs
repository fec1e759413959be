//! Unit tests of the pure scope decisions, over a small world of nodes.

use super::*;

fn page(id: &str, title: &str, parent: Option<(&str, &str)>) -> Value {
    let parent = match parent {
        Some(("page", p)) => json!({"type": "page_id", "page_id": p}),
        Some(("block", p)) => json!({"type": "block_id", "block_id": p}),
        Some(("source", p)) => {
            json!({"type": "data_source_id", "data_source_id": p, "database_id": p.replacen("ds-", "db-", 1)})
        }
        Some(_) => unreachable!(),
        None => json!({"type": "workspace", "workspace": true}),
    };
    json!({"object": "page", "id": id, "parent": parent,
        "properties": {"Name": {"type": "title", "title": [{"plain_text": title}]}}})
}

fn database(id: &str, title: &str, parent: &str, sources: &[(&str, &str)]) -> Value {
    let sources: Vec<Value> = sources.iter().map(|(id, name)| json!({"id": id, "name": name})).collect();
    json!({"object": "database", "id": id, "title": [{"plain_text": title}],
        "parent": {"type": "page_id", "page_id": parent}, "data_sources": sources})
}

fn source(id: &str, title: &str, db: &str) -> Value {
    json!({"object": "data_source", "id": id, "title": [{"plain_text": title}],
        "parent": {"type": "database_id", "database_id": db}})
}

/// home > wiki > (block b1) > notes;  home > [Tasks db > ds-tasks > row1 > row-child];  other > [Misc db]
fn world() -> Nodes {
    let objects = [
        page("home", "Home", None),
        page("wiki", "Wiki", Some(("page", "home"))),
        json!({"object": "block", "id": "b1", "type": "toggle", "parent": {"type": "page_id", "page_id": "wiki"}}),
        page("notes", "Notes", Some(("block", "b1"))),
        database("db-tasks", "Tasks", "home", &[("ds-tasks", "Tasks")]),
        source("ds-tasks", "Tasks", "db-tasks"),
        page("row1", "Row one", Some(("source", "ds-tasks"))),
        page("row-child", "Row child", Some(("page", "row1"))),
        page("other", "Other", None),
        database("db-misc", "Misc", "other", &[("ds-misc", "Misc")]),
        source("ds-misc", "Misc", "db-misc"),
        page("misc-row", "Misc row", Some(("source", "ds-misc"))),
    ];
    let mut nodes = Nodes::new();
    for o in &objects {
        let (id, node) = Node::of_object(o).unwrap();
        nodes.insert(id, node);
    }
    nodes
}

fn titled(pages: &[&str], databases: &[&str]) -> Selection {
    let set = |t: &[&str]| (!t.is_empty()).then(|| t.iter().map(|s| normalize_title(s)).collect());
    Selection::Titles { pages: set(pages), databases: set(databases) }
}

fn ins(selection: &Selection, nodes: &Nodes) -> Vec<&'static str> {
    let all = [
        "home",
        "wiki",
        "notes",
        "db-tasks",
        "ds-tasks",
        "row1",
        "row-child",
        "other",
        "db-misc",
        "ds-misc",
        "misc-row",
    ];
    all.into_iter().filter(|id| selection.verdict(nodes, id) == Verdict::In).collect()
}

#[test]
fn nothing_is_checked_when_everything_is_selected() {
    assert!(Selection::of(&ConnectorConfig::default()).is_none());
    let config = ConnectorConfig { pages: TitleSelection::Titles(vec!["Home".into()]), ..Default::default() };
    assert!(matches!(Selection::of(&config), Some(Selection::Titles { pages: Some(_), databases: None })));
}

#[test]
fn listed_pages_bring_their_subtree_and_every_database() {
    let nodes = world();
    // Pages below the root, through a block; every database (`databases` is `*`) and what its rows hold.
    assert_eq!(
        ins(&titled(&["home"], &[]), &nodes),
        ["home", "wiki", "notes", "db-tasks", "ds-tasks", "row1", "row-child", "db-misc", "ds-misc", "misc-row"]
    );
    assert_eq!(
        ins(&titled(&[" WIKI "], &[]), &nodes),
        ["wiki", "notes", "db-tasks", "ds-tasks", "row1", "row-child", "db-misc", "ds-misc", "misc-row"]
    );
}

#[test]
fn listed_databases_with_every_page_or_with_listed_pages() {
    let nodes = world();
    // pages `*`: every page that is not a row; rows and databases only of the listed database.
    assert_eq!(
        ins(&titled(&[], &["Tasks"]), &nodes),
        ["home", "wiki", "notes", "db-tasks", "ds-tasks", "row1", "row-child", "other"]
    );
    // both listed: databases inside the listed pages too, and pages below rows in scope.
    assert_eq!(
        ins(&titled(&["Other"], &["Tasks"]), &nodes),
        ["db-tasks", "ds-tasks", "row1", "row-child", "other", "db-misc", "ds-misc", "misc-row"]
    );
    assert_eq!(ins(&titled(&["Wiki"], &["Nothing"]), &nodes), ["wiki", "notes"]);
}

#[test]
fn unknown_ancestors_and_cycles_end_the_chain() {
    let mut nodes = world();
    nodes.remove("wiki");
    assert_eq!(titled(&["home"], &[]).verdict(&nodes, "notes"), Verdict::Out, "the chain ends at the block");
    assert_eq!(titled(&["home"], &[]).verdict(&nodes, "nowhere"), Verdict::Out);
    let (a, b) = (page("a", "A", Some(("page", "b"))), page("b", "B", Some(("page", "a"))));
    let mut nodes = Nodes::new();
    for o in [a, b] {
        let (id, node) = Node::of_object(&o).unwrap();
        nodes.insert(id, node);
    }
    assert_eq!(chain(&nodes, "a").len(), 2);
    assert_eq!(titled(&["C"], &[]).verdict(&nodes, "a"), Verdict::Out);
}

#[test]
fn documents_make_the_same_nodes_as_objects() {
    let object = database("db-tasks", "Tasks", "home", &[("ds-tasks", "Task list")]);
    let doc = json!({"id": "db-tasks", "object": "database", "title": "Tasks", "parent": object["parent"],
        "data_sources": object["data_sources"]});
    assert_eq!(Node::of_document(&doc), Node::of_object(&object));
    let (_, node) = Node::of_object(&object).unwrap();
    assert_eq!(node.titles, ["Tasks", "Task list"]);
    assert_eq!(node.parent, Some(("home".to_string(), Kind::Page)));
    let (_, row) = Node::of_object(&page("r", "R", Some(("source", "ds-x")))).unwrap();
    assert_eq!(
        (row.kind, row.parent, row.database_id.as_deref()),
        (Kind::Row, Some(("ds-x".into(), Kind::DataSource)), Some("db-x"))
    );
}

fn advanced(rules: Value) -> Selection {
    Selection::Advanced(AdvancedRules::from_json(&rules).unwrap())
}

#[test]
fn advanced_rules_select_what_their_searches_return_and_nothing_below() {
    let nodes = world();
    let rules = advanced(json!({"searches": [{"query": "wiki", "filter": {"value": "page"}}]}));
    assert_eq!(ins(&rules, &nodes), ["wiki"], "no discovery below a searched page");
    assert_eq!(rules.depth(), 0);
    let rules = advanced(json!({"searches": [{"query": "task", "filter": {"value": "database"}}]}));
    assert_eq!(ins(&rules, &nodes), ["db-tasks", "ds-tasks", "row1"], "a searched source with every row");
    assert_eq!(rules.depth(), 1);
    let rules = advanced(json!({"searches": [{"query": ""}]}));
    assert_eq!(ins(&rules, &nodes).len(), 11, "an empty query finds everything");
}

#[test]
fn advanced_rows_must_match_their_source_filter() {
    let nodes = world();
    let done = json!({"property": "Done", "checkbox": {"equals": true}});
    let rules = advanced(json!({"database_query_filters": [{"database_id": "DB-TASKS", "filter": done}]}));
    assert_eq!(rules.verdict(&nodes, "row1"), Verdict::Matching(vec![done.clone()]), "by database id");
    assert_eq!(rules.verdict(&nodes, "ds-tasks"), Verdict::Out, "a rows-only source is not indexed itself");
    assert_eq!(rules.verdict(&nodes, "misc-row"), Verdict::Out);
    assert_eq!(rules.verdict(&nodes, "row-child"), Verdict::Out);
    let rules = advanced(json!({"database_query_filters": [{"database_id": "ds-tasks"}]}));
    assert_eq!(rules.verdict(&nodes, "row1"), Verdict::In, "a rule without filter takes every row");
    let other = json!({"property": "Score", "number": {"greater_than": 3}});
    let rules = advanced(json!({"database_query_filters": [
        {"database_id": "db-tasks", "filter": done}, {"database_id": "ds-tasks", "filter": other}]}));
    assert_eq!(
        rules.rows_of(&[], "ds-tasks", Some("db-tasks")),
        RowsScope::Matching(vec![json!({"or": [done, other]})])
    );
    assert_eq!(rules.rows_of(&[], "ds-misc", None), RowsScope::None);
}

#[test]
fn the_edit_window_is_and_ed_into_the_rule() {
    let since = DateTime::parse_from_rfc3339("2026-11-25T10:30:45.5Z").unwrap().with_timezone(&Utc);
    let done = json!({"property": "Done", "checkbox": {"equals": true}});
    let window = json!({"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": "2026-11-25T10:30:00Z"}});
    assert_eq!(edited_since_and(since, &done), json!({"and": [window, done]}));
}

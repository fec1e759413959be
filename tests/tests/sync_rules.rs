//! Configuration and sync rules end to end (issue 4): the eight advanced-rule examples of the Elastic
//! documentation, invalid rules, basic rules, the `pages` / `databases` title lists and comments, each run as a
//! full sync (planner → SQS → workers → index → reaper) against an emulated `small` workspace plus a fixture built
//! through the control API (pages "Demo Page" / "Demo Page 2", databases "Demo Database" and "External tasks" with a
//! `Task completed` checkbox, a page "External tasks"). Needs `make up`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use e2e::notion_emulator::WorkspaceKind;
use e2e::Stack;
use reqwest::Method;
use serde_json::{json, Map, Value};
use shared::runs::RunState;

type Docs = HashMap<String, Map<String, Value>>;
type Ids = BTreeSet<String>;

fn text(doc: &Map<String, Value>, field: &str) -> String {
    doc.get(field).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn ids<'a>(list: impl IntoIterator<Item = &'a str>) -> Ids {
    list.into_iter().map(str::to_string).collect()
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

/// The objects built on top of the generated workspace.
#[allow(dead_code)]
struct Fixture {
    demo_page: String,
    demo_page_2: String,
    demo_db: String,
    demo_ds: String,
    demo_rows: Vec<String>,
    ext_page: String,
    ext_db: String,
    ext_ds: String,
    ext_done: Vec<String>,
    ext_open: Vec<String>,
    /// Pages titled like numbers ("9", "10", "100") and one created in 2024, under "Numbers".
    numbers: HashMap<String, String>,
    old_note: String,
    /// A `to_do` block whose text contains "keepme".
    keep_todo: String,
}

async fn post(stack: &Stack, path: &str, body: Value) -> Value {
    stack.control(Method::POST, path, Some(body)).await.unwrap_or_else(|e| panic!("POST {path}: {e:#}"))
}

async fn page(stack: &Stack, parent: Option<&str>, title: &str, blocks: Value) -> Value {
    let parent = match parent {
        Some(p) => json!({"type": "page_id", "page_id": p}),
        None => json!({"type": "workspace"}),
    };
    post(stack, "pages", json!({"parent": parent, "title": title, "blocks": blocks})).await
}

async fn row(stack: &Stack, ds: &str, title: &str, props: Value, blocks: Value) -> String {
    str_of(
        &post(
            stack,
            &format!("data_sources/{ds}/rows"),
            json!({"title": title, "properties": props, "blocks": blocks}),
        )
        .await["id"],
    )
}

async fn fixture(stack: &Stack) -> Fixture {
    // The generated workspace has nothing titled like the documentation's examples.
    let before = stack.control(Method::GET, "expected", None).await.unwrap();
    for p in before["pages"].as_array().unwrap().iter().chain(before["databases"].as_array().unwrap()) {
        let t = p["title"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            !t.contains("demo") && !t.contains("external tasks"),
            "generated title {t:?} collides with the fixture"
        );
    }
    let demo2 = page(stack, None, "Demo Page 2", json!([
        {"type": "paragraph", "text": "The second demo page introduces the demo."},
        {"type": "toggle", "text": "Demo details", "children": [{"type": "paragraph", "text": "hidden demo detail"}]},
        {"type": "to_do", "text": "keepme: a demo to-do"},
    ]))
    .await;
    let keep_todo = str_of(&demo2["blocks"][2]);
    let demo_page_2 = str_of(&demo2["id"]);
    let demo_page = str_of(
        &page(
            stack,
            Some(&demo_page_2),
            "Demo Page",
            json!([
                {"type": "heading_1", "text": "Demo heading"},
                {"type": "paragraph", "text": "demo text alpha"},
                {"type": "to_do", "text": "check the demo"},
                {"type": "divider"},
            ]),
        )
        .await["id"],
    );

    let db = post(
        stack,
        "databases",
        json!({"title": "Demo Database", "properties": {"Notes": "rich_text", "Score": "number"}}),
    )
    .await;
    let (demo_db, demo_ds) = (str_of(&db["id"]), str_of(&db["data_source_id"]));
    let mut demo_rows = Vec::new();
    for (title, score) in [("Demo row A", 1), ("Demo row B", 2)] {
        demo_rows.push(
            row(
                stack,
                &demo_ds,
                title,
                json!({"Notes": "a demo row", "Score": score}),
                json!([{"type": "paragraph", "text": format!("content of {title}")}]),
            )
            .await,
        );
    }

    let ext_page = str_of(
        &page(stack, None, "External tasks", json!([{"type": "paragraph", "text": "Tasks shared with partners."}]))
            .await["id"],
    );
    let db = post(
        stack,
        "databases",
        json!({"title": "External tasks", "properties": {"Task completed": "checkbox", "Owner notes": "rich_text"}}),
    )
    .await;
    let (ext_db, ext_ds) = (str_of(&db["id"]), str_of(&db["data_source_id"]));
    let (mut ext_done, mut ext_open) = (Vec::new(), Vec::new());
    for (title, done) in [
        ("Ship connector", true),
        ("Fix flaky test", false),
        ("Write docs", true),
        ("Plan sprint", false),
        ("Review PR", true),
    ] {
        let blocks = json!([{"type": "paragraph", "text": format!("notes on {title}")}, {"type": "bulleted_list_item", "text": "step one"}]);
        let id = row(stack, &ext_ds, title, json!({"Task completed": done, "Owner notes": "partner"}), blocks).await;
        if done {
            ext_done.push(id)
        } else {
            ext_open.push(id)
        }
    }

    let numbers_page =
        str_of(&page(stack, None, "Numbers", json!([{"type": "paragraph", "text": "numbered pages"}])).await["id"]);
    let mut numbers = HashMap::new();
    for n in ["9", "10", "100"] {
        numbers.insert(
            n.to_string(),
            str_of(
                &page(stack, Some(&numbers_page), n, json!([{"type": "paragraph", "text": format!("page {n}")}])).await
                    ["id"],
            ),
        );
    }
    let old = post(
        stack,
        "pages",
        json!({"parent": {"page_id": numbers_page}, "title": "Old note", "created_time": "2024-01-01T10:00:00Z",
        "blocks": [{"type": "paragraph", "text": "written long ago"}]}),
    )
    .await;
    Fixture {
        demo_page,
        demo_page_2,
        demo_db,
        demo_ds,
        demo_rows,
        ext_page,
        ext_db,
        ext_ds,
        ext_done,
        ext_open,
        numbers,
        old_note: str_of(&old["id"]),
        keep_todo,
    }
}

/// The emulator's account of the workspace (after the fixture): blocks per page, who lists each block.
struct World {
    expected: Value,
    blocks: HashMap<String, Vec<(String, String)>>,
    owners: HashMap<String, HashSet<String>>,
}

impl World {
    async fn load(stack: &Stack) -> World {
        let expected = stack.control(Method::GET, "expected", None).await.unwrap();
        let mut blocks: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut owners: HashMap<String, HashSet<String>> = HashMap::new();
        for p in expected["pages"].as_array().unwrap() {
            let pid = str_of(&p["id"]);
            for b in p["blocks"].as_array().unwrap() {
                let (bid, kind) = (str_of(&b["id"]), str_of(&b["type"]));
                owners.entry(bid.clone()).or_default().insert(pid.clone());
                blocks.entry(pid.clone()).or_default().push((bid, kind));
            }
        }
        World { expected, blocks, owners }
    }

    fn pages(&self, rows: Option<bool>) -> Ids {
        self.expected["pages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| rows.is_none_or(|r| p["is_row"].as_bool() == Some(r)))
            .map(|p| str_of(&p["id"]))
            .collect()
    }

    fn databases(&self) -> Ids {
        self.expected["databases"].as_array().unwrap().iter().map(|d| str_of(&d["id"])).collect()
    }

    fn sources(&self) -> Ids {
        self.expected["databases"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| d["data_sources"].as_array().unwrap().iter().map(|s| str_of(&s["id"])))
            .collect()
    }

    fn people(&self) -> Ids {
        self.expected["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["type"] == "person")
            .map(|u| str_of(&u["id"]))
            .collect()
    }
}

/// What a run must have indexed.
#[derive(Default, Debug)]
struct Want {
    pages: Ids,
    databases: Ids,
    sources: Ids,
    users: Ids,
}

fn of_kind(docs: &Docs, kind: &str) -> Ids {
    docs.iter().filter(|(_, d)| text(d, "object") == kind).map(|(id, _)| id.clone()).collect()
}

/// The index holds exactly `want`'s pages, databases, data sources and users, every block of those pages (a synced
/// copy listed under several pages aside) and no block of any other page.
fn assert_indexed(label: &str, world: &World, docs: &Docs, want: &Want) {
    assert_eq!(of_kind(docs, "page"), want.pages, "{label}: pages and rows");
    assert_eq!(of_kind(docs, "database"), want.databases, "{label}: databases");
    assert_eq!(of_kind(docs, "data_source"), want.sources, "{label}: data sources");
    assert_eq!(of_kind(docs, "user"), want.users, "{label}: users");
    let mut checked = 0;
    for page in &want.pages {
        for (bid, kind) in world.blocks.get(page).map(Vec::as_slice).unwrap_or(&[]) {
            if matches!(kind.as_str(), "child_page" | "child_database") || world.owners[bid].len() > 1 {
                continue;
            }
            let doc =
                docs.get(bid).unwrap_or_else(|| panic!("{label}: block {bid} ({kind}) of page {page} not indexed"));
            assert_eq!(text(doc, "object"), "block");
            assert_eq!(text(doc, "page_id"), *page, "{label}: page_id of block {bid}");
            checked += 1;
        }
    }
    for (id, doc) in docs.iter().filter(|(_, d)| text(d, "object") == "block") {
        assert!(
            want.pages.contains(&text(doc, "page_id")),
            "{label}: block {id} of unselected page {}",
            text(doc, "page_id")
        );
    }
    let others: Vec<&String> = docs
        .iter()
        .filter(|(_, d)| !matches!(text(d, "object").as_str(), "page" | "database" | "data_source" | "user" | "block"))
        .map(|(id, _)| id)
        .collect();
    assert!(others.is_empty(), "{label}: unexpected documents {others:?}");
    println!(
        "{label}: {} pages, {} databases, {} data sources, {} users, {checked} blocks checked, {} documents",
        want.pages.len(),
        want.databases.len(),
        want.sources.len(),
        want.users.len(),
        docs.len()
    );
}

fn config(value: Value) -> String {
    value.to_string()
}

/// A small workspace with the fixture, synced once with `connector_config` (set after the fixture exists, since
/// rules name fixture ids). Returns the run's state.
async fn fixture_stack() -> (Stack, Fixture, World) {
    let stack = Stack::start(WorkspaceKind::Small, &[]).await.expect("stack (is `make up` running?)");
    let fx = fixture(&stack).await;
    let world = World::load(&stack).await;
    (stack, fx, world)
}

async fn sync_ok(stack: &Stack, label: &str) -> shared::runs::RunRecord {
    let started = Instant::now();
    let run = stack.sync("full").await.unwrap_or_else(|e| panic!("{label}: sync failed: {e:#}"));
    assert_eq!(run.state, RunState::Completed, "{label}: {run:?}");
    println!(
        "{label}: run {} completed in {:.1}s, {} tasks, {} indexed, {} deleted, {} API calls",
        run.id,
        started.elapsed().as_secs_f64(),
        run.planned,
        run.counts.indexed,
        run.counts.deleted,
        run.counts.api_calls
    );
    run
}

/// Runs one advanced-rule example (`rules` with `{db}` / `{db1}` replaced) and checks the indexed set.
async fn advanced_example(
    n: u32,
    rules: &str,
    db: impl Fn(&Fixture) -> String,
    want: impl Fn(&Fixture, &World) -> Want,
) {
    let (mut stack, fx, world) = fixture_stack().await;
    let rules: Value = serde_json::from_str(
        &rules
            .replace("\"database_id\":\"database_id\"", &format!("\"database_id\":\"{}\"", db(&fx)))
            .replace("\"database_id\":\"notion_database_id1\"", &format!("\"database_id\":\"{}\"", db(&fx))),
    )
    .unwrap();
    let cfg = config(json!({"sync_rules": {"advanced": rules}}));
    stack.reconfigure(&[("CONNECTOR_CONFIG", &cfg)]).await.unwrap();
    sync_ok(&stack, &format!("example {n}")).await;
    let docs = stack.documents().await.unwrap();
    assert_indexed(&format!("example {n}"), &world, &docs, &want(&fx, &world));
    stack.cleanup().await;
}

/// Removes whitespace so the examples can be pasted as the documentation shows them.
fn compact(s: &str) -> String {
    let v: Value = serde_json::from_str(s).unwrap();
    v.to_string()
}

fn none(_: &Fixture) -> String {
    String::new()
}

// The eight examples, verbatim from the seed page (`database_id` / `notion_database_id1` replaced by real ids).

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn example_1_pages_titled_demo_page() {
    let rules = compact(
        r#"{
    "searches": [
      {
        "filter": {
          "value": "page"
        },
        "query": "Demo Page"
      }
    ]
  }"#,
    );
    advanced_example(1, &rules, none, |fx, _| Want {
        pages: ids([fx.demo_page.as_str(), fx.demo_page_2.as_str()]),
        ..Want::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn example_2_databases_titled_demo_database() {
    let rules = compact(
        r#"{
  "searches": [
    {
      "filter": {
        "value": "database"
      },
      "query": "Demo Database"
    }
  ]
}"#,
    );
    advanced_example(2, &rules, none, |fx, _| Want {
        pages: fx.demo_rows.iter().cloned().collect(),
        databases: ids([fx.demo_db.as_str()]),
        sources: ids([fx.demo_ds.as_str()]),
        ..Want::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn example_3_demo_databases_and_demo_pages() {
    let rules = compact(
        r#"{
  "searches": [
    {
      "filter": {
        "value": "database"
      },
      "query": "Demo Database"
    },
    {
      "filter": {
        "value": "page"
      },
      "query": "Demo Page"
    }
  ]
}"#,
    );
    advanced_example(3, &rules, none, |fx, _| Want {
        pages: fx.demo_rows.iter().cloned().chain([fx.demo_page.clone(), fx.demo_page_2.clone()]).collect(),
        databases: ids([fx.demo_db.as_str()]),
        sources: ids([fx.demo_ds.as_str()]),
        ..Want::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn example_4_all_pages() {
    let rules = compact(
        r#"{
  "searches": [
    {
      "filter": {
        "value": "page"
      },
      "query": ""
    }
  ]
}"#,
    );
    // Notion's page search returns database rows too (as the Elastic connector indexes them).
    advanced_example(4, &rules, none, |_, world| Want { pages: world.pages(None), ..Want::default() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn example_5_all_pages_and_databases() {
    let rules = compact(
        r#"{
  "searches":[
    {
      "query":""
    }
  ]
}"#,
    );
    advanced_example(5, &rules, none, |_, world| Want {
        pages: world.pages(None),
        databases: world.databases(),
        sources: world.sources(),
        ..Want::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn example_6_rows_with_task_completed() {
    let rules = compact(
        r#"{
  "database_query_filters": [
    {
      "filter": {
          "property": "Task completed",
          "checkbox": {
            "equals": true
          }
      },
      "database_id": "database_id"
    }
  ]
}"#,
    );
    // Only the rows (as the reference yields them), with their content (unlike the reference).
    advanced_example(
        6,
        &rules,
        |fx| fx.ext_db.clone(),
        |fx, _| Want { pages: fx.ext_done.iter().cloned().collect(), ..Want::default() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn example_7_all_rows_of_a_database() {
    let rules = compact(
        r#"{
  "database_query_filters": [
    {
      "database_id": "database_id"
    }
  ]
}"#,
    );
    advanced_example(
        7,
        &rules,
        |fx| fx.ext_db.clone(),
        |fx, _| Want { pages: fx.ext_done.iter().chain(&fx.ext_open).cloned().collect(), ..Want::default() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn example_8_searches_and_database_query_filters() {
    let rules = compact(
        r#"{
  "searches":[
    {
      "query":"External tasks",
      "filter":{
        "value":"database"
      }
    },
    {
      "query":"External tasks",
      "filter":{
        "value":"page"
      }
    }
  ],
  "database_query_filters":[
    {
      "database_id":"notion_database_id1",
      "filter":{
        "property":"Task completed",
        "checkbox":{
          "equals":true
        }
      }
    }
  ]
}"#,
    );
    // The union of what each rule selects: the database search brings every row, the filter's rows are among them.
    advanced_example(
        8,
        &rules,
        |fx| fx.ext_db.clone(),
        |fx, _| Want {
            pages: fx.ext_done.iter().chain(&fx.ext_open).cloned().chain([fx.ext_page.clone()]).collect(),
            databases: ids([fx.ext_db.as_str()]),
            sources: ids([fx.ext_ds.as_str()]),
            ..Want::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_ids_work_without_dashes_and_on_the_data_source_id() {
    let (mut stack, fx, world) = fixture_stack().await;
    let cfg = config(json!({"sync_rules": {"advanced": {"database_query_filters": [
        {"database_id": fx.demo_db.replace('-', "").to_uppercase()},
        {"database_id": fx.ext_ds, "filter": {"property": "Task completed", "checkbox": {"equals": false}}}
    ]}}}));
    stack.reconfigure(&[("CONNECTOR_CONFIG", &cfg)]).await.unwrap();
    sync_ok(&stack, "dashless ids").await;
    let docs = stack.documents().await.unwrap();
    let want = Want { pages: fx.demo_rows.iter().chain(&fx.ext_open).cloned().collect(), ..Want::default() };
    assert_indexed("dashless ids", &world, &docs, &want);
    stack.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Invalid rules: rejected with the path, before anything runs.

fn settings_error(connector_config: &str) -> String {
    let vars: HashMap<String, String> = [
        ("WORK_QUEUE_URL", "http://127.0.0.1:4566/000000000000/q"),
        ("FINALIZE_QUEUE_URL", "http://127.0.0.1:4566/000000000000/f"),
        ("CONNECTOR_CONFIG", connector_config),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    match shared::config::Settings::from_map(&vars) {
        Ok(_) => panic!("accepted: {connector_config}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_advanced_rules_are_rejected_naming_the_path() {
    let cases: Vec<(Value, &str)> = vec![
        // unknown keys: at the top of the rules, inside an item, inside a search filter
        (
            json!({"search": [{"query": "x"}]}),
            "/sync_rules/advanced: Additional properties are not allowed ('search' was unexpected)",
        ),
        (
            json!({"searches": [{"query": "x", "sort": {"direction": "ascending"}}]}),
            "/sync_rules/advanced/searches/0/sort: unknown key \"sort\"",
        ),
        (
            json!({"database_query_filters": [{"database_id": "abc", "filters": {}}]}),
            "/sync_rules/advanced/database_query_filters/0/filters: unknown key \"filters\"",
        ),
        // missing query
        (
            json!({"searches": [{"query": "ok"}, {"filter": {"value": "page"}}]}),
            "/sync_rules/advanced/searches/1: \"query\" is a required property",
        ),
        // bad filter.value
        (
            json!({"searches": [{"query": "x", "filter": {"value": "block"}}]}),
            "/sync_rules/advanced/searches/0/filter/value: \"block\" is not one of \"page\" or \"database\"",
        ),
        (
            json!({"searches": [{"query": "x", "filter": {}}]}),
            "/sync_rules/advanced/searches/0/filter: \"value\" is a required property",
        ),
        // empty database_id
        (
            json!({"database_query_filters": [{"database_id": ""}]}),
            "/sync_rules/advanced/database_query_filters/0/database_id: \"\" is shorter than 1 character",
        ),
        (
            json!({"database_query_filters": [{"database_id": " - "}]}),
            "/sync_rules/advanced/database_query_filters/0/database_id: \" - \" is blank",
        ),
        (
            json!({"database_query_filters": [{"filter": {}}]}),
            "/sync_rules/advanced/database_query_filters/0: \"database_id\" is a required property",
        ),
        // wrong JSON types
        (
            json!({"searches": {"query": "x"}}),
            "/sync_rules/advanced/searches: {\"query\":\"x\"} is not of type \"array\"",
        ),
        (json!({"searches": [{"query": 3}]}), "/sync_rules/advanced/searches/0/query: 3 is not of type \"string\""),
        (
            json!({"searches": ["Demo Page"]}),
            "/sync_rules/advanced/searches/0: \"Demo Page\" is not of type \"object\"",
        ),
        (
            json!({"database_query_filters": [{"database_id": 42}]}),
            "/sync_rules/advanced/database_query_filters/0/database_id: 42 is not of type \"string\"",
        ),
        (
            json!({"database_query_filters": [{"database_id": "abc", "filter": "Task completed"}]}),
            "/sync_rules/advanced/database_query_filters/0/filter: \"Task completed\" is not of type \"object\"",
        ),
        (
            json!({"database_query_filters": [{"database_id": "abc", "filter": {"property": "Done", "checkbox": true}}]}),
            "/sync_rules/advanced/database_query_filters/0/filter/checkbox: true is not of types \"array\", \"object\"",
        ),
        (json!([{"query": "x"}]), "/sync_rules/advanced"),
        // selects nothing
        (json!({"searches": []}), "/sync_rules/advanced: selects nothing"),
    ];
    for (rules, want) in cases {
        let err = settings_error(&config(json!({"sync_rules": {"advanced": rules}})));
        println!("{rules} → {err}");
        assert!(err.starts_with("environment variable CONNECTOR_CONFIG: configuration "), "{err}");
        assert!(err.contains(want), "rules {rules}:\n  got  {err}\n  want {want}");
    }
}

#[test]
fn invalid_basic_rules_and_lists_are_rejected_naming_the_path() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"sync_rules": {"basic": [{"policy": "exclude", "field": "type", "rule": "like", "value": "x"}]}}),
            "/sync_rules/basic/0/rule",
        ),
        (
            json!({"sync_rules": {"basic": [{"policy": "drop", "field": "type", "rule": "equals", "value": "x"}]}}),
            "/sync_rules/basic/0/policy",
        ),
        (
            json!({"sync_rules": {"basic": [{"policy": "exclude", "field": "title", "rule": "regex", "value": "("}]}}),
            "/sync_rules/basic/0/value",
        ),
        // order: excluding everything first would exclude every document
        (
            json!({"sync_rules": {"basic": [
            {"policy": "exclude", "field": "object", "rule": "regex", "value": ".*"},
            {"policy": "include", "field": "title", "rule": "regex", "value": "Demo Page"}]}}),
            "/sync_rules/basic/0",
        ),
        (
            json!({"sync_rules": {"basic": [{"policy": "exclude", "field": "type", "rule": "equals", "value": "to_do", "colour": "red"}]}}),
            "/sync_rules/basic/0/colour",
        ),
        (json!({"pages": " , "}), "/pages"),
        (json!({"databases": 3}), "/databases"),
        (json!({"sync_rules": {"advance": {}}}), "/sync_rules/advance"),
    ];
    for (cfg, want) in cases {
        let err = settings_error(&config(cfg.clone()));
        println!("{cfg} → {err}");
        assert!(err.contains(want), "{cfg}:\n  got  {err}\n  want {want}");
    }
}

/// What a failed planning left behind: the run failed with `reason`, nothing was queued.
async fn assert_planning_failed(stack: &Stack, err: anyhow::Error, reason: &[&str]) {
    let runs = stack.ctx.runs.recent(1).await.unwrap();
    let run = &runs[0];
    assert_eq!(run.state, RunState::Failed, "{run:?}");
    let why = run.abort_reason.clone().unwrap_or_default();
    for r in reason {
        assert!(format!("{err:#}").contains(r), "error {err:#} should name {r}");
        assert!(why.contains(r), "abort reason {why:?} should name {r}");
    }
    assert_eq!(run.planned, 0, "no task planned: {run:?}");
    let status = stack.ctx.runs.status(run.id).await.unwrap();
    assert_eq!((status.queued, status.done, status.failed), (0, 0, 0), "no task recorded: {status:?}");
    let attrs = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.options.work_queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let waiting: u64 = attrs.attributes().map(|a| a.values().filter_map(|v| v.parse::<u64>().ok()).sum()).unwrap_or(0);
    assert_eq!(waiting, 0, "no message in the work queue");
    println!("planning failed as expected: {why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_database_fails_the_run_before_anything_is_queued_or_deleted() {
    // Started with the bad rule: nothing is indexed at all.
    let missing = "0d1b2a3c-4d5e-4f70-8192-a3b4c5d6e7f8";
    let cfg = config(json!({"sync_rules": {"advanced": {"database_query_filters": [{"database_id": missing}]}}}));
    let stack = Stack::start(WorkspaceKind::Small, &[("CONNECTOR_CONFIG", &cfg)]).await.unwrap();
    let err = stack.sync("full").await.expect_err("planning must fail");
    assert_planning_failed(&stack, err, &["database_query_filters/0/database_id", missing, "no database with this id"])
        .await;
    let content = stack.documents().await.unwrap();
    assert!(content.is_empty(), "no content document: {:?}", content.keys().take(5).collect::<Vec<_>>());
    stack.cleanup().await;

    // After a good sync: the bad rule (and a search that finds nothing) fail and delete nothing.
    let (mut stack, fx, _) = fixture_stack().await;
    sync_ok(&stack, "baseline").await;
    let before = stack.documents().await.unwrap();
    for (rules, reason) in [
        (
            json!({"searches": [{"query": "Demo Page", "filter": {"value": "page"}}], "database_query_filters": [{"database_id": missing}]}),
            vec!["database_query_filters/0/database_id", missing],
        ),
        // a page id is not a database id
        (
            json!({"database_query_filters": [{"database_id": fx.demo_page}]}),
            vec!["database_query_filters/0/database_id", fx.demo_page.as_str()],
        ),
        (
            json!({"searches": [{"query": "Demo Page", "filter": {"value": "database"}}]}),
            vec!["searches/0/query", "\"Demo Page\" finds no database"],
        ),
    ] {
        stack.reconfigure(&[("CONNECTOR_CONFIG", &config(json!({"sync_rules": {"advanced": rules}})))]).await.unwrap();
        let err = stack.sync("full").await.expect_err("planning must fail");
        assert_planning_failed(&stack, err, &reason).await;
        let after = stack.documents().await.unwrap();
        assert_eq!(
            after.keys().collect::<BTreeSet<_>>(),
            before.keys().collect::<BTreeSet<_>>(),
            "nothing deleted or added"
        );
    }
    stack.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Basic rules.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn basic_rules_apply_in_order_and_newly_excluded_documents_are_removed() {
    let (mut stack, fx, _) = fixture_stack().await;
    sync_ok(&stack, "no rules").await;
    let before = stack.documents().await.unwrap();
    assert!(before.values().filter(|d| text(d, "type") == "to_do").count() >= 2, "the workspace has to-dos");

    let rules = json!([
        // first match wins: this to-do is kept although the next rule excludes to-dos
        {"id": "keep", "policy": "include", "field": "body", "rule": "contains", "value": "keepme"},
        {"id": "no-todos", "policy": "exclude", "field": "type", "rule": "equals", "value": "to_do"},
        {"id": "no-external", "policy": "exclude", "field": "title", "rule": "ends_with", "value": "tasks"},
        {"id": "no-headings", "policy": "exclude", "field": "type", "rule": "starts_with", "value": "heading_"},
        {"id": "no-demo-rows", "policy": "exclude", "field": "title", "rule": "regex", "value": "Demo row [AB]$"},
        // ISO times compare as text
        {"id": "recent", "policy": "exclude", "field": "created_time", "rule": "<", "value": "2024-06-01"},
        // titles that do not start with a digit are kept here, so the next rule sees numbers (and "")
        {"id": "words", "policy": "include", "field": "title", "rule": "regex", "value": "[^0-9]"},
        // numeric comparison: "100" > 50, "9" and "10" are not (as text, "9" > "50" and "100" < "50")
        {"id": "small-numbers", "policy": "exclude", "field": "title", "rule": ">", "value": "50"}
    ]);
    stack.reconfigure(&[("CONNECTOR_CONFIG", &config(json!({"sync_rules": {"basic": rules}})))]).await.unwrap();
    let run = sync_ok(&stack, "basic rules").await;
    let after = stack.documents().await.unwrap();

    // The rules, decided by hand in the same order (first match wins, default include).
    let excluded = |d: &Map<String, Value>| {
        let (title, kind, created) = (text(d, "title"), text(d, "type"), d.get("created_time").and_then(Value::as_str));
        if text(d, "body").contains("keepme") {
            return false;
        }
        if kind == "to_do"
            || title.ends_with("tasks")
            || kind.starts_with("heading_")
            || title == "Demo row A"
            || title == "Demo row B"
        {
            return true;
        }
        if created.is_some_and(|c| c < "2024-06-01") {
            return true;
        }
        if title.chars().next().is_some_and(|c| !c.is_ascii_digit()) {
            return false;
        }
        match title.parse::<f64>() {
            Ok(n) => n > 50.0,
            Err(_) => title.as_str() > "50",
        }
    };
    let want: Ids = before.iter().filter(|(_, d)| !excluded(d)).map(|(id, _)| id.clone()).collect();
    let got: Ids = after.keys().cloned().collect();
    let removed: Ids = before.keys().filter(|id| !after.contains_key(*id)).cloned().collect();
    let describe = |set: Vec<&String>| -> Vec<String> {
        set.into_iter()
            .map(|id| {
                let d = &before[id];
                format!(
                    "{id} {} {} {:?} {:?}",
                    text(d, "object"),
                    text(d, "type"),
                    text(d, "title"),
                    text(d, "created_time")
                )
            })
            .collect()
    };
    let missing = describe(want.difference(&got).collect());
    let extra = describe(got.difference(&want).collect());
    assert!(
        missing.is_empty() && extra.is_empty(),
        "indexed set after the rules:\n  missing {missing:#?}\n  extra {extra:#?}"
    );
    for gone in
        [&fx.numbers["100"], &fx.old_note, &fx.ext_page, &fx.ext_db, &fx.ext_ds, &fx.demo_rows[0], &fx.demo_rows[1]]
    {
        assert!(removed.contains(gone), "{gone} should be removed");
    }
    for kept in [&fx.numbers["9"], &fx.numbers["10"], &fx.keep_todo, &fx.demo_page, &fx.demo_db] {
        assert!(got.contains(kept), "{kept} should stay");
    }
    assert!(after.values().all(|d| text(d, "type") != "to_do" || text(d, "body").contains("keepme")));
    assert_eq!(run.counts.deleted as usize, removed.len(), "the removed documents are the stale ones");
    assert!(run.counts.skipped >= removed.len() as u64, "excluded documents are counted as skipped: {:?}", run.counts);
    println!("basic rules removed {} of {} documents", removed.len(), before.len());

    // Rules lifted: the next full sync brings everything back.
    stack.reconfigure(&[]).await.unwrap();
    sync_ok(&stack, "rules lifted").await;
    let restored = stack.documents().await.unwrap();
    assert_eq!(restored.keys().collect::<BTreeSet<_>>(), before.keys().collect::<BTreeSet<_>>());
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn basic_rules_include_by_regex_then_exclude_everything() {
    let (mut stack, fx, _) = fixture_stack().await;
    let rules = json!([
        {"policy": "include", "field": "title", "rule": "regex", "value": "Demo Page"},
        {"policy": "exclude", "field": "object", "rule": "regex", "value": ".*"}
    ]);
    stack.reconfigure(&[("CONNECTOR_CONFIG", &config(json!({"sync_rules": {"basic": rules}})))]).await.unwrap();
    sync_ok(&stack, "include regex, exclude the rest").await;
    let docs = stack.documents().await.unwrap();
    assert_eq!(docs.keys().cloned().collect::<Ids>(), ids([fx.demo_page.as_str(), fx.demo_page_2.as_str()]));
    stack.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// `pages` / `databases` title lists.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_titles_fail_the_run_before_anything_is_deleted() {
    let (mut stack, _, _) = fixture_stack().await;
    sync_ok(&stack, "baseline").await;
    let before = stack.documents().await.unwrap();
    for (cfg, named, not_named) in [
        (json!({"pages": "Nope, Demo Page"}), vec!["`pages`", "\"Nope\""], vec!["\"Demo Page\""]),
        // "Demo" is only a part of titles: titles match exactly
        (
            json!({"pages": ["Demo", "demo page 2"], "databases": "Demo Database, Missing DB, *"}),
            vec!["`pages`", "\"Demo\""],
            vec!["demo page 2"],
        ),
        (
            json!({"databases": "External tasks, Missing DB, Ghost"}),
            vec!["`databases`", "\"Missing DB\"", "\"Ghost\""],
            vec!["External tasks"],
        ),
    ] {
        stack.reconfigure(&[("CONNECTOR_CONFIG", &config(cfg.clone()))]).await.unwrap();
        let err = stack.sync("full").await.expect_err("planning must fail");
        let message = format!("{err:#}");
        for n in &not_named {
            assert!(!message.contains(n), "{cfg}: {message} names {n}");
        }
        assert_planning_failed(&stack, err, &named).await;
        let after = stack.documents().await.unwrap();
        assert_eq!(
            after.keys().collect::<BTreeSet<_>>(),
            before.keys().collect::<BTreeSet<_>>(),
            "{cfg}: nothing deleted"
        );
    }
    stack.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn title_lists_combine_as_documented() {
    let (mut stack, fx, world) = fixture_stack().await;
    let people = world.people();

    // pages listed, databases "*": the listed pages with their sub-pages, every database with its rows.
    stack
        .reconfigure(&[("CONNECTOR_CONFIG", &config(json!({"pages": " demo page 2 ,", "databases": "*"})))])
        .await
        .unwrap();
    sync_ok(&stack, "pages listed").await;
    let want = Want {
        pages: world.pages(Some(true)).into_iter().chain([fx.demo_page.clone(), fx.demo_page_2.clone()]).collect(),
        databases: world.databases(),
        sources: world.sources(),
        users: people.clone(),
    };
    assert_indexed("pages listed, databases *", &world, &stack.documents().await.unwrap(), &want);

    // pages "*", databases listed: every page, the listed databases with their rows.
    stack
        .reconfigure(&[("CONNECTOR_CONFIG", &config(json!({"pages": "*", "databases": ["Demo Database"]})))])
        .await
        .unwrap();
    sync_ok(&stack, "databases listed").await;
    let want = Want {
        pages: world.pages(Some(false)).into_iter().chain(fx.demo_rows.iter().cloned()).collect(),
        databases: ids([fx.demo_db.as_str()]),
        sources: ids([fx.demo_ds.as_str()]),
        users: people.clone(),
    };
    assert_indexed("pages *, databases listed", &world, &stack.documents().await.unwrap(), &want);

    // both listed: only those (a page and a database may share a title).
    stack
        .reconfigure(&[(
            "CONNECTOR_CONFIG",
            &config(json!({"pages": "Demo Page, External tasks", "databases": "EXTERNAL TASKS"})),
        )])
        .await
        .unwrap();
    sync_ok(&stack, "both listed").await;
    let want = Want {
        pages: fx
            .ext_done
            .iter()
            .chain(&fx.ext_open)
            .cloned()
            .chain([fx.demo_page.clone(), fx.ext_page.clone()])
            .collect(),
        databases: ids([fx.ext_db.as_str()]),
        sources: ids([fx.ext_ds.as_str()]),
        users: people.clone(),
    };
    assert_indexed("both listed", &world, &stack.documents().await.unwrap(), &want);

    // both "*" again: the whole workspace.
    stack.reconfigure(&[]).await.unwrap();
    sync_ok(&stack, "everything").await;
    let want = Want { pages: world.pages(None), databases: world.databases(), sources: world.sources(), users: people };
    assert_indexed("pages *, databases *", &world, &stack.documents().await.unwrap(), &want);
    stack.cleanup().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Comments.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn comments_are_indexed_only_when_enabled() {
    let (mut stack, fx, _) = fixture_stack().await;
    let heading = stack.control(Method::GET, &format!("expected?page_id={}", fx.demo_page), None).await.unwrap()
        ["pages"][0]["blocks"][0]["id"]
        .clone();
    let heading = str_of(&heading);
    let on_page = post(
        &stack,
        "comments",
        json!({"parent": {"page_id": fx.demo_page}, "text": "Looks good to me", "at": "2025-03-04T05:06:00Z"}),
    )
    .await;
    let on_block = post(
        &stack,
        "comments",
        json!({"parent": {"block_id": heading}, "text": "Rename this heading?", "at": "2025-03-05T07:08:00Z"}),
    )
    .await;
    let on_row =
        post(&stack, "comments", json!({"parent": {"page_id": fx.ext_done[0]}, "text": "Shipped on Monday"})).await;
    let resolved = post(
        &stack,
        "comments",
        json!({"parent": {"page_id": fx.demo_page_2}, "text": "old thread", "resolved": true}),
    )
    .await;
    let world = World::load(&stack).await;
    let unresolved: HashMap<String, Value> =
        world.expected["comments"].as_array().unwrap().iter().map(|c| (str_of(&c["id"]), c.clone())).collect();

    stack.reset_api_calls().await.unwrap();
    sync_ok(&stack, "comments off").await;
    let calls_off = stack.api_calls().await.unwrap();
    let off = stack.documents().await.unwrap();
    assert!(of_kind(&off, "comment").is_empty(), "no comment without index_comments");

    stack.reconfigure(&[("CONNECTOR_CONFIG", &config(json!({"index_comments": true})))]).await.unwrap();
    stack.reset_api_calls().await.unwrap();
    let run = sync_ok(&stack, "comments on").await;
    let calls_on = stack.api_calls().await.unwrap();
    let stats = stack.control(Method::GET, "stats", None).await.unwrap();
    let on = stack.documents().await.unwrap();

    let comments = of_kind(&on, "comment");
    assert_eq!(comments, unresolved.keys().cloned().collect::<Ids>(), "every unresolved comment, no resolved one");
    assert!(!comments.contains(&str_of(&resolved["id"])));
    let user_names: HashMap<String, String> =
        world.expected["users"].as_array().unwrap().iter().map(|u| (str_of(&u["id"]), str_of(&u["name"]))).collect();
    for (made, parent, page, body, time) in [
        (&on_page, &fx.demo_page, &fx.demo_page, "Looks good to me", Some("2025-03-04T05:06:00.000Z")),
        (&on_block, &heading, &fx.demo_page, "Rename this heading?", Some("2025-03-05T07:08:00.000Z")),
        (&on_row, &fx.ext_done[0], &fx.ext_done[0], "Shipped on Monday", None),
    ] {
        let doc = &on[&str_of(&made["id"])];
        assert_eq!(text(doc, "body"), body);
        assert_eq!(text(doc, "parent_id"), *parent, "parent of {body:?}");
        assert_eq!(text(doc, "page_id"), *page, "page of {body:?}");
        assert_eq!(text(doc, "author"), user_names[&str_of(&made["author"])], "author of {body:?}");
        assert_eq!(text(doc, "author"), str_of(&made["author_name"]));
        assert_eq!(text(doc, "created_time"), str_of(&made["created_time"]));
        if let Some(t) = time {
            assert_eq!(text(doc, "created_time"), t);
        }
    }
    for (id, c) in &unresolved {
        let doc = &on[id];
        assert_eq!(text(doc, "body"), str_of(&c["text"]));
        assert_eq!(text(doc, "parent_id"), str_of(&c["parent_id"]));
        assert!(!text(doc, "author").is_empty() && !text(doc, "created_time").is_empty());
    }
    // The other documents are the same either way.
    let non_comments: Ids =
        on.iter().filter(|(_, d)| text(d, "object") != "comment").map(|(id, _)| id.clone()).collect();
    assert_eq!(non_comments, off.keys().cloned().collect::<Ids>());

    // One comments call per page, row and block indexed.
    let extra = calls_on - calls_off;
    let pages_and_blocks =
        on.values().filter(|d| matches!(text(d, "object").as_str(), "page" | "block")).count() as u64;
    let comment_calls = stats["by_endpoint"]["GET /v1/comments"].as_u64().unwrap_or_default();
    println!(
        "comments: {} indexed; API calls {calls_off} without, {calls_on} with (+{extra}, {:.0} %); {comment_calls} comments calls for {pages_and_blocks} pages and blocks; run reported {} calls",
        comments.len(),
        extra as f64 * 100.0 / calls_off as f64,
        run.counts.api_calls
    );
    assert_eq!(extra, comment_calls, "the only extra calls are comment lists: {}", stats["by_endpoint"]);
    assert_eq!(comment_calls, pages_and_blocks, "one comments call per page and block");
    stack.cleanup().await;
}

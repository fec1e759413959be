//! The `edge` workspace: every edge case of ARCHITECTURE.md, built by hand.

use serde_json::{json, Map, Value};

use crate::files;
use crate::gen::builder::{Builder, BASE_TS, DAY};
use crate::gen::{file_extra, standard_files, text};
use crate::model::{FileAsset, Id, LazyBytes, Parent, PropValue};

/// Rows of the big data source (three rows per minute of `created_time`).
pub const BIG_ROWS: usize = 10_250;
/// Top-level paragraphs of the huge page.
pub const HUGE_BLOCKS: usize = 10_050;
/// Levels of nested toggles on the deep page.
pub const DEPTH: usize = 40;

fn extra(pairs: &[(&str, Value)]) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.to_string(), v.clone());
    }
    Some(m)
}

fn asset(
    b: &mut Builder,
    name: &str,
    ct: &str,
    bytes: Vec<u8>,
    text: Option<&str>,
    expectation: &str,
    external: bool,
) -> Id {
    let id = b.id();
    b.store.files.insert(
        id,
        FileAsset {
            id,
            name: name.to_string(),
            content_type: ct.to_string(),
            bytes: files::bytes(bytes),
            expected_text: text.map(str::to_string),
            expectation: expectation.to_string(),
            external,
            lazy: None,
        },
    );
    id
}

pub fn generate(seed: u64) -> crate::model::Store {
    let mut b = Builder::new(seed, "edge");
    b.add_users(30, &["notion-es integration", "Automation Bot", "Zapier"]);
    let std_assets = standard_files(&mut b);
    let t0 = BASE_TS;

    let oversize =
        asset(&mut b, "huge-export.txt", "text/plain", files::oversize(12 * 1024 * 1024), None, "skip_oversize", false);
    let corrupt = asset(&mut b, "broken.pdf", "application/pdf", files::corrupt_pdf(), None, "extraction_error", false);
    let bomb = asset(
        &mut b,
        "bomb.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Vec::new(),
        None,
        "within_budget",
        false,
    );
    if let Some(f) = b.store.files.get_mut(&bomb) {
        // 256 MiB of document.xml once inflated; built on first download.
        f.lazy = Some(LazyBytes::new(|| files::docx_bomb(256)));
    }
    let deep_html = asset(
        &mut b,
        "deep.html",
        "text/html",
        files::nested_html(100_000, "deephtml marker"),
        None,
        "within_budget",
        false,
    );
    let external = asset(
        &mut b,
        "external-notes.txt",
        "text/plain; charset=utf-8",
        b"An external file.\nMarker externalheron saffron kite\n".to_vec(),
        Some("externalheron saffron kite"),
        "extract",
        true,
    );

    // Pages referenced by links.
    let unshared = b.add_page(Parent::Workspace, "Unshared private page".to_string(), t0, t0 + DAY);
    b.store.unshared.insert(unshared);
    let target = b.add_page(Parent::Workspace, "Link target page".to_string(), t0, t0 + DAY);
    b.child(target, "paragraph", "The page that link_to_page blocks point at.".to_string(), None, t0);

    // 1. Every block type.
    let all = b.add_page(Parent::Workspace, "Every block type".to_string(), t0 + 60, t0 + 2 * DAY);
    let ts = t0 + 60;
    for t in [
        "paragraph",
        "heading_1",
        "heading_2",
        "heading_3",
        "heading_4",
        "bulleted_list_item",
        "numbered_list_item",
        "quote",
        "to_do",
        "callout",
        "template",
    ] {
        b.child(all, t, format!("Edge {t} text"), None, ts);
    }
    let rich = json!([
        {"type": "text", "text": {"content": "Mention of ", "link": null}, "annotations": {"bold": false, "italic": false, "strikethrough": false, "underline": false, "code": false, "color": "default"}, "plain_text": "Mention of ", "href": null},
        {"type": "mention", "mention": {"type": "user", "user": {"object": "user", "id": b.people[0]}}, "annotations": {"bold": false, "italic": false, "strikethrough": false, "underline": false, "code": false, "color": "default"}, "plain_text": "@Ada Lovelace", "href": null},
        {"type": "text", "text": {"content": " and ", "link": null}, "annotations": {"bold": true, "italic": false, "strikethrough": false, "underline": false, "code": false, "color": "default"}, "plain_text": " and ", "href": null},
        {"type": "equation", "equation": {"expression": "E = mc^2"}, "annotations": {"bold": false, "italic": false, "strikethrough": false, "underline": false, "code": false, "color": "default"}, "plain_text": "E = mc^2", "href": null}
    ]);
    b.child(all, "paragraph", "Mention of @Ada Lovelace and E = mc^2".to_string(), extra(&[("rich_text", rich)]), ts);
    b.child(all, "code", "SELECT edge_marker FROM blocks;".to_string(), extra(&[("language", json!("sql"))]), ts);
    b.child(all, "equation", "\\int_0^1 x^2 dx".to_string(), None, ts);
    let toggle = b.child(all, "toggle", "Edge toggle".to_string(), None, ts);
    b.child(toggle, "paragraph", "Inside the edge toggle".to_string(), None, ts);
    for t in ["divider", "breadcrumb", "tab", "table_of_contents"] {
        b.child(all, t, String::new(), None, ts);
    }
    b.child(all, "embed", "Embedded map".to_string(), extra(&[("_url", json!("https://maps.example.com/embed"))]), ts);
    b.child(
        all,
        "bookmark",
        "A bookmark caption".to_string(),
        extra(&[("_url", json!("https://example.com/article"))]),
        ts,
    );
    b.child(
        all,
        "link_preview",
        String::new(),
        extra(&[("_url", json!("https://github.com/example/repo/pull/1"))]),
        ts,
    );
    for t in ["image", "video", "audio"] {
        b.child(
            all,
            t,
            format!("External {t} caption"),
            extra(&[("_external_url", json!(format!("https://cdn.example.com/media.{t}")))]),
            ts,
        );
    }
    let names = ["PDF attachment", "DOCX attachment", "TXT attachment", "HTML attachment", "CSV attachment"];
    for (i, a) in std_assets.iter().enumerate() {
        let t = if i == 0 { "pdf" } else { "file" };
        b.child(all, t, names[i].to_string(), Some(file_extra(*a)), ts);
    }
    b.child(all, "file", "External file".to_string(), Some(file_extra(external)), ts);
    b.child(all, "file", "Oversize file".to_string(), Some(file_extra(oversize)), ts);
    b.child(all, "pdf", "Corrupt PDF".to_string(), Some(file_extra(corrupt)), ts);
    b.child(all, "file", "Zip bomb DOCX".to_string(), Some(file_extra(bomb)), ts);
    b.child(all, "file", "Deeply nested HTML".to_string(), Some(file_extra(deep_html)), ts);
    for (kind, id) in [("page_id", target), ("page_id", unshared), ("page_id", b.id())] {
        b.child(
            all,
            "link_to_page",
            String::new(),
            extra(&[("_link_type", json!(kind)), ("_link_target", json!(id.to_string()))]),
            ts,
        );
    }
    // Synced block: the original with children, and a reference to it (here and on another page).
    let original = b.child(all, "synced_block", String::new(), None, ts);
    b.child(original, "paragraph", "Synced content marker syncedfalcon".to_string(), None, ts);
    b.child(original, "bulleted_list_item", "Synced bullet".to_string(), None, ts);
    b.child(all, "synced_block", String::new(), extra(&[("_synced_from", json!(original.to_string()))]), ts);
    // Columns holding a child page and text.
    let cl = b.child(all, "column_list", String::new(), None, ts);
    let c1 = b.child(cl, "column", String::new(), extra(&[("width_ratio", json!(0.5))]), ts);
    b.child(c1, "paragraph", "Left column text".to_string(), None, ts);
    let in_column = b.add_page(Parent::Block(c1), "Child page in a column".to_string(), ts, ts);
    b.child(in_column, "paragraph", "Text of the child page in a column".to_string(), None, ts);
    let c2 = b.child(cl, "column", String::new(), extra(&[("width_ratio", json!(0.5))]), ts);
    b.child(c2, "paragraph", "Right column text".to_string(), None, ts);
    let (_db_in_col, col_ds) = b.add_database(Parent::Block(c2), "Database in a column".to_string(), 1, ts);
    for i in 0..3 {
        let v = b.row_values();
        b.add_row(col_ds[0], format!("Column row {i}"), v, ts + i * 60, ts + i * 60);
    }
    // Table.
    let table = b.child(
        all,
        "table",
        String::new(),
        extra(&[("table_width", json!(2)), ("has_column_header", json!(true)), ("has_row_header", json!(false))]),
        ts,
    );
    b.child(table, "table_row", "Header A\tHeader B".to_string(), None, ts);
    b.child(table, "table_row", "cell tablemarker one\tcell two".to_string(), None, ts);
    b.child(table, "table_row", "\tonly second".to_string(), None, ts);
    let child = b.add_page(Parent::Page(all), "Child page".to_string(), ts, ts + DAY);
    b.child(child, "paragraph", "Child page body".to_string(), None, ts);
    let grandchild = b.add_page(Parent::Page(child), "Grandchild page".to_string(), ts, ts + DAY);
    b.child(grandchild, "paragraph", "Grandchild body".to_string(), None, ts);
    let (_cdb, cds) = b.add_database(Parent::Page(all), "Child database".to_string(), 1, ts);
    for i in 0..4 {
        let v = b.row_values();
        b.add_row(cds[0], format!("Child db row {i}"), v, ts + i * 60, ts + i * 60);
    }
    b.child(all, "meeting_notes", "Weekly sync notes".to_string(), None, ts);
    b.child(all, "unsupported", String::new(), extra(&[("block_type", json!("form"))]), ts);
    b.child(all, "ai_block", String::new(), None, ts);
    b.child(
        all,
        "some_future_block",
        "Future block text".to_string(),
        extra(&[("future_field", json!({"nested": [1, 2, 3]}))]),
        ts,
    );
    b.child(all, "external_object_instance_page", String::new(), None, ts);
    // A child page that exists but is not shared (its id 404s).
    let hidden_child = b.add_page(Parent::Page(all), "Hidden child page".to_string(), ts, ts);
    b.store.unshared.insert(hidden_child);
    // Long text (split in 2,000-character rich text items).
    let long = (0..400).map(|i| format!("longword{i}")).collect::<Vec<_>>().join(" ");
    b.child(all, "paragraph", long, None, ts);
    // Comments: on the page, on a block, and a resolved one.
    b.add_comment(Parent::Page(all), "Page comment commentmarker".to_string(), ts + 120, false);
    b.add_comment(Parent::Block(toggle), "Block comment on the toggle".to_string(), ts + 180, false);
    b.add_comment(Parent::Page(all), "Resolved comment (not returned)".to_string(), ts + 240, true);
    // A trashed block.
    let gone = b.child(all, "paragraph", "Trashed paragraph".to_string(), None, ts);
    if let Some(bl) = b.store.blocks.get_mut(&gone) {
        bl.in_trash = true;
    }

    // 2. Deep nesting, with a child page and a child database inside toggles.
    let deep = b.add_page(Parent::Workspace, "Deep nesting".to_string(), t0 + 120, t0 + 3 * DAY);
    let mut cur = deep;
    for level in 1..=DEPTH {
        cur = b.child(cur, "toggle", format!("Level {level}"), None, t0 + 120);
        if level == 3 {
            let (_db, ds) = b.add_database(Parent::Block(cur), "Database inside a toggle".to_string(), 1, t0 + 120);
            let v = b.row_values();
            b.add_row(ds[0], "Row in toggled database".to_string(), v, t0 + 120, t0 + 120);
        }
        if level == 5 {
            let p = b.add_page(Parent::Block(cur), "Page inside a toggle".to_string(), t0 + 120, t0 + 120);
            b.child(p, "paragraph", "Body of the page inside a toggle".to_string(), None, t0 + 120);
        }
    }
    b.child(cur, "paragraph", "Deepest marker deepmarker".to_string(), None, t0 + 120);

    // 3. A page of more than 10,000 blocks.
    let huge = b.add_page(Parent::Workspace, "Huge page".to_string(), t0 + 180, t0 + 4 * DAY);
    for i in 0..HUGE_BLOCKS {
        b.child(huge, "paragraph", format!("Huge paragraph {i}"), None, t0 + 180);
    }
    let ht = b.child(huge, "toggle", "Toggle with 150 children".to_string(), None, t0 + 180);
    for i in 0..150 {
        b.child(ht, "paragraph", format!("Toggled paragraph {i}"), None, t0 + 180);
    }

    // 4. A data source of more than 10,000 rows (three per minute).
    let (_big, big_ds) = b.add_database(Parent::Workspace, "Big table".to_string(), 1, t0);
    for i in 0..BIG_ROWS {
        let created = t0 + (i as i64 / 3) * 60;
        let v = b.row_values();
        let row = b.add_row(big_ds[0], format!("Big row {i}"), v, created, created);
        if i % 1000 == 0 {
            b.child(row, "paragraph", format!("Content of big row {i}"), None, created);
        }
    }

    // 5. Unicode and empty titles.
    for (i, title) in [
        "Ünïcödé ✓ 日本語のページ 🚀",
        "",
        "   ",
        "مرحبا بالعالم",
        "e\u{301}te\u{301} 🦀🦀",
        "Ω≈ç√∫ \"quotes\" <tags> & amp",
    ]
    .iter()
    .enumerate()
    {
        let p =
            b.add_page(Parent::Workspace, title.to_string(), t0 + 300 + i as i64 * 60, t0 + 5 * DAY + i as i64 * 60);
        b.child(p, "paragraph", format!("Unicode body {i}: 你好, мир, κόσμε, 🌍"), None, t0 + 300);
    }
    let empty = b.add_page(Parent::Workspace, "Empty page".to_string(), t0 + 600, t0 + 600);
    let _ = empty;

    // 6. A database with two data sources, and rows with many people.
    let (_multi, multi_ds) = b.add_database(Parent::Workspace, "Projects (two sources)".to_string(), 2, t0 + 60);
    for (k, ds) in multi_ds.iter().enumerate() {
        for i in 0..3 {
            let v = b.row_values();
            b.add_row(*ds, format!("Source {} row {i}", k + 1), v, t0 + 60 + i * 60, t0 + 60 + i * 60);
        }
    }
    let mut many = b.row_values();
    many[6] = PropValue::People(b.people.clone());
    let crowded = b.add_row(multi_ds[0], "Row with 30 people".to_string(), many, t0 + 600, t0 + 600);
    let sub = b.add_page(Parent::Page(crowded), "Sub page of a row".to_string(), t0 + 600, t0 + 600);
    b.child(sub, "paragraph", "Body of a row's sub page".to_string(), None, t0 + 600);

    // 7. Trash: a page, a page with a trashed child, a database and a row.
    let trashed = b.add_page(Parent::Workspace, "Trashed page".to_string(), t0, t0 + DAY);
    b.child(trashed, "paragraph", "Trashed page body".to_string(), None, t0);
    if let Some(p) = b.store.pages.get_mut(&trashed) {
        p.in_trash = true;
    }
    let parent_of_trashed = b.add_page(Parent::Workspace, "Parent of a trashed child".to_string(), t0, t0 + DAY);
    let tchild = b.add_page(Parent::Page(parent_of_trashed), "Trashed child".to_string(), t0, t0 + DAY);
    if let Some(p) = b.store.pages.get_mut(&tchild) {
        p.in_trash = true;
    }
    if let Some(bl) = b.store.blocks.get_mut(&tchild) {
        bl.in_trash = true;
    }
    let (tdb, tds) = b.add_database(Parent::Workspace, "Trashed database".to_string(), 1, t0);
    let v = b.row_values();
    b.add_row(tds[0], "Row of a trashed database".to_string(), v, t0, t0);
    if let Some(d) = b.store.databases.get_mut(&tdb) {
        d.in_trash = true;
    }
    if let Some(d) = b.store.data_sources.get_mut(&tds[0]) {
        d.in_trash = true;
    }
    let v = b.row_values();
    let trow = b.add_row(cds[0], "Trashed row".to_string(), v, ts + 600, ts + 600);
    if let Some(p) = b.store.pages.get_mut(&trow) {
        p.in_trash = true;
    }

    let _ = text::word;
    b.finish()
}

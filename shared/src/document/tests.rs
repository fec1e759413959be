//! Unit tests of the documents: fields, caps and text.

use super::*;
use serde_json::json;

fn rich(text: &str) -> Value {
    json!([{"type": "text", "plain_text": text, "text": {"content": text}}])
}

#[test]
fn page_document_has_elastic_fields_and_normalized_ones() {
    let page = json!({
        "object": "page", "id": "p1", "last_edited_time": "2024-01-31T08:15:00.000Z",
        "url": "https://www.notion.so/p1", "parent": {"type": "workspace", "workspace": true},
        "properties": {"Name": {"id": "title", "type": "title", "title": rich("Roadmap")},
                       "Owner": {"id": "x", "type": "rich_text", "rich_text": rich("Ada")}}
    });
    let path = vec!["Home".to_string()];
    let doc = to_document(&page, &Placement { path: &path, ..Default::default() }, "Roadmap\nbody".into(), 7).unwrap();
    assert_eq!(doc.id, "p1");
    let s = &doc.source;
    assert_eq!(s["_timestamp"], "2024-01-31T08:15:00.000Z");
    assert_eq!(s["title"], "Roadmap");
    assert_eq!(s["page_id"], "p1");
    assert_eq!(s["path"], json!(["Home"]));
    assert_eq!(s["sync_run"], 7);
    assert!(s.get("properties").is_none());
    let details: Value = serde_json::from_str(s["details"].as_str().unwrap()).expect("details is JSON");
    assert_eq!(details["Owner"]["rich_text"][0]["plain_text"], "Ada");
    assert!(s.get("parent_id").is_none(), "workspace pages have no parent id");
}

#[test]
fn block_document_links_into_its_page() {
    let block = json!({"object": "block", "id": "b-1", "type": "paragraph",
        "parent": {"type": "block_id", "block_id": "b-0"}, "paragraph": {"rich_text": rich("hello")}});
    let placement = Placement { page_id: Some("p1"), page_url: Some("https://n/p1"), path: &[] };
    let doc = to_document(&block, &placement, block_text(&block), 1).unwrap();
    assert_eq!(doc.source["url"], "https://n/p1#b1");
    assert_eq!(doc.source["parent_id"], "b-0");
    assert_eq!(doc.source["page_id"], "p1");
    assert_eq!(doc.source["body"], "hello");
}

#[test]
fn block_text_covers_special_types() {
    let row = json!({"type": "table_row", "table_row": {"cells": [rich("a"), rich("b")]}});
    assert_eq!(block_text(&row), "a | b");
    let eq = json!({"type": "equation", "equation": {"expression": "e=mc^2"}});
    assert_eq!(block_text(&eq), "e=mc^2");
    let file = json!({"type": "file", "file": {"name": "report.pdf", "caption": rich("Q3")}});
    assert_eq!(block_text(&file), "report.pdf Q3");
    let unknown = json!({"type": "ai_block", "ai_block": {}});
    assert_eq!(block_text(&unknown), "");
    assert_eq!(block_text(&json!("not an object")), "");
}

#[test]
fn properties_text_renders_row_values() {
    let page = json!({"properties": {
        "Name": {"type": "title", "title": rich("Row")},
        "Tags": {"type": "multi_select", "multi_select": [{"name": "a"}, {"name": "b"}]},
        "Done": {"type": "checkbox", "checkbox": true},
        "Id": {"type": "unique_id", "unique_id": {"prefix": "T", "number": 4}},
        "Odd": {"type": "rollup", "rollup": {"type": "array", "array": []}}
    }});
    let text = properties_text(&page);
    assert!(text.contains("Tags: a, b"), "{text}");
    assert!(text.contains("Done: true"));
    assert!(text.contains("Id: T-4"));
    assert!(!text.contains("Row"));
}

fn page_titled(title: &str) -> Value {
    json!({
        "object": "page", "id": "p1", "last_edited_time": "2024-01-31T08:15:00.000Z",
        "url": "https://www.notion.so/p1", "parent": {"type": "workspace", "workspace": true},
        "properties": {"Name": {"id": "title", "type": "title", "title": rich(title)}}
    })
}

fn size(doc: &Document) -> usize {
    serde_json::to_vec(&doc.source).unwrap().len()
}

#[test]
fn documents_within_the_caps_are_left_as_they_are() {
    // The longest title Notion accepts: 100 rich-text items of 2,000 characters.
    let item = "t".repeat(2_000);
    let items: Vec<Value> = (0..100).map(|_| rich(&item)[0].clone()).collect();
    let long_but_legal = item.repeat(100);
    let mut page = page_titled("");
    page["properties"]["Name"]["title"] = Value::Array(items);
    let mut doc = to_document(&page, &Placement::default(), "body ".repeat(100_000), 3).unwrap();
    assert!(doc.source.get(WARNINGS_FIELD).is_none());
    assert!(doc.warnings().is_empty());
    // (`assert!` rather than `assert_eq!`: a failure would print megabytes.)
    assert!(doc.source["title"] == long_but_legal.as_str());
    assert!(doc.source["details"] == page["properties"].to_string().as_str());
    let before = doc.clone();
    assert!(bound(&mut doc).is_empty());
    assert!(doc == before);
}

#[test]
fn a_row_with_two_hundred_full_text_properties_stays_whole() {
    let mut page = page_titled("Wide row");
    for i in 0..200 {
        let value = json!({"id": format!("p{i}"), "type": "rich_text", "rich_text": rich(&"v".repeat(2_000))});
        page["properties"][format!("Prop {i}")] = value;
    }
    let doc = to_document(&page, &Placement::default(), properties_text(&page), 1).unwrap();
    assert!(doc.warnings().is_empty(), "{:?}", doc.warnings());
    assert_eq!(doc.source["details"].as_str().unwrap(), page["properties"].to_string());
}

#[test]
fn a_twenty_megabyte_title_is_cut_and_said_so() {
    let page = page_titled(&"x".repeat(20_000_000));
    let mut doc = to_document(&page, &Placement::default(), "short body".into(), 1).unwrap();
    assert_eq!(doc.source["title"].as_str().unwrap().len(), MAX_TITLE_CHARS);
    let warnings = doc.warnings();
    assert!(warnings.contains(&"title truncated from 20000000 to 200000 characters"), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.starts_with("details truncated from ")), "{warnings:?}");
    assert!(doc.source["details"].as_str().unwrap().chars().count() == MAX_DETAILS_CHARS);
    assert_eq!(doc.source["body"], "short body");
    assert!(size(&doc) <= MAX_DOCUMENT_BYTES);
    // Bounding again cuts nothing more and adds no warning.
    let count = doc.warnings().len();
    assert!(bound(&mut doc).is_empty());
    assert_eq!(doc.warnings().len(), count);
}

#[test]
fn cuts_fall_on_char_boundaries() {
    let title = "é".repeat(MAX_TITLE_CHARS + 5);
    let mut doc = Document { id: "x".into(), source: Map::new() };
    doc.source.insert("title".into(), Value::String(title));
    doc.source.insert("path".into(), json!(["ü".repeat(MAX_TITLE_CHARS + 1), "Home"]));
    let warnings = bound(&mut doc);
    assert_eq!(doc.source["title"].as_str().unwrap().chars().count(), MAX_TITLE_CHARS);
    assert_eq!(doc.source["path"][0].as_str().unwrap().chars().count(), MAX_TITLE_CHARS);
    assert_eq!(doc.source["path"][1], "Home");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains(&format!("from {} to {MAX_TITLE_CHARS}", MAX_TITLE_CHARS + 5)));
}

#[test]
fn raw_strings_at_any_depth_are_capped() {
    let long = "a".repeat(MAX_FIELD_CHARS + 10);
    let block = json!({"object": "block", "id": "b1", "type": "paragraph",
        "paragraph": {"rich_text": [{"type": "text", "plain_text": long, "text": {"content": long}}]}});
    let doc = to_document(&block, &Placement::default(), "text".into(), 1).unwrap();
    let item = &doc.source["paragraph"]["rich_text"][0];
    assert_eq!(item["plain_text"].as_str().unwrap().len(), MAX_FIELD_CHARS);
    assert_eq!(item["text"]["content"].as_str().unwrap().len(), MAX_FIELD_CHARS);
    assert_eq!(
        doc.warnings(),
        vec![format!(
            "field `paragraph`: 2 string(s) truncated to {MAX_FIELD_CHARS} characters (longest had {})",
            MAX_FIELD_CHARS + 10
        )]
    );
}

#[test]
fn a_huge_body_is_cut_to_the_document_cap() {
    let body = "word ".repeat(4 * 1024 * 1024); // 20 MiB
    let doc = to_document(&page_titled("Big"), &Placement::default(), body, 1).unwrap();
    let size = size(&doc);
    assert!(size <= MAX_DOCUMENT_BYTES && size > MAX_DOCUMENT_BYTES - 2 * WARNINGS_RESERVE, "{size}");
    assert_eq!(doc.source["title"], "Big");
    assert!(doc.source.contains_key("parent") && doc.source.contains_key("details"), "raw fields are kept");
    let warnings = doc.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("`body` truncated from 20971520 to "), "{warnings:?}");
}

#[test]
fn escapes_count_toward_the_cap() {
    // Each control character serializes as six bytes (\u0001).
    let body = "\u{1}".repeat(3 * 1024 * 1024);
    let doc = to_document(&page_titled("Esc"), &Placement::default(), body, 1).unwrap();
    assert!(size(&doc) <= MAX_DOCUMENT_BYTES, "{}", size(&doc));
}

#[test]
fn raw_fields_are_dropped_largest_first_when_the_body_is_not_enough() {
    let chunk = "r".repeat(MAX_FIELD_CHARS);
    let many: Vec<Value> = (0..60).map(|_| json!({"plain_text": chunk})).collect(); // ~12 MB
    let few: Vec<Value> = (0..2).map(|_| json!({"plain_text": chunk})).collect();
    let block = json!({"object": "block", "id": "b2", "type": "quote",
        "quote": {"rich_text": many}, "extra": few, "has_children": false});
    let doc = to_document(&block, &Placement::default(), "quote".into(), 1).unwrap();
    assert!(size(&doc) <= MAX_DOCUMENT_BYTES);
    assert!(doc.source.get("quote").is_none());
    assert_eq!(doc.source["extra"].as_array().unwrap().len(), 2, "the smaller field stays");
    assert_eq!(doc.source["has_children"], false);
    assert_eq!(doc.source["body"], "quote", "the body is cut only as far as needed");
    let warnings = doc.warnings();
    assert!(warnings.iter().any(|w| w.starts_with("field `quote` of ") && w.contains("dropped")), "{warnings:?}");
}

#[test]
fn a_document_made_only_of_own_fields_still_fits() {
    let mut doc = Document { id: "x".into(), source: Map::new() };
    for key in ["url", "parent_id", "page_id", "created_time", "author"] {
        doc.source.insert(key.into(), Value::String("\u{2}".repeat(MAX_FIELD_CHARS)));
    }
    doc.source.insert("body".into(), Value::String(String::new()));
    doc.source.insert("sync_run".into(), json!(4));
    bound(&mut doc);
    assert!(size(&doc) <= MAX_DOCUMENT_BYTES, "{}", size(&doc));
    assert_eq!(doc.source["sync_run"], 4);
}

#[test]
fn objects_without_id_are_not_documents() {
    assert!(to_document(&json!({"object": "page"}), &Placement::default(), String::new(), 1).is_none());
    assert!(to_document(&json!([1, 2]), &Placement::default(), String::new(), 1).is_none());
}

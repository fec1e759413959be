//! The `limits` workspace: objects at Notion's size limits, small and quick to build.
//!
//! Notion caps a rich text item at 2,000 characters and a rich text array at 100 items, so a title or a paragraph
//! holds at most 200,000 characters; a database schema is capped around 50 KB. The connector must index such
//! objects whole (and survive bigger ones, see `title_repeat` of `POST /__control/pages`).

use crate::gen::builder::{Builder, BASE_TS, DAY};
use crate::gen::{file_extra, standard_files, text};
use crate::model::{Id, Parent, PropKind, PropSchema, PropValue, Store};

/// Characters of the longest title and paragraph: 100 rich text items of 2,000 characters.
pub const LONG_CHARS: usize = 200_000;
/// Pages with a 200,000-character title.
pub const LONG_TITLE_PAGES: usize = 3;
/// Properties of the wide database (the title included).
pub const PROPERTIES: usize = 200;
/// Rows of the wide database, each filling every property.
pub const WIDE_ROWS: usize = 30;
/// Characters of each rich text value of a wide row.
pub const VALUE_CHARS: usize = 2_000;
/// Levels of nested sub-pages under the chain's root page.
pub const PAGE_DEPTH: usize = 12;
/// Levels of nested toggles.
pub const TOGGLE_DEPTH: usize = 20;

/// Deterministic ASCII text of exactly `chars` characters, marked with `tag` so that pieces can be searched for.
pub fn long_text(tag: &str, chars: usize) -> String {
    let mut s = String::with_capacity(chars + 32);
    let mut i = 0usize;
    while s.len() < chars {
        s.push_str(&format!("{tag}{i} "));
        i += 1;
    }
    s.truncate(chars);
    s
}

/// The kind of the wide database's property `i` (1..PROPERTIES): a mix of the common types.
fn wide_kind(i: usize) -> PropKind {
    let options = || vec!["alpha".to_string(), "beta".to_string(), "gamma".to_string()];
    match i % 9 {
        0 | 1 => PropKind::RichText,
        2 => PropKind::Number,
        3 => PropKind::Select(options()),
        4 => PropKind::Checkbox,
        5 => PropKind::MultiSelect(options()),
        6 => PropKind::Date,
        7 => PropKind::Url,
        _ => PropKind::People,
    }
}

pub fn wide_schema() -> Vec<PropSchema> {
    let mut schema = vec![PropSchema { id: "title".into(), name: "Name".into(), kind: PropKind::Title }];
    for i in 1..PROPERTIES {
        let kind = wide_kind(i);
        let name = format!("Prop {i:03} {}", kind.type_name());
        schema.push(PropSchema { id: format!("w{i:03}"), name, kind });
    }
    schema
}

/// Row `r`'s value of every property (title excluded): nothing left empty.
fn wide_values(schema: &[PropSchema], r: usize, people: &[Id]) -> Vec<PropValue> {
    schema
        .iter()
        .enumerate()
        .map(|(i, s)| match &s.kind {
            PropKind::Title | PropKind::CreatedTime | PropKind::LastEditedTime => PropValue::None,
            PropKind::RichText => PropValue::Text(long_text(&format!("r{r}p{i}w"), VALUE_CHARS)),
            PropKind::Number => PropValue::Number(Some((r * PROPERTIES + i) as f64)),
            PropKind::Select(o) => PropValue::Select(o.get((r + i) % o.len().max(1)).cloned()),
            PropKind::Checkbox => PropValue::Checkbox((r + i).is_multiple_of(2)),
            PropKind::MultiSelect(o) => PropValue::MultiSelect(o.iter().take(1 + (r + i) % 3).cloned().collect()),
            PropKind::Date => PropValue::Date(Some(format!("2025-{:02}-{:02}", 1 + (r + i) % 12, 1 + (r + i) % 28))),
            PropKind::Url => PropValue::Url(Some(format!("https://example.com/wide/{r}/{i}"))),
            PropKind::People => PropValue::People(people.iter().take(1 + (r + i) % 3).copied().collect()),
        })
        .collect()
}

pub fn generate(seed: u64) -> Store {
    let mut b = Builder::new(seed, "limits");
    b.add_users(5, &["notion-es integration"]);
    let assets = standard_files(&mut b);
    let t0 = BASE_TS;

    // 1. Titles of 100 rich text items of 2,000 characters.
    for k in 0..LONG_TITLE_PAGES {
        let ts = t0 + k as i64 * 60;
        let title = long_text(&format!("longtitle{k}w"), LONG_CHARS);
        let p = b.add_page(Parent::Workspace, title, ts, ts + DAY);
        b.child(p, "paragraph", format!("Body of long title page {k} limitsmarker"), None, ts);
    }

    // 2. A paragraph of 100 rich text items of 2,000 characters, between normal blocks.
    let ts = t0 + 600;
    let lp = b.add_page(Parent::Workspace, "Long paragraph".to_string(), ts, ts + DAY);
    b.child(lp, "heading_1", "Before the long paragraph".to_string(), None, ts);
    b.child(lp, "paragraph", long_text("longpara", LONG_CHARS), None, ts);
    b.child(lp, "paragraph", "After the long paragraph".to_string(), None, ts);

    // 3. A database with one data source of 200 properties, every row filling all of them.
    let ts = t0 + 1200;
    let (_wide, wide_ds) = b.add_database(Parent::Workspace, "Wide database".to_string(), 1, ts);
    let schema = wide_schema();
    if let Some(ds) = b.store.data_sources.get_mut(&wide_ds[0]) {
        ds.schema = schema.clone();
    }
    let people = b.people.clone();
    for r in 0..WIDE_ROWS {
        let created = ts + r as i64 * 60;
        let title = format!("Wide row {r} {}", long_text(&format!("rowtitle{r}w"), VALUE_CHARS - 20));
        let values = wide_values(&schema, r, &people);
        let row = b.add_row(wide_ds[0], title, values, created, created);
        if r % 10 == 0 {
            b.child(row, "paragraph", format!("Content of wide row {r}"), None, created);
        }
    }

    // 4. A chain of sub-pages 12 levels deep.
    let ts = t0 + 3600;
    let mut cur = b.add_page(Parent::Workspace, "Page chain root".to_string(), ts, ts + DAY);
    b.child(cur, "paragraph", "Root of the page chain".to_string(), None, ts);
    for level in 1..=PAGE_DEPTH {
        cur = b.add_page(Parent::Page(cur), format!("Page chain level {level}"), ts, ts + DAY);
        b.child(cur, "paragraph", format!("Body of chain level {level} chainmarker{level}"), None, ts);
    }

    // 5. Toggles nested 20 levels deep.
    let deep = b.add_page(Parent::Workspace, "Nested toggles".to_string(), ts, ts + DAY);
    let mut t = deep;
    for level in 1..=TOGGLE_DEPTH {
        t = b.child(t, "toggle", format!("Toggle level {level}"), None, ts);
    }
    b.child(t, "paragraph", "Innermost toggle text togglemarker".to_string(), None, ts);

    // 6. Normal content next to the extremes.
    let ts = t0 + 7200;
    let normal = b.add_page(Parent::Workspace, "Ordinary page".to_string(), ts, ts + DAY);
    b.fill(normal, 25, ts);
    b.child(normal, "pdf", "Attachment".to_string(), Some(file_extra(assets[0])), ts);
    let sub_title = text::title(&mut b.rng);
    let sub = b.add_page(Parent::Page(normal), sub_title, ts, ts + DAY);
    b.fill(sub, 8, ts);
    let s = text::sentence(&mut b.rng);
    b.add_comment(Parent::Page(normal), s, ts + 60, false);
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_exact_and_deterministic() {
        let a = long_text("x", LONG_CHARS);
        assert_eq!(a.chars().count(), LONG_CHARS);
        assert_eq!(a, long_text("x", LONG_CHARS));
        assert_eq!(wide_schema().len(), PROPERTIES);
    }

    #[test]
    fn generation_is_deterministic() {
        let (a, b) = (generate(42), generate(42));
        let mut ia: Vec<_> = a.pages.keys().collect();
        let mut ib: Vec<_> = b.pages.keys().collect();
        ia.sort();
        ib.sort();
        assert_eq!(ia, ib);
        assert_eq!(a.blocks.len(), b.blocks.len());
    }
}

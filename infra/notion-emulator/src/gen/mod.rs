//! Deterministic workspaces by size and seed.

pub mod builder;
pub mod edge;
pub mod limits;
pub mod rng;
pub mod text;

use rand::Rng;
use serde_json::{Map, Value};

use crate::config::WorkspaceKind;
use crate::files;
use crate::model::{FileAsset, Id, Parent, Store};
use builder::{Builder, BASE_TS, DAY};

struct Params {
    pages: usize,
    blocks: (usize, usize),
    databases: usize,
    rows: (usize, usize),
    big_rows: Option<usize>,
    people: usize,
    file_every: usize,
}

pub fn generate(kind: WorkspaceKind, seed: u64) -> Store {
    let params = match kind {
        WorkspaceKind::Small => {
            Params { pages: 40, blocks: (4, 20), databases: 3, rows: (2, 4), big_rows: None, people: 5, file_every: 8 }
        }
        WorkspaceKind::Medium => Params {
            pages: 1000,
            blocks: (15, 75),
            databases: 20,
            rows: (10, 40),
            big_rows: Some(10_050),
            people: 10,
            file_every: 100,
        },
        WorkspaceKind::Large => Params {
            pages: 10_000,
            blocks: (5, 35),
            databases: 40,
            rows: (20, 80),
            big_rows: None,
            people: 12,
            file_every: 500,
        },
        WorkspaceKind::Edge => return edge::generate(seed),
        WorkspaceKind::Limits => return limits::generate(seed),
    };
    sized(kind.as_str(), seed, &params)
}

/// The standard assets with known text, present in every workspace.
pub fn standard_files(b: &mut Builder) -> Vec<Id> {
    let specs: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "quarterly-report.pdf",
            "application/pdf",
            files::pdf(&["Quarterly report of the emulated workspace", "Marker zebrapdf quantum lighthouse"]),
            "zebrapdf quantum lighthouse",
        ),
        (
            "meeting-notes.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            files::docx(&["Meeting notes of the emulated workspace", "Marker docxwalrus tangerine orchard"]),
            "docxwalrus tangerine orchard",
        ),
        (
            "readme.txt",
            "text/plain; charset=utf-8",
            b"Plain text attachment.\nMarker txtpelican marmalade harbor\n".to_vec(),
            "txtpelican marmalade harbor",
        ),
        (
            "page.html",
            "text/html; charset=utf-8",
            files::html("Emulated page", &["An HTML attachment.", "Marker htmlotter cinnamon comet"]),
            "htmlotter cinnamon comet",
        ),
        (
            "table.csv",
            "text/csv; charset=utf-8",
            files::csv(&[&["name", "value"], &["marker", "csvbadger pistachio nebula"], &["other", "12"]]),
            "csvbadger pistachio nebula",
        ),
    ];
    let mut ids = Vec::new();
    for (name, ct, bytes, text) in specs {
        let id = b.id();
        b.store.files.insert(
            id,
            FileAsset {
                id,
                name: name.to_string(),
                content_type: ct.to_string(),
                bytes: files::bytes(bytes),
                expected_text: Some(text.to_string()),
                expectation: "extract".to_string(),
                external: false,
                lazy: None,
            },
        );
        ids.push(id);
    }
    ids
}

pub fn file_extra(file: Id) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("_file_id".into(), Value::from(file.to_string()));
    m
}

fn sized(name: &str, seed: u64, p: &Params) -> Store {
    let mut b = Builder::new(seed, name);
    b.add_users(p.people, &["notion-es integration", "Automation Bot"]);
    let assets = standard_files(&mut b);

    let top = (p.pages / 10).max(3);
    let mut pages: Vec<Id> = Vec::with_capacity(p.pages);
    for i in 0..p.pages {
        let created = b.minute(BASE_TS, 200);
        let edited = b.minute(created, 100);
        let parent = if i < top {
            Parent::Workspace
        } else {
            let host = pages[b.rng.gen_range(0..pages.len())];
            if b.rng.gen_bool(0.1) {
                // Inside a toggle of the host page (parent type block_id).
                let label = format!("Subpages of {}", text::word(&mut b.rng));
                let toggle = b.child(host, "toggle", label, None, created);
                Parent::Block(toggle)
            } else {
                Parent::Page(host)
            }
        };
        let title = text::title(&mut b.rng);
        let id = b.add_page(parent, title, created, edited);
        let n = b.rng.gen_range(p.blocks.0..=p.blocks.1);
        b.fill(id, n, created);
        if i % p.file_every == 3 {
            let asset = assets[(i / p.file_every) % assets.len()];
            let btype = if i % 2 == 0 { "file" } else { "pdf" };
            let caption = format!("Attachment {}", text::word(&mut b.rng));
            b.child(id, btype, caption, Some(file_extra(asset)), created);
        }
        if b.rng.gen_bool(0.1) {
            let t = text::sentence(&mut b.rng);
            b.add_comment(Parent::Page(id), t, edited, false);
            if b.rng.gen_bool(0.3) {
                let t = text::sentence(&mut b.rng);
                b.add_comment(Parent::Page(id), t, edited, true);
            }
        }
        pages.push(id);
    }

    for d in 0..p.databases {
        let created = b.minute(BASE_TS, 100);
        let hosts = pages.len().saturating_sub(2).max(1);
        let parent = if d < 2 { Parent::Workspace } else { Parent::Page(pages[b.rng.gen_range(0..hosts)]) };
        let sources = if d == 1 { 2 } else { 1 };
        let title = format!("{} Database", text::title(&mut b.rng));
        let (_db, ds_ids) = b.add_database(parent, title, sources, created);
        for (k, ds) in ds_ids.into_iter().enumerate() {
            let big = d == 0 && k == 0 && p.big_rows.is_some();
            let n = if big { p.big_rows.unwrap_or(0) } else { b.rng.gen_range(p.rows.0..=p.rows.1) };
            for r in 0..n {
                let (row_created, blocks) = if big {
                    // Two rows per minute; most rows have no content.
                    (created + (r as i64 / 2) * 60, if b.rng.gen_bool(0.85) { 0 } else { b.rng.gen_range(1..=3) })
                } else {
                    (b.minute(created, 30), b.rng.gen_range(0..=4))
                };
                let edited = b.minute(row_created, 20);
                let title = text::title(&mut b.rng);
                let values = b.row_values();
                let row = b.add_row(ds, title, values, row_created, edited);
                if blocks > 0 {
                    b.fill(row, blocks, row_created);
                }
            }
        }
    }

    // A workspace-level page that exists but is not shared, and a link to it.
    let hidden = b.add_page(Parent::Workspace, "Private (not shared)".to_string(), BASE_TS, BASE_TS + DAY);
    b.store.unshared.insert(hidden);
    if let Some(first) = pages.first().copied() {
        let mut extra = Map::new();
        extra.insert("_link_type".into(), Value::from("page_id"));
        extra.insert("_link_target".into(), Value::from(hidden.to_string()));
        b.child(first, "link_to_page", String::new(), Some(extra), BASE_TS);
    }

    // A few trashed pages and blocks.
    for k in 0..2.min(pages.len()) {
        let id = pages[pages.len() - 1 - k];
        if let Some(pg) = b.store.pages.get_mut(&id) {
            pg.in_trash = true;
        }
        if let Some(bl) = b.store.blocks.get_mut(&id) {
            bl.in_trash = true;
        }
    }
    if let Some(first) = pages.first().copied() {
        let trashed = b.child(first, "paragraph", "This paragraph was deleted".to_string(), None, BASE_TS);
        if let Some(bl) = b.store.blocks.get_mut(&trashed) {
            bl.in_trash = true;
        }
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        let a = generate(WorkspaceKind::Small, 7);
        let b = generate(WorkspaceKind::Small, 7);
        let c = generate(WorkspaceKind::Small, 8);
        let mut ia: Vec<_> = a.pages.keys().collect();
        let mut ib: Vec<_> = b.pages.keys().collect();
        ia.sort();
        ib.sort();
        assert_eq!(ia, ib);
        assert_eq!(a.blocks.len(), b.blocks.len());
        assert!(c.pages.keys().all(|k| !a.pages.contains_key(k)));
    }
}

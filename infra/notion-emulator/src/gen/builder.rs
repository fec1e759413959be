//! Low-level construction of a workspace: ids, pages, blocks, databases, rows.

use crate::gen::rng::SplitMix64 as StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

use crate::gen::text;
use crate::model::{
    Block, Comment, DataSource, Database, Id, Page, Parent, PropKind, PropSchema, PropValue, Store, Ts, User, UserKind,
};

/// 2025-01-01T00:00:00Z: generated content is dated after this.
pub const BASE_TS: Ts = 1_735_689_600;
pub const DAY: Ts = 86_400;

pub struct Builder {
    pub rng: StdRng,
    pub store: Store,
    pub people: Vec<Id>,
}

impl Builder {
    pub fn new(seed: u64, name: &str) -> Builder {
        let mix = name.bytes().fold(seed ^ 0x9e37_79b9_7f4a_7c15, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        let mut b = Builder { rng: StdRng::seed_from_u64(mix), store: Store::default(), people: Vec::new() };
        b.store.workspace_id = b.id();
        b.store.workspace_name = format!("Emulated {name} workspace");
        b
    }

    pub fn id(&mut self) -> Id {
        uuid::Builder::from_random_bytes(self.rng.gen()).into_uuid()
    }

    pub fn minute(&mut self, from: Ts, span_days: i64) -> Ts {
        let span = (span_days * 1440).max(1);
        from + self.rng.gen_range(0..span) * 60
    }

    pub fn add_users(&mut self, people: usize, bots: &[&str]) {
        for i in 0..people {
            let name = text::PEOPLE[i % text::PEOPLE.len()];
            let name = if i >= text::PEOPLE.len() {
                format!("{name} {}", i / text::PEOPLE.len() + 1)
            } else {
                name.to_string()
            };
            let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
            let id = self.id();
            self.people.push(id);
            self.store.users.push(User { id, name, kind: UserKind::Person { email } });
        }
        for (i, bot) in bots.iter().enumerate() {
            let id = self.id();
            if i == 0 {
                self.store.bot_id = id;
            }
            self.store.users.push(User { id, name: bot.to_string(), kind: UserKind::Bot });
        }
    }

    pub fn author(&mut self) -> Id {
        if self.people.is_empty() {
            return self.store.bot_id;
        }
        let i = self.rng.gen_range(0..self.people.len());
        self.people[i]
    }

    /// Block parent and container of an object placed under `parent`.
    fn place(parent: Parent) -> Option<Id> {
        match parent {
            Parent::Page(p) | Parent::Block(p) => Some(p),
            _ => None,
        }
    }

    pub fn add_block(
        &mut self,
        container: Id,
        parent: Parent,
        btype: &str,
        text: String,
        extra: Option<Map<String, Value>>,
        ts: Ts,
    ) -> Id {
        let id = self.id();
        self.insert_block(id, container, parent, btype, text, extra, ts);
        id
    }

    #[allow(clippy::too_many_arguments)]
    pub fn insert_block(
        &mut self,
        id: Id,
        container: Id,
        parent: Parent,
        btype: &str,
        text: String,
        extra: Option<Map<String, Value>>,
        ts: Ts,
    ) {
        let created_by = self.author();
        self.store.blocks.insert(
            id,
            Block {
                id,
                parent,
                btype: btype.to_string(),
                text,
                extra: extra.map(Box::new),
                created: ts,
                last_edited: ts,
                created_by,
                in_trash: false,
            },
        );
        self.store.children.entry(container).or_default().push(id);
    }

    /// A block under a page or block container.
    pub fn child(&mut self, container: Id, btype: &str, text: String, extra: Option<Map<String, Value>>, ts: Ts) -> Id {
        // A page id (its child_page block shares the id) holds top-level blocks; anything else is a block.
        let is_page = self.store.pages.contains_key(&container)
            && self.store.blocks.get(&container).is_none_or(|b| b.btype == "child_page");
        let parent = if is_page { Parent::Page(container) } else { Parent::Block(container) };
        self.add_block(container, parent, btype, text, extra, ts)
    }

    pub fn add_page(&mut self, parent: Parent, title: String, created: Ts, last_edited: Ts) -> Id {
        let id = self.id();
        let author = self.author();
        self.store.pages.insert(
            id,
            Page {
                id,
                parent,
                title: title.clone(),
                props: Vec::new(),
                icon: None,
                created,
                last_edited,
                created_by: author,
                last_edited_by: author,
                in_trash: false,
            },
        );
        if let Some(container) = Self::place(parent) {
            self.insert_block(id, container, parent, "child_page", title, None, created);
        }
        id
    }

    pub fn standard_schema() -> Vec<PropSchema> {
        let s = |id: &str, name: &str, kind: PropKind| PropSchema { id: id.to_string(), name: name.to_string(), kind };
        vec![
            s("title", "Name", PropKind::Title),
            s("s%3Ast", "Status", PropKind::Select(vec!["Not started".into(), "In progress".into(), "Done".into()])),
            s("d%3Adn", "Done", PropKind::Checkbox),
            s("n%3Ant", "Notes", PropKind::RichText),
            s("p%3Apr", "Priority", PropKind::Number),
            s("t%3Atg", "Tags", PropKind::MultiSelect(vec!["red".into(), "green".into(), "blue".into()])),
            s("o%3Aow", "Owner", PropKind::People),
            s("u%3Adu", "Due", PropKind::Date),
            s("l%3Ali", "Link", PropKind::Url),
            s("c%3Acr", "Created", PropKind::CreatedTime),
            s("e%3Aed", "Edited", PropKind::LastEditedTime),
        ]
    }

    /// A database with `sources` data sources (standard schema), placed under `parent`.
    pub fn add_database(&mut self, parent: Parent, title: String, sources: usize, created: Ts) -> (Id, Vec<Id>) {
        let id = self.id();
        let mut ds_ids = Vec::new();
        for i in 0..sources.max(1) {
            let ds = self.id();
            let name = if i == 0 { title.clone() } else { format!("{title} (source {})", i + 1) };
            self.store.data_sources.insert(
                ds,
                DataSource {
                    id: ds,
                    database_id: id,
                    name,
                    schema: Self::standard_schema(),
                    rows: Vec::new(),
                    created,
                    last_edited: created,
                    in_trash: false,
                },
            );
            ds_ids.push(ds);
        }
        let inline = Self::place(parent).is_some();
        self.store.databases.insert(
            id,
            Database {
                id,
                parent,
                title: title.clone(),
                is_inline: inline,
                data_sources: ds_ids.clone(),
                created,
                last_edited: created,
                in_trash: false,
            },
        );
        if let Some(container) = Self::place(parent) {
            self.insert_block(id, container, parent, "child_database", title, None, created);
        }
        (id, ds_ids)
    }

    /// Random but typical row values for the standard schema.
    pub fn row_values(&mut self) -> Vec<PropValue> {
        let status = ["Not started", "In progress", "Done"][self.rng.gen_range(0..3)].to_string();
        let tags: Vec<String> =
            ["red", "green", "blue"].iter().filter(|_| self.rng.gen_bool(0.3)).map(|s| s.to_string()).collect();
        let owner = self.author();
        let notes = if self.rng.gen_bool(0.5) { text::sentence(&mut self.rng) } else { String::new() };
        vec![
            PropValue::None,
            PropValue::Select(Some(status)),
            PropValue::Checkbox(self.rng.gen_bool(0.4)),
            PropValue::Text(notes),
            PropValue::Number(Some(self.rng.gen_range(1..6) as f64)),
            PropValue::MultiSelect(tags),
            PropValue::People(vec![owner]),
            PropValue::Date(Some(format!("2025-{:02}-{:02}", self.rng.gen_range(1..13), self.rng.gen_range(1..29)))),
            PropValue::Url(Some("https://example.com/item".to_string())),
            PropValue::None,
            PropValue::None,
        ]
    }

    pub fn add_row(&mut self, ds: Id, title: String, props: Vec<PropValue>, created: Ts, last_edited: Ts) -> Id {
        let id = self.id();
        let author = self.author();
        self.store.pages.insert(
            id,
            Page {
                id,
                parent: Parent::DataSource(ds),
                title,
                props,
                icon: None,
                created,
                last_edited,
                created_by: author,
                last_edited_by: author,
                in_trash: false,
            },
        );
        if let Some(d) = self.store.data_sources.get_mut(&ds) {
            d.rows.push(id);
        }
        id
    }

    pub fn add_comment(&mut self, on: Parent, text: String, created: Ts, resolved: bool) -> Id {
        let id = self.id();
        let discussion_id = self.id();
        let author = self.author();
        self.store.comments.push(Comment { id, parent: on, discussion_id, text, created, author, resolved });
        id
    }

    /// Random typical content: `n` blocks in total (nested ones included) under `container`.
    pub fn fill(&mut self, container: Id, n: usize, ts: Ts) -> usize {
        let mut made = 0;
        while made < n {
            let left = n - made;
            let roll = self.rng.gen_range(0..100);
            let sentence = text::sentence(&mut self.rng);
            made += match roll {
                0..=34 => self.one(container, "paragraph", sentence, ts),
                35..=42 => {
                    let h = ["heading_1", "heading_2", "heading_3"][self.rng.gen_range(0..3)];
                    let t = text::title(&mut self.rng);
                    self.one(container, h, t, ts)
                }
                43..=54 => self.one(container, "bulleted_list_item", sentence, ts),
                55..=62 => self.one(container, "numbered_list_item", sentence, ts),
                63..=68 => self.one(container, "to_do", sentence, ts),
                69..=71 => self.one(container, "quote", sentence, ts),
                72..=74 => self.one(container, "callout", sentence, ts),
                75..=77 => {
                    let code = format!("fn main() {{ println!(\"{}\"); }}", text::word(&mut self.rng));
                    self.one(container, "code", code, ts)
                }
                78..=83 if left >= 2 => {
                    let t = self.child(container, "toggle", sentence, None, ts);
                    let k = self.rng.gen_range(1..=4.min(left - 1));
                    1 + self.fill(t, k, ts)
                }
                84..=87 if left >= 2 => {
                    let t = self.child(container, "bulleted_list_item", sentence, None, ts);
                    let k = self.rng.gen_range(1..=3.min(left - 1));
                    1 + self.fill(t, k, ts)
                }
                88..=89 => self.one(container, "divider", String::new(), ts),
                90 if left >= 3 => self.table(container, left.min(4), ts),
                91 if left >= 5 => self.columns(container, ts),
                92 => self.one(container, "equation", "e^{i\\pi} + 1 = 0".to_string(), ts),
                93 => {
                    let mut extra = Map::new();
                    extra.insert("_url".into(), Value::from("https://example.com/bookmark"));
                    self.child(container, "bookmark", sentence, Some(extra), ts);
                    1
                }
                _ => self.one(container, "paragraph", sentence, ts),
            };
        }
        made
    }

    fn one(&mut self, container: Id, btype: &str, text: String, ts: Ts) -> usize {
        self.child(container, btype, text, None, ts);
        1
    }

    /// A table with `rows` rows of 3 cells (1 + rows blocks).
    pub fn table(&mut self, container: Id, rows: usize, ts: Ts) -> usize {
        let mut extra = Map::new();
        extra.insert("table_width".into(), Value::from(3));
        extra.insert("has_column_header".into(), Value::from(true));
        extra.insert("has_row_header".into(), Value::from(false));
        let t = self.child(container, "table", String::new(), Some(extra), ts);
        for _ in 0..rows.saturating_sub(1).max(1) {
            let cells = [text::word(&mut self.rng), text::word(&mut self.rng), text::word(&mut self.rng)].join("\t");
            self.child(t, "table_row", cells, None, ts);
        }
        1 + rows.saturating_sub(1).max(1)
    }

    /// A column list with two columns of one paragraph each (5 blocks).
    pub fn columns(&mut self, container: Id, ts: Ts) -> usize {
        let cl = self.child(container, "column_list", String::new(), None, ts);
        for _ in 0..2 {
            let mut extra = Map::new();
            extra.insert("width_ratio".into(), Value::from(0.5));
            let col = self.child(cl, "column", String::new(), Some(extra), ts);
            let s = text::sentence(&mut self.rng);
            self.child(col, "paragraph", s, None, ts);
        }
        5
    }

    pub fn finish(self) -> Store {
        self.store
    }
}

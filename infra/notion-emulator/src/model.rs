//! The in-memory workspace: pages, blocks, databases, data sources, users, comments and files.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use serde_json::{Map, Value};
use uuid::Uuid;

pub type Id = Uuid;
/// Unix seconds, always a multiple of 60 (Notion rounds timestamps down to the minute).
pub type Ts = i64;

pub fn round_minute(ts: i64) -> Ts {
    ts.div_euclid(60) * 60
}

pub fn now_minute() -> Ts {
    round_minute(chrono::Utc::now().timestamp())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parent {
    Workspace,
    Page(Id),
    Block(Id),
    /// A database row: its data source.
    DataSource(Id),
    /// A data source's parent.
    Database(Id),
}

impl Parent {
    pub fn id(&self) -> Option<Id> {
        match self {
            Parent::Workspace => None,
            Parent::Page(id) | Parent::Block(id) | Parent::DataSource(id) | Parent::Database(id) => Some(*id),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum PropKind {
    Title,
    RichText,
    Select(Vec<String>),
    MultiSelect(Vec<String>),
    Checkbox,
    Number,
    People,
    Date,
    Url,
    CreatedTime,
    LastEditedTime,
}

impl PropKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            PropKind::Title => "title",
            PropKind::RichText => "rich_text",
            PropKind::Select(_) => "select",
            PropKind::MultiSelect(_) => "multi_select",
            PropKind::Checkbox => "checkbox",
            PropKind::Number => "number",
            PropKind::People => "people",
            PropKind::Date => "date",
            PropKind::Url => "url",
            PropKind::CreatedTime => "created_time",
            PropKind::LastEditedTime => "last_edited_time",
        }
    }
}

#[derive(Clone, Debug)]
pub struct PropSchema {
    pub id: String,
    pub name: String,
    pub kind: PropKind,
}

/// A row's value for one schema property (title and timestamps live on the page itself).
#[derive(Clone, Debug, PartialEq)]
pub enum PropValue {
    None,
    Text(String),
    Select(Option<String>),
    MultiSelect(Vec<String>),
    Checkbox(bool),
    Number(Option<f64>),
    People(Vec<Id>),
    Date(Option<String>),
    Url(Option<String>),
}

#[derive(Clone, Debug)]
pub struct Page {
    pub id: Id,
    pub parent: Parent,
    pub title: String,
    /// Row values aligned with the data source schema (empty for plain pages).
    pub props: Vec<PropValue>,
    pub icon: Option<String>,
    pub created: Ts,
    pub last_edited: Ts,
    pub created_by: Id,
    pub last_edited_by: Id,
    pub in_trash: bool,
}

#[derive(Clone, Debug)]
pub struct Database {
    pub id: Id,
    pub parent: Parent,
    pub title: String,
    pub is_inline: bool,
    pub data_sources: Vec<Id>,
    pub created: Ts,
    pub last_edited: Ts,
    pub in_trash: bool,
}

#[derive(Clone, Debug)]
pub struct DataSource {
    pub id: Id,
    pub database_id: Id,
    pub name: String,
    pub schema: Vec<PropSchema>,
    /// Row page ids, in creation order.
    pub rows: Vec<Id>,
    pub created: Ts,
    pub last_edited: Ts,
    pub in_trash: bool,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub id: Id,
    pub parent: Parent,
    /// Canonical type name (`meeting_notes` is rendered `transcription` before 2026-03-11).
    pub btype: String,
    /// The block's main plain text (rich text, equation expression, caption, table cells joined by tabs).
    pub text: String,
    /// Extra payload fields merged into the `<type>` object.
    pub extra: Option<Box<Map<String, Value>>>,
    pub created: Ts,
    pub last_edited: Ts,
    pub created_by: Id,
    pub in_trash: bool,
}

impl Block {
    pub fn extra_str(&self, key: &str) -> Option<&str> {
        self.extra.as_ref()?.get(key)?.as_str()
    }
    pub fn extra_id(&self, key: &str) -> Option<Id> {
        self.extra_str(key).and_then(|s| Uuid::parse_str(s).ok())
    }
}

#[derive(Clone, Debug)]
pub enum UserKind {
    Person { email: String },
    Bot,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: Id,
    pub name: String,
    pub kind: UserKind,
}

#[derive(Clone, Debug)]
pub struct Comment {
    pub id: Id,
    /// Page or block the comment is on.
    pub parent: Parent,
    pub discussion_id: Id,
    pub text: String,
    pub created: Ts,
    pub author: Id,
    pub resolved: bool,
}

#[derive(Clone, Debug)]
pub struct FileAsset {
    pub id: Id,
    pub name: String,
    pub content_type: String,
    pub bytes: Bytes,
    /// Text an extractor must find in it, if it is meant to be extractable.
    pub expected_text: Option<String>,
    /// What a correct connector does with it (e.g. `extract`, `skip_oversize`, `extraction_error`).
    pub expectation: String,
    /// Served from `/external/{id}` without a signature instead of a signed URL.
    pub external: bool,
    /// Content built on first download (expensive files such as the zip bomb); `bytes` is empty then.
    pub lazy: Option<LazyBytes>,
}

/// Bytes made once, on first use.
#[derive(Clone)]
pub struct LazyBytes {
    cell: std::sync::Arc<std::sync::OnceLock<Bytes>>,
    make: fn() -> Vec<u8>,
}

impl std::fmt::Debug for LazyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LazyBytes(ready: {})", self.cell.get().is_some())
    }
}

impl LazyBytes {
    pub fn new(make: fn() -> Vec<u8>) -> LazyBytes {
        LazyBytes { cell: Default::default(), make }
    }

    pub fn get(&self) -> Bytes {
        self.cell.get_or_init(|| Bytes::from((self.make)())).clone()
    }

    pub fn ready(&self) -> Option<&Bytes> {
        self.cell.get()
    }
}

impl FileAsset {
    /// Size in bytes, when known (a lazy file is sized once made).
    pub fn size(&self) -> Option<usize> {
        match &self.lazy {
            Some(l) => l.ready().map(|b| b.len()),
            None => Some(self.bytes.len()),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Store {
    pub workspace_id: Id,
    pub workspace_name: String,
    pub bot_id: Id,
    pub pages: HashMap<Id, Page>,
    pub blocks: HashMap<Id, Block>,
    pub databases: HashMap<Id, Database>,
    pub data_sources: HashMap<Id, DataSource>,
    /// Ordered content of a page or block (block ids).
    pub children: HashMap<Id, Vec<Id>>,
    pub users: Vec<User>,
    pub comments: Vec<Comment>,
    pub files: HashMap<Id, FileAsset>,
    /// Objects that exist but are not shared with the integration (404 everywhere).
    pub unshared: HashSet<Id>,
}

impl Store {
    pub fn visible_children(&self, id: &Id) -> impl Iterator<Item = &Block> {
        self.children
            .get(id)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
            .iter()
            .filter_map(|c| self.blocks.get(c))
            .filter(|b| !b.in_trash)
    }

    /// Where a block's listed children come from (a synced reference lists its original's).
    pub fn children_source(&self, id: &Id) -> Id {
        if let Some(b) = self.blocks.get(id) {
            if b.btype == "synced_block" {
                if let Some(orig) = b.extra_id("_synced_from") {
                    return orig;
                }
            }
        }
        *id
    }

    pub fn has_children(&self, b: &Block) -> bool {
        match b.btype.as_str() {
            "ai_block" => true,
            "child_database" => false,
            _ => {
                let src = self.children_source(&b.id);
                self.visible_children(&src).next().is_some()
            }
        }
    }

    /// The page that owns a block (walking up through parent blocks).
    pub fn owning_page(&self, block_id: &Id) -> Option<Id> {
        let mut cur = *block_id;
        for _ in 0..10_000 {
            match self.blocks.get(&cur)?.parent {
                Parent::Page(p) => return Some(p),
                Parent::Block(b) => cur = b,
                _ => return None,
            }
        }
        None
    }

    /// A page is listed (search, queries) when it is not trashed, is shared, and its data source (for rows) is listed.
    pub fn page_listed(&self, p: &Page) -> bool {
        if p.in_trash || self.unshared.contains(&p.id) {
            return false;
        }
        match p.parent {
            Parent::DataSource(ds) => self.data_source_listed(&ds),
            _ => true,
        }
    }

    pub fn data_source_listed(&self, id: &Id) -> bool {
        let Some(ds) = self.data_sources.get(id) else {
            return false;
        };
        !ds.in_trash && !self.unshared.contains(id) && self.database_listed(&ds.database_id)
    }

    pub fn database_listed(&self, id: &Id) -> bool {
        let Some(db) = self.databases.get(id) else {
            return false;
        };
        !db.in_trash && !self.unshared.contains(id)
    }

    /// Bump the last edited time of a block and of the page owning it.
    pub fn touch_block(&mut self, block_id: &Id, ts: Ts) {
        if let Some(b) = self.blocks.get_mut(block_id) {
            b.last_edited = ts;
        }
        if let Some(pid) = self.owning_page(block_id) {
            if let Some(p) = self.pages.get_mut(&pid) {
                p.last_edited = ts;
            }
        }
    }

    /// Every block id in the subtree under `root` (not crossing into child pages' own content twice).
    pub fn subtree_blocks(&self, root: &Id) -> Vec<Id> {
        let mut out = Vec::new();
        let mut stack = vec![*root];
        let mut seen = HashSet::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some(kids) = self.children.get(&id) {
                for k in kids {
                    out.push(*k);
                    stack.push(*k);
                }
            }
        }
        out
    }

    pub fn user_name(&self, id: &Id) -> Option<&str> {
        self.users.iter().find(|u| u.id == *id).map(|u| u.name.as_str())
    }

    pub fn block_count(&self) -> usize {
        self.blocks.values().filter(|b| !matches!(b.btype.as_str(), "child_page" | "child_database")).count()
    }
}

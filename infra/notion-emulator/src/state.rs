//! Shared server state.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::api::search::Item;
use crate::model::Id;

use crate::config::{RuntimeConfig, WorkspaceKind};
use crate::files::FileLinks;
use crate::limits::{Bucket, Stats, Throttle};
use crate::model::Store;

pub struct Inner {
    pub store: RwLock<Store>,
    pub config: RwLock<RuntimeConfig>,
    pub bucket: Mutex<Bucket>,
    pub stats: Mutex<Stats>,
    pub base_url: String,
    pub file_secret: Vec<u8>,
    pub http: reqwest::Client,
    pub workspace: RwLock<(WorkspaceKind, u64)>,
    /// Bumped on every write access to the store; invalidates `lists`.
    pub generation: AtomicU64,
    pub lists: Mutex<ListCache>,
    /// Progress of the `throttle_after` one-shot (reset whenever the config sets it).
    pub throttle: Mutex<Throttle>,
    /// When control mutations created pages, rows, databases and data sources (for `search_index_lag_secs`).
    pub created_at: Mutex<HashMap<Id, Instant>>,
}

/// Ordered result lists of search and queries, reused across the pages of one listing.
#[derive(Default)]
pub struct ListCache {
    generation: u64,
    search: HashMap<String, Arc<Vec<Item>>>,
    rows: HashMap<String, Arc<Vec<Id>>>,
}

impl ListCache {
    fn check(&mut self, generation: u64) {
        if self.generation != generation || self.search.len() + self.rows.len() > 256 {
            self.generation = generation;
            self.search.clear();
            self.rows.clear();
        }
    }
}

#[derive(Clone)]
pub struct App(pub Arc<Inner>);

impl App {
    pub fn store(&self) -> RwLockReadGuard<'_, Store> {
        self.0.store.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn store_mut(&self) -> RwLockWriteGuard<'_, Store> {
        let guard = self.0.store.write().unwrap_or_else(|e| e.into_inner());
        self.0.generation.fetch_add(1, Ordering::SeqCst);
        guard
    }

    fn lists(&self) -> MutexGuard<'_, ListCache> {
        let mut l = self.0.lists.lock().unwrap_or_else(|e| e.into_inner());
        l.check(self.0.generation.load(Ordering::SeqCst));
        l
    }

    /// A search result list, computed once per store generation (call with the store read lock held).
    pub fn cached_search(&self, key: String, make: impl FnOnce() -> Vec<Item>) -> Arc<Vec<Item>> {
        if let Some(v) = self.lists().search.get(&key) {
            return v.clone();
        }
        let v = Arc::new(make());
        self.lists().search.insert(key, v.clone());
        v
    }

    /// A query's ordered row ids, computed once per store generation (call with the store read lock held).
    pub fn cached_rows(&self, key: String, make: impl FnOnce() -> Vec<Id>) -> Arc<Vec<Id>> {
        if let Some(v) = self.lists().rows.get(&key) {
            return v.clone();
        }
        let v = Arc::new(make());
        self.lists().rows.insert(key, v.clone());
        v
    }

    pub fn config(&self) -> RuntimeConfig {
        self.0.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_config(&self, cfg: RuntimeConfig) {
        *self.0.config.write().unwrap_or_else(|e| e.into_inner()) = cfg;
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.0.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn bucket(&self) -> MutexGuard<'_, Bucket> {
        self.0.bucket.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn throttle(&self) -> MutexGuard<'_, Throttle> {
        self.0.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn created_at(&self) -> MutexGuard<'_, HashMap<Id, Instant>> {
        self.0.created_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record that a control mutation created these objects now (search hides them for `search_index_lag_secs`).
    pub fn note_created(&self, ids: &[Id]) {
        let now = Instant::now();
        let mut m = self.created_at();
        for id in ids {
            m.insert(*id, now);
        }
    }

    /// Objects created less than `lag` ago (none when `lag` is zero).
    pub fn created_within(&self, lag: Duration) -> HashSet<Id> {
        if lag.is_zero() {
            return HashSet::new();
        }
        let now = Instant::now();
        let m = self.created_at();
        m.iter().filter(|(_, t)| now.saturating_duration_since(**t) < lag).map(|(id, _)| *id).collect()
    }

    /// Forget creation times (the workspace was regenerated).
    pub fn forget_created(&self) {
        self.created_at().clear();
    }

    pub fn file_links(&self) -> FileLinks {
        let ttl = self.0.config.read().unwrap_or_else(|e| e.into_inner()).file_url_ttl_secs;
        FileLinks {
            base_url: self.0.base_url.clone(),
            secret: self.0.file_secret.clone(),
            ttl_secs: ttl,
            now: chrono::Utc::now().timestamp(),
        }
    }

    pub fn workspace(&self) -> (WorkspaceKind, u64) {
        *self.0.workspace.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_workspace(&self, kind: WorkspaceKind, seed: u64) {
        *self.0.workspace.write().unwrap_or_else(|e| e.into_inner()) = (kind, seed);
    }
}

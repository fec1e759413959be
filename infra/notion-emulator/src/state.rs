//! Shared server state.

use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::config::{RuntimeConfig, WorkspaceKind};
use crate::files::FileLinks;
use crate::limits::{Bucket, Stats};
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
}

#[derive(Clone)]
pub struct App(pub Arc<Inner>);

impl App {
    pub fn store(&self) -> RwLockReadGuard<'_, Store> {
        self.0.store.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn store_mut(&self) -> RwLockWriteGuard<'_, Store> {
        self.0.store.write().unwrap_or_else(|e| e.into_inner())
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

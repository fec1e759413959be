//! The API's ports: the small traits it talks to (run book, planner, secrets, event log,
//! handshakes), the values that cross them, the confirmed-token cache, and the in-memory secret
//! store of local runs. The search-engine implementations live in `crate::adapters::search`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{HANDSHAKE_TTL, TOKEN_REFRESH_INTERVAL};
use crate::queue::BoxFuture;
use crate::secrets::SecretString;
use crate::task::{RunKind, TaskMessage};

/// A failure of one of the edges (run store, queue, planner, secret store, event log). Its text is
/// logged, never sent back (it may name internal hosts).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct EdgeError(pub String);

impl EdgeError {
    pub fn new(err: impl std::fmt::Display) -> Self {
        EdgeError(err.to_string())
    }
}

/// The sync-run bookkeeping the API needs (implemented over `runs::RunStore`).
pub trait RunBook: Send + Sync {
    /// Creates a run record in state `planning`; returns its id.
    fn create_run(&self, kind: RunKind) -> BoxFuture<'_, Result<u64, EdgeError>>;
    /// Records tasks as `queued` (before they are sent).
    fn tasks_queued<'a>(&'a self, run_id: u64, tasks: &'a [TaskMessage]) -> BoxFuture<'a, Result<(), EdgeError>>;
    fn planning_done(&self, run_id: u64, planned: u64) -> BoxFuture<'_, Result<(), EdgeError>>;
    /// Closes a run that could not be started, naming why.
    fn fail_run<'a>(&'a self, run_id: u64, reason: &'a str) -> BoxFuture<'a, Result<(), EdgeError>>;
    /// The run as JSON (state, counts, timestamps), or `None` for an unknown id.
    fn run(&self, run_id: u64) -> BoxFuture<'_, Result<Option<Value>, EdgeError>>;
    /// The newest runs, newest first.
    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<Value>, EdgeError>>;
    /// Starts a run for `POST /syncs` (state `planning`). Runs whose lease ran out (a planner killed
    /// mid-planning, a lost finalize chain) are closed as failed first. A full run takes the
    /// full-run lock atomically; any run is refused while a live full run holds it.
    fn start_run(&self, kind: RunKind) -> BoxFuture<'_, Result<RunStart, EdgeError>>;
}

/// What [`RunBook::start_run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStart {
    /// The run is recorded; a full run holds the full-run lock.
    Started(u64),
    /// Refused, nothing recorded: this full run holds the lock.
    FullRunning(u64),
}

/// Starts the planner asynchronously for a run already recorded (`{"kind", "run_id"}`).
pub trait PlannerTrigger: Send + Sync {
    fn start(&self, kind: RunKind, run_id: u64) -> BoxFuture<'_, Result<(), EdgeError>>;
}

/// Where the confirmed webhook verification token is kept (Secrets Manager in AWS). Written only by
/// the operator's `POST /webhooks/notion/confirm`.
pub trait SecretStore: Send + Sync {
    /// Stores the token (merged into the secret, other keys untouched).
    fn store_verification_token<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<(), EdgeError>>;
    /// Reads the currently stored token afresh.
    fn verification_token(&self) -> BoxFuture<'_, Result<Option<SecretString>, EdgeError>>;
}

/// The verification token in memory: the [`SecretStore`] of local runs (secrets from the
/// environment; a confirmed token lives as long as the process) and of tests. Counts its writes
/// and reads.
#[derive(Default)]
pub struct MemorySecretStore {
    token: Mutex<Option<SecretString>>,
    stores: AtomicU64,
    reads: AtomicU64,
}

impl MemorySecretStore {
    /// A store already holding `token` (`None`: none confirmed).
    pub fn new(token: Option<SecretString>) -> Self {
        MemorySecretStore { token: Mutex::new(token), ..Default::default() }
    }

    /// The stored token, as it is now (not counted as a read).
    pub fn token(&self) -> Option<SecretString> {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the stored token (not counted as a write), as the operator editing the secret would.
    pub fn set_token(&self, token: Option<SecretString>) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = token;
    }

    /// How many times [`SecretStore::store_verification_token`] was called.
    pub fn stores(&self) -> u64 {
        self.stores.load(Ordering::SeqCst)
    }

    /// How many times [`SecretStore::verification_token`] was called.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }
}

impl SecretStore for MemorySecretStore {
    fn store_verification_token<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            self.stores.fetch_add(1, Ordering::SeqCst);
            *self.token.lock().map_err(|_| EdgeError("secret lock poisoned".into()))? =
                Some(SecretString::new(token.to_string()));
            Ok(())
        })
    }

    fn verification_token(&self) -> BoxFuture<'_, Result<Option<SecretString>, EdgeError>> {
        Box::pin(async move {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.token.lock().map_err(|_| EdgeError("secret lock poisoned".into()))?.clone())
        })
    }
}

/// Webhook event ids whose tasks were queued, for de-duplication.
pub trait EventLog: Send + Sync {
    /// Whether the id was recorded before.
    fn seen<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<bool, EdgeError>>;
    /// Records the id, once its tasks are queued (a failure before leaves Notion's retry free to
    /// get through). Recording an id twice is no error.
    fn record<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>>;
}

/// A handshake token received but not confirmed by the operator.
#[derive(Clone)]
pub struct PendingHandshake {
    /// Derived from the token (the same token twice is one entry).
    pub id: String,
    pub token: SecretString,
    pub received_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl PendingHandshake {
    pub fn new(token: &SecretString, now: DateTime<Utc>) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("notion-es handshake {}", token.expose()).as_bytes());
        PendingHandshake {
            id: format!("hs-{}", &hex::encode(digest)[..24]),
            token: token.clone(),
            received_at: now,
            expires_at: now + HANDSHAKE_TTL,
        }
    }

    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

impl std::fmt::Debug for PendingHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingHandshake")
            .field("id", &self.id)
            .field("received_at", &self.received_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where pending handshakes are kept (a small index on the search engine). Storage only: bounding
/// and expiry are the handler's.
pub trait HandshakeStore: Send + Sync {
    /// Stores the entry under its id (replacing one with the same id).
    fn put<'a>(&'a self, entry: &'a PendingHandshake) -> BoxFuture<'a, Result<(), EdgeError>>;
    /// Every stored entry, expired ones included, in any order.
    fn all(&self) -> BoxFuture<'_, Result<Vec<PendingHandshake>, EdgeError>>;
    /// Removes an entry; a missing one is no error.
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EdgeError>>;
}

/// The confirmed webhook verification token as this container knows it (`None`: none confirmed,
/// a negative answer cached like a positive one), re-read at most once per
/// [`TOKEN_REFRESH_INTERVAL`].
pub struct TokenCache {
    token: RwLock<Option<SecretString>>,
    last_refresh: Mutex<Option<Instant>>,
}

impl TokenCache {
    pub fn new(token: Option<SecretString>) -> Self {
        TokenCache { token: RwLock::new(token), last_refresh: Mutex::new(None) }
    }

    pub(super) fn get(&self) -> Option<SecretString> {
        self.token.read().map(|t| t.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    pub(super) fn set(&self, token: Option<SecretString>) {
        match self.token.write() {
            Ok(mut t) => *t = token,
            Err(p) => *p.into_inner() = token,
        }
    }

    /// Whether a refresh is allowed now (at most once per interval); marks it done.
    pub(super) fn may_refresh(&self) -> bool {
        let mut last = self.last_refresh.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(at) if at.elapsed() < TOKEN_REFRESH_INTERVAL => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_secret_store_keeps_the_token_and_counts_calls() {
        let store = MemorySecretStore::default();
        assert!(store.verification_token().await.unwrap().is_none());
        store.store_verification_token("secret_one").await.unwrap();
        assert_eq!(store.verification_token().await.unwrap().as_ref().map(SecretString::expose), Some("secret_one"));
        store.set_token(Some(SecretString::new("secret_two")));
        assert_eq!(store.token().as_ref().map(SecretString::expose), Some("secret_two"));
        assert_eq!((store.stores(), store.reads()), (1, 2));
        let preset = MemorySecretStore::new(Some(SecretString::new("secret_preset")));
        assert_eq!(preset.token().as_ref().map(SecretString::expose), Some("secret_preset"));
        assert_eq!((preset.stores(), preset.reads()), (0, 0));
    }
}

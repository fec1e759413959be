//! Request counters kept on the client (shared by its clones).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default)]
pub(crate) struct Stats {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    connection_errors: AtomicU64,
    timeouts: AtomicU64,
    pacer_wait_us: AtomicU64,
    backoff_wait_us: AtomicU64,
}

/// A point-in-time copy of the client's counters (what a task record stores).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// HTTP requests sent (every attempt).
    pub requests: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// 429 and 529 responses.
    pub rate_limited: u64,
    /// 5xx responses (529 excluded).
    pub server_errors: u64,
    /// Refused or dropped connections.
    pub connection_errors: u64,
    /// Requests that hit the per-request timeout.
    pub timeouts: u64,
    /// Time spent waiting for the pacer, `Retry-After` pauses included, in ms (summed over concurrent callers).
    pub pacer_wait_ms: u64,
    /// Time spent sleeping between retries of transient failures, in ms.
    pub backoff_wait_ms: u64,
}

impl StatsSnapshot {
    /// The counts accumulated since `earlier` (e.g. during one task, on a client shared by a container).
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.saturating_sub(earlier.requests),
            retries: self.retries.saturating_sub(earlier.retries),
            rate_limited: self.rate_limited.saturating_sub(earlier.rate_limited),
            server_errors: self.server_errors.saturating_sub(earlier.server_errors),
            connection_errors: self.connection_errors.saturating_sub(earlier.connection_errors),
            timeouts: self.timeouts.saturating_sub(earlier.timeouts),
            pacer_wait_ms: self.pacer_wait_ms.saturating_sub(earlier.pacer_wait_ms),
            backoff_wait_ms: self.backoff_wait_ms.saturating_sub(earlier.backoff_wait_ms),
        }
    }
}

tokio::task_local! {
    /// Retries made inside [`counting_retries`] (on any client).
    static TASK_RETRIES: AtomicU64;
}

/// Runs `future` and returns its output with the number of Notion request retries made while it
/// ran, by it alone: a worker's concurrent tasks share one client, whose counters mix them.
/// (Work `tokio::spawn`ed from inside is not counted.)
pub async fn counting_retries<F: std::future::Future>(future: F) -> (F::Output, u64) {
    TASK_RETRIES
        .scope(AtomicU64::new(0), async move {
            let output = future.await;
            (output, TASK_RETRIES.with(|n| n.load(Ordering::Relaxed)))
        })
        .await
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Stats {
    pub(crate) fn request(&self) {
        add(&self.requests, 1);
    }
    pub(crate) fn retry(&self) {
        add(&self.retries, 1);
        let _ = TASK_RETRIES.try_with(|n| add(n, 1));
    }
    pub(crate) fn rate_limited(&self) {
        add(&self.rate_limited, 1);
    }
    pub(crate) fn server_error(&self) {
        add(&self.server_errors, 1);
    }
    pub(crate) fn connection_error(&self) {
        add(&self.connection_errors, 1);
    }
    pub(crate) fn timeout(&self) {
        add(&self.timeouts, 1);
    }
    pub(crate) fn pacer_wait(&self, d: Duration) {
        add(&self.pacer_wait_us, micros(d));
    }
    pub(crate) fn backoff_wait(&self, d: Duration) {
        add(&self.backoff_wait_us, micros(d));
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: get(&self.requests),
            retries: get(&self.retries),
            rate_limited: get(&self.rate_limited),
            server_errors: get(&self.server_errors),
            connection_errors: get(&self.connection_errors),
            timeouts: get(&self.timeouts),
            pacer_wait_ms: get(&self.pacer_wait_us) / 1000,
            backoff_wait_ms: get(&self.backoff_wait_us) / 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_are_counted_per_task() {
        let s = std::sync::Arc::new(Stats::default());
        let (a, b) = (s.clone(), s.clone());
        let ((_, first), (_, second)) = tokio::join!(
            counting_retries(async move {
                a.retry();
                tokio::task::yield_now().await;
                a.retry();
            }),
            counting_retries(async move { b.retry() }),
        );
        s.retry(); // outside any task
        assert_eq!((first, second, s.snapshot().retries), (2, 1, 4));
    }

    #[test]
    fn snapshot_and_delta() {
        let s = Stats::default();
        s.request();
        let before = s.snapshot();
        s.request();
        s.retry();
        s.rate_limited();
        s.pacer_wait(Duration::from_millis(1500));
        let after = s.snapshot();
        assert_eq!(after.requests, 2);
        let d = after.since(&before);
        assert_eq!((d.requests, d.retries, d.rate_limited, d.pacer_wait_ms), (1, 1, 1, 1500));
        let json = serde_json::to_value(d).unwrap();
        assert_eq!(json["requests"], 1);
    }
}

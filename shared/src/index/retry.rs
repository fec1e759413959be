//! Retry policy as data plus pure decisions (the delays are [`crate::backoff`]'s); the loops that sleep live in
//! `client` and `store`.

use std::time::Duration;

use crate::backoff::Backoff;

/// Capped exponential backoff with jitter, bounded in total time.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the first retry (before jitter).
    pub initial: Duration,
    /// Cap of one delay.
    pub max_delay: Duration,
    /// Whole-request failures (connection refused, 429/5xx, timeouts) are retried until this much
    /// time has passed since the first attempt; then the call fails with `Unavailable`.
    pub max_elapsed: Duration,
    /// Sends of one bulk item (first included) before an item-level 429/5xx is reported as failed.
    pub item_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(120),
            item_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The whole-request backoff: `initial` doubling up to `max_delay`, within `max_elapsed`.
    pub fn schedule(&self) -> Backoff {
        Backoff::new(self.initial, self.max_delay).max_elapsed(self.max_elapsed)
    }

    /// Delay before retry number `attempt` (0 = first retry): `initial * 2^attempt`, capped, then
    /// "equal jitter" — half fixed, half scaled by `jitter` in `[0, 1]` ([`Backoff::delay`]).
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        self.schedule().delay(attempt, jitter)
    }

    /// The delay before the next whole-request retry, or `None` when the time budget is spent
    /// (the delay would end past `max_elapsed`).
    pub fn next_delay(&self, attempt: u32, elapsed: Duration, jitter: f64) -> Option<Duration> {
        self.schedule().next_delay(attempt, elapsed, jitter)
    }

    /// A policy for tests: tiny delays, short budget.
    pub fn fast() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            max_elapsed: Duration::from_secs(2),
            item_attempts: 4,
        }
    }
}

/// Whether a whole-request HTTP status is worth retrying: 408, 429 and 5xx (except 501, 505).
/// 413 (request too large) is not: sending it again cannot help.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..600).contains(&status) && !matches!(status, 501 | 505)
}

pub use crate::backoff::jitter;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let p = RetryPolicy {
            initial: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(5),
            item_attempts: 3,
        };
        let cases = [
            (0, 0.0, 50),
            (0, 1.0, 100),
            (1, 0.0, 100),
            (2, 0.5, 300),
            (3, 1.0, 800),
            (4, 1.0, 1000),
            (40, 0.0, 500),
            (u32::MAX, 1.0, 1000),
        ];
        for (attempt, jitter, ms) in cases {
            assert_eq!(p.backoff(attempt, jitter), Duration::from_millis(ms), "attempt {attempt} jitter {jitter}");
        }
    }

    #[test]
    fn retries_stop_when_the_time_budget_is_spent() {
        let p = RetryPolicy {
            initial: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(5),
            item_attempts: 3,
        };
        assert_eq!(p.next_delay(0, Duration::ZERO, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(p.next_delay(5, Duration::from_millis(4000), 1.0), Some(Duration::from_secs(1)));
        assert_eq!(p.next_delay(5, Duration::from_millis(4001), 1.0), None);
    }

    #[test]
    fn request_statuses() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 201, 400, 401, 403, 404, 409, 413, 501, 505] {
            assert!(!retryable_status(s), "{s}");
        }
    }
}

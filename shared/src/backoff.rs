//! Capped exponential backoff with "equal jitter", as data plus pure functions; the loops that sleep live with their
//! transports (the Notion client, the search engine client and bulk sender, the SQS send loop).
//!
//! Retry number `attempt` (0 = first retry) waits `step = min(cap, base · 2^attempt)`, of which half is fixed and
//! half scaled by `jitter` in `[0, 1]`, so that callers refused together do not all come back at the same moment
//! and no wait is shorter than half its step.

use std::time::Duration;

/// The doubling stops at `2^MAX_EXPONENT` (a `u32` factor cannot hold more; the cap is reached long before).
const MAX_EXPONENT: u32 = 30;

/// A backoff policy: how the delays grow and when retrying stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Step of the first retry (before jitter); doubled per retry.
    pub base: Duration,
    /// Largest step.
    pub cap: Duration,
    /// Retries allowed (`None`: no limit on the count).
    pub max_attempts: Option<u32>,
    /// Retrying stops when the next delay would end later than this after the first attempt (`None`: no limit).
    pub max_elapsed: Option<Duration>,
}

impl Backoff {
    /// `base` doubling up to `cap`, with no limit on retries.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Backoff { base, cap, max_attempts: None, max_elapsed: None }
    }

    /// The same policy, giving up after `attempts` retries.
    pub const fn max_attempts(self, attempts: u32) -> Self {
        Backoff { max_attempts: Some(attempts), ..self }
    }

    /// The same policy, giving up when a delay would end past `elapsed` since the first attempt.
    pub const fn max_elapsed(self, elapsed: Duration) -> Self {
        Backoff { max_elapsed: Some(elapsed), ..self }
    }

    /// The step of retry `attempt` before jitter: `min(cap, base · 2^attempt)`.
    pub fn step(&self, attempt: u32) -> Duration {
        self.base.saturating_mul(2u32.saturating_pow(attempt.min(MAX_EXPONENT))).min(self.cap)
    }

    /// The delay before retry `attempt` (0 = first retry): half the step fixed, half scaled by `jitter` in
    /// `[0, 1]` (out-of-range values are clamped, a value that is not a number counts as 1).
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let step = self.step(attempt);
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 1.0 };
        step / 2 + step.mul_f64(jitter / 2.0)
    }

    /// The delay before retry `attempt` when `elapsed` has passed since the first attempt, or `None` when retrying
    /// is over: `max_attempts` retries made, or the delay would end past `max_elapsed`.
    pub fn next_delay(&self, attempt: u32, elapsed: Duration, jitter: f64) -> Option<Duration> {
        if self.max_attempts.is_some_and(|max| attempt >= max) {
            return None;
        }
        let delay = self.delay(attempt, jitter);
        match self.max_elapsed {
            Some(max) if elapsed.saturating_add(delay) > max => None,
            _ => Some(delay),
        }
    }
}

/// A random jitter in `[0, 1]`.
pub fn jitter() -> f64 {
    rand::random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(m: u64) -> Duration {
        Duration::from_millis(m)
    }

    #[test]
    fn delays_double_cap_and_jitter() {
        let b = Backoff::new(ms(100), ms(1000));
        // (attempt, jitter, delay in ms)
        let cases = [
            (0, 0.0, 50),
            (0, 0.5, 75),
            (0, 1.0, 100),
            (1, 0.0, 100),
            (2, 0.5, 300),
            (3, 1.0, 800),
            (4, 1.0, 1000),
            (4, 0.0, 500),
            (40, 0.0, 500),
            (u32::MAX, 1.0, 1000),
            // Clamped and non-finite jitters.
            (0, 7.0, 100),
            (0, -1.0, 50),
            (0, f64::NAN, 100),
            (0, f64::INFINITY, 100),
        ];
        for (attempt, jitter, expected) in cases {
            assert_eq!(b.delay(attempt, jitter), ms(expected), "attempt {attempt} jitter {jitter}");
        }
    }

    #[test]
    fn no_cap_stops_doubling_at_two_to_the_thirty() {
        let b = Backoff::new(ms(1), Duration::MAX);
        assert_eq!(b.step(30), ms(1 << 30));
        assert_eq!(b.step(u32::MAX), ms(1 << 30));
        assert_eq!(Backoff::new(Duration::MAX, Duration::MAX).step(3), Duration::MAX);
    }

    #[test]
    fn delays_stay_within_half_a_step_and_the_cap() {
        let b = Backoff::new(ms(500), Duration::from_secs(30));
        for attempt in 0..40 {
            for jitter in [0.0, 0.25, 0.5, 0.99, 1.0] {
                let d = b.delay(attempt, jitter);
                assert!(d >= b.step(attempt) / 2 && d <= b.step(attempt) && d <= b.cap, "{attempt} {jitter} {d:?}");
            }
        }
    }

    #[test]
    fn retrying_stops_at_the_attempt_or_time_budget() {
        let unlimited = Backoff::new(ms(100), ms(1000));
        assert_eq!(unlimited.next_delay(1000, Duration::from_secs(86_400), 1.0), Some(ms(1000)));

        let counted = unlimited.max_attempts(3);
        assert_eq!(counted.next_delay(2, Duration::ZERO, 1.0), Some(ms(400)));
        assert_eq!(counted.next_delay(3, Duration::ZERO, 1.0), None);

        let timed = unlimited.max_elapsed(Duration::from_secs(5));
        assert_eq!(timed.next_delay(0, Duration::ZERO, 1.0), Some(ms(100)));
        assert_eq!(timed.next_delay(5, ms(4000), 1.0), Some(ms(1000)), "ending exactly at the budget is allowed");
        assert_eq!(timed.next_delay(5, ms(4001), 1.0), None);
        assert_eq!(timed.next_delay(0, Duration::MAX, 0.0), None);
    }

    #[test]
    fn jitter_is_in_the_unit_interval() {
        for _ in 0..100 {
            assert!((0.0..=1.0).contains(&jitter()));
        }
    }
}

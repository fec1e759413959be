//! Retry policy as data plus a pure decision function (the loop that sleeps lives in `client.rs`).
//!
//! - 429 `rate_limited` / 529 `service_overload`: wait `Retry-After` (or a backoff when absent); no cap on the
//!   count, only on the total time spent waiting ([`RetryPolicy::rate_limit_budget`]).
//! - 409 `conflict_error`, 500, 502, 503, 504, Cloudflare's 520–524, timeouts, refused and dropped connections:
//!   capped exponential backoff with jitter, at most [`RetryPolicy::max_transient_retries`] times (a `Retry-After`
//!   on these is honoured too).
//! - Answers that are not Notion's (no JSON error `code`: an edge/CDN page, typically Cloudflare HTML with
//!   `cf-ray`): any 5xx but 501, and 403 ("Sorry, you have been blocked"), are transient as well. Notion itself
//!   always answers a JSON error object, so such a page says nothing about the request, only about the path to it.
//! - Everything else (400, 401, a JSON 403 `restricted_resource`, 404, 501, ...): never retried.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::error::TransportKind;

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries of transient failures (5xx, 409, timeouts, connection errors) per request.
    pub max_transient_retries: u32,
    /// First backoff delay; doubled per retry.
    pub base_delay: Duration,
    /// Cap of one backoff delay (and of a `Retry-After` on a 5xx).
    pub max_delay: Duration,
    /// Total time one request may spend waiting on 429/529 before it gives up.
    pub rate_limit_budget: Duration,
    /// Shortest wait after a 429/529 that carried no usable `Retry-After`.
    pub min_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_transient_retries: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            rate_limit_budget: Duration::from_secs(15 * 60),
            min_rate_limit_wait: Duration::from_secs(1),
        }
    }
}

/// A failed attempt, as the decision function sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// A non-2xx answer. `notion_error`: the body was a Notion error object (JSON with a `code`); false for an
    /// edge/CDN page (Cloudflare HTML) or an empty body, which are classified differently (see [`classify`]).
    Status { status: u16, retry_after: Option<Duration>, notion_error: bool },
    /// No response.
    Transport(TransportKind),
}

/// What has been spent on this request so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RetryState {
    pub transient_retries: u32,
    pub rate_limited_retries: u32,
    pub rate_limit_waited: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Rate limited: pause the whole client for `wait`, then try again.
    RateLimited { wait: Duration },
    /// Transient failure: sleep `delay`, then try again.
    Backoff { delay: Duration },
    /// Return the error.
    GiveUp,
}

/// How a status is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Success,
    RateLimited,
    Transient,
    Permanent,
}

/// How an answer is treated, given whether its body was a Notion error object (JSON with a `code`).
///
/// Cloudflare fronts Notion: 520–524 are its "origin unreachable / timed out" pages (HTML), real and transient
/// (openclaw/notcrawl#48). Any other 5xx without a Notion body is the same kind of edge failure, except 501 (a
/// method the server will never support). A 403 without a Notion body is Cloudflare's bot block page, which comes
/// and goes with the egress IP: retried a bounded number of times, whereas Notion's JSON 403
/// (`restricted_resource`) is a missing capability that no retry fixes.
pub fn classify(status: u16, notion_error: bool) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        429 | 529 => StatusClass::RateLimited,
        409 | 500 | 502 | 503 | 504 | 520..=524 => StatusClass::Transient,
        501 => StatusClass::Permanent,
        500..=599 | 403 if !notion_error => StatusClass::Transient,
        _ => StatusClass::Permanent,
    }
}

/// [`classify`] for an answer carrying a Notion error body.
pub fn classify_status(status: u16) -> StatusClass {
    classify(status, true)
}

/// Whether a status with a Notion error body is retried (see [`classify`] for non-Notion bodies).
pub fn is_retryable_status(status: u16) -> bool {
    is_retryable_answer(status, true)
}

/// Whether an answer is retried, given whether its body was a Notion error object.
pub fn is_retryable_answer(status: u16, notion_error: bool) -> bool {
    matches!(classify(status, notion_error), StatusClass::RateLimited | StatusClass::Transient)
}

/// `min(max_delay, base · 2^n)`, scaled by `0.5 + jitter / 2` ("equal jitter": never below half the step).
/// `jitter` is a sample from `[0, 1]` (out-of-range values are clamped). See [`crate::backoff::Backoff::delay`].
pub fn backoff_delay(policy: &RetryPolicy, n: u32, jitter: f64) -> Duration {
    crate::backoff::Backoff::new(policy.base_delay, policy.max_delay).delay(n, jitter)
}

/// The pure retry decision.
pub fn decide(policy: &RetryPolicy, failure: Failure, state: &RetryState, jitter: f64) -> Decision {
    match failure {
        Failure::Status { status, retry_after, notion_error } => match classify(status, notion_error) {
            StatusClass::RateLimited => {
                let wait = match retry_after {
                    Some(wait) => wait,
                    None => backoff_delay(policy, state.rate_limited_retries, jitter).max(policy.min_rate_limit_wait),
                };
                if state.rate_limit_waited.saturating_add(wait) > policy.rate_limit_budget {
                    Decision::GiveUp
                } else {
                    Decision::RateLimited { wait }
                }
            }
            StatusClass::Transient => transient(policy, state, jitter, retry_after),
            StatusClass::Success | StatusClass::Permanent => Decision::GiveUp,
        },
        Failure::Transport(kind) if kind.is_retryable() => transient(policy, state, jitter, None),
        Failure::Transport(_) => Decision::GiveUp,
    }
}

fn transient(policy: &RetryPolicy, state: &RetryState, jitter: f64, retry_after: Option<Duration>) -> Decision {
    if state.transient_retries >= policy.max_transient_retries {
        return Decision::GiveUp;
    }
    let backoff = backoff_delay(policy, state.transient_retries, jitter);
    let delay = match retry_after {
        Some(after) => backoff.max(after.min(policy.max_delay)),
        None => backoff,
    };
    Decision::Backoff { delay }
}

/// Parses a `Retry-After` value: delta-seconds (`"2"`, also a lenient `"1.5"`) or an HTTP-date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`, a date in the past meaning "now"). `None` when unusable.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::try_from_secs_f64(secs).ok()).flatten();
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    let now: DateTime<Utc> = now.into();
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn ms(m: u64) -> Duration {
        Duration::from_millis(m)
    }

    /// An answer with a Notion error body.
    fn status(status: u16, retry_after: Option<u64>) -> Failure {
        Failure::Status { status, retry_after: retry_after.map(secs), notion_error: true }
    }

    /// An answer without one (Cloudflare HTML, an empty body).
    fn edge(status: u16, retry_after: Option<u64>) -> Failure {
        Failure::Status { status, retry_after: retry_after.map(secs), notion_error: false }
    }

    fn state(transient: u32, limited: u32, waited: u64) -> RetryState {
        RetryState { transient_retries: transient, rate_limited_retries: limited, rate_limit_waited: secs(waited) }
    }

    #[test]
    fn decision_table() {
        let p = RetryPolicy::default();
        use Decision::*;
        // (failure, state, jitter, expected)
        let cases: Vec<(Failure, RetryState, f64, Decision)> = vec![
            // Rate limits obey Retry-After, whatever the count, within the time budget.
            (status(429, Some(2)), state(0, 0, 0), 0.3, RateLimited { wait: secs(2) }),
            (status(429, Some(2)), state(0, 500, 0), 0.3, RateLimited { wait: secs(2) }),
            (status(429, Some(2)), state(6, 0, 0), 0.3, RateLimited { wait: secs(2) }),
            (status(529, Some(30)), state(0, 3, 60), 0.9, RateLimited { wait: secs(30) }),
            (status(429, Some(0)), state(0, 0, 0), 0.5, RateLimited { wait: secs(0) }),
            // ... no header: backoff, at least min_rate_limit_wait.
            (status(429, None), state(0, 0, 0), 0.0, RateLimited { wait: secs(1) }),
            (status(429, None), state(0, 3, 0), 1.0, RateLimited { wait: secs(4) }),
            // ... budget exhausted.
            (status(429, Some(10)), state(0, 90, 895), 0.5, GiveUp),
            (status(429, Some(3600)), state(0, 0, 0), 0.5, GiveUp),
            (status(429, Some(5)), state(0, 10, 895), 0.5, RateLimited { wait: secs(5) }),
            // Transient: capped exponential backoff with (equal) jitter.
            (status(500, None), state(0, 0, 0), 1.0, Backoff { delay: ms(500) }),
            (status(500, None), state(0, 0, 0), 0.0, Backoff { delay: ms(250) }),
            (status(502, None), state(1, 0, 0), 1.0, Backoff { delay: secs(1) }),
            (status(503, None), state(2, 0, 0), 1.0, Backoff { delay: secs(2) }),
            (status(504, None), state(5, 0, 0), 1.0, Backoff { delay: secs(16) }),
            (status(409, None), state(0, 0, 0), 1.0, Backoff { delay: ms(500) }),
            // ... a Retry-After on a 503 is honoured (capped by max_delay).
            (status(503, Some(5)), state(0, 0, 0), 1.0, Backoff { delay: secs(5) }),
            (status(503, Some(600)), state(0, 0, 0), 1.0, Backoff { delay: secs(30) }),
            // ... capped count.
            (status(500, None), state(6, 0, 0), 0.5, GiveUp),
            (status(503, Some(1)), state(6, 0, 0), 0.5, GiveUp),
            // Transport errors.
            (Failure::Transport(TransportKind::Timeout), state(0, 0, 0), 1.0, Backoff { delay: ms(500) }),
            (Failure::Transport(TransportKind::Connect), state(3, 0, 0), 1.0, Backoff { delay: secs(4) }),
            (Failure::Transport(TransportKind::Dropped), state(5, 0, 0), 1.0, Backoff { delay: secs(16) }),
            (Failure::Transport(TransportKind::Dropped), state(6, 0, 0), 1.0, GiveUp),
            (Failure::Transport(TransportKind::Other), state(0, 0, 0), 1.0, GiveUp),
            // Never retried.
            (status(400, None), state(0, 0, 0), 0.5, GiveUp),
            (status(401, None), state(0, 0, 0), 0.5, GiveUp),
            (status(403, None), state(0, 0, 0), 0.5, GiveUp),
            (status(404, None), state(0, 0, 0), 0.5, GiveUp),
            (status(404, Some(1)), state(0, 0, 0), 0.5, GiveUp),
            (status(501, None), state(0, 0, 0), 0.5, GiveUp),
            // Cloudflare 520-524 are transient, HTML or not, and capped like any transient failure.
            (edge(520, None), state(0, 0, 0), 1.0, Backoff { delay: ms(500) }),
            (edge(521, None), state(1, 0, 0), 1.0, Backoff { delay: secs(1) }),
            (edge(522, None), state(2, 0, 0), 1.0, Backoff { delay: secs(2) }),
            (edge(523, None), state(0, 0, 0), 1.0, Backoff { delay: ms(500) }),
            (edge(524, None), state(0, 0, 0), 1.0, Backoff { delay: ms(500) }),
            (status(524, None), state(0, 0, 0), 1.0, Backoff { delay: ms(500) }),
            (edge(524, None), state(6, 0, 0), 1.0, GiveUp),
            // ... and any other 5xx without a Notion body, except 501; with a Notion body they stay permanent.
            (edge(530, None), state(0, 0, 0), 1.0, Backoff { delay: ms(500) }),
            (edge(599, None), state(0, 0, 0), 1.0, Backoff { delay: ms(500) }),
            (status(530, None), state(0, 0, 0), 1.0, GiveUp),
            (status(507, None), state(0, 0, 0), 1.0, GiveUp),
            (edge(501, None), state(0, 0, 0), 1.0, GiveUp),
            // ... an HTML 502/503 as before; a Retry-After on an edge 503 is honoured too.
            (edge(502, None), state(0, 0, 0), 1.0, Backoff { delay: ms(500) }),
            (edge(503, Some(5)), state(0, 0, 0), 1.0, Backoff { delay: secs(5) }),
            // A 403 without a Notion body (Cloudflare block page) is retried a bounded number of times; Notion's
            // JSON 403 `restricted_resource` never.
            (edge(403, None), state(0, 0, 0), 1.0, Backoff { delay: ms(500) }),
            (edge(403, None), state(5, 0, 0), 1.0, Backoff { delay: secs(16) }),
            (edge(403, None), state(6, 0, 0), 1.0, GiveUp),
            (status(403, Some(1)), state(0, 0, 0), 1.0, GiveUp),
            // Other 4xx without a Notion body stay permanent (a 404 page: wrong base URL; 401: bad token).
            (edge(404, None), state(0, 0, 0), 1.0, GiveUp),
            (edge(401, None), state(0, 0, 0), 1.0, GiveUp),
            (edge(400, None), state(0, 0, 0), 1.0, GiveUp),
            // Rate limits are rate limits whatever the body.
            (edge(429, Some(2)), state(0, 0, 0), 0.3, RateLimited { wait: secs(2) }),
        ];
        for (i, (failure, st, jitter, expected)) in cases.into_iter().enumerate() {
            assert_eq!(decide(&p, failure, &st, jitter), expected, "case {i}: {failure:?} {st:?}");
        }
    }

    #[test]
    fn backoff_is_capped_and_jitter_clamped() {
        let p = RetryPolicy::default();
        assert_eq!(backoff_delay(&p, 10, 1.0), secs(30));
        assert_eq!(backoff_delay(&p, 1000, 1.0), secs(30));
        assert_eq!(backoff_delay(&p, 10, 0.0), secs(15));
        assert_eq!(backoff_delay(&p, 0, 7.0), ms(500));
        assert_eq!(backoff_delay(&p, 0, f64::NAN), ms(500));
        for n in 0..20 {
            for j in [0.0, 0.25, 0.99] {
                let d = backoff_delay(&p, n, j);
                assert!(d <= p.max_delay && d >= p.base_delay / 2, "{n} {j} {d:?}");
            }
        }
    }

    #[test]
    fn status_classes() {
        assert_eq!(classify_status(200), StatusClass::Success);
        assert_eq!(classify_status(204), StatusClass::Success);
        assert_eq!(classify_status(429), StatusClass::RateLimited);
        assert_eq!(classify_status(529), StatusClass::RateLimited);
        for s in [409, 500, 502, 503, 504] {
            assert_eq!(classify_status(s), StatusClass::Transient, "{s}");
        }
        for s in [301, 400, 401, 403, 404, 405, 422, 501, 505, 507] {
            assert_eq!(classify_status(s), StatusClass::Permanent, "{s}");
        }
        for s in [409, 500, 502, 503, 504, 520, 521, 522, 523, 524] {
            assert_eq!(classify(s, true), StatusClass::Transient, "{s} with a Notion body");
            assert_eq!(classify(s, false), StatusClass::Transient, "{s} without");
        }
        for s in [403, 505, 507, 525, 526, 530, 599] {
            assert_eq!(classify(s, false), StatusClass::Transient, "{s} without a Notion body");
        }
        for s in [301, 400, 401, 404, 405, 422, 501] {
            assert_eq!(classify(s, false), StatusClass::Permanent, "{s} without a Notion body");
        }
        assert_eq!(classify(429, false), StatusClass::RateLimited);
        assert_eq!(classify(200, false), StatusClass::Success);
        assert!(is_retryable_answer(403, false) && !is_retryable_answer(403, true));
        assert!(is_retryable_status(524) && !is_retryable_status(501));
    }

    #[test]
    fn retry_after_parsing() {
        let now = SystemTime::UNIX_EPOCH + secs(1_445_412_470); // Wed, 21 Oct 2015 07:27:50 GMT
        assert_eq!(parse_retry_after("2", now), Some(secs(2)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(secs(120)));
        assert_eq!(parse_retry_after("0", now), Some(secs(0)));
        assert_eq!(parse_retry_after("1.5", now), Some(ms(1500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(secs(10)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(secs(0)));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
        assert_eq!(parse_retry_after("inf", now), None);
    }
}

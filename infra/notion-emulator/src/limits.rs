//! Rate limiting (token bucket), fault decisions and request statistics.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::Rng;
use serde::Serialize;

use crate::config::RuntimeConfig;

/// A token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
    params: Option<(f64, f64)>,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket { tokens: 0.0, last: Instant::now(), params: None }
    }
}

impl Bucket {
    /// Take one token at `now`. `Err(seconds)` is how long until one is available.
    pub fn take(&mut self, rate: f64, burst: f64, now: Instant) -> Result<(), f64> {
        if self.params != Some((rate, burst)) {
            // New settings start with a full bucket.
            self.params = Some((rate, burst));
            self.tokens = burst;
            self.last = now;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - self.tokens) / rate)
        }
    }
}

/// Whole seconds to send in `Retry-After` (at least 1).
pub fn retry_after_secs(wait: f64) -> u64 {
    (wait.ceil() as u64).max(1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Drop,
    Status429,
    Status500,
    Status502,
    Status503,
    Status529,
    /// Edge (Cloudflare) answers: HTML with `cf-ray`, no JSON.
    Status504,
    Status520,
    Status521,
    Status522,
    Status523,
    Status524,
    Status403Html,
}

/// Pick a fault (or none) for a roll in [0, 1).
pub fn pick_fault(cfg: &RuntimeConfig, roll: f64) -> Option<Fault> {
    let table = [
        (cfg.drop_connection, Fault::Drop),
        (cfg.fault_429, Fault::Status429),
        (cfg.fault_500, Fault::Status500),
        (cfg.fault_502, Fault::Status502),
        (cfg.fault_503, Fault::Status503),
        (cfg.fault_529, Fault::Status529),
        (cfg.fault_504, Fault::Status504),
        (cfg.fault_520, Fault::Status520),
        (cfg.fault_521, Fault::Status521),
        (cfg.fault_522, Fault::Status522),
        (cfg.fault_523, Fault::Status523),
        (cfg.fault_524, Fault::Status524),
        (cfg.fault_403_html, Fault::Status403Html),
    ];
    let mut acc = 0.0;
    for (p, f) in table {
        acc += p;
        if p > 0.0 && roll < acc {
            return Some(f);
        }
    }
    None
}

/// The state of a `throttle_after` one-shot: requests let through and 429s sent since it was set.
#[derive(Debug, Default, Clone, Copy)]
pub struct Throttle {
    pub passed: u64,
    pub limited: u64,
}

/// What a `throttle_after` one-shot does with the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleStep {
    /// Serve it normally.
    Pass,
    /// Answer 429; `last` when this is the final one (the switch is then cleared).
    Limit { last: bool },
}

impl Throttle {
    /// Count one request against `t` and say what to do with it.
    pub fn step(&mut self, t: &crate::config::ThrottleAfter) -> ThrottleStep {
        if self.passed < t.after_requests {
            self.passed += 1;
            ThrottleStep::Pass
        } else if self.limited < t.count {
            self.limited += 1;
            ThrottleStep::Limit { last: self.limited == t.count }
        } else {
            ThrottleStep::Pass
        }
    }
}

pub fn latency_ms(cfg: &RuntimeConfig) -> u64 {
    let jitter = if cfg.jitter_ms > 0 { rand::thread_rng().gen_range(0..=cfg.jitter_ms) } else { 0 };
    cfg.latency_ms + jitter
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Faults {
    /// Injected 429s (`fault_429`); also counted in `rate_limited`.
    pub status_429: u64,
    pub status_500: u64,
    pub status_502: u64,
    pub status_503: u64,
    pub status_529: u64,
    pub status_504: u64,
    pub status_520: u64,
    pub status_521: u64,
    pub status_522: u64,
    pub status_523: u64,
    pub status_524: u64,
    /// Cloudflare's HTML 403 "Sorry, you have been blocked".
    pub status_403_html: u64,
    pub dropped: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    /// Every `/v1` request received (including those answered 429 or with a fault).
    pub total: u64,
    /// Per endpoint (`METHOD /v1/route/{param}`).
    pub by_endpoint: BTreeMap<String, u64>,
    /// Per response status.
    pub by_status: BTreeMap<String, u64>,
    pub rate_limited: u64,
    pub faults: Faults,
    /// Requests that got added latency.
    pub delayed: u64,
    pub file_downloads: u64,
    pub files_expired: u64,
    pub webhooks_sent: u64,
}

impl Stats {
    pub fn count_request(&mut self, endpoint: &str) {
        self.total += 1;
        *self.by_endpoint.entry(endpoint.to_string()).or_default() += 1;
    }

    pub fn count_status(&mut self, status: u16) {
        *self.by_status.entry(status.to_string()).or_default() += 1;
    }

    pub fn count_fault(&mut self, f: Fault) {
        match f {
            Fault::Drop => self.faults.dropped += 1,
            Fault::Status429 => {
                self.faults.status_429 += 1;
                self.rate_limited += 1;
            }
            Fault::Status500 => self.faults.status_500 += 1,
            Fault::Status502 => self.faults.status_502 += 1,
            Fault::Status503 => self.faults.status_503 += 1,
            Fault::Status529 => self.faults.status_529 += 1,
            Fault::Status504 => self.faults.status_504 += 1,
            Fault::Status520 => self.faults.status_520 += 1,
            Fault::Status521 => self.faults.status_521 += 1,
            Fault::Status522 => self.faults.status_522 += 1,
            Fault::Status523 => self.faults.status_523 += 1,
            Fault::Status524 => self.faults.status_524 += 1,
            Fault::Status403Html => self.faults.status_403_html += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_paces() {
        let mut b = Bucket::default();
        let t = Instant::now();
        for _ in 0..3 {
            assert!(b.take(2.0, 3.0, t).is_ok());
        }
        let wait = b.take(2.0, 3.0, t).unwrap_err();
        assert!((wait - 0.5).abs() < 1e-9);
        assert!(b.take(2.0, 3.0, t + Duration::from_millis(500)).is_ok());
        assert!(b.take(2.0, 3.0, t + Duration::from_millis(500)).is_err());
        assert_eq!(retry_after_secs(0.01), 1);
        assert_eq!(retry_after_secs(1.2), 2);
    }

    #[test]
    fn faults_follow_cumulative_probabilities() {
        let cfg = RuntimeConfig { fault_500: 0.25, fault_529: 0.25, ..RuntimeConfig::default() };
        assert_eq!(pick_fault(&cfg, 0.1), Some(Fault::Status500));
        assert_eq!(pick_fault(&cfg, 0.3), Some(Fault::Status529));
        assert_eq!(pick_fault(&cfg, 0.6), None);
        assert_eq!(pick_fault(&RuntimeConfig::default(), 0.0), None);
        let cfg = RuntimeConfig { fault_429: 0.2, ..RuntimeConfig::default() };
        assert_eq!(pick_fault(&cfg, 0.1), Some(Fault::Status429));
        assert_eq!(pick_fault(&cfg, 0.2), None);
        let cfg = RuntimeConfig { fault_524: 0.5, fault_403_html: 0.5, ..RuntimeConfig::default() };
        assert_eq!(pick_fault(&cfg, 0.1), Some(Fault::Status524));
        assert_eq!(pick_fault(&cfg, 0.7), Some(Fault::Status403Html));
    }

    #[test]
    fn throttle_passes_then_limits_then_passes() {
        let t = crate::config::ThrottleAfter { after_requests: 2, retry_after: 60, count: 2 };
        let mut s = Throttle::default();
        let steps: Vec<_> = (0..5).map(|_| s.step(&t)).collect();
        assert_eq!(
            steps,
            [
                ThrottleStep::Pass,
                ThrottleStep::Pass,
                ThrottleStep::Limit { last: false },
                ThrottleStep::Limit { last: true },
                ThrottleStep::Pass
            ]
        );
    }
}

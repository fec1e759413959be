//! Client-side pacing: one pacer per client (shared by its clones), a GCRA limiter from `governor` at the configured
//! average rate with a small burst, a client-wide pause until `Retry-After` has passed after a 429/529, and a
//! multiplicative back-off of the rate (recovering step by step after successes).
//!
//! The limiter runs on a tokio clock, so tests with paused time are deterministic.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub struct PacerConfig {
    /// Average requests per second (e.g. `NOTION_RATE / WORKER_CONCURRENCY`). `f64::INFINITY` disables pacing.
    pub rate: f64,
    /// Share of `rate` actually used (0.97: 3 % below it). Clients that split one budget exactly (N workers at
    /// rate / N against a server bucket of the same rate) never let the server's bucket refill, so any arrival
    /// jitter becomes a 429; a little headroom lets the server's burst absorb it.
    pub headroom: f64,
    /// Requests allowed back to back after an idle period (1 while backed off). 1 = no burst: with several clients
    /// sharing one budget, the sum of their bursts must fit the server's burst, and catching up after idle gaps is
    /// exactly what overruns a shared budget. Paces faster than one request per [`TOLERANT_BELOW`] get at least 2
    /// (see there). A new pacer starts with one slot, not `burst`: the workers of a fan-out all start at once.
    pub burst: u32,
    /// Rate multiplier applied on a rate-limit response (once per episode).
    pub backoff_factor: f64,
    /// The rate never drops below `rate · min_factor`.
    pub min_factor: f64,
    /// Successes needed, while backed off, for one recovery step.
    pub recover_after: u32,
    /// Rate multiplier of one recovery step (capped at the configured rate).
    pub recover_step: f64,
}

impl Default for PacerConfig {
    fn default() -> Self {
        PacerConfig {
            rate: 3.0,
            headroom: 0.97,
            burst: 1,
            backoff_factor: 0.5,
            min_factor: 0.05,
            recover_after: 20,
            recover_step: 1.25,
        }
    }
}

impl PacerConfig {
    pub fn with_rate(rate: f64) -> Self {
        PacerConfig { rate, ..Self::default() }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.rate.is_nan() || self.rate <= 0.0 {
            return Err(format!("rate must be a positive number of requests per second, got {}", self.rate));
        }
        if !(self.headroom > 0.0 && self.headroom <= 1.0) {
            return Err(format!("headroom must be in (0, 1], got {}", self.headroom));
        }
        if self.burst == 0 {
            return Err("burst must be at least 1".into());
        }
        if !(self.backoff_factor > 0.0 && self.backoff_factor <= 1.0) {
            return Err(format!("backoff_factor must be in (0, 1], got {}", self.backoff_factor));
        }
        if !(self.min_factor > 0.0 && self.min_factor <= 1.0) {
            return Err(format!("min_factor must be in (0, 1], got {}", self.min_factor));
        }
        if !(self.recover_step.is_finite() && self.recover_step >= 1.0) {
            return Err(format!("recover_step must be at least 1, got {}", self.recover_step));
        }
        Ok(())
    }
}

/// Governor clock reading tokio's (pausable) clock as the time since the pacer was built.
#[derive(Debug, Clone, Copy)]
struct TokioClock {
    origin: Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

struct State {
    limiter: Arc<Limiter>,
    factor: f64,
    paused_until: Option<Instant>,
    successes: u32,
    last_backoff: Option<Instant>,
}

pub struct Pacer {
    config: PacerConfig,
    clock: TokioClock,
    state: Mutex<State>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer").field("config", &self.config).field("factor", &self.factor()).finish()
    }
}

impl Pacer {
    pub fn new(config: PacerConfig) -> Result<Self, String> {
        config.validate()?;
        let clock = TokioClock { origin: Instant::now() };
        let limiter = build_limiter(&config, 1.0, clock, Start::OneSlot);
        let state = State { limiter, factor: 1.0, paused_until: None, successes: 0, last_backoff: None };
        Ok(Pacer { config, clock, state: Mutex::new(state) })
    }

    pub fn config(&self) -> &PacerConfig {
        &self.config
    }

    /// Current rate multiplier (1.0 = configured rate).
    pub fn factor(&self) -> f64 {
        self.lock().factor
    }

    /// Current pace in requests per second (headroom and back-off applied).
    pub fn current_rate(&self) -> f64 {
        self.config.rate * self.config.headroom * self.factor()
    }

    /// Waits for a slot (and for any rate-limit pause to end). Returns the time waited.
    pub async fn acquire(&self) -> Duration {
        match self.acquire_before(None).await {
            Ok(waited) => waited,
            Err(past) => past.waited,
        }
    }

    /// [`Pacer::acquire`], except that when the slot (or the end of a rate-limit pause) lies after `deadline` it
    /// returns at once, taking no slot: a caller that cannot wait that long must not use up the budget of those
    /// that can, nor lift the pause, which stays in force for every caller.
    pub async fn acquire_before(&self, deadline: Option<Instant>) -> Result<Duration, PastDeadline> {
        let start = Instant::now();
        loop {
            let (limiter, paused_until) = {
                let state = self.lock();
                (Arc::clone(&state.limiter), state.paused_until)
            };
            let now = Instant::now();
            if let Some(until) = paused_until.filter(|until| *until > now) {
                check_deadline(deadline, now, until - now, start)?;
                tokio::time::sleep_until(until).await;
                continue;
            }
            if !self.config.rate.is_finite() {
                return Ok(start.elapsed());
            }
            match limiter.check() {
                Ok(()) => return Ok(start.elapsed()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    check_deadline(deadline, now, wait, start)?;
                    tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                }
            }
        }
    }

    /// A request got through: while backed off, count towards a recovery step.
    pub fn on_success(&self) {
        let mut state = self.lock();
        if state.factor >= 1.0 {
            return;
        }
        state.successes += 1;
        if state.successes >= self.config.recover_after {
            state.successes = 0;
            state.factor = (state.factor * self.config.recover_step).min(1.0);
            state.limiter = build_limiter(&self.config, state.factor, self.clock, Start::Drained);
            tracing::debug!(
                factor = state.factor,
                rate = self.config.rate * self.config.headroom * state.factor,
                "notion pace recovering"
            );
        }
    }

    /// A 429/529 arrived for a request sent at `sent_at`: pause every caller for `wait` and slow down. Responses to
    /// requests sent before the last back-off belong to the same episode and do not slow down further.
    pub fn on_rate_limited(&self, wait: Duration, sent_at: Instant) {
        let now = Instant::now();
        let mut state = self.lock();
        let until = now + wait;
        state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        state.successes = 0;
        let same_episode = state.last_backoff.is_some_and(|last| sent_at < last);
        if !same_episode {
            state.factor = (state.factor * self.config.backoff_factor).max(self.config.min_factor);
            state.last_backoff = Some(now);
            tracing::warn!(
                factor = state.factor,
                rate = self.config.rate * self.config.headroom * state.factor,
                pause_ms = wait.as_millis() as u64,
                "notion rate limited: pausing and slowing down"
            );
        }
        // A fresh, empty limiter: no burst right after the pause.
        state.limiter = build_limiter(&self.config, state.factor, self.clock, Start::Drained);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// [`Pacer::acquire_before`] gave up: the next slot lies after the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PastDeadline {
    /// Time already waited in this call (for short pacing waits before a pause was seen).
    pub waited: Duration,
    /// The wait still ahead, from now.
    pub wait: Duration,
}

fn check_deadline(deadline: Option<Instant>, now: Instant, wait: Duration, start: Instant) -> Result<(), PastDeadline> {
    match deadline {
        Some(deadline) if !wait.is_zero() && now + wait > deadline => {
            Err(PastDeadline { waited: now.saturating_duration_since(start), wait })
        }
        _ => Ok(()),
    }
}

/// With no tolerance at all, every wake-up a timer tick late is lost for good: 1 ms of a 10 ms slot at 100 req/s is
/// 10 % of the budget. Below this period a limiter keeps one slot of tolerance, which absorbs it; above, the loss is
/// under 2 % and a shared budget is better served by no burst (clients sharing a budget each pace slower than this).
pub const TOLERANT_BELOW: Duration = Duration::from_millis(50);

/// How many slots a new limiter has free.
#[derive(Clone, Copy)]
enum Start {
    /// One request at once, then the pace.
    OneSlot,
    /// None: the first request waits one period (after a rate-limit pause, a recovery step).
    Drained,
}

fn build_limiter(config: &PacerConfig, factor: f64, clock: TokioClock, start: Start) -> Arc<Limiter> {
    let rate = config.rate * config.headroom * factor;
    let period = if rate.is_finite() {
        Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    };
    let period = period.max(Duration::from_nanos(1));
    let burst = if factor < 1.0 {
        1
    } else if period < TOLERANT_BELOW {
        config.burst.max(2)
    } else {
        config.burst.max(1)
    };
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX)).allow_burst(burst);
    let limiter = RateLimiter::direct_with_clock(quota, clock);
    let taken = match start {
        Start::OneSlot => burst.get() - 1,
        Start::Drained => burst.get(),
    };
    if let Some(taken) = NonZeroU32::new(taken) {
        let _ = limiter.check_n(taken);
    }
    Arc::new(limiter)
}

#[cfg(test)]
mod tests;

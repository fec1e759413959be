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
mod tests {
    use super::*;

    fn pacer(rate: f64, burst: u32) -> Pacer {
        Pacer::new(PacerConfig { rate, burst, headroom: 1.0, ..PacerConfig::default() }).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn starts_with_one_slot_then_paces_at_the_configured_rate() {
        let p = pacer(10.0, 3);
        let start = Instant::now();
        for _ in 0..21 {
            p.acquire().await;
        }
        // 1 immediately (not the burst of 3: every worker of a fan-out starts at once), then 20 at 100 ms.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1990) && elapsed <= Duration::from_millis(2010), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn after_an_idle_period_the_burst_goes_back_to_back() {
        let p = pacer(10.0, 2);
        p.acquire().await;
        tokio::time::advance(Duration::from_secs(5)).await;
        let start = Instant::now();
        p.acquire().await;
        p.acquire().await;
        assert!(start.elapsed() < Duration::from_millis(1), "{:?}", start.elapsed());
        p.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(99), "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn only_fast_paces_keep_a_slot_of_tolerance() {
        for (rate, back_to_back) in [(100.0, true), (10.0, false)] {
            let p = pacer(rate, 1);
            p.acquire().await;
            tokio::time::advance(Duration::from_secs(5)).await;
            let start = Instant::now();
            p.acquire().await;
            p.acquire().await;
            assert_eq!(start.elapsed() < Duration::from_millis(1), back_to_back, "{rate}/s: {:?}", start.elapsed());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fractional_rates_work() {
        let p = pacer(0.5, 1);
        let start = Instant::now();
        for _ in 0..3 {
            p.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_secs(4) && elapsed <= Duration::from_millis(4100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_pace() {
        let p = Arc::new(pacer(20.0, 1));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let p = Arc::clone(&p);
                tokio::spawn(async move {
                    for _ in 0..10 {
                        p.acquire().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // 40 slots at 50 ms: the first is free.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1950) && elapsed <= Duration::from_millis(2200), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_pauses_everyone_and_halves_the_pace() {
        let p = pacer(10.0, 2);
        p.acquire().await;
        let sent = Instant::now();
        p.on_rate_limited(Duration::from_secs(3), sent);
        assert_eq!(p.factor(), 0.5);
        let start = Instant::now();
        let waited = p.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(3), "{:?}", start.elapsed());
        assert!(waited >= Duration::from_secs(3));
        // Then 5/s with no burst.
        let start = Instant::now();
        for _ in 0..5 {
            p.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(990) && elapsed <= Duration::from_millis(1100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn one_episode_backs_off_once() {
        let p = pacer(10.0, 2);
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(10)).await;
        p.on_rate_limited(Duration::from_secs(1), sent);
        p.on_rate_limited(Duration::from_secs(2), sent);
        p.on_rate_limited(Duration::from_secs(1), sent);
        assert_eq!(p.factor(), 0.5);
        // The longest pause wins.
        let start = Instant::now();
        p.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(1990), "{:?}", start.elapsed());
        // A request sent after the back-off that is still limited slows down again.
        p.on_rate_limited(Duration::from_secs(1), Instant::now());
        assert_eq!(p.factor(), 0.25);
    }

    #[tokio::test(start_paused = true)]
    async fn recovers_gradually_and_has_a_floor() {
        let p = Pacer::new(PacerConfig {
            rate: 10.0,
            headroom: 1.0,
            recover_after: 3,
            recover_step: 2.0,
            ..PacerConfig::default()
        })
        .unwrap();
        for _ in 0..10 {
            tokio::time::advance(Duration::from_millis(1)).await;
            p.on_rate_limited(Duration::ZERO, Instant::now());
        }
        assert_eq!(p.factor(), 0.05);
        for _ in 0..3 {
            p.on_success();
        }
        assert_eq!(p.factor(), 0.1);
        for _ in 0..3 * 5 {
            p.on_success();
        }
        assert_eq!(p.factor(), 1.0);
        assert_eq!(p.current_rate(), 10.0);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_before_a_deadline_gives_up_without_taking_the_slot() {
        let p = pacer(10.0, 1);
        p.acquire().await;
        p.on_rate_limited(Duration::from_secs(60), Instant::now());
        let start = Instant::now();
        let soon = Some(start + Duration::from_secs(2));
        let past = p.acquire_before(soon).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO, "returned at once");
        assert_eq!(past, PastDeadline { waited: Duration::ZERO, wait: Duration::from_secs(60) });
        // The pause is still in force for callers without a deadline (and after it, their slot is still free).
        let waited = p.acquire_before(Some(start + Duration::from_secs(120))).await.unwrap();
        assert!(waited >= Duration::from_secs(60) && waited <= Duration::from_millis(60_200), "{waited:?}");

        // A slow pace whose next slot lies after the deadline, likewise (10 req/s halved: 200 ms per slot).
        let now = Instant::now();
        let past = p.acquire_before(Some(now + Duration::from_millis(50))).await.unwrap_err();
        assert!(past.wait > Duration::from_millis(50), "{past:?}");
        assert!(p.acquire_before(Some(now + Duration::from_secs(1))).await.is_ok());
        assert!(p.acquire_before(None).await.is_ok());
    }

    #[test]
    fn validates_config() {
        assert!(Pacer::new(PacerConfig::with_rate(0.0)).is_err());
        assert!(Pacer::new(PacerConfig::with_rate(-1.0)).is_err());
        assert!(Pacer::new(PacerConfig::with_rate(f64::NAN)).is_err());
        assert!(Pacer::new(PacerConfig { burst: 0, ..PacerConfig::default() }).is_err());
        assert!(Pacer::new(PacerConfig { headroom: 0.0, ..PacerConfig::default() }).is_err());
        assert!(Pacer::new(PacerConfig { headroom: 1.5, ..PacerConfig::default() }).is_err());
        assert!(Pacer::new(PacerConfig::with_rate(f64::INFINITY)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn infinite_rate_does_not_wait() {
        let p = pacer(f64::INFINITY, 1);
        let start = Instant::now();
        for _ in 0..100 {
            p.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(5), "{:?}", start.elapsed());
    }
}

//! Unit tests of the pacer, on paused tokio time.

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

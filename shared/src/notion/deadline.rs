//! A task-local deadline for the client's waits.
//!
//! Workers run in Lambda with a hard deadline, and real Notion may answer 429 with `Retry-After: 60` or more (the
//! per-workspace limit). Sleeping through that kills the invocation: the SQS message is redelivered and the work
//! redone. Inside [`with_deadline`] the client never starts a wait (rate-limit pause, retry backoff, pacer slot)
//! that would end after the deadline: it returns [`super::NotionError::DeadlineWouldPass`] at once, and the caller
//! hands the work on. Like [`super::counting_retries`], the deadline follows the future, not the client: tasks
//! sharing one client each keep their own, and work `tokio::spawn`ed from inside does not see it.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// Runs `future` with the client's waits bounded by `deadline` (the time by which the invocation must be done
/// with Notion, e.g. the Lambda deadline minus a few seconds). `None` adds no bound. Nested scopes keep the
/// earlier deadline: an inner scope cannot extend an outer one.
pub async fn with_deadline<F: Future>(deadline: Option<Instant>, future: F) -> F::Output {
    let deadline = earliest(current_deadline(), deadline);
    DEADLINE.scope(deadline, future).await
}

/// The deadline in force for the current task, if any.
pub fn current_deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok().flatten()
}

/// Whether a wait of `wait` starting now would end after `deadline` (a wait too long to represent does). No wait
/// never does: a request that needs none still goes out, even once the deadline has passed.
pub(crate) fn would_pass(deadline: Option<Instant>, wait: Duration) -> bool {
    match deadline {
        Some(deadline) if !wait.is_zero() => Instant::now().checked_add(wait).is_none_or(|end| end > deadline),
        _ => false,
    }
}

/// `deadline` on tokio's clock (the pacer's), as far from now as it is on the system clock.
pub(crate) fn on_tokio_clock(deadline: Instant) -> tokio::time::Instant {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let now = tokio::time::Instant::now();
    now.checked_add(remaining).unwrap_or(now + Duration::from_secs(86_400 * 365))
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scopes_nest_and_keep_the_earlier_deadline() {
        assert_eq!(current_deadline(), None);
        let near = Instant::now() + Duration::from_secs(10);
        let far = near + Duration::from_secs(100);
        let seen = with_deadline(Some(near), async {
            let inner_far = with_deadline(Some(far), async { current_deadline() }).await;
            let inner_none = with_deadline(None, async { current_deadline() }).await;
            (current_deadline(), inner_far, inner_none)
        })
        .await;
        assert_eq!(seen, (Some(near), Some(near), Some(near)));
        assert_eq!(with_deadline(Some(far), with_deadline(Some(near), async { current_deadline() })).await, Some(near));
        assert_eq!(with_deadline(None, async { current_deadline() }).await, None);
        assert_eq!(current_deadline(), None);
    }

    #[test]
    fn would_pass_compares_the_end_of_the_wait() {
        let soon = Instant::now() + Duration::from_secs(5);
        assert!(!would_pass(None, Duration::MAX));
        assert!(!would_pass(Some(soon), Duration::from_secs(1)));
        assert!(would_pass(Some(soon), Duration::from_secs(60)));
        assert!(would_pass(Some(soon), Duration::MAX));
        let past = Instant::now() - Duration::from_secs(1);
        assert!(!would_pass(Some(past), Duration::ZERO));
        assert!(would_pass(Some(past), Duration::from_millis(1)));
    }

    #[tokio::test]
    async fn converts_to_the_tokio_clock() {
        let d = on_tokio_clock(Instant::now() + Duration::from_secs(30));
        let left = d.saturating_duration_since(tokio::time::Instant::now());
        assert!(left <= Duration::from_secs(30) && left > Duration::from_secs(29), "{left:?}");
        let past = on_tokio_clock(Instant::now() - Duration::from_secs(30));
        assert!(past <= tokio::time::Instant::now());
    }
}

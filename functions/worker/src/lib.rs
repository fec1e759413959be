//! Worker Lambda's handler: SQS batch of task messages → documents; reports partial batch failures.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use shared::sync::worker::{handle_batch, IncomingMessage};
use shared::sync::SyncContext;

/// Messages of one batch handled at once; each one paces its Notion calls through the shared client.
pub const MESSAGE_CONCURRENCY: usize = 10;

/// Handles the batch, [`MESSAGE_CONCURRENCY`] messages at once, until the invocation's deadline less
/// the margin; the messages that failed are reported in `batchItemFailures`.
pub async fn handler(
    ctx: &SyncContext,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let deadline = deadline(event.context.deadline, ctx.limits.deadline_margin);
    let messages = event.payload.records.into_iter().map(|r| IncomingMessage {
        receive_count: r.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1),
        message_id: r.message_id.unwrap_or_default(),
        body: r.body.unwrap_or_default(),
    });
    let failed = handle_batch(ctx, messages.collect(), deadline, MESSAGE_CONCURRENCY).await;
    let batch_item_failures = failed.into_iter().map(|id| {
        let mut f = BatchItemFailure::default();
        f.item_identifier = id;
        f
    });
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = batch_item_failures.collect();
    Ok(response)
}

/// The Lambda deadline (ms since the epoch) as an `Instant`, less the hand-on margin (at most a
/// quarter of the time left, so short timeouts still leave room to work).
/// A deadline already past (clock skew) is now: the batch hands its work on at once instead of
/// working without any deadline.
pub fn deadline(deadline_ms: u64, margin: Duration) -> Option<Instant> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(u64::MAX, |d| d.as_millis() as u64);
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(Instant::now() + left.saturating_sub(margin.min(left / 4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_from_now(offset: i64) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        (now + offset) as u64
    }

    #[test]
    fn the_deadline_keeps_a_margin_and_is_never_missing() {
        let margin = Duration::from_secs(30);
        let left = deadline(ms_from_now(300_000), margin).unwrap() - Instant::now();
        assert!(left > Duration::from_secs(260) && left <= Duration::from_secs(270), "{left:?}");
        // A short timeout keeps three quarters of its time.
        let left = deadline(ms_from_now(8_000), margin).unwrap() - Instant::now();
        assert!(left > Duration::from_secs(5) && left <= Duration::from_secs(6), "{left:?}");
        // Already past: now, not "no deadline".
        let past = deadline(ms_from_now(-5_000), margin).expect("a deadline");
        assert!(past <= Instant::now());
    }
}

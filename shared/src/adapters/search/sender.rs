//! The bulk retry loop: batches sent with bounded concurrency, each batch's 429/5xx items sent
//! again with backoff until they succeed or run out of attempts. Whole-request failures are
//! retried underneath, by [`SearchClient::send`].

use elasticsearch::http::Method;
use futures::stream::{self, StreamExt};

use super::client::{Payload, SearchClient};
use super::path_segment;
use crate::index::bulk::{plan_batches, plan_items, split_refused, BulkLimits, BulkOp, BulkReport, FailedDoc};
use crate::index::retry::jitter;
use crate::index::IndexError;

/// One encoded operation (action line + source line when there is one).
#[derive(Debug, Clone)]
pub struct EncodedOp {
    pub id: String,
    pub bytes: Vec<u8>,
}

/// What a bulk send did; `deleted` counts deletions that found their document.
#[derive(Debug, Clone, Default)]
pub struct BulkOutcome {
    pub report: BulkReport,
    pub deleted: u64,
}

const FILTER_PATH: &str = "errors,items.*._id,items.*.status,items.*.result,items.*.error";

/// Sends `ops` to `index` in batches bounded by `limits`. Item failures are reported, not
/// errors; an error means a whole request could not be completed within the retry budget.
pub async fn send_bulk(
    client: &SearchClient,
    index: &str,
    op: BulkOp,
    ops: &[EncodedOp],
    limits: &BulkLimits,
) -> Result<BulkOutcome, IndexError> {
    let sizes: Vec<usize> = ops.iter().map(|o| o.bytes.len()).collect();
    let batches = plan_batches(&sizes, limits);
    let results: Vec<Result<BulkOutcome, IndexError>> = stream::iter(batches)
        .map(|range| send_batch(client, index, op, ops, range.collect()))
        .buffer_unordered(limits.concurrency.max(1))
        .collect()
        .await;
    let mut total = BulkOutcome::default();
    for result in results {
        let outcome = result?;
        total.report.merge(outcome.report);
        total.deleted += outcome.deleted;
    }
    Ok(total)
}

/// Sends one planned batch. A request the engine refuses as too large (413) is split in halves
/// and each half sent on its own, so only a document too large by itself fails (reported, not an
/// error), never the documents that were batched with it.
async fn send_batch(
    client: &SearchClient,
    index: &str,
    op: BulkOp,
    ops: &[EncodedOp],
    pending: Vec<usize>,
) -> Result<BulkOutcome, IndexError> {
    let mut out = BulkOutcome::default();
    let mut parts = vec![pending];
    while let Some(part) = parts.pop() {
        let (outcome, refused) = send_part(client, index, op, ops, part).await?;
        out.report.merge(outcome.report);
        out.deleted += outcome.deleted;
        if let Some((first, second)) = refused {
            tracing::info!(
                index,
                first = first.len(),
                second = second.len(),
                "bulk request too large (HTTP 413); splitting it"
            );
            parts.push(second);
            parts.push(first);
        }
    }
    Ok(out)
}

/// The outcome of one request's retry rounds, and the two halves to send again when a round was
/// refused as too large.
type PartResult = (BulkOutcome, Option<(Vec<usize>, Vec<usize>)>);

async fn send_part(
    client: &SearchClient,
    index: &str,
    op: BulkOp,
    ops: &[EncodedOp],
    mut pending: Vec<usize>,
) -> Result<PartResult, IndexError> {
    let policy = client.retry_policy().clone();
    let path = format!("{}/_bulk", path_segment(index));
    let query = [("filter_path", FILTER_PATH.to_string())];
    let mut out = BulkOutcome::default();
    let mut attempt: u32 = 0;
    while !pending.is_empty() {
        let mut body = Vec::with_capacity(pending.iter().map(|&i| ops[i].bytes.len()).sum());
        for &i in &pending {
            body.extend_from_slice(&ops[i].bytes);
        }
        let reply = client.send(Method::Post, &path, &query, Some(Payload::NdJson(&body)), None).await?;
        if reply.status == 413 {
            // Too large for the engine's http.max_content_length: sending it again cannot help,
            // sending it in parts can. Items already done in earlier rounds stay in `out`.
            if let Some(halves) = split_refused(&pending) {
                return Ok((out, Some(halves)));
            }
            let reason = format!("request of {} bytes too large for the engine (HTTP 413)", body.len());
            out.report.failed.extend(pending.iter().map(|&i| FailedDoc {
                id: ops[i].id.clone(),
                status: 413,
                reason: reason.clone(),
            }));
            break;
        }
        if !reply.is_success() {
            return Err(reply.refused(&format!("bulk request to {index}")));
        }
        out.report.requests += 1;
        let plan = plan_items(op, &reply.body, &pending)
            .map_err(|detail| IndexError::Protocol { what: format!("bulk request to {index}"), detail })?;
        out.report.indexed += plan.done.len() as u64;
        out.report.skipped += plan.skipped.len() as u64;
        out.deleted += plan.deleted;
        for (i, status, reason) in plan.failed {
            tracing::warn!(index, id = %ops[i].id, status, %reason, "document rejected");
            out.report.failed.push(FailedDoc { id: ops[i].id.clone(), status, reason });
        }
        if plan.retry.is_empty() {
            break;
        }
        attempt += 1;
        if attempt >= policy.item_attempts {
            for (i, status, reason) in plan.retry {
                let reason = format!("gave up after {attempt} attempts: {reason}");
                tracing::warn!(index, id = %ops[i].id, status, %reason, "document not indexed");
                out.report.failed.push(FailedDoc { id: ops[i].id.clone(), status, reason });
            }
            break;
        }
        out.report.retried_items += plan.retry.len() as u64;
        let delay = policy.backoff(attempt - 1, jitter());
        tracing::info!(
            index,
            items = plan.retry.len(),
            attempt,
            delay_ms = delay.as_millis() as u64,
            "retrying bulk items"
        );
        tokio::time::sleep(delay).await;
        pending = plan.retry.into_iter().map(|(i, _, _)| i).collect();
    }
    Ok((out, None))
}

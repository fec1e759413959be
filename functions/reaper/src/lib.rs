//! Reaper Lambda's handler: finalize messages → close the run, deleting stale documents only after a
//! complete, failure-free full sync.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use shared::sync::SyncContext;

/// Handles the finalize messages one after another; a message that fails is reported in
/// `batchItemFailures` (retried by SQS), the others are done.
pub async fn handler(
    ctx: &SyncContext,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let mut response = SqsBatchResponse::default();
    for record in event.payload.records {
        let body = record.body.unwrap_or_default();
        if let Err(err) = shared::sync::reaper::handle_message(ctx, &body).await {
            tracing::error!(error = %err, "finalize message failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

//! Reaper Lambda: finalize messages → close the run, deleting stale documents only after a
//! complete, failure-free full sync.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let ctx = shared::bootstrap::context_from_env(shared::bootstrap::Share::WorkerShare).await?;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
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
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}

//! The work queue and the finalize queue on SQS. SDK types stay in this file.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::queue::{encode_batches, retry_delay, BoxFuture, QueueError, TaskQueue};
use crate::task::{FinalizeMessage, TaskMessage};

/// The work queue and the finalize queue on SQS.
#[derive(Clone)]
pub struct SqsQueues {
    client: aws_sdk_sqs::Client,
    work_url: String,
    finalize_url: String,
}

impl SqsQueues {
    pub fn new(config: &aws_config::SdkConfig, work_url: String, finalize_url: String) -> Self {
        SqsQueues { client: aws_sdk_sqs::Client::new(config), work_url, finalize_url }
    }

    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }

    /// Sends one planned batch (at most 10 bodies, at most `MAX_BATCH_BYTES` in total), visible
    /// after `delay_seconds`. Whole-call errors and refused entries are retried with jittered
    /// backoff (workers refused together do not come back together), up to 5 attempts.
    async fn send_batch(&self, bodies: &[String], delay_seconds: u32) -> Result<(), QueueError> {
        // SQS takes 0..=900 seconds.
        let delay = delay_seconds.min(900) as i32;
        let mut pending: Vec<&String> = bodies.iter().collect();
        for attempt in 0..5u32 {
            if attempt > 0 {
                tokio::time::sleep(retry_delay(attempt - 1, rand::random::<f64>())).await;
            }
            let entries = pending
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(*body)
                        .delay_seconds(delay)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| QueueError(e.to_string()))?;
            let out = match self
                .client
                .send_message_batch()
                .queue_url(&self.work_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => out,
                Err(err) if attempt < 4 => {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&err), attempt, "send_message_batch failed, retrying");
                    continue;
                }
                Err(err) => return Err(QueueError(aws_sdk_sqs::error::DisplayErrorContext(&err).to_string())),
            };
            let failed: Vec<usize> = out.failed().iter().filter_map(|f| f.id().parse().ok()).collect();
            if failed.is_empty() {
                return Ok(());
            }
            if attempt == 4 {
                let first =
                    out.failed().first().map(|f| format!(" (first: {} {})", f.code(), f.message().unwrap_or("")));
                return Err(QueueError(format!(
                    "{} messages refused by SQS{}",
                    failed.len(),
                    first.unwrap_or_default()
                )));
            }
            tracing::warn!(refused = failed.len(), attempt, "SQS refused batch entries, retrying them");
            pending = failed.into_iter().filter_map(|i| pending.get(i).copied()).collect();
        }
        Ok(())
    }
}

impl TaskQueue for SqsQueues {
    fn send_tasks_after<'a>(
        &'a self,
        tasks: &'a [TaskMessage],
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            // Batches are planned by entries (10) and bytes (1 MiB per batch); a body too large for
            // SQS is refused before anything is sent, naming its task. Entries that fail are
            // retried a few times, then reported: a task that was recorded as queued must reach
            // the queue.
            let (bodies, batches) = encode_batches(tasks)?;
            for batch in batches {
                self.send_batch(&bodies[batch], delay_seconds).await?;
            }
            Ok(())
        })
    }

    fn send_finalize<'a>(
        &'a self,
        msg: &'a FinalizeMessage,
        delay_seconds: u32,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            self.client
                .send_message()
                .queue_url(&self.finalize_url)
                .message_body(msg.encode())
                .delay_seconds(delay_seconds.min(900) as i32)
                .send()
                .await
                .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
            Ok(())
        })
    }
}

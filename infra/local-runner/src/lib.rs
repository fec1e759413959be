//! Runs a sync locally the way AWS would: the planner is invoked, then SQS is pumped into the
//! worker and reaper in batches as Lambda's event source mapping does (partial batch failures,
//! visibility timeout, DLQ after `maxReceiveCount` — the redrive itself is SQS's), until the run
//! is closed. Functions are reached through an `Invoker`: `cargo lambda watch` over HTTP, or the
//! handlers in-process (tests).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName,
};
use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};
use shared::runs::{RunRecord, RunState};
use shared::sync::SyncContext;

mod summary;
pub use summary::{summarize, Summary};

pub use shared::ports::BoxFuture;

/// Calls a function by name with a JSON payload and returns its JSON response.
pub trait Invoker: Send + Sync {
    fn invoke<'a>(&'a self, function: &'a str, payload: Value) -> BoxFuture<'a, anyhow::Result<Value>>;
}

/// `cargo lambda watch` (the Lambda Invoke API on 127.0.0.1:9000).
pub struct HttpInvoker {
    client: reqwest::Client,
    base: String,
}

impl HttpInvoker {
    /// `timeout` bounds one invocation, as Lambda's function timeout does: a function process
    /// killed mid-invocation (a reload, a crash) then fails the batch instead of hanging the pump.
    pub fn new(base: impl Into<String>, timeout: Duration) -> Self {
        let client = reqwest::Client::builder().timeout(timeout).build().unwrap_or_default();
        HttpInvoker { client, base: base.into() }
    }
}

impl Invoker for HttpInvoker {
    fn invoke<'a>(&'a self, function: &'a str, payload: Value) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            let url = format!("{}/2015-03-31/functions/{function}/invocations", self.base);
            let response =
                self.client.post(&url).json(&payload).send().await.with_context(|| format!("invoking {function}"))?;
            let status = response.status();
            let function_error = response.headers().contains_key("x-amz-function-error");
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if !status.is_success() || function_error || body.get("errorType").is_some() {
                bail!("{function} failed ({status}): {body}");
            }
            Ok(body)
        })
    }
}

/// The function crates' handlers called directly (tests, `--in-process`): the payload is decoded as
/// Lambda's runtime decodes it, the handler's response encoded back to JSON.
pub struct InProcess {
    pub ctx: Arc<SyncContext>,
    /// Time each worker invocation may run before handing work on (Lambda's timeout less the
    /// margin); `None` = unbounded.
    pub invocation_budget: Option<Duration>,
}

impl InProcess {
    /// The invocation's context: a Lambda deadline that leaves the worker `invocation_budget`.
    fn lambda_context(&self) -> lambda_runtime::Context {
        let mut context = lambda_runtime::Context::default();
        context.deadline = lambda_deadline_ms(self.invocation_budget, self.ctx.limits.deadline_margin);
        context
    }
}

impl Invoker for InProcess {
    fn invoke<'a>(&'a self, function: &'a str, payload: Value) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(async move {
            let context = self.lambda_context();
            match function {
                "planner" => {
                    let event = LambdaEvent::new(payload, context);
                    planner::handler(&self.ctx, event).await.map_err(anyhow::Error::from_boxed)
                }
                "worker" => {
                    let event = LambdaEvent::new(sqs_event(payload)?, context);
                    let response = worker::handler(&self.ctx, event).await.map_err(anyhow::Error::from_boxed)?;
                    Ok(serde_json::to_value(response)?)
                }
                "reaper" => {
                    let event = LambdaEvent::new(sqs_event(payload)?, context);
                    let response = reaper::handler(&self.ctx, event).await.map_err(anyhow::Error::from_boxed)?;
                    Ok(serde_json::to_value(response)?)
                }
                other => bail!("no function named {other}"),
            }
        })
    }
}

fn sqs_event(payload: Value) -> anyhow::Result<SqsEvent> {
    serde_json::from_value(payload).context("decoding the SQS event")
}

/// Far enough to be no deadline: what `invocation_budget: None` gives the worker.
const UNBOUNDED: Duration = Duration::from_secs(365 * 86_400);

/// The Lambda deadline (ms since the epoch) after which the worker has `budget` left to work
/// (`None`: a year). The worker keeps `min(margin, left / 4)` of the time left in reserve
/// (`worker::deadline`), so the time left is `budget + margin` when the margin is at most a
/// quarter of that, i.e. when `budget >= 3 * margin`, else `budget * 4 / 3`.
pub fn lambda_deadline_ms(budget: Option<Duration>, margin: Duration) -> u64 {
    let left = match budget {
        None => UNBOUNDED,
        Some(budget) if budget >= margin.saturating_mul(3) => budget + margin,
        Some(budget) => budget * 4 / 3,
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    // Rounded up: the worker reads the clock in whole milliseconds too.
    (now + left).as_micros().div_ceil(1000) as u64
}

/// Polls one queue into one function, as an event source mapping.
pub struct Pump {
    pub sqs: aws_sdk_sqs::Client,
    pub invoker: Arc<dyn Invoker>,
    /// Visibility given back to failed messages: how soon they are retried.
    pub retry_delay_seconds: i32,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
}

impl Pump {
    /// Receives up to 10 messages, invokes the function with them as an SQS event, deletes the
    /// ones that did not fail. Returns how many were received.
    pub async fn pump_once(&self, queue_url: &str, function: &str, wait_seconds: i32) -> anyhow::Result<usize> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .context("receive_message")?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(0);
        }
        // A failed invocation fails the whole batch, as with Lambda.
        let failed: Vec<String> = match self.invoker.invoke(function, sqs_event_json(&messages, queue_url)).await {
            Ok(response) => batch_item_failures(&response),
            Err(err) => {
                tracing::warn!(error = %err, function, "invocation failed; the whole batch will be retried");
                messages.iter().filter_map(|m| m.message_id().map(str::to_string)).collect()
            }
        };
        let mut deletes = Vec::new();
        let mut retries = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let id = m.message_id().unwrap_or_default();
            let handle = m.receipt_handle().unwrap_or_default();
            if failed.iter().any(|f| f == id) {
                retries.push(
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .visibility_timeout(self.retry_delay_seconds)
                        .build()?,
                );
            } else {
                deletes
                    .push(DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(handle).build()?);
            }
        }
        if !deletes.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(deletes))
                .send()
                .await
                .context("delete_message_batch")?;
        }
        if !retries.is_empty() {
            self.sqs
                .change_message_visibility_batch()
                .queue_url(queue_url)
                .set_entries(Some(retries))
                .send()
                .await
                .context("change_message_visibility_batch")?;
        }
        self.delivered.fetch_add(messages.len() as u64, Ordering::Relaxed);
        self.failed.fetch_add(failed.len() as u64, Ordering::Relaxed);
        Ok(messages.len())
    }
}

/// The SQS event Lambda's event source mapping would invoke the function with, for these messages.
pub fn sqs_event_json(messages: &[Message], queue_url: &str) -> Value {
    let arn = format!("arn:aws:sqs:us-east-1:000000000000:{}", queue_url.rsplit('/').next().unwrap_or_default());
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes()
                .map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), Value::String(v.clone()))).collect())
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                "attributes": attributes, "messageAttributes": {}, "md5OfBody": m.md5_of_body(),
                "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({"Records": records})
}

/// The ids of the messages a partial batch response reports failed.
fn batch_item_failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string))
        .collect()
}

/// Where the queues are and how hard to pump them.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub work_queue_url: String,
    pub finalize_queue_url: String,
    /// Concurrent worker invocations (the event source mapping's `MaximumConcurrency`).
    pub worker_concurrency: usize,
    pub retry_delay_seconds: i32,
    pub timeout: Duration,
    pub show_progress: bool,
}

/// Plans a run through the planner function and pumps until the reaper has closed it.
pub async fn run_sync(
    invoker: Arc<dyn Invoker>,
    sqs: aws_sdk_sqs::Client,
    runs: &dyn shared::ports::RunLedger,
    kind: &str,
    options: &RunnerOptions,
) -> anyhow::Result<RunRecord> {
    let planned = invoker.invoke("planner", json!({"kind": kind})).await?;
    let run_id = planned["id"].as_u64().with_context(|| format!("planner returned no run id: {planned}"))?;
    pump_until_closed(invoker, sqs, runs, run_id, options).await
}

/// Pumps the work and finalize queues until run `run_id` is closed (or the timeout passes).
pub async fn pump_until_closed(
    invoker: Arc<dyn Invoker>,
    sqs: aws_sdk_sqs::Client,
    runs: &dyn shared::ports::RunLedger,
    run_id: u64,
    options: &RunnerOptions,
) -> anyhow::Result<RunRecord> {
    let pump = Arc::new(Pump {
        sqs,
        invoker,
        retry_delay_seconds: options.retry_delay_seconds,
        delivered: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    // One poller per worker container, as the event source mapping's MaximumConcurrency.
    for _ in 0..options.worker_concurrency.max(1) {
        loops.push(spawn_loop(pump.clone(), stop.clone(), options.work_queue_url.clone(), "worker"));
    }
    loops.push(spawn_loop(pump.clone(), stop.clone(), options.finalize_queue_url.clone(), "reaper"));

    let started = Instant::now();
    let bar = options.show_progress.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} tasks  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    // On a terminal a progress bar; in a log (CI, `make demo > file`) a line every 10 s.
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_line = Instant::now();
    let result = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let record = runs.get(run_id).await?;
        if let (Some(bar), Ok(status)) = (&bar, runs.status(run_id).await) {
            let (finished, total) = (status.done + status.failed, status.done + status.failed + status.queued);
            if interactive {
                bar.set_length(total);
                bar.set_position(finished);
                bar.set_message(format!("{} docs indexed, {} failed tasks", status.indexed, status.failed));
            } else if last_line.elapsed() >= Duration::from_secs(10) {
                last_line = Instant::now();
                eprintln!(
                    "[{:>5.0} s] {finished}/{total} tasks, {} docs indexed, {} failed tasks",
                    started.elapsed().as_secs_f64(),
                    status.indexed,
                    status.failed
                );
            }
        }
        match record {
            Some(r) if matches!(r.state, RunState::Completed | RunState::Failed) => break Ok(r),
            _ if started.elapsed() > options.timeout => {
                break Err(anyhow::anyhow!("run {run_id} not closed after {:?}", options.timeout))
            }
            _ => {}
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    stop.store(true, Ordering::Relaxed);
    for handle in loops {
        let _ = handle.await;
    }
    result
}

fn spawn_loop(
    pump: Arc<Pump>,
    stop: Arc<AtomicBool>,
    queue_url: String,
    function: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            if let Err(err) = pump.pump_once(&queue_url, function, 1).await {
                tracing::warn!(error = %err, function, "pump error");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    })
}

#[cfg(test)]
mod tests;

//! Runs a sync locally the way AWS would: the planner is invoked, then SQS is pumped into the
//! worker and reaper in batches as Lambda's event source mapping does (partial batch failures,
//! visibility timeout, DLQ after `maxReceiveCount` — the redrive itself is SQS's), until the run
//! is closed. Functions are reached through an `Invoker`: `cargo lambda watch` over HTTP, or the
//! handlers in-process (tests).

use std::future::Future;
use std::pin::Pin;
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

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

/// What a finished run amounted to, as `make demo` and the benchmark print it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub run_id: u64,
    pub state: String,
    pub abort_reason: Option<String>,
    pub wall_seconds: f64,
    pub tasks_done: u64,
    pub tasks_failed: u64,
    pub indexed: u64,
    pub skipped: u64,
    pub deleted: u64,
    pub errors: u64,
    /// Documents in the index per `object` (page, block, database, ...).
    pub documents_by_object: Vec<(String, u64)>,
    /// `/v1` requests the emulated Notion received during the run, and the minimum the content needs.
    pub api_calls: Option<u64>,
    pub api_calls_minimum: Option<u64>,
    pub rate_limited: Option<u64>,
}

/// Reads the run's counts, the index's documents per type (from `search`, the content store) and (if the Notion base URL is the
/// emulator) its request counter.
pub async fn summarize(
    ctx: &SyncContext,
    search: &shared::adapters::search::SearchStore,
    run: &RunRecord,
    wall: Duration,
    emulator: Option<&str>,
) -> anyhow::Result<Summary> {
    let status = ctx.runs.status(run.id).await?;
    search.refresh().await?;
    let aggs =
        search.search(&json!({"size": 0, "aggs": {"objects": {"terms": {"field": "object", "size": 20}}}})).await?;
    let documents_by_object = aggs["aggregations"]["objects"]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| (b["key"].as_str().unwrap_or_default().to_string(), b["doc_count"].as_u64().unwrap_or(0)))
        .collect();
    let (mut api_calls, mut api_calls_minimum, mut rate_limited) = (None, None, None);
    if let Some(base) = emulator {
        let http = reqwest::Client::new();
        if let Ok(stats) = http.get(format!("{base}/__control/stats")).send().await?.json::<Value>().await {
            api_calls = stats["total"].as_u64();
            rate_limited = stats["rate_limited"].as_u64();
        }
        let version = ctx.notion.version().as_str();
        if let Ok(min) =
            http.get(format!("{base}/__control/minimum?version={version}")).send().await?.json::<Value>().await
        {
            api_calls_minimum = min["total"].as_u64();
        }
    }
    Ok(Summary {
        run_id: run.id,
        state: run.state.as_str().to_string(),
        abort_reason: run.abort_reason.clone(),
        wall_seconds: wall.as_secs_f64(),
        tasks_done: status.done,
        tasks_failed: status.failed,
        indexed: status.indexed,
        skipped: status.skipped,
        deleted: run.counts.deleted.max(status.deleted),
        errors: status.errors,
        documents_by_object,
        api_calls,
        api_calls_minimum,
        rate_limited,
    })
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "run {} {} in {:.1} s", self.run_id, self.state, self.wall_seconds)?;
        if let Some(reason) = &self.abort_reason {
            writeln!(f, "  reason: {reason}")?;
        }
        writeln!(f, "  tasks: {} done, {} failed", self.tasks_done, self.tasks_failed)?;
        writeln!(
            f,
            "  documents: {} indexed, {} skipped by rules, {} deleted, {} errors",
            self.indexed, self.skipped, self.deleted, self.errors
        )?;
        let per_type: Vec<String> = self.documents_by_object.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(f, "  in the index: {}", per_type.join(", "))?;
        if let Some(calls) = self.api_calls {
            let min = self
                .api_calls_minimum
                .map(|m| format!(" (minimum {m}, ratio {:.3})", calls as f64 / m.max(1) as f64))
                .unwrap_or_default();
            writeln!(f, "  Notion API calls: {calls}{min}, 429s: {}", self.rate_limited.unwrap_or(0))?;
        }
        if self.wall_seconds > 0.0 {
            writeln!(f, "  throughput: {:.0} documents/s", self.indexed as f64 / self.wall_seconds)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsBatchResponse;

    #[test]
    fn the_worker_gets_the_invocation_budget_after_its_margin() {
        let ms = Duration::from_millis;
        let budgets =
            [ms(1), ms(300), ms(8_000), ms(20_000), ms(89_000), ms(90_000), ms(91_000), ms(270_000), ms(3_600_000)];
        for margin in [Duration::ZERO, Duration::from_secs(2), Duration::from_secs(30)] {
            for budget in budgets {
                let deadline = worker::deadline(lambda_deadline_ms(Some(budget), margin), margin).expect("a deadline");
                let left = deadline.saturating_duration_since(Instant::now());
                // Whole milliseconds on the Lambda clock, and the time the test itself takes.
                assert!(
                    left <= budget + ms(2) && left + ms(50) >= budget,
                    "budget {budget:?}, margin {margin:?}: {left:?}"
                );
            }
        }
        // No budget: a year, no deadline in practice.
        let margin = Duration::from_secs(30);
        let deadline = worker::deadline(lambda_deadline_ms(None, margin), margin).expect("a deadline");
        assert!(deadline.saturating_duration_since(Instant::now()) > Duration::from_secs(364 * 86_400));
    }

    #[test]
    fn the_pumps_records_decode_as_lambdas_sqs_event() {
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("h-1")
            .body(r#"{"task_id":"p:1"}"#)
            .md5_of_body("5d41402abc4b2a76b9719d911017c592")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000000")
            .build();
        let payload = sqs_event_json(&[message], "http://127.0.0.1:4566/000000000000/e2e-work");
        let event = sqs_event(payload).expect("an SqsEvent");
        assert_eq!(event.records.len(), 1);
        let record = &event.records[0];
        assert_eq!(record.message_id.as_deref(), Some("m-1"));
        assert_eq!(record.receipt_handle.as_deref(), Some("h-1"));
        assert_eq!(record.body.as_deref(), Some(r#"{"task_id":"p:1"}"#));
        assert_eq!(record.md5_of_body.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
        assert_eq!(record.attributes.get("ApproximateReceiveCount").map(String::as_str), Some("3"));
        assert_eq!(record.attributes.get("SentTimestamp").map(String::as_str), Some("1700000000000"));
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(record.event_source_arn.as_deref(), Some("arn:aws:sqs:us-east-1:000000000000:e2e-work"));
        assert_eq!(record.aws_region.as_deref(), Some("us-east-1"));
        assert!(sqs_event(json!({"records": []})).is_err(), "Lambda's field is `Records`");
    }

    #[test]
    fn batch_responses_encode_as_the_pump_reads_them() {
        let mut response = SqsBatchResponse::default();
        response.add_failure("m-2");
        response.add_failure("m-5");
        let encoded = serde_json::to_value(&response).unwrap();
        assert_eq!(encoded, json!({"batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-5"}]}));
        assert_eq!(batch_item_failures(&encoded), ["m-2", "m-5"]);
        assert!(batch_item_failures(&serde_json::to_value(SqsBatchResponse::default()).unwrap()).is_empty());
    }
}

//! The end-to-end harness: an emulated Notion of its own (in-process, on a free port), the real
//! search engine and LocalStack SQS started by `make up` (fresh index and queues per test), and
//! the functions' handlers driven through SQS exactly as `make demo` drives them.

pub mod fault_proxy;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_sqs::types::QueueAttributeName;
use local_runner::{pump_until_closed, run_sync, InProcess, Invoker, RunnerOptions};
use notion_emulator::{ServerConfig, WorkspaceKind};
use serde_json::{json, Map, Value};
use shared::config::Settings;
use shared::runs::RunRecord;
use shared::secrets::Secrets;
use shared::sync::SyncContext;

pub use notion_emulator;

/// One test's world. Dropping it leaves the index and queues behind; call `cleanup`.
pub struct Stack {
    pub emulator: notion_emulator::Server,
    pub ctx: Arc<SyncContext>,
    /// The content index itself, for what tests read and set up beyond the sync's port.
    pub search: shared::adapters::search::SearchStore,
    pub settings: Settings,
    pub sqs: aws_sdk_sqs::Client,
    pub work_dlq_url: String,
    pub http: reqwest::Client,
    pub options: RunnerOptions,
    /// Per-invocation time budget of the worker (continuation tests shorten it).
    pub invocation_budget: Option<Duration>,
    /// The queue the functions send through, measured: the largest message and batch sent.
    pub queue: Arc<shared::queue::MeasuredQueue<shared::adapters::aws::SqsQueues>>,
    queues: Vec<String>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Settings overrides a test may give (`CONNECTOR_CONFIG`, `NOTION_VERSION`, ...).
pub type Overrides<'a> = &'a [(&'a str, &'a str)];

impl Stack {
    pub async fn start(workspace: WorkspaceKind, overrides: Overrides<'_>) -> anyhow::Result<Stack> {
        let emulator = notion_emulator::serve(ServerConfig::for_tests(workspace)).await?;
        let unique =
            format!("e2e-{}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), chrono_millis());
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        for (k, v) in [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")] {
            if std::env::var_os(k).is_none() {
                std::env::set_var(k, v);
            }
        }
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:4566");
        }
        let aws = shared::adapters::aws::sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let work_dlq_url = create_queue(&sqs, &format!("{unique}-work-dlq"), None).await?;
        let work_url = create_queue(&sqs, &format!("{unique}-work"), Some(&work_dlq_url)).await?;
        let finalize_dlq_url = create_queue(&sqs, &format!("{unique}-finalize-dlq"), None).await?;
        let finalize_url = create_queue(&sqs, &format!("{unique}-finalize"), Some(&finalize_dlq_url)).await?;

        let search_url = env_or("SEARCH_URL", "http://127.0.0.1:9200");
        let settings = test_settings(&emulator.base_url(), &search_url, &unique, &work_url, &finalize_url, overrides)?;
        let secrets = Secrets::from_json(&json!({"notion_token": notion_emulator::DEFAULT_TOKEN}).to_string())?;
        let queue = Arc::new(shared::queue::MeasuredQueue::new(shared::adapters::aws::SqsQueues::new(
            &aws,
            work_url.clone(),
            finalize_url.clone(),
        )));
        let ctx = Arc::new(
            shared::bootstrap::build(&settings, &secrets, queue.clone(), shared::bootstrap::Share::Whole).await?,
        );
        let options = RunnerOptions {
            work_queue_url: work_url.clone(),
            finalize_queue_url: finalize_url.clone(),
            worker_concurrency: 4,
            retry_delay_seconds: 0,
            timeout: Duration::from_secs(600),
            show_progress: false,
        };
        let search = shared::bootstrap::search_store(&settings, &secrets).await?;
        Ok(Stack {
            emulator,
            ctx,
            search,
            settings,
            sqs,
            work_dlq_url,
            http: reqwest::Client::new(),
            options,
            // As in AWS, an invocation ends well before the queue's visibility timeout (30 s here):
            // a message is never redelivered while its first delivery is still being worked.
            invocation_budget: Some(Duration::from_secs(20)),
            queue,
            queues: vec![work_url, finalize_dlq_url, finalize_url],
        })
    }

    pub fn invoker(&self) -> Arc<dyn Invoker> {
        Arc::new(InProcess { ctx: self.ctx.clone(), invocation_budget: self.invocation_budget })
    }

    /// Plans a run of `kind` through the planner handler and pumps until the reaper closes it.
    pub async fn sync(&self, kind: &str) -> anyhow::Result<RunRecord> {
        run_sync(self.invoker(), self.sqs.clone(), self.ctx.runs.as_ref(), kind, &self.options).await
    }

    /// Plans a full run of just one page, as the planner would queue it (task recorded and sent, planning done,
    /// finalize queued); returns the run id. Pump it with [`Stack::pump`].
    pub async fn plan_page_run(&self, page_id: &str) -> anyhow::Result<u64> {
        use shared::task::{FinalizeMessage, RunKind, Task, TaskMessage};
        let run = self.ctx.runs.create_run(RunKind::Full).await?;
        let page = self.ctx.notion.get_page(page_id).await?;
        let task = Task::Page { page_id: page_id.to_string(), page: Some(page), path: vec![] };
        let task = TaskMessage::new(run.id, run.kind, format!("p:{page_id}"), task);
        self.ctx.runs.tasks_queued(run.id, std::slice::from_ref(&task)).await?;
        self.ctx.queue.send_tasks(std::slice::from_ref(&task)).await?;
        self.ctx.runs.planning_done(run.id, 1).await?;
        self.ctx.queue.send_finalize(&FinalizeMessage::new(run.id), 1).await?;
        Ok(run.id)
    }

    /// A pump that delivers this stack's messages one batch at a time (tests that hold messages back).
    pub fn manual_pump(&self) -> local_runner::Pump {
        local_runner::Pump {
            sqs: self.sqs.clone(),
            invoker: self.invoker(),
            retry_delay_seconds: 0,
            delivered: Default::default(),
            failed: Default::default(),
        }
    }

    /// Pumps an already planned run until it is closed.
    pub async fn pump(&self, run_id: u64) -> anyhow::Result<RunRecord> {
        pump_until_closed(self.invoker(), self.sqs.clone(), self.ctx.runs.as_ref(), run_id, &self.options).await
    }

    /// A control-API call on this test's emulator.
    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}/__control/{}", self.emulator.base_url(), path.trim_start_matches('/'));
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let value = response.json::<Value>().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{url}: {status} {value}");
        Ok(value)
    }

    /// Changes the emulator's runtime configuration (its misbehaviour switches).
    pub async fn emulate(&self, config: Value) -> anyhow::Result<()> {
        self.control(reqwest::Method::POST, "config", Some(config)).await.map(|_| ())
    }

    /// The ids search returns right now (every page of an unfiltered search), as a client sees them.
    pub async fn search_ids(&self) -> anyhow::Result<std::collections::HashSet<String>> {
        let mut ids = std::collections::HashSet::new();
        let mut body = json!({"page_size": 100});
        loop {
            let page: Value = self
                .http
                .post(format!("{}/v1/search", self.emulator.base_url()))
                .bearer_auth(notion_emulator::DEFAULT_TOKEN)
                .header("Notion-Version", "2025-09-03")
                .json(&body)
                .send()
                .await?
                .json()
                .await?;
            for result in page["results"].as_array().into_iter().flatten() {
                ids.extend(result["id"].as_str().map(str::to_string));
            }
            match page["next_cursor"].as_str() {
                Some(next) if page["has_more"] == true => body["start_cursor"] = json!(next),
                _ => return Ok(ids),
            }
        }
    }

    /// Every document of the content index, by id.
    pub async fn documents(&self) -> anyhow::Result<HashMap<String, Map<String, Value>>> {
        self.search.refresh().await?;
        let mut out = HashMap::new();
        let mut after: Option<Value> = None;
        loop {
            let mut body = json!({"size": 5000, "sort": [{"id": "asc"}], "query": {"match_all": {}}});
            if let Some(a) = &after {
                body["search_after"] = a.clone();
            }
            let page = self.search.search(&body).await?;
            let hits = page["hits"]["hits"].as_array().cloned().unwrap_or_default();
            if hits.is_empty() {
                break;
            }
            for hit in &hits {
                let id = hit["_id"].as_str().unwrap_or_default().to_string();
                out.insert(id, hit["_source"].as_object().cloned().unwrap_or_default());
            }
            after = hits.last().map(|h| h["sort"].clone());
        }
        Ok(out)
    }

    /// Messages waiting in the work queue's DLQ.
    pub async fn dlq_bodies(&self) -> anyhow::Result<Vec<String>> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.work_dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        Ok(out.messages().iter().filter_map(|m| m.body().map(str::to_string)).collect())
    }

    /// Rebuilds `ctx` and `settings` with other settings on the same emulator, index and queues (a configuration
    /// change between two runs). `overrides` replace the test defaults as in `start`; earlier overrides are not kept.
    pub async fn reconfigure(&mut self, overrides: Overrides<'_>) -> anyhow::Result<()> {
        let settings = test_settings(
            &self.emulator.base_url(),
            self.settings.search_url.as_str(),
            &self.settings.index_name,
            &self.options.work_queue_url,
            &self.options.finalize_queue_url,
            overrides,
        )?;
        let secrets = Secrets::from_json(&json!({"notion_token": notion_emulator::DEFAULT_TOKEN}).to_string())?;
        let aws = shared::adapters::aws::sdk_config().await;
        let queue = Arc::new(shared::queue::MeasuredQueue::new(shared::adapters::aws::SqsQueues::new(
            &aws,
            self.options.work_queue_url.clone(),
            self.options.finalize_queue_url.clone(),
        )));
        self.ctx = Arc::new(
            shared::bootstrap::build(&settings, &secrets, queue.clone(), shared::bootstrap::Share::Whole).await?,
        );
        self.queue = queue;
        self.settings = settings;
        Ok(())
    }

    /// Deletes the test's indices and queues.
    pub async fn cleanup(self) {
        let _ = self.search.delete_indices().await;
        for url in self.queues.iter().chain(std::iter::once(&self.work_dlq_url)) {
            let _ = self.sqs.delete_queue().queue_url(url).send().await;
        }
        self.emulator.shutdown().await;
    }
}

/// The settings every test starts from (a fast pace, a 1 s finalize delay), with `overrides` on top.
fn test_settings(
    notion: &str,
    search: &str,
    index: &str,
    work_queue: &str,
    finalize_queue: &str,
    overrides: Overrides<'_>,
) -> anyhow::Result<Settings> {
    let defaults = [
        ("NOTION_BASE_URL", notion),
        ("NOTION_RATE", "5000"),
        ("WORKER_CONCURRENCY", "4"),
        ("SEARCH_URL", search),
        ("INDEX_NAME", index),
        ("WORK_QUEUE_URL", work_queue),
        ("FINALIZE_QUEUE_URL", finalize_queue),
        ("FINALIZE_DELAY_SECONDS", "1"),
    ];
    let vars: HashMap<String, String> =
        defaults.iter().chain(overrides).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Ok(Settings::from_map(&vars)?)
}

fn chrono_millis() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() % 1_000_000).unwrap_or(0)
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str, dlq: Option<&str>) -> anyhow::Result<String> {
    let mut request = sqs.create_queue().queue_name(name).attributes(QueueAttributeName::VisibilityTimeout, "30");
    if let Some(dlq_url) = dlq {
        let attrs =
            sqs.get_queue_attributes().queue_url(dlq_url).attribute_names(QueueAttributeName::QueueArn).send().await?;
        let arn =
            attrs.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().context("DLQ has no ARN")?;
        let policy = json!({"deadLetterTargetArn": arn, "maxReceiveCount": "3"}).to_string();
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    let out = request.send().await.with_context(|| format!("creating queue {name} (is LocalStack up? `make up`)"))?;
    out.queue_url().map(str::to_string).context("no queue URL")
}

/// Work and finalize queues pumped in the background (as the event source mappings would), for
/// runs started outside `Stack::sync`: webhook runs, runs started through the API.
pub struct BackgroundPump {
    stop: Arc<std::sync::atomic::AtomicBool>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl BackgroundPump {
    /// Stops the loops (each ends after its current receive, at most ~1 s).
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for handle in self.loops {
            let _ = handle.await;
        }
    }
}

impl Stack {
    /// Starts pumping the work queue (`worker_concurrency` loops) and the finalize queue until
    /// [`BackgroundPump::stop`].
    pub fn background_pump(&self) -> BackgroundPump {
        let pump = Arc::new(local_runner::Pump {
            sqs: self.sqs.clone(),
            invoker: self.invoker(),
            retry_delay_seconds: self.options.retry_delay_seconds,
            delivered: std::sync::atomic::AtomicU64::new(0),
            failed: std::sync::atomic::AtomicU64::new(0),
        });
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let queues = std::iter::repeat_n(
            (self.options.work_queue_url.clone(), "worker"),
            self.options.worker_concurrency.max(1),
        )
        .chain(std::iter::once((self.options.finalize_queue_url.clone(), "reaper")));
        let loops = queues
            .map(|(url, function)| {
                let (pump, stop) = (pump.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        if let Err(err) = pump.pump_once(&url, function, 1).await {
                            eprintln!("background pump error ({function}): {err:#}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                })
            })
            .collect();
        BackgroundPump { stop, loops }
    }

    /// The emulator's request counter (`GET /__control/stats` `total`).
    pub async fn api_calls(&self) -> anyhow::Result<u64> {
        let stats = self.control(reqwest::Method::GET, "stats", None).await?;
        stats["total"].as_u64().context("stats without total")
    }

    /// Resets the emulator's request counter.
    pub async fn reset_api_calls(&self) -> anyhow::Result<()> {
        self.control(reqwest::Method::POST, "stats/reset", None).await.map(|_| ())
    }
}

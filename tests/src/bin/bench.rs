//! `make bench`: the figures of ../shared/ARCHITECTURE.md, printed (not asserted; these machines
//! are shared and noisy, so what matters are ratios measured in one run).
//!
//! - full sync at an emulated Notion rate limit (BENCH_CASES, default `medium@100,small@10,small@3`):
//!   wall time ÷ (API calls ÷ rate), API calls ÷ the minimum the content needs, documents/s, and where the time went;
//! - worker peak RSS walking the edge workspace's 10,000-block page (in a child process);
//! - worker binary start to its first runtime poll (`target/release/worker`);
//! - indexing path: our bulk indexer's docs/s ÷ raw `_bulk` requests' docs/s, same documents.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use e2e::notion_emulator::WorkspaceKind;
use e2e::Stack;
use reqwest::Method;
use serde_json::{json, Value};

/// The knobs `infra/scripts/bench.sh` documents, as flags or environment variables.
#[derive(Parser, Debug)]
#[command(about = "Prints the figures of ../shared/ARCHITECTURE.md")]
struct Args {
    /// Parts to run, a comma list of sync, rss, start, index (empty: all).
    #[arg(long, env = "BENCH_ONLY", default_value = "")]
    only: String,
    /// Full-sync runs, a comma list of workspace@rate (rate 100 when left out).
    #[arg(long, env = "BENCH_CASES", default_value = "medium@100,small@10,small@3", value_delimiter = ',',
          value_parser = parse_case)]
    cases: Vec<Case>,
    /// Concurrent worker invocations of the full syncs (default: the harness's).
    #[arg(long, env = "BENCH_INVOCATIONS")]
    invocations: Option<usize>,
    /// The search engine of the indexing-path figure.
    #[arg(long, env = "SEARCH_URL", default_value = "http://127.0.0.1:9200")]
    search_url: String,
    /// The child side of the RSS figure (run by the bench itself): the emulator's URL and the page to walk.
    #[arg(long, num_args = 2, value_names = ["NOTION_URL", "PAGE_ID"], hide = true)]
    rss_probe: Option<Vec<String>>,
}

impl Args {
    fn wants(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.split(',').any(|p| p == part)
    }
}

/// One full-sync run: a workspace at an emulated Notion rate (requests per second).
#[derive(Clone, Debug)]
struct Case {
    workspace: WorkspaceKind,
    rate: f64,
}

fn parse_case(case: &str) -> Result<Case, String> {
    let (workspace, rate) = case.split_once('@').unwrap_or((case, "100"));
    Ok(Case { workspace: workspace.parse()?, rate: rate.parse().map_err(|e| format!("rate `{rate}`: {e}"))? })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some([notion, page_id]) = args.rss_probe.as_deref() {
        return rss_probe(notion, page_id).await;
    }
    if args.wants("sync") {
        for case in &args.cases {
            full_sync(case.workspace, case.rate, args.invocations).await?;
        }
    }
    if args.wants("rss") {
        worker_rss().await?;
    }
    if args.wants("start") {
        cold_start().await?;
    }
    if args.wants("index") {
        indexing_path(&args.search_url).await?;
    }
    Ok(())
}

async fn full_sync(workspace: WorkspaceKind, rate: f64, invocations: Option<usize>) -> anyhow::Result<()> {
    let rate_text = rate.to_string();
    let mut stack =
        Stack::start(workspace, &[("NOTION_RATE", rate_text.as_str()), ("WORKER_CONCURRENCY", "1")]).await?;
    if let Some(n) = invocations {
        stack.options.worker_concurrency = n;
    }
    // As deployed (template.yaml): a 300 s worker timeout and a visibility timeout of 6 x that. The test harness's
    // 20 s budget would make slow rates hand walks on as continuations that a real worker finishes in one go.
    stack.invocation_budget = Some(Duration::from_secs(270));
    stack
        .sqs
        .set_queue_attributes()
        .queue_url(&stack.options.work_queue_url)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "1800")
        .send()
        .await?;
    // The emulator enforces the rate as Notion would (token bucket, 429 + Retry-After).
    stack.control(Method::POST, "config", Some(json!({"rate": rate, "burst": rate.max(1.0)}))).await?;
    stack.control(Method::POST, "stats/reset", None).await?;
    let started = Instant::now();
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = tokio::spawn(sample_calls(stack.emulator.base_url(), started, samples.clone()));
    let run = stack.sync("full").await?;
    let wall = started.elapsed().as_secs_f64();
    sampler.abort();
    let stats = stack.control(Method::GET, "stats", None).await?;
    let version = stack.ctx.notion.version().as_str();
    let minimum = stack.control(Method::GET, &format!("minimum?version={version}"), None).await?;
    let calls = stats["total"].as_f64().unwrap_or(0.0);
    let minimum = minimum["total"].as_f64().unwrap_or(1.0);
    println!(
        "full sync {:?} at {rate} req/s: run {} {:?}, {calls} API calls (minimum {minimum}), {} 429s, wall {wall:.1} s",
        workspace, run.id, run.state, stats["rate_limited"]
    );
    println!("  rate budget use: wall ÷ (calls ÷ rate) = {:.3}   (target ≤ 1.1)", wall / (calls / rate));
    println!("  wasted calls:    calls ÷ minimum       = {:.4}  (target ≤ 1.02)", calls / minimum);
    println!(
        "  throughput:      {:.0} documents/s ({} documents, {} failed tasks)",
        run.counts.indexed as f64 / wall,
        run.counts.indexed,
        run.counts.failed
    );
    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    if let Some(phases) = Phases::of(&samples, calls, wall, rate) {
        println!("  where the time went: {phases}");
    }
    stack.cleanup().await;
    Ok(())
}

/// Samples the emulator's request counter every 100 ms: (seconds since `started`, requests so far).
async fn sample_calls(base: String, started: Instant, out: Arc<std::sync::Mutex<Vec<(f64, f64)>>>) {
    let http = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let Ok(response) = http.get(format!("{base}/__control/stats")).send().await else { continue };
        let Ok(stats) = response.json::<Value>().await else { continue };
        if let (Some(total), Ok(mut out)) = (stats["total"].as_f64(), out.lock()) {
            out.push((started.elapsed().as_secs_f64(), total));
        }
    }
}

/// A full sync's wall time in three parts: before the first API call, between the first and the last (at what
/// share of the rate), after the last (the run's tail: last bulk writes, the reaper, closing the run).
struct Phases {
    before_first: f64,
    active: f64,
    active_share: f64,
    after_last: f64,
    /// Seconds of the active part below half the rate (calls waiting on something else than the pacer).
    slow_seconds: f64,
}

impl Phases {
    fn of(samples: &[(f64, f64)], calls: f64, wall: f64, rate: f64) -> Option<Phases> {
        let first = samples.iter().find(|(_, n)| *n > 0.0)?.0;
        let last = samples.iter().find(|(_, n)| *n >= calls)?.0;
        let active = (last - first).max(f64::EPSILON);
        // Windows long enough to hold ten slots (1 s at 10 req/s and more; samples are 100 ms apart).
        let step = ((10.0 / rate / 0.1).ceil() as usize).max(10);
        let during: Vec<&(f64, f64)> = samples.iter().filter(|(t, _)| *t >= first && *t <= last).collect();
        let slow_seconds = during
            .iter()
            .step_by(step)
            .zip(during.iter().skip(step).step_by(step))
            .filter(|(a, b)| (b.1 - a.1) < 0.5 * rate * (b.0 - a.0))
            .fold(0.0, |sum, (a, b)| sum + (b.0 - a.0));
        Some(Phases {
            before_first: first,
            active,
            active_share: calls / active / rate,
            after_last: (wall - last).max(0.0),
            slow_seconds,
        })
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} s to the first call, {:.1} s of calls at {:.0} % of the rate ({:.1} s of it below half), {:.1} s after the last",
            self.before_first,
            self.active,
            self.active_share * 100.0,
            self.slow_seconds,
            self.after_last
        )
    }
}

/// Peak RSS of a process that only runs the worker's handler on the largest page of `edge`.
async fn worker_rss() -> anyhow::Result<()> {
    let stack = Stack::start(WorkspaceKind::Edge, &[]).await?;
    let expected = stack.control(Method::GET, "expected", None).await?;
    let big = expected["pages"]
        .as_array()
        .and_then(|pages| pages.iter().max_by_key(|p| p["blocks"].as_array().map_or(0, Vec::len)))
        .cloned()
        .unwrap_or(Value::Null);
    let page_id = big["id"].as_str().unwrap_or_default().to_string();
    let blocks = big["blocks"].as_array().map_or(0, Vec::len);
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let out = tokio::process::Command::new(exe)
        .args(["--rss-probe", &stack.emulator.base_url(), &page_id])
        .env("INDEX_NAME", &stack.settings.index_name)
        .output()
        .await?;
    let report = String::from_utf8_lossy(&out.stdout);
    println!(
        "worker peak RSS walking a {blocks}-block page: {} (target ≤ 64 MiB), {:.1} s",
        report.trim(),
        started.elapsed().as_secs_f64()
    );
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    stack.cleanup().await;
    Ok(())
}

/// The child side of `worker_rss`: builds a worker context and runs one page task.
async fn rss_probe(notion: &str, page_id: &str) -> anyhow::Result<()> {
    let mut vars: std::collections::HashMap<String, String> = std::env::vars().collect();
    vars.insert("NOTION_BASE_URL".into(), notion.into());
    vars.insert("NOTION_RATE".into(), "5000".into());
    vars.insert("WORK_QUEUE_URL".into(), "http://127.0.0.1:9/unused-work-queue".into());
    vars.insert("FINALIZE_QUEUE_URL".into(), "http://127.0.0.1:9/unused-finalize-queue".into());
    let settings = shared::config::Settings::from_map(&vars)?;
    let secrets =
        shared::secrets::Secrets::from_json(&json!({"notion_token": e2e::notion_emulator::DEFAULT_TOKEN}).to_string())?;
    let queue = Arc::new(shared::queue::MemoryQueue::default());
    let ctx = shared::bootstrap::build(&settings, &secrets, queue, shared::bootstrap::Share::Whole).await?;
    let run = ctx.runs.create_run(shared::task::RunKind::Full).await?;
    let task = shared::task::TaskMessage::new(
        run.id,
        run.kind,
        format!("p:{page_id}"),
        shared::task::Task::Page { page_id: page_id.to_string(), page: None, path: vec![] },
    );
    let before = peak_rss_kib();
    shared::sync::worker::handle_message(&ctx, &task.encode(), 1, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{:.1} MiB (at start {:.1} MiB)", peak_rss_kib() as f64 / 1024.0, before as f64 / 1024.0);
    Ok(())
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Spawns the release worker binary with a fake runtime API and times its first poll.
async fn cold_start() -> anyhow::Result<()> {
    let worker = std::env::current_exe()?.with_file_name("worker");
    if !worker.exists() {
        println!("worker start: skipped ({} not built; `make bench` builds it)", worker.display());
        return Ok(());
    }
    let mut samples = Vec::new();
    for _ in 0..5 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api = listener.local_addr()?.to_string();
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&worker)
            .env("AWS_LAMBDA_FUNCTION_NAME", "worker")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("AWS_LAMBDA_RUNTIME_API", &api)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()?;
        match tokio::time::timeout(Duration::from_secs(20), listener.accept()).await {
            Ok(Ok(_)) => samples.push(started.elapsed().as_secs_f64() * 1000.0),
            _ => println!("worker start: no runtime poll within 20 s"),
        }
        let _ = child.kill().await;
    }
    samples.sort_by(f64::total_cmp);
    if let Some(median) = samples.get(samples.len() / 2) {
        println!("worker start to first runtime poll: median {median:.0} ms of {} starts (target ≤ 50 ms; includes reading the secret and checking the indices)", samples.len());
    }
    Ok(())
}

/// The same documents through our bulk indexer and through raw `_bulk` requests.
async fn indexing_path(search: &str) -> anyhow::Result<()> {
    let docs: Vec<shared::document::Document> = (0..20_000)
        .map(|i| {
            let source = json!({
                "id": format!("b-{i}"), "object": "block", "type": "paragraph", "page_id": format!("p-{}", i / 50),
                "title": "", "body": format!("Paragraph {i} of the benchmark: quarterly roadmap planning notes and decisions."),
                "sync_run": 1, "paragraph": {"rich_text": [{"plain_text": "x"}]},
            });
            shared::document::Document { id: format!("b-{i}"), source: source.as_object().cloned().unwrap_or_default() }
        })
        .collect();
    let http = reqwest::Client::new();
    let mut ours = Vec::new();
    let mut raw = Vec::new();
    for round in 0..3 {
        let index = format!("bench-raw-{}-{round}", std::process::id());
        create_index(&http, search, &index).await?;
        let started = Instant::now();
        for chunk in docs.chunks(500) {
            let mut body = Vec::new();
            for doc in chunk {
                body.extend_from_slice(json!({"index": {"_index": index, "_id": doc.id}}).to_string().as_bytes());
                body.push(b'\n');
                body.extend_from_slice(Value::Object(doc.source.clone()).to_string().as_bytes());
                body.push(b'\n');
            }
            let response: Value = http
                .post(format!("{search}/_bulk"))
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await?
                .json()
                .await?;
            anyhow::ensure!(response["errors"] == json!(false), "raw bulk errors");
        }
        raw.push(docs.len() as f64 / started.elapsed().as_secs_f64());
        http.delete(format!("{search}/{index}")).send().await?;

        let index = format!("bench-ours-{}-{round}", std::process::id());
        let store = shared::adapters::search::SearchStore::connect(&shared::index::SearchSettings::new(
            search.to_string(),
            index.clone(),
        ))?;
        store.ensure_indices().await?;
        let started = Instant::now();
        let report = store.bulk_index(docs.clone()).await?;
        anyhow::ensure!(report.failed.is_empty(), "our bulk failures");
        ours.push(docs.len() as f64 / started.elapsed().as_secs_f64());
        store.delete_indices().await?;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ours, raw) = (median(&mut ours), median(&mut raw));
    println!("indexing path: ours {ours:.0} docs/s, raw _bulk {raw:.0} docs/s, ratio {:.2} (target ≥ 0.8)", ours / raw);
    Ok(())
}

async fn create_index(http: &reqwest::Client, search: &str, index: &str) -> anyhow::Result<()> {
    let body = json!({"settings": shared::adapters::search::mapping::settings(1, 0), "mappings": shared::adapters::search::mapping::content_mappings()});
    let response = http.put(format!("{search}/{index}")).json(&body).send().await?;
    anyhow::ensure!(response.status().is_success(), "create {index}: {}", response.text().await?);
    Ok(())
}

//! `local-runner [full|incremental] [--in-process] [--timeout SECONDS]`
//!
//! Runs one sync on the local stack, showing progress, then prints a summary and a sample search.
//! By default the functions are invoked through `cargo lambda watch` (`LAMBDA_WATCH_URL`);
//! `--in-process` calls the same handlers directly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use local_runner::{run_sync, summarize, HttpInvoker, InProcess, Invoker, RunnerOptions};
use serde_json::json;

/// Runs one sync on the local stack and prints a summary.
#[derive(Debug, Parser)]
struct Args {
    /// The run's kind: `full` or `incremental`.
    #[arg(default_value = "full")]
    kind: String,
    /// Calls the handlers in this process instead of through `cargo lambda watch`.
    #[arg(long)]
    in_process: bool,
    /// Seconds to wait for the run to close.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    timeout: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init();
    let args = Args::parse();
    let (kind, in_process, timeout) = (args.kind, args.in_process, args.timeout);

    let ctx = Arc::new(
        shared::bootstrap::context_from_env(shared::bootstrap::Share::Whole)
            .await
            .context("loading settings and secrets")?,
    );
    let settings = shared::config::Settings::from_env()?;
    let aws = shared::adapters::aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let invoker: Arc<dyn Invoker> = if in_process {
        Arc::new(InProcess { ctx: ctx.clone(), invocation_budget: None })
    } else {
        Arc::new(HttpInvoker::new(
            std::env::var("LAMBDA_WATCH_URL").unwrap_or_else(|_| "http://127.0.0.1:9000".into()),
            Duration::from_secs(300),
        ))
    };
    let options = RunnerOptions {
        work_queue_url: settings.work_queue_url.clone(),
        finalize_queue_url: settings.finalize_queue_url.clone(),
        worker_concurrency: settings.worker_concurrency as usize,
        retry_delay_seconds: 2,
        timeout: Duration::from_secs(timeout),
        show_progress: true,
    };
    eprintln!("{kind} sync of {} into {} / {}", settings.notion_base_url, settings.search_url, settings.index_name);
    let started = Instant::now();
    let run = run_sync(invoker, sqs, ctx.runs.as_ref(), &kind, &options).await?;
    let search = shared::bootstrap::search_from_env().await?;
    let summary = summarize(
        &ctx,
        &search,
        &run,
        started.elapsed(),
        Some(settings.notion_base_url.as_str().trim_end_matches('/')),
    )
    .await?;
    println!("{summary}");

    // A sample search, to show the index answers.
    let hits = search
        .search(&json!({"size": 3, "query": {"bool": {"must": {"match": {"body": "project roadmap"}}, "filter": {"term": {"object": "page"}}}}, "_source": ["title", "path", "url"]}))
        .await?;
    println!("sample search: pages matching \"project roadmap\"");
    for hit in hits["hits"]["hits"].as_array().into_iter().flatten() {
        let source = &hit["_source"];
        let path: Vec<&str> = source["path"].as_array().into_iter().flatten().filter_map(|p| p.as_str()).collect();
        println!(
            "  {:.2}  {}  [{}]",
            hit["_score"].as_f64().unwrap_or(0.0),
            source["title"].as_str().unwrap_or(""),
            path.join(" / ")
        );
    }
    if run.state != shared::runs::RunState::Completed {
        std::process::exit(1);
    }
    Ok(())
}

//! What a finished run amounted to, read from the run record, the index and the emulator's counters.

use std::time::Duration;

use serde_json::{json, Value};
use shared::adapters::search::SearchStore;
use shared::runs::RunRecord;
use shared::sync::SyncContext;

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
    search: &SearchStore,
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

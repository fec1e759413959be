//! The API's [`RunBook`] over the run records on the search engine (`runs::RunStore`).

use serde_json::{json, Value};

use super::RunStore;
use super::SearchClient;
use crate::api::ports::{EdgeError, RunBook, RunStart};
use crate::index::IndexError;
use crate::queue::BoxFuture;
use crate::runs::{FullStart, RunError, RunRecord, RunState, RunStatus};
use crate::task::{RunKind, TaskMessage};

/// [`RunBook`] over the run records on the search engine (`runs::RunStore`), with its full-run
/// lock and leases.
pub struct SearchRunBook {
    runs: RunStore,
}

impl SearchRunBook {
    /// The run book of content index `content_index` (`{content_index}-runs`).
    pub fn new(client: SearchClient, content_index: &str) -> Self {
        SearchRunBook { runs: RunStore::new(client, content_index) }
    }

    /// The same run book with other leases (the settings').
    pub fn with_leases(self, leases: crate::runs::Leases) -> Self {
        SearchRunBook { runs: self.runs.with_leases(leases) }
    }
}

/// A run as the API shows it: the record, with live counts while it is open.
fn run_view(run: &RunRecord, live: Option<&RunStatus>) -> Value {
    let mut view = serde_json::to_value(run).unwrap_or_else(|_| json!({"id": run.id}));
    if let Some(s) = live {
        view["counts"] = json!({
            "queued": s.queued, "done": s.done, "failed": s.failed, "indexed": s.indexed, "skipped": s.skipped,
            "deleted": s.deleted, "errors": s.errors, "api_calls": s.api_calls, "retries": s.retries,
        });
    }
    view
}

impl RunBook for SearchRunBook {
    fn create_run(&self, kind: RunKind) -> BoxFuture<'_, Result<u64, EdgeError>> {
        Box::pin(async move { self.runs.create_run(kind).await.map(|r| r.id).map_err(EdgeError::new) })
    }

    fn tasks_queued<'a>(&'a self, run_id: u64, tasks: &'a [TaskMessage]) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move { self.runs.tasks_queued(run_id, tasks).await.map_err(EdgeError::new) })
    }

    fn planning_done(&self, run_id: u64, planned: u64) -> BoxFuture<'_, Result<(), EdgeError>> {
        Box::pin(async move { self.runs.planning_done(run_id, planned).await.map_err(EdgeError::new) })
    }

    fn fail_run<'a>(&'a self, run_id: u64, reason: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            self.runs.abort(run_id, reason).await.map_err(EdgeError::new)?;
            self.runs.close(run_id, RunState::Failed, 0).await.map(|_| ()).map_err(EdgeError::new)
        })
    }

    fn run(&self, run_id: u64) -> BoxFuture<'_, Result<Option<Value>, EdgeError>> {
        Box::pin(async move {
            let Some(run) = self.runs.get(run_id).await.map_err(EdgeError::new)? else {
                return Ok(None);
            };
            if run.state.is_closed() {
                return Ok(Some(run_view(&run, None)));
            }
            let status = self.runs.status(run_id).await.map_err(EdgeError::new)?;
            Ok(Some(run_view(&run, Some(&status))))
        })
    }

    fn recent(&self, limit: usize) -> BoxFuture<'_, Result<Vec<Value>, EdgeError>> {
        Box::pin(async move {
            match self.runs.recent(limit).await {
                Ok(runs) => Ok(runs.iter().map(|r| run_view(r, None)).collect()),
                Err(RunError::Index(IndexError::Refused { status: 404, .. })) => Ok(vec![]),
                Err(err) => Err(EdgeError::new(err)),
            }
        })
    }

    fn start_run(&self, kind: RunKind) -> BoxFuture<'_, Result<RunStart, EdgeError>> {
        Box::pin(async move {
            let closed = self.runs.close_zombies().await.map_err(EdgeError::new)?;
            if !closed.is_empty() {
                tracing::warn!(?closed, "runs whose lease ran out closed as failed");
            }
            if kind == RunKind::Full {
                return match self.runs.start_full_run().await.map_err(EdgeError::new)? {
                    FullStart::Started(run) => Ok(RunStart::Started(run.id)),
                    FullStart::Running(holder) => Ok(RunStart::FullRunning(holder)),
                };
            }
            if let Some(holder) = self.runs.full_lock_holder().await.map_err(EdgeError::new)? {
                return Ok(RunStart::FullRunning(holder));
            }
            Ok(RunStart::Started(self.runs.create_run(kind).await.map_err(EdgeError::new)?.id))
        })
    }
}

//! Task records (`{index}-tasks`, `_id` = `{run_id}:{task_id}`): claims, outcomes, the run's status as
//! sums over them, and their pruning.

use super::*;

impl RunStore {
    /// One task's record.
    pub async fn task(&self, run_id: u64, task_id: &str) -> Result<Option<TaskRecord>, RunError> {
        match get_source(&self.client, &self.tasks, &task_record_id(run_id, task_id)).await? {
            Some(source) => Ok(Some(
                serde_json::from_value(Value::Object(source)).map_err(|e| malformed(&format!("task {task_id}"), e))?,
            )),
            None => Ok(None),
        }
    }

    /// Records tasks as `queued` before they are sent. A record that already exists (the task is
    /// done, or this is a redelivery) is left as it is.
    pub async fn tasks_queued(&self, run_id: u64, tasks: &[TaskMessage]) -> Result<(), RunError> {
        self.create_records(run_id, PLANNER, queued_records(tasks), TaskState::Queued).await
    }

    /// Creates task records (`task_id`, and the page and segment a walk task covers) unless they exist.
    pub(super) async fn create_records<'t>(
        &self,
        run_id: u64,
        owner: &str,
        records: Vec<(&'t str, Option<(&'t str, u32)>)>,
        state: TaskState,
    ) -> Result<(), RunError> {
        let now = Utc::now();
        let total = records.len();
        let mut ops = Vec::with_capacity(total);
        for (task_id, page) in records {
            let (page_id, segment) = page.unzip();
            let record = json!({"run_id": run_id, "task_id": task_id, "state": state, "page_id": page_id,
                "segment": segment, "has_body_part": false, "claimed_by": owner, "updated_at": now});
            let record_id = task_record_id(run_id, task_id);
            let bytes = encode_source(BulkOp::Create, &record_id, &record).map_err(|e| malformed("task record", e))?;
            ops.push(EncodedOp { id: task_id.to_string(), bytes });
        }
        let outcome = send_bulk(&self.client, &self.tasks, BulkOp::Create, &ops, &self.limits).await?;
        if let Some(first) = outcome.report.failed.first() {
            return Err(RunError::Unrecorded {
                failed: outcome.report.failed.len(),
                total,
                first: format!("{}: {}", first.id, first.reason),
            });
        }
        Ok(())
    }

    /// Marks a task done with its counts (creating the record if it is missing). Writing the
    /// same outcome twice leaves the same record.
    pub async fn task_done(&self, task_id: &str, run_id: u64, outcome: &TaskOutcome) -> Result<(), RunError> {
        let mut doc = json!({
            "run_id": run_id,
            "task_id": task_id,
            "state": TaskState::Done,
            "indexed": outcome.indexed,
            "skipped": outcome.skipped,
            "deleted": outcome.deleted,
            "errors": outcome.errors,
            "api_calls": outcome.api_calls,
            "retries": outcome.retries,
            "error": null,
            "error_samples": outcome.error_samples.iter().take(20).map(|e| truncate(e, MAX_ERROR_LEN)).collect::<Vec<_>>(),
            "has_body_part": outcome.body_part.is_some(),
            "body_part": outcome.body_part,
            "updated_at": Utc::now(),
        });
        if outcome.body_part.is_some() {
            doc["segment"] = json!(outcome.segment);
        }
        self.update_task(run_id, task_id, json!({"doc": doc, "doc_as_upsert": true}), "marking done").await
    }

    /// Marks a task failed, unless it is already done (a late failing duplicate must not undo a
    /// success).
    pub async fn task_failed(&self, task_id: &str, run_id: u64, error: &str) -> Result<(), RunError> {
        let error = truncate(error, MAX_ERROR_LEN);
        let now = Utc::now();
        let body = json!({
            "script": {
                "lang": "painless",
                "source": "if (ctx._source.state == 'done') { ctx.op = 'noop'; } else { ctx._source.state = 'failed'; ctx._source.error = params.error; ctx._source.run_id = params.run_id; ctx._source.updated_at = params.at; }",
                "params": {"error": error, "run_id": run_id, "at": now}
            },
            "upsert": {"run_id": run_id, "task_id": task_id, "state": TaskState::Failed, "error": error, "has_body_part": false, "updated_at": now}
        });
        self.update_task(run_id, task_id, body, "marking failed").await
    }

    /// Claims tasks for `owner` (a task id, or `planner`): records them `queued` unless a record exists, then
    /// returns those this owner holds (created now, or earlier by the same owner: a redelivery must send them
    /// again). So an object reached several ways in one run (search, the tree, a verification) is synced once,
    /// whichever worker reaches it first, and a crash between claiming and sending loses nothing.
    pub async fn claim_tasks(
        &self,
        run_id: u64,
        owner: &str,
        tasks: Vec<TaskMessage>,
    ) -> Result<Vec<TaskMessage>, RunError> {
        if tasks.is_empty() {
            return Ok(tasks);
        }
        self.create_records(run_id, owner, queued_records(&tasks), TaskState::Queued).await?;
        let ids: Vec<String> = tasks.iter().map(|t| task_record_id(run_id, &t.task_id)).collect();
        let owners = self.owners(&ids).await?;
        Ok(tasks
            .into_iter()
            .zip(ids)
            .filter(|(_, id)| owners.get(id).map(String::as_str) == Some(owner))
            .map(|(t, _)| t)
            .collect())
    }

    /// Marks objects as claimed by the planner without a task of their own (databases it indexes in an objects
    /// task): a `child_database` block reaching one of them then finds it taken. Marks are not counted as tasks.
    pub async fn mark_claimed(&self, run_id: u64, task_ids: &[String]) -> Result<(), RunError> {
        let marks = task_ids.iter().map(|id| (id.as_str(), None)).collect();
        self.create_records(run_id, PLANNER, marks, TaskState::Claimed).await
    }

    /// `claimed_by` of task records, by `_id`.
    pub(super) async fn owners(&self, ids: &[String]) -> Result<std::collections::HashMap<String, String>, RunError> {
        let mut owners = std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            let body = json!({"ids": chunk});
            let reply = self
                .post(&format!("{}/_mget", path_segment(&self.tasks)), &[("_source", "claimed_by".into())], &body)
                .await?;
            let reply = reply.ok("reading task claims")?;
            for doc in reply.get("docs").and_then(Value::as_array).into_iter().flatten() {
                let id = doc.get("_id").and_then(Value::as_str).unwrap_or_default();
                let owner = doc.pointer("/_source/claimed_by").and_then(Value::as_str).unwrap_or(PLANNER);
                if doc.get("found").and_then(Value::as_bool) == Some(true) {
                    owners.insert(id.to_string(), owner.to_string());
                }
            }
        }
        Ok(owners)
    }

    /// The run's flags and the sums over its task records (the tasks index is refreshed first,
    /// so every record written before this call is counted).
    pub async fn status(&self, run_id: u64) -> Result<RunStatus, RunError> {
        let run = self.get(run_id).await?.ok_or(RunError::NotFound(run_id))?;
        refresh(&self.client, &self.tasks).await?;
        let sum = |field: &str| json!({"sum": {"field": field}});
        let body = json!({
            "size": 0,
            "track_total_hits": true,
            "query": {"term": {"run_id": run_id}},
            "aggs": {
                "states": {"terms": {"field": "state", "size": 10}},
                "indexed": sum("indexed"), "skipped": sum("skipped"), "deleted": sum("deleted"),
                "errors": sum("errors"), "api_calls": sum("api_calls"), "retries": sum("retries")
            }
        });
        let response = self.search(&self.tasks, &body).await?;
        let aggs = &response["aggregations"];
        let total = |name: &str| aggs[name]["value"].as_f64().map_or(0, |v| v.max(0.0).round() as u64);
        let mut status = RunStatus::of(&run);
        for bucket in aggs["states"]["buckets"].as_array().into_iter().flatten() {
            let count = bucket["doc_count"].as_u64().unwrap_or(0);
            match bucket["key"].as_str() {
                Some("queued") => status.queued = count,
                Some("done") => status.done = count,
                Some("failed") => status.failed = count,
                _ => {}
            }
        }
        status.indexed = total("indexed");
        status.skipped = total("skipped");
        status.deleted = total("deleted");
        status.errors = total("errors");
        status.api_calls = total("api_calls");
        status.retries = total("retries");
        Ok(status)
    }

    /// Deletes the task records (and the page texts they hold) of all but the newest `keep_runs` runs
    /// (at least one is kept), never those of a run still open; returns how many were deleted.
    pub async fn prune_tasks(&self, keep_runs: usize) -> Result<u64, RunError> {
        let kept = self.recent(keep_runs.max(1)).await?;
        if kept.len() < keep_runs.max(1) {
            return Ok(0);
        }
        let Some(oldest_kept) = kept.last().map(|r| r.id) else {
            return Ok(0);
        };
        let open = self.active_run_ids().await?;
        let query = json!({"bool": {
            "filter": [{"range": {"run_id": {"lt": oldest_kept}}}],
            "must_not": [{"terms": {"run_id": open}}]
        }});
        Ok(delete_by_query(&self.client, &self.tasks, &query).await?)
    }

    /// Deletes the webhook event ids received more than `older_than` ago (Notion retries an event
    /// for hours, not days); returns how many were deleted. A missing log is fine.
    pub async fn prune_webhook_events(&self, older_than: chrono::Duration) -> Result<u64, RunError> {
        let before = (Utc::now() - older_than).to_rfc3339();
        let query = json!({"range": {"received_at": {"lt": before}}});
        Ok(delete_by_query(&self.client, &self.events, &query).await?)
    }
}

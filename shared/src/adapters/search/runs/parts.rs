//! Body parts: the text a page walk hands on to its continuation, on the task records.

use super::*;

impl RunStore {
    /// Records a segment's page text on the task's own record. A walk that hands the rest of a
    /// page on should call this *before* sending the continuation, so the last segment is sure to
    /// find it (`task_done` with `body_part` writes it too, but only after the send).
    pub async fn save_body_part(
        &self,
        run_id: u64,
        task_id: &str,
        page_id: &str,
        segment: u32,
        text: &str,
    ) -> Result<(), RunError> {
        self.save_part(run_id, task_id, page_id, segment, text, TaskState::Queued).await
    }

    /// [`RunStore::save_body_part`] for a walk that is not a task of its own (a row walked inside a `pages`
    /// task): the part gets a record of its own, which is not counted as a task.
    pub async fn save_row_body_part(
        &self,
        run_id: u64,
        page_id: &str,
        segment: u32,
        text: &str,
    ) -> Result<(), RunError> {
        let record = format!("p:{page_id}:part{segment}");
        self.save_part(run_id, &record, page_id, segment, text, TaskState::Claimed).await
    }

    pub(super) async fn save_part(
        &self,
        run_id: u64,
        task_id: &str,
        page_id: &str,
        segment: u32,
        text: &str,
        state_if_new: TaskState,
    ) -> Result<(), RunError> {
        let part = json!({"run_id": run_id, "task_id": task_id, "page_id": page_id, "segment": segment,
            "body_part": text, "has_body_part": true, "updated_at": Utc::now()});
        let mut upsert = part.clone();
        upsert["state"] = json!(state_if_new);
        let body = json!({"doc": part, "upsert": upsert});
        self.update_task(run_id, task_id, body, "saving body part").await
    }

    /// `(segment, text)` of every recorded part of a page walk in this run, in segment order.
    pub(super) async fn segment_parts(&self, page_id: &str, run_id: u64) -> Result<Vec<(u32, String)>, RunError> {
        refresh(&self.client, &self.tasks).await?;
        let body = json!({
            "size": 10_000,
            "query": {"bool": {"filter": [
                {"term": {"run_id": run_id}}, {"term": {"page_id": page_id}}, {"term": {"has_body_part": true}}
            ]}},
            "_source": ["body_part", "segment"],
            "sort": [{"segment": "asc"}]
        });
        let response = self.search(&self.tasks, &body).await?;
        Ok(hits(&response)
            .into_iter()
            .filter_map(|mut source| {
                let segment = source.get("segment").and_then(Value::as_u64).and_then(|s| u32::try_from(s).ok())?;
                match source.remove("body_part") {
                    Some(Value::String(text)) => Some((segment, text)),
                    _ => None,
                }
            })
            .collect())
    }

    /// The texts handed on by the earlier segments of a page walk in this run, in segment order.
    pub async fn body_parts(&self, page_id: &str, run_id: u64) -> Result<Vec<String>, RunError> {
        Ok(self.segment_parts(page_id, run_id).await?.into_iter().map(|(_, text)| text).collect())
    }

    /// The texts of segments `0..segment`, in order; `MissingBodyParts` (retry later) when one
    /// of them is not recorded yet.
    pub async fn body_parts_before(&self, page_id: &str, run_id: u64, segment: u32) -> Result<Vec<String>, RunError> {
        let parts = self.segment_parts(page_id, run_id).await?;
        parts_before(parts, segment)
            .map_err(|missing| RunError::MissingBodyParts { page_id: page_id.to_string(), missing })
    }
}

//! The users task: every person the integration can see, as a document each.

use serde_json::Value;

use crate::document::{title_of, to_document, Placement};

use super::TaskRun;
use crate::sync::SyncError;

/// Lists the workspace's users and indexes the people (a missing capability is a warning, not a failure).
pub(super) async fn users(run: &mut TaskRun<'_>) -> Result<(), SyncError> {
    let (ctx, msg) = (run.ctx, run.msg);
    let mut cursor: Option<String> = None;
    loop {
        run.outcome.api_calls += 1;
        let page = match ctx.notion.list_users(cursor.as_deref()).await {
            Ok(page) => page,
            Err(err) if err.is_restricted() => {
                // One message per run (no request id in it): every task that meets the 403 says the same.
                tracing::warn!(error = %err, "users skipped: capability missing");
                let warning = "skipped: users (403 restricted_resource): GET /v1/users needs the \"read user \
                               information\" capability, which the integration lacks; user documents indexed \
                               before are kept";
                ctx.runs.add_warning(msg.run_id, warning, Some("user")).await?;
                break;
            }
            Err(err) => return Err(err.into()),
        };
        for user in &page.results {
            // Bots are integrations, not people: the Elastic connector skips them too.
            if user.get("type").and_then(Value::as_str) != Some("person") {
                continue;
            }
            let email = user.pointer("/person/email").and_then(Value::as_str).unwrap_or_default();
            let body = [title_of(user).as_str(), email]
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("\n");
            if let Some(doc) = to_document(user, &Placement::default(), body, msg.run_id) {
                run.buffer.push(doc).await?;
            }
        }
        match (page.has_more, page.next_cursor) {
            (true, Some(next)) => cursor = Some(next),
            _ => break,
        }
    }
    Ok(())
}

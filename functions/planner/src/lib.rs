//! Planner Lambda's handler: a schedule or a direct invoke → a planned sync run.

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::sync::SyncContext;

/// Plans the run the event asks for (`{"kind"}` or an EventBridge schedule) and returns its record.
pub async fn handler(ctx: &SyncContext, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let run = shared::sync::planner::handle_event(ctx, &event.payload).await?;
    Ok(serde_json::to_value(run)?)
}

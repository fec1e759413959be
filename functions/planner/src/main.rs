//! Planner Lambda: a schedule or a direct invoke → a planned sync run.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let ctx = shared::bootstrap::context_from_env(shared::bootstrap::Share::Whole).await?;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let run = shared::sync::planner::handle_event(ctx, &event.payload).await?;
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(run)?)
    }))
    .await
}

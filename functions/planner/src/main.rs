//! Planner Lambda: wiring only; the handler is `planner::handler`.

use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let ctx = shared::bootstrap::context_from_env(shared::bootstrap::Share::Whole).await?;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event| planner::handler(ctx, event))).await
}

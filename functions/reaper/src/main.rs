//! Reaper Lambda: wiring only; the handler is `reaper::handler`.

use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let ctx = shared::bootstrap::context_from_env(shared::bootstrap::Share::WorkerShare).await?;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event| reaper::handler(ctx, event))).await
}

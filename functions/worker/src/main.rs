//! Worker Lambda: wiring only; the handler is `worker::handler`.

use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    // Many large downloads at once must fit in this function's memory: refused at start, naming the values.
    shared::config::Settings::from_env()?.check_download_memory()?;
    let ctx = shared::bootstrap::context_from_env(shared::bootstrap::Share::WorkerShare).await?;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event| worker::handler(ctx, event))).await
}

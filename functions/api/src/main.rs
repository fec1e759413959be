//! API Lambda: wiring only; the handler is `api::handler`, its context `api::context`.

use lambda_http::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let ctx = api::context().await?;
    let ctx = &ctx;
    lambda_http::run(service_fn(move |req| api::handler(ctx, req))).await
}

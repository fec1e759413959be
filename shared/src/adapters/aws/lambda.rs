//! The planner trigger of the API: a Lambda `Invoke`, asynchronous.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::json;

use crate::api::{EdgeError, PlannerTrigger};
use crate::queue::BoxFuture;
use crate::task::RunKind;

/// Starts the planner Lambda with `{"kind", "run_id"}` as an `Event` (asynchronous) invocation.
/// Locally `AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:9000` points it at `cargo lambda watch`.
pub struct LambdaPlanner {
    client: aws_sdk_lambda::Client,
    function_name: String,
}

impl LambdaPlanner {
    pub fn new(config: &aws_config::SdkConfig, function_name: String) -> Self {
        LambdaPlanner { client: aws_sdk_lambda::Client::new(config), function_name }
    }
}

/// `PLANNER_FUNCTION_NAME`, else derived from this function's own name (`<stack>-api` →
/// `<stack>-planner`, as template.yaml names them; `api` → `planner` under cargo lambda watch).
pub fn planner_function_name() -> String {
    if let Some(name) = std::env::var("PLANNER_FUNCTION_NAME").ok().filter(|n| !n.trim().is_empty()) {
        return name;
    }
    match std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        Ok(own) if own.ends_with("-api") => format!("{}-planner", &own[..own.len() - 4]),
        _ => "planner".to_string(),
    }
}

impl PlannerTrigger for LambdaPlanner {
    fn start(&self, kind: RunKind, run_id: u64) -> BoxFuture<'_, Result<(), EdgeError>> {
        Box::pin(async move {
            let payload = json!({"kind": kind.as_str(), "run_id": run_id}).to_string();
            let out = self
                .client
                .invoke()
                .function_name(&self.function_name)
                .invocation_type(InvocationType::Event)
                .payload(Blob::new(payload))
                .send()
                .await
                .map_err(|e| EdgeError(format!("invoke {}: {}", self.function_name, short_error(&e))))?;
            if let Some(error) = out.function_error() {
                return Err(EdgeError(format!("invoke {}: function error {error}", self.function_name)));
            }
            if !(200..300).contains(&out.status_code()) {
                return Err(EdgeError(format!("invoke {}: status {}", self.function_name, out.status_code())));
            }
            Ok(())
        })
    }
}

/// A Lambda SDK error in one line: HTTP status, the service's code and message when there was an
/// answer, else the (capped) error chain.
fn short_error(
    err: &aws_sdk_lambda::error::SdkError<
        aws_sdk_lambda::operation::invoke::InvokeError,
        aws_sdk_lambda::config::http::HttpResponse,
    >,
) -> String {
    use aws_sdk_lambda::error::ProvideErrorMetadata;
    match err.raw_response() {
        Some(raw) => format!(
            "HTTP {} {} {}",
            raw.status().as_u16(),
            err.code().unwrap_or("error"),
            err.message().unwrap_or_default()
        )
        .trim_end()
        .to_string(),
        None => aws_sdk_lambda::error::DisplayErrorContext(err).to_string().chars().take(300).collect(),
    }
}

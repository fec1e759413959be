//! AWS adapters: SQS, Secrets Manager, Lambda invoke. SDK types stay in these files.

mod lambda;
mod secrets;
mod sqs;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

pub use lambda::{planner_function_name, LambdaPlanner};
pub use secrets::{SecretsManagerSource, SecretsManagerStore};
pub use sqs::SqsQueues;

/// Loads the SDK configuration with a ring-based rustls HTTP client (one TLS stack for the whole
/// binary; see README). Endpoints come from the environment (`AWS_ENDPOINT_URL` locally).
pub async fn sdk_config() -> aws_config::SdkConfig {
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).load().await
}

//! AWS adapters of the API's edges: the planner trigger (Lambda `Invoke`, asynchronous) and the
//! secret store (Secrets Manager). SDK types stay in this file.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::{json, Map, Value};
use shared::api::{EdgeError, PlannerTrigger, SecretStore};
use shared::queue::BoxFuture;
use shared::secrets::SecretString;
use shared::task::RunKind;

/// The JSON key of the webhook verification token in the secret.
const TOKEN_KEY: &str = "webhook_verification_token";

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

/// The secret (`SECRET_ID`) on Secrets Manager. Errors name the secret id, never a value.
pub struct SecretsManagerStore {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerStore {
    pub fn new(config: &aws_config::SdkConfig, secret_id: String) -> Self {
        SecretsManagerStore { client: aws_sdk_secretsmanager::Client::new(config), secret_id }
    }

    async fn read_text(&self) -> Result<String, String> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())?;
        out.secret_string().map(str::to_string).ok_or_else(|| "the secret has no SecretString".to_string())
    }

    async fn read_object(&self) -> Result<Map<String, Value>, EdgeError> {
        let text = self.read_text().await.map_err(|m| EdgeError(format!("read secret {}: {m}", self.secret_id)))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(EdgeError(format!("secret {} is not a JSON object", self.secret_id))),
        }
    }
}

impl SecretStore for SecretsManagerStore {
    fn store_verification_token<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<(), EdgeError>> {
        Box::pin(async move {
            // Read-modify-write (Secrets Manager has no partial update): the other keys are kept as
            // they are. Only the operator's confirm route calls this; an unchanged token is not
            // written again.
            let mut secret = self.read_object().await?;
            if secret.get(TOKEN_KEY).and_then(Value::as_str) == Some(token) {
                return Ok(());
            }
            secret.insert(TOKEN_KEY.to_string(), Value::String(token.to_string()));
            self.client
                .put_secret_value()
                .secret_id(&self.secret_id)
                .secret_string(Value::Object(secret).to_string())
                .send()
                .await
                .map_err(|e| {
                    EdgeError(format!(
                        "store {TOKEN_KEY} in secret {}: {}",
                        self.secret_id,
                        aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                    ))
                })?;
            Ok(())
        })
    }

    fn verification_token(&self) -> BoxFuture<'_, Result<Option<SecretString>, EdgeError>> {
        Box::pin(async move {
            let secret = self.read_object().await?;
            Ok(secret.get(TOKEN_KEY).and_then(Value::as_str).filter(|t| !t.trim().is_empty()).map(SecretString::new))
        })
    }
}

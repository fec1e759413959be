//! The secret on Secrets Manager: read whole at start (`SecretsManagerSource`, every function), and
//! the API's read-modify-write of the webhook verification token (`SecretsManagerStore`).

use serde_json::{Map, Value};

use crate::api::{EdgeError, SecretStore};
use crate::queue::BoxFuture;
use crate::secrets::SecretString;

/// The JSON key of the webhook verification token in the secret.
const TOKEN_KEY: &str = "webhook_verification_token";

/// The secret in Secrets Manager: one JSON document (see `secrets::Secrets`).
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerSource {
    pub fn new(config: &aws_config::SdkConfig, secret_id: String) -> Self {
        SecretsManagerSource { client: aws_sdk_secretsmanager::Client::new(config), secret_id }
    }
}

impl crate::secrets::SecretSource for SecretsManagerSource {
    async fn load(&self) -> Result<crate::secrets::Secrets, crate::secrets::SecretsError> {
        let fetch_error =
            |message: String| crate::secrets::SecretsError::Fetch { secret_id: self.secret_id.clone(), message };
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| fetch_error(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string()))?;
        let text = out.secret_string().ok_or_else(|| fetch_error("the secret has no SecretString".into()))?;
        crate::secrets::Secrets::from_json(text)
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

//! API Lambda's handler: HTTP (API Gateway HTTP API, or a function URL under cargo lambda watch) →
//! `shared::api::handle`. Notion webhooks on `POST /webhooks/notion`, on-demand syncs on `/syncs`.

use std::collections::HashMap;
use std::sync::Arc;

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::adapters::aws::{
    planner_function_name, sdk_config, LambdaPlanner, SecretsManagerSource, SecretsManagerStore, SqsQueues,
};
use shared::adapters::search::{SearchEventLog, SearchHandshakeStore, SearchRunBook};
use shared::api::{ApiContext, ApiRequest, ApiResponse, MemorySecretStore, SecretStore, TokenCache};
use shared::secrets::{EnvSecretSource, SecretSource};

/// One HTTP request: translated for `shared::api::handle`, its answer translated back.
pub async fn handler(ctx: &ApiContext, req: Request) -> Result<Response<Body>, lambda_http::Error> {
    let response = shared::api::handle(ctx, api_request(&req)).await;
    http_response(response)
}

/// Built once per container, like the other functions' context (`shared::bootstrap::build`), plus
/// the API's own edges. Secrets come from Secrets Manager (`SECRET_ID`), or from environment
/// variables when `NOTION_TOKEN` is set and `SECRET_ID` is not (local runs; then a confirmed
/// webhook token is kept in this container's memory only). Pending handshakes are on the search
/// engine (`<index>-webhook-handshakes`) either way.
pub async fn context() -> anyhow::Result<ApiContext> {
    let settings = shared::config::Settings::from_env()?;
    let sdk = sdk_config().await;
    let from_env = std::env::var_os("NOTION_TOKEN").is_some() && std::env::var_os("SECRET_ID").is_none();
    let (secrets, secret_store): (_, Arc<dyn SecretStore>) = if from_env {
        tracing::warn!("secrets from environment variables: a confirmed webhook token is not persisted");
        let secrets = EnvSecretSource::from_env().load().await?;
        (secrets, Arc::new(MemorySecretStore::default()))
    } else {
        let secrets = SecretsManagerSource::new(&sdk, settings.secret_id.clone()).load().await?;
        (secrets, Arc::new(SecretsManagerStore::new(&sdk, settings.secret_id.clone())))
    };
    let queue = Arc::new(SqsQueues::new(&sdk, settings.work_queue_url.clone(), settings.finalize_queue_url.clone()));
    // No Notion client here: the internet-facing function never calls Notion.
    let client = shared::bootstrap::search_store(&settings, &secrets).await?.client().clone();
    Ok(ApiContext {
        runs: Arc::new(SearchRunBook::new(client.clone(), &settings.index_name).with_leases(settings.leases())),
        queue,
        planner: Arc::new(LambdaPlanner::new(&sdk, planner_function_name())),
        secrets: secret_store,
        events: Arc::new(SearchEventLog::new(client.clone(), &settings.index_name)),
        handshakes: Arc::new(SearchHandshakeStore::new(client, &settings.index_name)),
        api_key: secrets.api_key,
        webhook_token: TokenCache::new(secrets.webhook_verification_token),
        finalize_delay_seconds: settings.finalize_delay_seconds,
    })
}

/// The request as the handler sees it: the body's raw bytes (a re-serialized body would not
/// verify), lower-case header names, the path without the stage.
fn api_request(req: &Request) -> ApiRequest {
    let mut headers = HashMap::new();
    for (name, value) in req.headers() {
        if let Ok(value) = value.to_str() {
            headers.entry(name.as_str().to_ascii_lowercase()).or_insert_with(|| value.to_string());
        }
    }
    let raw_path = req.raw_http_path();
    let path = if raw_path.is_empty() { req.uri().path() } else { raw_path };
    let iam_authenticated = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.authorizer.as_ref().is_some_and(|a| a.iam.is_some()),
        _ => false,
    };
    ApiRequest {
        method: req.method().as_str().to_string(),
        path: path.to_string(),
        headers,
        body: req.body().as_ref().to_vec(),
        iam_authenticated,
    }
}

fn http_response(resp: ApiResponse) -> Result<Response<Body>, lambda_http::Error> {
    let mut builder = Response::builder().status(resp.status).header("content-type", "application/json");
    for (name, value) in &resp.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    Ok(builder.body(Body::Text(resp.body.to_string()))?)
}

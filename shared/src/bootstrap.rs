//! Builds a `SyncContext` from the environment and the secret, once per Lambda container.
//! Everything is validated before the first network call, and every error names what was wrong.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::aws::{sdk_config, SecretsManagerSource, SqsQueues};
use crate::adapters::search::{RunStore, SearchStore};
use crate::config::{ConfigError, Settings};
use crate::extract::{DownloadConfig, Downloader, TrustedHost};
use crate::index::{IndexError, SearchCredentials, SearchSettings};
use crate::notion::{ClientConfig, NotionClient, NotionError, Token};
use crate::secrets::{EnvSecretSource, SecretSource, Secrets, SecretsError};
use crate::sync::{Limits, SyncContext};

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("Notion client: {0}")]
    Notion(#[from] NotionError),
    #[error("search engine: {0}")]
    Index(#[from] IndexError),
}

/// How much of the Notion budget a process may spend: the planner runs alone (before the
/// workers have anything to do) and gets all of it; each worker container gets its share
/// (`NOTION_RATE / WORKER_CONCURRENCY`), so together they never exceed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    Whole,
    WorkerShare,
}

impl Share {
    pub fn rate(self, settings: &Settings) -> f64 {
        match self {
            Share::Whole => settings.notion_rate,
            Share::WorkerShare => settings.worker_rate(),
        }
    }
}

/// Reads settings from the environment and secrets from Secrets Manager (`SECRET_ID`), or from
/// environment variables when `NOTION_TOKEN` is set and `SECRET_ID` is not (local runs only).
pub async fn context_from_env(share: Share) -> Result<SyncContext, BootError> {
    let settings = Settings::from_env()?;
    let aws = sdk_config().await;
    let secrets = secrets_from_env(&settings, &aws).await?;
    let queue = SqsQueues::new(&aws, settings.work_queue_url.clone(), settings.finalize_queue_url.clone());
    build(&settings, &secrets, Arc::new(queue), share).await
}

/// The secrets: from environment variables when `NOTION_TOKEN` is set and `SECRET_ID` is not
/// (local runs only), else from Secrets Manager.
async fn secrets_from_env(settings: &Settings, aws: &aws_config::SdkConfig) -> Result<Secrets, BootError> {
    Ok(if std::env::var_os("NOTION_TOKEN").is_some() && std::env::var_os("SECRET_ID").is_none() {
        EnvSecretSource::from_env().load().await?
    } else {
        SecretsManagerSource::new(aws, settings.secret_id.clone()).load().await?
    })
}

/// The content store of the environment's settings and secrets (the local runner's summary and sample search).
pub async fn search_from_env() -> Result<SearchStore, BootError> {
    let settings = Settings::from_env()?;
    let secrets = secrets_from_env(&settings, &sdk_config().await).await?;
    search_store(&settings, &secrets).await
}

/// The content store with its companion indices ensured: all the API function needs of the
/// search engine (it builds no Notion client).
pub async fn search_store(settings: &Settings, secrets: &Secrets) -> Result<SearchStore, BootError> {
    let mut search =
        SearchSettings::new(settings.search_url.as_str().trim_end_matches('/'), settings.index_name.clone());
    search.credentials = SearchCredentials {
        username: secrets.search_username.clone(),
        password: secrets.search_password.clone(),
        api_key: secrets.search_api_key.clone(),
    };
    let store = SearchStore::connect(&search)?;
    store.ensure_indices().await?;
    Ok(store)
}

/// Builds the context from validated parts (tests call this with their own queue).
pub async fn build(
    settings: &Settings,
    secrets: &Secrets,
    queue: Arc<dyn crate::queue::TaskQueue>,
    share: Share,
) -> Result<SyncContext, BootError> {
    let notion = NotionClient::new(
        Token::new(secrets.notion_token.expose()),
        ClientConfig::new(
            settings.notion_base_url.as_str().trim_end_matches('/'),
            settings.notion_version,
            share.rate(settings),
        ),
    )?;
    let store = search_store(settings, secrets).await?;
    let runs = Arc::new(RunStore::beside(&store).with_leases(settings.leases()));
    let connector = &settings.connector;
    let downloads = DownloadConfig {
        max_bytes: connector.max_file_size,
        concurrent_downloads: connector.concurrent_downloads as usize,
        allow_http: connector.allow_http_files,
        // The Notion API's own host and port is trusted like the API itself (we send it the token). Nothing
        // else is: Notion's files are on public S3. A local emulator serves its files there, on loopback.
        trusted_hosts: TrustedHost::of_url(&settings.notion_base_url).into_iter().collect(),
        ..DownloadConfig::default()
    };
    let downloader = Downloader::new(downloads);
    let limits = Limits {
        max_receive_count: settings.max_receive_count,
        finalize_delay_seconds: settings.finalize_delay_seconds,
        deadline_margin: Duration::from_secs(30),
        ..Limits::default()
    };
    Ok(SyncContext {
        notion,
        store: Arc::new(store),
        runs: runs.clone(),
        parts: runs,
        queue,
        config: connector.clone(),
        downloader,
        limits,
    })
}

//! An emulated Notion API for local runs and tests.
//!
//! `serve(config)` builds the workspace, binds, and serves `/v1` (the Notion API), `/files` and `/external`
//! (file bytes) and `/__control` (the test control API) until the returned [`Server`] is shut down or dropped.

pub mod api;
pub mod config;
pub mod control;
pub mod cursor;
pub mod error;
pub mod expected;
pub mod files;
pub mod filter;
pub mod gen;
pub mod limits;
pub mod minimum;
pub mod model;
pub mod shapes;
pub mod state;
pub mod version;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

pub use config::{RuntimeConfig, ServerConfig, WorkspaceKind, DEFAULT_TOKEN};
pub use version::ApiVersion;

use crate::api::DropConnection;
use crate::error::ApiError;
use crate::limits::{Bucket, Stats};
use crate::state::{App, Inner};

/// A running emulator. Dropping it stops accepting connections.
pub struct Server {
    pub addr: SocketAddr,
    pub app: App,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting connections and wait for the accept loop to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

pub fn router(app: App) -> Router {
    api::router(app.clone()).merge(control::router(app)).fallback(|uri: axum::http::Uri| async move {
        if uri.path().starts_with("/v1") {
            ApiError::invalid_url().into_response()
        } else {
            (axum::http::StatusCode::NOT_FOUND, "not found").into_response()
        }
    })
}

/// Build the workspace, bind and serve in the background.
pub async fn serve(config: ServerConfig) -> anyhow::Result<Server> {
    config.runtime.validate().map_err(anyhow::Error::msg)?;
    let (kind, seed) = (config.workspace, config.seed);
    let started = std::time::Instant::now();
    let store = tokio::task::spawn_blocking(move || gen::generate(kind, seed)).await?;
    tracing::info!(
        workspace = kind.as_str(),
        seed,
        pages = store.pages.len(),
        blocks = store.blocks.len(),
        ms = started.elapsed().as_millis() as u64,
        "workspace generated"
    );
    let listener = TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let base_url = config.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let app = App(Arc::new(Inner {
        store: RwLock::new(store),
        config: RwLock::new(config.runtime.clone()),
        bucket: Mutex::new(Bucket::default()),
        stats: Mutex::new(Stats::default()),
        base_url: base_url.trim_end_matches('/').to_string(),
        file_secret: format!("notion-emulator-files-{seed}").into_bytes(),
        http,
        workspace: RwLock::new((kind, seed)),
        generation: Default::default(),
        lists: Default::default(),
        throttle: Default::default(),
        created_at: Default::default(),
    }));
    let router = router(app.clone());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, router, rx));
    tracing::info!(%addr, "notion emulator listening");
    Ok(Server { addr, app, shutdown: Some(tx), task: Some(task) })
}

async fn accept_loop(listener: TcpListener, router: Router, mut shutdown: oneshot::Receiver<()>) {
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, _) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let router = router.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let router = router.clone();
                async move {
                    let resp = match router.oneshot(req.map(axum::body::Body::new)).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    };
                    if resp.extensions().get::<DropConnection>().is_some() {
                        return Err(Dropped);
                    }
                    Ok(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

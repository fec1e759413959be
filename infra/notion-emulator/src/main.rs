//! `notion-emulator`: serve an emulated Notion workspace.

use std::net::SocketAddr;

use clap::Parser;
use notion_emulator::{
    config::DEFAULT_ADDR, expected, gen, minimum, ApiVersion, RuntimeConfig, ServerConfig, WorkspaceKind,
};

#[derive(Parser, Debug)]
#[command(name = "notion-emulator", about = "An emulated Notion API for local runs and tests")]
struct Cli {
    /// Workspace: small, medium, large, edge or limits.
    #[arg(long, env = "NOTION_EMULATOR_WORKSPACE", default_value = "small")]
    workspace: WorkspaceKind,
    /// Seed of the generated workspace.
    #[arg(long, env = "NOTION_EMULATOR_SEED", default_value_t = 42)]
    seed: u64,
    /// Address to bind (overrides --port).
    #[arg(long, env = "NOTION_EMULATOR_ADDR")]
    addr: Option<SocketAddr>,
    /// Port on 127.0.0.1.
    #[arg(long, env = "NOTION_EMULATOR_PORT")]
    port: Option<u16>,
    /// Accepted bearer token.
    #[arg(long, env = "NOTION_EMULATOR_TOKEN", default_value = notion_emulator::DEFAULT_TOKEN)]
    token: String,
    /// Average requests per second on /v1 (0 = unlimited).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Token bucket size (default max(1, rate)).
    #[arg(long)]
    burst: Option<f64>,
    /// Probabilities of injected 500 / 502 / 503 / 529 responses and dropped connections.
    #[arg(long, default_value_t = 0.0)]
    fault_500: f64,
    #[arg(long, default_value_t = 0.0)]
    fault_502: f64,
    #[arg(long, default_value_t = 0.0)]
    fault_503: f64,
    #[arg(long, default_value_t = 0.0)]
    fault_529: f64,
    #[arg(long, default_value_t = 0.0)]
    drop_connection: f64,
    /// Added latency (ms) and jitter (ms) on /v1 calls.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Lifetime of signed file URLs (seconds).
    #[arg(long, default_value_t = 3600)]
    file_ttl: u64,
    /// Base URL used in file links (default http://<bound address>).
    #[arg(long)]
    public_url: Option<String>,
    /// Print the workspace counts and minimum API calls as JSON and exit.
    #[arg(long)]
    print_counts: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    if cli.print_counts {
        let started = std::time::Instant::now();
        let store = gen::generate(cli.workspace, cli.seed);
        let ms = started.elapsed().as_millis() as u64;
        let mut out = expected::counts(&store);
        out["workspace"] = cli.workspace.as_str().into();
        out["seed"] = cli.seed.into();
        out["generation_ms"] = ms.into();
        for v in [ApiVersion::V2022, ApiVersion::V2025, ApiVersion::V2026] {
            out["minimum_calls"][v.as_str()] = serde_json::to_value(minimum::minimum(&store, v, 10_000))?;
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let addr = match (cli.addr, cli.port) {
        (Some(a), _) => a,
        (None, Some(p)) => SocketAddr::from(([127, 0, 0, 1], p)),
        (None, None) => DEFAULT_ADDR.parse()?,
    };
    let runtime = RuntimeConfig {
        rate: (cli.rate > 0.0).then_some(cli.rate),
        burst: cli.burst,
        fault_500: cli.fault_500,
        fault_502: cli.fault_502,
        fault_503: cli.fault_503,
        fault_529: cli.fault_529,
        drop_connection: cli.drop_connection,
        latency_ms: cli.latency_ms,
        jitter_ms: cli.jitter_ms,
        file_url_ttl_secs: cli.file_ttl,
        token: cli.token,
        ..RuntimeConfig::default()
    };
    let server = notion_emulator::serve(ServerConfig {
        addr,
        workspace: cli.workspace,
        seed: cli.seed,
        runtime,
        public_url: cli.public_url,
    })
    .await?;
    println!(
        "notion-emulator listening on {} (workspace {}, seed {})",
        server.base_url(),
        cli.workspace.as_str(),
        cli.seed
    );
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}

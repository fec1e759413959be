//! Start-up and runtime configuration.

use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub const DEFAULT_TOKEN: &str = "ntn_local_test_token";
pub const DEFAULT_ADDR: &str = "127.0.0.1:8787";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceKind {
    Small,
    Medium,
    Large,
    Edge,
}

impl FromStr for WorkspaceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "small" => Ok(WorkspaceKind::Small),
            "medium" => Ok(WorkspaceKind::Medium),
            "large" => Ok(WorkspaceKind::Large),
            "edge" => Ok(WorkspaceKind::Edge),
            other => Err(format!("unknown workspace `{other}` (small, medium, large, edge)")),
        }
    }
}

impl WorkspaceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            WorkspaceKind::Small => "small",
            WorkspaceKind::Medium => "medium",
            WorkspaceKind::Large => "large",
            WorkspaceKind::Edge => "edge",
        }
    }
}

/// Everything that can be changed at runtime through `/__control/config`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Average requests per second allowed on `/v1` (token bucket). `null` or 0 = unlimited.
    pub rate: Option<f64>,
    /// Bucket size (burst). Defaults to max(1, rate).
    pub burst: Option<f64>,
    /// `rate_limit_reason` reported in 429 bodies.
    pub rate_limit_reason: String,
    /// Probabilities (0..1) of injected faults per `/v1` request. `fault_429` answers 429
    /// `rate_limited` with `Retry-After: retry_after_429` whatever the rate (chaos tests).
    pub fault_429: f64,
    pub fault_500: f64,
    pub fault_502: f64,
    pub fault_503: f64,
    pub fault_529: f64,
    /// Probability of closing the connection without a response.
    pub drop_connection: f64,
    /// `Retry-After` seconds sent with 529.
    pub retry_after_529: u64,
    /// `Retry-After` seconds sent with an injected 429 (`fault_429`).
    pub retry_after_429: u64,
    /// Added latency on `/v1` requests: fixed + uniform jitter.
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Apply latency and faults to file downloads too.
    pub faults_on_files: bool,
    /// Lifetime of signed file URLs.
    pub file_url_ttl_secs: u64,
    /// Lifetime of the signed file URLs in children lists (`GET /v1/blocks/{id}/children`);
    /// `null` = `file_url_ttl_secs`. `0` lists URLs that are already expired while `GET
    /// /v1/blocks/{id}` re-signs them fresh (tests of the refresh-on-403 path).
    pub list_file_url_ttl_secs: Option<u64>,
    /// The accepted bearer token.
    pub token: String,
    /// Tokens that get 401 on every call.
    pub revoked_tokens: Vec<String>,
    /// Rows one data source query may return before `request_status: incomplete`.
    pub query_row_cap: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            rate: None,
            burst: None,
            rate_limit_reason: "integration_rate_limit".to_string(),
            fault_429: 0.0,
            fault_500: 0.0,
            fault_502: 0.0,
            fault_503: 0.0,
            fault_529: 0.0,
            drop_connection: 0.0,
            retry_after_529: 1,
            retry_after_429: 1,
            latency_ms: 0,
            jitter_ms: 0,
            faults_on_files: false,
            file_url_ttl_secs: 3600,
            list_file_url_ttl_secs: None,
            token: DEFAULT_TOKEN.to_string(),
            revoked_tokens: Vec::new(),
            query_row_cap: 10_000,
        }
    }
}

impl RuntimeConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("fault_429", self.fault_429),
            ("fault_500", self.fault_500),
            ("fault_502", self.fault_502),
            ("fault_503", self.fault_503),
            ("fault_529", self.fault_529),
            ("drop_connection", self.drop_connection),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        let total =
            self.fault_429 + self.fault_500 + self.fault_502 + self.fault_503 + self.fault_529 + self.drop_connection;
        if total > 1.0 + 1e-9 {
            return Err("fault probabilities add up to more than 1".into());
        }
        if let Some(r) = self.rate {
            if !r.is_finite() || r < 0.0 {
                return Err("rate must be a non-negative number".into());
            }
        }
        if let Some(b) = self.burst {
            if !b.is_finite() || b < 1.0 {
                return Err("burst must be at least 1".into());
            }
        }
        if self.query_row_cap == 0 {
            return Err("query_row_cap must be at least 1".into());
        }
        Ok(())
    }

    pub fn effective_rate(&self) -> Option<(f64, f64)> {
        let rate = self.rate.filter(|r| *r > 0.0)?;
        Some((rate, self.burst.unwrap_or(rate.max(1.0))))
    }
}

/// Start-up configuration of a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub workspace: WorkspaceKind,
    pub seed: u64,
    pub runtime: RuntimeConfig,
    /// Base URL used in file links (defaults to `http://<bound address>`).
    pub public_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: DEFAULT_ADDR.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8787))),
            workspace: WorkspaceKind::Small,
            seed: 42,
            runtime: RuntimeConfig::default(),
            public_url: None,
        }
    }
}

impl ServerConfig {
    /// A config for tests: port 0 on localhost.
    pub fn for_tests(workspace: WorkspaceKind) -> ServerConfig {
        ServerConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), workspace, ..ServerConfig::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_probabilities_and_rates() {
        let mut c = RuntimeConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.effective_rate(), None);
        c.rate = Some(3.0);
        assert_eq!(c.effective_rate(), Some((3.0, 3.0)));
        c.fault_500 = 0.7;
        c.fault_503 = 0.7;
        assert!(c.validate().is_err());
        c.fault_503 = 0.0;
        c.burst = Some(0.5);
        assert!(c.validate().is_err());
    }
}

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
    /// Objects at (and beyond) Notion's size limits: huge titles and rich texts, 200 properties, deep nesting.
    Limits,
}

impl FromStr for WorkspaceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "small" => Ok(WorkspaceKind::Small),
            "medium" => Ok(WorkspaceKind::Medium),
            "large" => Ok(WorkspaceKind::Large),
            "edge" => Ok(WorkspaceKind::Edge),
            "limits" => Ok(WorkspaceKind::Limits),
            other => Err(format!("unknown workspace `{other}` (small, medium, large, edge, limits)")),
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
            WorkspaceKind::Limits => "limits",
        }
    }
}

/// What the integration may read about users (Notion's "user information" capability).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserCapability {
    /// "Read user information including email addresses".
    #[default]
    Email,
    /// "Read user information without email addresses": `person.email` is left out.
    NoEmail,
    /// "No user information": `GET /v1/users` and `GET /v1/users/{id}` answer 403 `restricted_resource`.
    None,
}

/// The integration's capabilities. Real integrations can lack user information or comment reading, and then
/// get 403 `restricted_resource` on those endpoints (a personal access token cannot list users either).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Capabilities {
    pub users: UserCapability,
    /// "Read comments": without it `GET /v1/comments` and `GET /v1/comments/{id}` answer 403.
    pub comments: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities { users: UserCapability::Email, comments: true }
    }
}

/// A deterministic one-shot rate limit: after `after_requests` more `/v1` requests, the next `count` answer 429
/// with `Retry-After: retry_after`; then the switch clears itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleAfter {
    pub after_requests: u64,
    pub retry_after: u64,
    pub count: u64,
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
    /// Edge (Cloudflare) errors: 504 gateway timeout, 520–524 and a 403 "Sorry, you have been blocked", all HTML
    /// with `cf-ray` and no JSON, as real Notion's proxy sends them.
    pub fault_504: f64,
    pub fault_520: f64,
    pub fault_521: f64,
    pub fault_522: f64,
    pub fault_523: f64,
    pub fault_524: f64,
    pub fault_403_html: f64,
    /// Probability of closing the connection without a response.
    pub drop_connection: f64,
    /// `Retry-After` seconds sent with 529.
    pub retry_after_529: u64,
    /// `Retry-After` seconds sent with an injected 429 (`fault_429`); not clamped (real Notion's can exceed 60).
    pub retry_after_429: u64,
    /// `Retry-After` seconds sent with an injected 503 (`null` = none, the default).
    pub retry_after_503: Option<u64>,
    /// One-shot deterministic 429s (see [`ThrottleAfter`]); set back to `null` once served.
    pub throttle_after: Option<ThrottleAfter>,
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
    /// Share (0..1) of the objects not directly shared with the integration (sub-pages, rows, data sources of inline
    /// databases) that search never returns, chosen by a hash of the id: the same ones on every call. Real search
    /// "is not guaranteed to return everything"; only directly shared (top-level) objects are.
    pub search_drop_rate: f64,
    /// Ids search never returns, whatever their parent (a database id hides its data sources too).
    pub search_drop_ids: Vec<String>,
    /// Objects created through the control API less than this many seconds ago are not in search yet
    /// ("search indexing is not immediate").
    pub search_index_lag_secs: u64,
    /// User and comment capabilities (403 `restricted_resource` without them).
    pub capabilities: Capabilities,
    /// Maximum nesting of compound (`and`/`or`) query filters; `null` = the emulator's leniency (up to 4). Real
    /// Notion allows 2.
    pub filter_max_depth: Option<u32>,
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
            fault_504: 0.0,
            fault_520: 0.0,
            fault_521: 0.0,
            fault_522: 0.0,
            fault_523: 0.0,
            fault_524: 0.0,
            fault_403_html: 0.0,
            drop_connection: 0.0,
            retry_after_529: 1,
            retry_after_429: 1,
            retry_after_503: None,
            throttle_after: None,
            latency_ms: 0,
            jitter_ms: 0,
            faults_on_files: false,
            file_url_ttl_secs: 3600,
            list_file_url_ttl_secs: None,
            token: DEFAULT_TOKEN.to_string(),
            revoked_tokens: Vec::new(),
            query_row_cap: 10_000,
            search_drop_rate: 0.0,
            search_drop_ids: Vec::new(),
            search_index_lag_secs: 0,
            capabilities: Capabilities::default(),
            filter_max_depth: None,
        }
    }
}

impl RuntimeConfig {
    /// Every fault probability, by config name.
    pub fn fault_probabilities(&self) -> [(&'static str, f64); 13] {
        [
            ("fault_429", self.fault_429),
            ("fault_500", self.fault_500),
            ("fault_502", self.fault_502),
            ("fault_503", self.fault_503),
            ("fault_529", self.fault_529),
            ("fault_504", self.fault_504),
            ("fault_520", self.fault_520),
            ("fault_521", self.fault_521),
            ("fault_522", self.fault_522),
            ("fault_523", self.fault_523),
            ("fault_524", self.fault_524),
            ("fault_403_html", self.fault_403_html),
            ("drop_connection", self.drop_connection),
        ]
    }

    pub fn validate(&self) -> Result<(), String> {
        let faults = self.fault_probabilities();
        for (name, p) in faults {
            // `contains` is false for NaN too.
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        let total: f64 = faults.iter().map(|(_, p)| p).sum();
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
        if !(0.0..=1.0).contains(&self.search_drop_rate) {
            return Err("search_drop_rate must be between 0 and 1".into());
        }
        if let Some(bad) = self.search_drop_ids.iter().find(|s| uuid::Uuid::parse_str(s.trim()).is_err()) {
            return Err(format!("search_drop_ids: `{bad}` is not an id"));
        }
        if self.throttle_after.is_some_and(|t| t.count == 0) {
            return Err("throttle_after.count must be at least 1".into());
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
        c.burst = None;
        assert!(c.validate().is_ok());
        for bad in [
            RuntimeConfig { fault_524: 0.6, fault_403_html: 0.6, ..RuntimeConfig::default() },
            RuntimeConfig { fault_520: f64::NAN, ..RuntimeConfig::default() },
            RuntimeConfig { search_drop_rate: -0.1, ..RuntimeConfig::default() },
            RuntimeConfig { search_drop_ids: vec!["x".into()], ..RuntimeConfig::default() },
            RuntimeConfig {
                throttle_after: Some(ThrottleAfter { after_requests: 1, retry_after: 1, count: 0 }),
                ..RuntimeConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn new_switches_are_off_by_default_and_parse() {
        let c: RuntimeConfig = serde_json::from_str(
            r#"{"capabilities": {"users": "no_email"}, "throttle_after": {"after_requests": 2, "retry_after": 3600, "count": 1}}"#,
        )
        .unwrap();
        assert_eq!(c.capabilities, Capabilities { users: UserCapability::NoEmail, comments: true });
        assert_eq!(c.throttle_after.map(|t| t.retry_after), Some(3600));
        let d = RuntimeConfig::default();
        assert_eq!((d.search_drop_rate, d.search_index_lag_secs, d.filter_max_depth), (0.0, 0, None));
        assert!(d.search_drop_ids.is_empty() && d.retry_after_503.is_none() && d.throttle_after.is_none());
        assert_eq!(d.capabilities, Capabilities::default());
        assert!(serde_json::from_str::<RuntimeConfig>(r#"{"capabilities": {"user": "none"}}"#).is_err());
    }
}

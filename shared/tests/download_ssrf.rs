//! Server-side request forgery through file links: downloads refuse private, loopback, link-local and other
//! special addresses (literal, resolved or reached by a redirect), connect to nothing they refuse, and still
//! download from trusted and public hosts.
//!
//! Two servers on loopback: a *trusted* file host (in `trusted_hosts`, as the Notion emulator is in the e2e
//! tests) and a *target* that counts every TCP connection it accepts. The target must see none.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use shared::config::ConnectorConfig;
use shared::extract::{
    address_allowed, allowed_addrs, DownloadConfig, DownloadError, Downloader, FileHint, TrustedHost,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

const REFUSED: &str = "refused: address not allowed";

// ---------- servers ----------

/// A loopback listener that answers every connection with a secret and counts the connections.
struct Target {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Target {
    async fn start() -> Target {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind target");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                // Read the request first: closing with unread bytes would reset the connection.
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\nconnection: close\r\n\r\ninternal data";
                let _ = socket.write_all(reply).await;
            }
        });
        Target { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// The trusted file host: `/file.txt`, `/redirect/{status}?to=<url>` and `/hops/{n}` (n redirects to itself).
struct Trusted {
    base: String,
    hits: Arc<AtomicUsize>,
}

async fn file() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain")], "public file text")
}

async fn redirect(
    State(hits): State<Arc<AtomicUsize>>,
    Path(status): Path<u16>,
    Query(query): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    hits.fetch_add(1, Ordering::SeqCst);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
    match query.get("to") {
        Some(to) => (status, [(header::LOCATION, to.clone())]).into_response(),
        None => status.into_response(),
    }
}

async fn hops(Path(n): Path<u32>) -> impl IntoResponse {
    let location = if n == 0 { "/file.txt".to_owned() } else { format!("/hops/{}", n - 1) };
    (StatusCode::FOUND, [(header::LOCATION, location)])
}

impl Trusted {
    async fn start() -> Trusted {
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/file.txt", get(file))
            .route("/redirect/{status}", get(redirect))
            .route("/hops/{n}", get(hops))
            .with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind trusted");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Trusted { base: format!("http://{addr}"), hits }
    }

    fn host(&self) -> TrustedHost {
        TrustedHost::of_url(&Url::parse(&self.base).expect("base")).expect("host")
    }

    fn redirect_to(&self, target: &str) -> String {
        format!("{}/redirect/302?to={}", self.base, percent_encode(target))
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Downloads trusting `trusted`, with http allowed so that the address check is what refuses.
fn downloader(trusted: &Trusted) -> Downloader {
    Downloader::new(DownloadConfig {
        requests_per_second: 0.0,
        timeout: Duration::from_secs(5),
        allow_http: true,
        trusted_hosts: vec![trusted.host()],
        ..DownloadConfig::default()
    })
}

/// Refused addresses, as literals: loopback on the target's port (so a connection would be seen), the cloud
/// metadata endpoints, private and CGNAT ranges, and other spellings of loopback.
fn literal_targets(port: u16) -> Vec<String> {
    vec![
        format!("http://127.0.0.1:{port}/x"),
        format!("https://127.0.0.1:{port}/x"),
        format!("http://127.0.0.2:{port}/x"),
        format!("http://127.1:{port}/x"),
        format!("http://2130706433:{port}/x"),
        format!("http://0x7f.0.0.1:{port}/x"),
        format!("http://0177.0.0.1:{port}/x"),
        format!("http://0.0.0.0:{port}/x"),
        format!("http://[::1]:{port}/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/x"),
        format!("http://[::ffff:7f00:1]:{port}/x"),
        format!("http://[::127.0.0.1]:{port}/x"),
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_owned(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_owned(),
        "http://[::ffff:169.254.169.254]/latest/meta-data/".to_owned(),
        "http://10.0.0.1/x".to_owned(),
        "http://10.255.255.254:8080/x".to_owned(),
        "http://172.16.0.1/x".to_owned(),
        "http://172.31.255.1/x".to_owned(),
        "http://192.168.1.1/x".to_owned(),
        "http://100.64.0.1/x".to_owned(),
        "http://[fe80::1]/x".to_owned(),
        "http://[fc00::1]/x".to_owned(),
        "http://224.0.0.1/x".to_owned(),
        "http://255.255.255.255/x".to_owned(),
    ]
}

// ---------- the address classifier ----------

#[test]
fn address_classifier() {
    let cases: &[(&str, bool)] = &[
        // public
        ("1.1.1.1", true),
        ("8.8.8.8", true),
        ("52.95.110.1", true),
        ("100.63.255.255", true),
        ("100.128.0.0", true),
        ("172.15.255.255", true),
        ("172.32.0.0", true),
        ("192.0.1.1", true),
        ("192.169.0.1", true),
        ("198.17.255.255", true),
        ("198.20.0.0", true),
        ("223.255.255.255", true),
        ("2606:4700:4700::1111", true),
        ("2a00:1450:4001:80b::200e", true),
        ("2001:4860:4860::8888", true),
        ("::ffff:8.8.8.8", true),
        ("64:ff9b::808:808", true),
        // unspecified, "this network"
        ("0.0.0.0", false),
        ("0.1.2.3", false),
        ("::", false),
        // loopback
        ("127.0.0.1", false),
        ("127.255.255.254", false),
        ("::1", false),
        // private
        ("10.0.0.1", false),
        ("10.255.255.255", false),
        ("172.16.0.1", false),
        ("172.31.255.255", false),
        ("192.168.0.1", false),
        ("192.168.255.255", false),
        ("fc00::1", false),
        ("fd12:3456:789a::1", false),
        // CGNAT
        ("100.64.0.1", false),
        ("100.127.255.255", false),
        // link-local, cloud metadata
        ("169.254.0.1", false),
        ("169.254.169.254", false),
        ("169.254.170.2", false),
        ("fe80::1", false),
        ("febf::1", false),
        ("fd00:ec2::254", false),
        ("fd00:ec2::23", false),
        // site-local (deprecated)
        ("fec0::1", false),
        // multicast, broadcast
        ("224.0.0.1", false),
        ("239.255.255.250", false),
        ("255.255.255.255", false),
        ("ff02::1", false),
        ("ff05::2", false),
        // documentation, benchmarking, reserved
        ("192.0.0.8", false),
        ("192.0.2.1", false),
        ("198.51.100.7", false),
        ("203.0.113.9", false),
        ("198.18.0.1", false),
        ("198.19.255.255", false),
        ("192.88.99.1", false),
        ("240.0.0.1", false),
        ("2001:db8::1", false),
        ("3fff::1", false),
        ("2001::1", false),
        ("2001:2::1", false),
        ("2002:7f00:1::1", false),
        ("2002:808:808::1", false),
        ("100::1", false),
        ("64:ff9b:1::1", false),
        // IPv4-mapped, IPv4-compatible, NAT64 forms of refused addresses
        ("::ffff:127.0.0.1", false),
        ("::ffff:7f00:1", false),
        ("::ffff:169.254.169.254", false),
        ("::ffff:10.0.0.1", false),
        ("::ffff:172.16.0.1", false),
        ("::ffff:192.168.1.1", false),
        ("::ffff:100.64.0.1", false),
        ("::ffff:0.0.0.0", false),
        ("::ffff:224.0.0.1", false),
        ("::ffff:255.255.255.255", false),
        ("::ffff:192.0.2.1", false),
        ("::127.0.0.1", false),
        ("::8.8.8.8", false),
        ("::ffff:0:127.0.0.1", false),
        ("64:ff9b::7f00:1", false),
        ("64:ff9b::a9fe:a9fe", false),
        ("64:ff9b::a00:1", false),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(ip, allowed)| address_allowed(ip.parse::<IpAddr>().expect(ip)) != *allowed)
        .map(|(ip, allowed)| format!("{ip}: expected allowed={allowed}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn resolved_addresses_are_filtered() {
    let addr = |s: &str| s.parse::<SocketAddr>().expect(s);
    let mixed = [addr("127.0.0.1:0"), addr("93.184.215.14:0"), addr("[::1]:0"), addr("[2606:2800:21f::1]:0")];
    assert_eq!(allowed_addrs(mixed).expect("public left"), vec![addr("93.184.215.14:0"), addr("[2606:2800:21f::1]:0")]);
    let private = [addr("127.0.0.1:0"), addr("[::1]:0"), addr("10.1.2.3:443"), addr("169.254.169.254:80")];
    assert_eq!(allowed_addrs(private).expect_err("none left").to_string(), REFUSED);
    assert!(allowed_addrs([]).is_err());
}

// ---------- downloads ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_addresses_are_refused_before_connecting() {
    let target = Target::start().await;
    let trusted = Trusted::start().await;
    let d = downloader(&trusted);
    for url in literal_targets(target.port) {
        let started = Instant::now();
        let err = d.download(&url).await.expect_err(&url);
        assert_eq!(err, DownloadError::AddressRefused, "{url}");
        // No connection attempt: 10.x or 169.254.x would otherwise wait for the 5 s timeout.
        assert!(started.elapsed() < Duration::from_secs(1), "{url}: {:?}", started.elapsed());
    }
    assert_eq!(target.connections(), 0, "the target was reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_resolve_to_refused_addresses_are_refused() {
    let target = Target::start().await;
    let trusted = Trusted::start().await;
    let d = downloader(&trusted);
    for url in [format!("http://localhost:{}/x", target.port), format!("https://LocalHost:{}/x", target.port)] {
        assert_eq!(d.download(&url).await.expect_err(&url), DownloadError::AddressRefused, "{url}");
    }
    assert_eq!(target.connections(), 0, "the target was reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_refused_addresses_are_refused() {
    let target = Target::start().await;
    let trusted = Trusted::start().await;
    let d = downloader(&trusted);
    let mut targets = literal_targets(target.port);
    targets.push(format!("http://localhost:{}/x", target.port));
    for to in &targets {
        let url = trusted.redirect_to(to);
        assert_eq!(d.download(&url).await.expect_err(to), DownloadError::AddressRefused, "redirect to {to}");
    }
    // Every redirect status, and a redirect after a first, allowed, hop.
    let to = format!("http://127.0.0.1:{}/x", target.port);
    for status in [301, 302, 303, 307, 308] {
        let url = format!("{}/redirect/{status}?to={}", trusted.base, percent_encode(&to));
        assert_eq!(d.download(&url).await.expect_err("status"), DownloadError::AddressRefused, "{status}");
    }
    let second_hop = trusted.redirect_to(&trusted.redirect_to(&format!("http://localhost:{}/x", target.port)));
    assert_eq!(d.download(&second_hop).await.expect_err("hop 2"), DownloadError::AddressRefused);

    assert_eq!(trusted.hits.load(Ordering::SeqCst), targets.len() + 5 + 2, "the trusted host answered each");
    assert_eq!(target.connections(), 0, "the target was reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_host_still_downloads_and_redirects_are_bounded() {
    let trusted = Trusted::start().await;
    let d = downloader(&trusted);
    let got = d.download(&format!("{}/file.txt", trusted.base)).await.expect("trusted download");
    assert_eq!(got.bytes, b"public file text");
    // Relative and absolute redirects within the trusted host are followed.
    assert_eq!(d.download(&format!("{}/hops/4", trusted.base)).await.expect("5 hops").bytes, b"public file text");
    let absolute = trusted.redirect_to(&format!("{}/file.txt", trusted.base));
    assert_eq!(d.download(&absolute).await.expect("absolute").bytes, b"public file text");
    // Five redirects are followed, the sixth is not.
    assert_eq!(
        d.download(&format!("{}/hops/5", trusted.base)).await.expect_err("6 hops"),
        DownloadError::TooManyRedirects(5)
    );
    // A redirect without a usable location is reported as its status.
    let nowhere = format!("{}/redirect/302", trusted.base);
    assert_eq!(d.download(&nowhere).await.expect_err("empty location"), DownloadError::Status(302));

    let outcome = d.fetch_and_extract(&format!("{}/file.txt", trusted.base), FileHint::default()).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.text(), "public file text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_needs_the_setting() {
    let target = Target::start().await;
    let trusted = Trusted::start().await;
    let d = Downloader::new(DownloadConfig {
        requests_per_second: 0.0,
        trusted_hosts: vec![trusted.host()],
        ..DownloadConfig::default()
    });
    // Refused before any lookup or connection.
    assert_eq!(d.download("http://example.com/file.pdf").await.expect_err("http"), DownloadError::HttpRefused);
    let to_http = trusted.redirect_to(&format!("http://localhost:{}/x", target.port));
    assert_eq!(d.download(&to_http).await.expect_err("redirect to http"), DownloadError::HttpRefused);
    // https is checked for its address.
    let to_https = trusted.redirect_to(&format!("https://127.0.0.1:{}/x", target.port));
    assert_eq!(d.download(&to_https).await.expect_err("redirect to https"), DownloadError::AddressRefused);
    // Other schemes are invalid, even as a redirect from a trusted host.
    let to_file = trusted.redirect_to("file:///etc/passwd");
    assert!(matches!(d.download(&to_file).await.expect_err("file://"), DownloadError::InvalidUrl(_)));
    // The trusted host is served over http.
    assert!(d.download(&format!("{}/file.txt", trusted.base)).await.is_ok());
    assert_eq!(target.connections(), 0, "the target was reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_configuration_trusts_nothing() {
    let trusted = Trusted::start().await;
    let target = Target::start().await;
    let strict = Downloader::new(DownloadConfig { requests_per_second: 0.0, ..DownloadConfig::default() });
    let url = format!("{}/file.txt", trusted.base);
    assert_eq!(strict.download(&url).await.expect_err("http"), DownloadError::HttpRefused);
    let https = url.replacen("http://", "https://", 1);
    assert_eq!(strict.download(&https).await.expect_err("loopback"), DownloadError::AddressRefused);
    let http_allowed =
        Downloader::new(DownloadConfig { requests_per_second: 0.0, allow_http: true, ..DownloadConfig::default() });
    assert_eq!(http_allowed.download(&url).await.expect_err("loopback"), DownloadError::AddressRefused);
    assert_eq!(trusted.hits.load(Ordering::SeqCst), 0);

    // What bootstrap trusts in production (NOTION_BASE_URL = https://api.notion.com) matches no loopback URL.
    let notion = TrustedHost::of_url(&Url::parse("https://api.notion.com").expect("url")).expect("host");
    let d = Downloader::new(DownloadConfig {
        requests_per_second: 0.0,
        allow_http: true,
        trusted_hosts: vec![notion],
        ..DownloadConfig::default()
    });
    assert_eq!(d.download(&url).await.expect_err("loopback"), DownloadError::AddressRefused);

    // A trusted host:port trusts that port only; `any_port` trusts the host on every port.
    let d = downloader(&trusted);
    let other_port = format!("http://127.0.0.1:{}/x", target.port);
    assert_eq!(d.download(&other_port).await.expect_err("other port"), DownloadError::AddressRefused);
    assert_eq!(target.connections(), 0);
    let any = Downloader::new(DownloadConfig {
        requests_per_second: 0.0,
        trusted_hosts: vec![TrustedHost::any_port("127.0.0.1").expect("host")],
        ..DownloadConfig::default()
    });
    assert_eq!(any.download(&other_port).await.expect("any port").bytes, b"internal data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_file_is_indexed_without_text_and_says_nothing_about_the_port() {
    let target = Target::start().await;
    let trusted = Trusted::start().await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let d = downloader(&trusted);
    let block = |url: String| json!({"type": "file", "file": {"type": "external", "external": {"url": url}, "caption": [], "name": "notes.txt"}});
    let mut errors = Vec::new();
    for url in [
        format!("http://127.0.0.1:{}/notes.txt", target.port),
        format!("http://127.0.0.1:{closed_port}/notes.txt"),
        format!("http://localhost:{}/notes.txt", target.port),
        format!("http://localhost:{closed_port}/notes.txt"),
        trusted.redirect_to(&format!("http://127.0.0.1:{}/notes.txt", target.port)),
        trusted.redirect_to(&format!("http://127.0.0.1:{closed_port}/notes.txt")),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let outcome = d.fetch_block(&block(url.clone()), || async { None }).await;
        assert!(outcome.extracted.is_none(), "{url}");
        assert_eq!(outcome.error_code, Some("address_refused"), "{url}");
        assert_eq!(
            outcome.file_fields(Some("notes.txt")),
            json!({"name": "notes.txt", "extracted": false, "error": REFUSED}),
            "{url}"
        );
        errors.push(outcome.error);
    }
    errors.dedup();
    assert_eq!(errors, vec![Some(REFUSED.to_owned())], "one message for open and closed ports");
    assert_eq!(target.connections(), 0, "the target was reached");
}

#[test]
fn allow_http_files_setting() {
    assert!(!ConnectorConfig::default().allow_http_files);
    let c = |v: serde_json::Value| ConnectorConfig::from_json(&json!({ "allow_http_files": v }));
    assert!(c(json!(true)).expect("true").allow_http_files);
    assert!(!c(json!(false)).expect("false").allow_http_files);
    assert!(!c(json!(null)).expect("null").allow_http_files);
    assert_eq!(
        c(json!("yes")).expect_err("string").to_string(),
        "configuration /allow_http_files: must be true or false, found a string"
    );
}

//! Downloads in flight fit the function's memory: `concurrent_downloads × max_file_size` at most half of
//! `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (checked by the worker at start), `max_file_size` capped, and the download
//! buffer never sized from a server's `Content-Length` past the limit (review H5, L12).

use std::collections::HashMap;

use shared::config::{Settings, MAX_FILE_SIZE_CAP};
use shared::extract::{DownloadConfig, Downloader};

fn settings(memory_mb: Option<&str>, config: &str) -> Result<Settings, shared::config::ConfigError> {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("WORK_QUEUE_URL".into(), "http://127.0.0.1:4566/000000000000/work".into());
    env.insert("FINALIZE_QUEUE_URL".into(), "http://127.0.0.1:4566/000000000000/finalize".into());
    env.insert("CONNECTOR_CONFIG".into(), config.into());
    if let Some(memory) = memory_mb {
        env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), memory.into());
    }
    Settings::from_map(&env)
}

#[test]
fn thirty_ten_mib_downloads_do_not_fit_a_256_mb_worker() {
    let s = settings(Some("256"), r#"{"concurrent_downloads": 30, "max_file_size": 10485760}"#).unwrap();
    let err = s.check_download_memory().expect_err("30 × 10 MiB > 128 MiB").to_string();
    println!("{err}");
    for part in ["concurrent_downloads (30)", "max_file_size (10485760 bytes)", "314572800", "256 MB", "134217728"] {
        assert!(err.contains(part), "{part:?} missing from {err:?}");
    }
    // Twelve of them fit.
    let s = settings(Some("256"), r#"{"concurrent_downloads": 12, "max_file_size": 10485760}"#).unwrap();
    s.check_download_memory().expect("12 × 10 MiB ≤ 128 MiB");
}

#[test]
fn unset_concurrency_is_fitted_to_the_memory() {
    let s = settings(Some("256"), "{}").unwrap();
    assert_eq!(s.connector.concurrent_downloads, 12, "128 MiB / 10 MiB");
    s.check_download_memory().expect("the default fits");
    let s = settings(Some("10240"), "{}").unwrap();
    assert_eq!(s.connector.concurrent_downloads, 30, "never more than the default");
    let s = settings(None, "{}").unwrap();
    assert_eq!(s.connector.concurrent_downloads, 30, "outside Lambda: the default");
    s.check_download_memory().expect("nothing to check without a memory size");
    // One file larger than half the memory cannot fit, however few run at once.
    let s = settings(Some("128"), r#"{"max_file_size": 104857600}"#).unwrap();
    assert_eq!(s.connector.concurrent_downloads, 1);
    let err = s.check_download_memory().expect_err("100 MiB > 64 MiB").to_string();
    assert!(err.contains("max_file_size (104857600 bytes)"), "{err}");
}

#[test]
fn max_file_size_has_a_hard_cap() {
    let err = settings(None, r#"{"max_file_size": 104857601}"#).expect_err("over the cap").to_string();
    assert!(err.contains("/max_file_size") && err.contains("0..=104857600"), "{err}");
    settings(None, r#"{"max_file_size": 104857600}"#).expect("the cap itself");
    let err = settings(Some("lots"), "{}").expect_err("not a number").to_string();
    assert!(err.contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "{err}");
    // A downloader built by hand is capped too, so no Content-Length can size its buffer past the cap.
    let d = Downloader::new(DownloadConfig { max_bytes: u64::MAX, ..DownloadConfig::default() });
    assert_eq!(d.config().max_bytes, MAX_FILE_SIZE_CAP);
}

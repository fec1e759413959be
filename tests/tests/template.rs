//! The SAM template (issue 7), checked through infra/scripts/check-template.sh:
//! - `cfn-lint` and `sam validate --lint` pass;
//! - the template agrees with docs/DESIGN.md (function env vars, resource names, schedules,
//!   visibility timeout >= 6 x worker timeout, worker concurrency derived from the Notion rate,
//!   one role per function and no `*` in its policy);
//! - `sam build` succeeds (arm64 bootstraps; cargo's target/ is the cache);
//! - the template without its functions deploys to LocalStack through CloudFormation and creates
//!   the queues, redrive policies, secret and rules the functions are configured with.
//!
//! Needs the tools venv (`infra/scripts/install.sh tools`); the LocalStack check needs `make up`.
//! `NOTION_ES_SKIP_SAM_BUILD=1` skips the (slow when cold) build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

/// The checks share .local/template-check and LocalStack; run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn check(what: &str) {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(root().join("infra/scripts/check-template.sh"))
        .arg(what)
        .current_dir(root())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("check-template.sh {what}: {:.1} s\n{stderr}", started.elapsed().as_secs_f64());
    assert!(out.status.success(), "check-template.sh {what} failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("FAIL "), "{stdout}");
}

#[test]
fn template_passes_cfn_lint_and_sam_validate() {
    check("lint");
}

#[test]
fn template_agrees_with_design() {
    check("static");
}

#[test]
fn sam_build_succeeds() {
    if std::env::var_os("NOTION_ES_SKIP_SAM_BUILD").is_some() {
        eprintln!("sam build skipped (NOTION_ES_SKIP_SAM_BUILD is set)");
        return;
    }
    check("build");
}

#[test]
fn template_without_functions_deploys_to_localstack() {
    check("localstack");
}

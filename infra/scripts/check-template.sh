#!/usr/bin/env bash
# Checks of the SAM template (issue 7). Usage: check-template.sh [lint|static|build|localstack|all]...
#   lint        cfn-lint template.yaml; sam validate --lint
#   static      template vs docs/DESIGN.md and its own rules (infra/scripts/check_template.py static)
#   build       sam build (Rust, cargo-lambda, arm64); cargo's target/ is the cache, a rebuild with no
#               change takes seconds. Log: .local/logs/sam-build.log
#   localstack  the template without its functions deploys to LocalStack (LOCALSTACK_URL, default
#               http://127.0.0.1:$LOCALSTACK_PORT) and creates what the functions are configured with
#   all         all of the above (the default)
# Needs the tools venv (infra/scripts/install.sh tools); `localstack` needs `make up`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$HERE/env.sh"
cd "$NOTION_ES_ROOT"

export SAM_CLI_TELEMETRY=0
TOOLS="$NOTION_ES_CACHE/venv-tools/bin"
LOCALSTACK_URL="${LOCALSTACK_URL:-http://127.0.0.1:$LOCALSTACK_PORT}"
export LOCALSTACK_URL

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

need_tools() {
  for t in python cfn-lint sam cargo-lambda; do
    [ -x "$TOOLS/$t" ] || die "$TOOLS/$t is missing: run infra/scripts/install.sh tools"
  done
}

timed() {
  local what="$1" t0=$SECONDS; shift
  "$@"
  say "$what: ok ($((SECONDS - t0)) s)"
}

do_lint() {
  need_tools
  timed "cfn-lint template.yaml" "$TOOLS/cfn-lint" template.yaml
  timed "sam validate --lint" "$TOOLS/sam" validate --lint --region us-east-1 --template template.yaml
}

do_static() {
  need_tools
  timed "template vs DESIGN.md" "$TOOLS/python" "$HERE/check_template.py" static
}

do_build() {
  need_tools
  command -v cargo >/dev/null || die "cargo is not on PATH"
  # Lambda arm64 = aarch64-unknown-linux-gnu; cargo-lambda cross-links it with zig (from the venv).
  if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    say "rustup target add aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu >&2
  fi
  local log="$NOTION_ES_LOCAL/logs/sam-build.log" t0=$SECONDS
  mkdir -p "$(dirname "$log")"
  # Two sam builds in one tree clobber each other's .aws-sam/build: one at a time.
  exec 9>"$NOTION_ES_LOCAL/sam-build.lock"
  if ! flock -n 9; then
    say "waiting for another sam build in this tree"
    flock 9
  fi
  say "sam build (log: $log)"
  # The first python3 on PATH must be the venv's, which has cargo-lambda's zig.
  if ! PATH="$TOOLS:$PATH" sam build --template template.yaml >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "sam build failed (see $log)"
  fi
  for f in PlannerFunction WorkerFunction ReaperFunction ApiFunction; do
    local b=".aws-sam/build/$f/bootstrap"
    [ -x "$b" ] || die "sam build made no $b"
    if command -v file >/dev/null; then
      file "$b" | grep -q "ARM aarch64" || die "$b is not an arm64 executable: $(file "$b")"
    fi
  done
  say "sam build: ok ($((SECONDS - t0)) s; $(du -ch .aws-sam/build/*/bootstrap | tail -1 | cut -f1) of bootstraps)"
  exec 9>&-
}

do_localstack() {
  need_tools
  curl -fsS -o /dev/null --max-time 3 "$LOCALSTACK_URL/_localstack/health" ||
    die "LocalStack does not answer at $LOCALSTACK_URL: run \`make up\` (or set LOCALSTACK_URL)"
  timed "template without functions on LocalStack" "$TOOLS/python" "$HERE/check_template.py" localstack
}

[ $# -gt 0 ] || set -- all
for what in "$@"; do
  case "$what" in
    lint) do_lint ;;
    static) do_static ;;
    build) do_build ;;
    localstack) do_localstack ;;
    all) do_lint; do_static; do_build; do_localstack ;;
    *) die "unknown check '$what' (lint|static|build|localstack|all)" ;;
  esac
done

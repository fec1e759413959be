#!/usr/bin/env bash
# make test: install what is missing, bring up the services that are not already up, run `cargo test --workspace`
# --no-fail-fast with the environment of env.sh, then stop exactly the services this run started, also when the tests fail.
# Exit code: the tests' (or the failing step's). Extra cargo test arguments: CARGO_TEST_ARGS="..." (e.g. "-- --nocapture").
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REC="$LOCAL/started-by-test.$$"
: >"$REC"
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  say "stopping the services this test run started"
  "$ROOT/infra/scripts/down.sh" --from "$REC" || warn "could not stop everything this run started (make down)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$ROOT/infra/scripts/install.sh" all
NOTION_ES_INSTALLED=1 "$ROOT/infra/scripts/up.sh" --record "$REC"

say "cargo test --workspace --no-fail-fast ${CARGO_TEST_ARGS:-}"
cd "$ROOT"
set +e
# shellcheck disable=SC2086 # CARGO_TEST_ARGS is split on purpose
cargo test --workspace --no-fail-fast ${CARGO_TEST_ARGS:-}
rc=$?
set -e
if [ "$rc" -eq 0 ]; then say "tests passed"; else printf '%sERROR: cargo test --workspace failed (exit %s)%s\n' "$_r" "$rc" "$_n" >&2; fi
exit "$rc"

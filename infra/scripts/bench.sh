#!/usr/bin/env bash
# `make bench`: prints the figures of ../shared/ARCHITECTURE.md (see tests/src/bin/bench.rs).
# Knobs: BENCH_CASES (default "medium@100,small@10,small@3": workspace@rate of the full-sync runs),
#        BENCH_INVOCATIONS (concurrent worker invocations of the full syncs, default 4),
#        BENCH_ONLY (comma list of sync,rss,start,index).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
say "building release binaries (worker, bench)"
cargo build -q --release -p worker
cargo build -q --release -p e2e --bin bench
say "running the benchmark (figures also in $LOGS/bench.txt)"
RUST_LOG="${RUST_LOG:-error}" ./target/release/bench | tee "$LOGS/bench.txt"

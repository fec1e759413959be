#!/usr/bin/env bash
# `make demo`: a full sync of the emulated workspace into the local search engine, the way AWS runs it.
# The functions run under `cargo lambda watch`; the local runner invokes the planner, pumps SQS into the
# worker and reaper as Lambda's event source mapping would, shows progress and prints a summary.
# Knobs: NOTION_RATE (requests/s, default 100), DEMO_KIND=full|incremental, DEMO_TIMEOUT (seconds).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

export NOTION_RATE="${NOTION_RATE:-100}"
# cargo lambda watch runs one process per function and serves its invocations one at a time, so
# locally one worker container gets the whole budget (each invocation works its 10 messages at once).
export WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-1}"
export FINALIZE_DELAY_SECONDS="${FINALIZE_DELAY_SECONDS:-2}"
export RUST_LOG="${RUST_LOG:-warn}"

say "building the functions"
cargo build -q -p planner -p worker -p reaper -p local-runner

say "starting cargo lambda watch on $LAMBDA_WATCH_URL (log: $LOGS/watch.log)"
setsid cargo lambda watch -A 127.0.0.1 -P 9000 --ignore-changes --timeout 120 \
  >"$LOGS/watch.log" 2>&1 &
watch_pid=$!
trap 'kill -TERM -- -"$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  (exec 3<>/dev/tcp/127.0.0.1/9000) 2>/dev/null && break
  sleep 0.5
done

say "full sync of the emulated '$NOTION_WORKSPACE' workspace at $NOTION_RATE requests/s"
# A demo starts from empty queues: tasks left by an interrupted earlier demo would be worked first.
"$CACHE/venv-localstack/bin/python" - <<'PY'
import os, boto3
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ["AWS_REGION"])
for url in (os.environ["WORK_QUEUE_URL"], os.environ["FINALIZE_QUEUE_URL"]):
    sqs.purge_queue(QueueUrl=url)
PY
curl -fsS -X POST "$NOTION_BASE_URL/__control/stats/reset" >/dev/null
./target/debug/local-runner "${DEMO_KIND:-full}" --timeout "${DEMO_TIMEOUT:-3600}"

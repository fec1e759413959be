# shellcheck shell=bash
# Standard environment of the local stack. Source it:   . infra/scripts/env.sh
#
# Gives: PATH with cargo-lambda / sam / cfn-lint (.cache/venv-tools) and the aws CLI (.cache/venv-localstack),
# fake AWS credentials pointing every SDK at LocalStack, and the URLs of the three local services.
# Every value except the AWS credentials can be overridden by exporting it before sourcing.

if [ -n "${BASH_SOURCE[0]:-}" ]; then
  _ne_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
else
  _ne_here="$(cd "$(dirname "$0")" && pwd)"
fi
NOTION_ES_ROOT="$(cd "$_ne_here/../.." && pwd)"
export NOTION_ES_ROOT
unset _ne_here

export NOTION_ES_CACHE="$NOTION_ES_ROOT/.cache"   # installed things (ignored by git)
export NOTION_ES_LOCAL="$NOTION_ES_ROOT/.local"   # runtime state: data, pids, logs (ignored by git)

# --- tools ---------------------------------------------------------------------------------------------------------
# venv-tools first: `sam build` needs the first python3 on PATH to be the one with cargo-lambda's zig.
case ":$PATH:" in
  *":$NOTION_ES_CACHE/venv-tools/bin:"*) ;;
  *) PATH="$NOTION_ES_CACHE/venv-tools/bin:$PATH" ;;
esac
# the aws CLI from the LocalStack venv, last so it shadows nothing
case ":$PATH:" in
  *":$NOTION_ES_CACHE/venv-localstack/bin:"*) ;;
  *) PATH="$PATH:$NOTION_ES_CACHE/venv-localstack/bin" ;;
esac
export PATH

# --- ports ---------------------------------------------------------------------------------------------------------
export SEARCH_PORT="${SEARCH_PORT:-9200}"
export LOCALSTACK_PORT="${LOCALSTACK_PORT:-4566}"
export NOTION_EMULATOR_PORT="${NOTION_EMULATOR_PORT:-8787}"

# --- AWS (LocalStack) ----------------------------------------------------------------------------------------------
# Forced, not defaulted: nothing sourced from here may ever talk to a real account.
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
export AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:$LOCALSTACK_PORT}"
export AWS_ACCOUNT_ID="${AWS_ACCOUNT_ID:-000000000000}"

export WORK_QUEUE_NAME="${WORK_QUEUE_NAME:-notion-es-work}"
export FINALIZE_QUEUE_NAME="${FINALIZE_QUEUE_NAME:-notion-es-finalize}"
# LocalStack runs with SQS_ENDPOINT_STRATEGY=path: http://127.0.0.1:4566/<account>/<queue>
export WORK_QUEUE_URL="${WORK_QUEUE_URL:-$AWS_ENDPOINT_URL/$AWS_ACCOUNT_ID/$WORK_QUEUE_NAME}"
export WORK_DLQ_URL="${WORK_DLQ_URL:-$AWS_ENDPOINT_URL/$AWS_ACCOUNT_ID/$WORK_QUEUE_NAME-dlq}"
export FINALIZE_QUEUE_URL="${FINALIZE_QUEUE_URL:-$AWS_ENDPOINT_URL/$AWS_ACCOUNT_ID/$FINALIZE_QUEUE_NAME}"
export FINALIZE_DLQ_URL="${FINALIZE_DLQ_URL:-$AWS_ENDPOINT_URL/$AWS_ACCOUNT_ID/$FINALIZE_QUEUE_NAME-dlq}"
export SECRET_ID="${SECRET_ID:-notion-es/secrets}"
export MAX_RECEIVE_COUNT="${MAX_RECEIVE_COUNT:-3}"
# visibility timeouts the bootstrap gives the queues: 6 x the function timeout `make demo` gives cargo lambda watch (120 s),
# as AWS wants (a message must not reappear while its first delivery is still being worked)
export WORK_VISIBILITY_TIMEOUT="${WORK_VISIBILITY_TIMEOUT:-720}"
export FINALIZE_VISIBILITY_TIMEOUT="${FINALIZE_VISIBILITY_TIMEOUT:-30}"

# --- search engine -------------------------------------------------------------------------------------------------
export SEARCH_URL="${SEARCH_URL:-http://127.0.0.1:$SEARCH_PORT}"
export INDEX_NAME="${INDEX_NAME:-search-notion}"

# --- emulated Notion -----------------------------------------------------------------------------------------------
export NOTION_BASE_URL="${NOTION_BASE_URL:-http://127.0.0.1:$NOTION_EMULATOR_PORT}"
export NOTION_WORKSPACE="${NOTION_WORKSPACE:-medium}"
export NOTION_SEED="${NOTION_SEED:-42}"
# the values the bootstrap writes into the secret (and the emulator accepts by default)
export NOTION_TOKEN="${NOTION_TOKEN:-ntn_local_test_token}"
export WEBHOOK_VERIFICATION_TOKEN="${WEBHOOK_VERIFICATION_TOKEN:-secret_local_webhook_token}"
export API_KEY="${API_KEY:-local_api_key}"

# --- cargo lambda watch (started by `make demo` / e2e tests, not by `make up`) ------------------------------------------
export LAMBDA_WATCH_URL="${LAMBDA_WATCH_URL:-http://127.0.0.1:9000}"

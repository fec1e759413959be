#!/usr/bin/env bash
# Start the local stack (idempotent). Usage: up.sh [--record FILE] [search|localstack|notion-emulator]...
#   Default: all three. A service that is already healthy is left alone. Waits for health, bootstraps LocalStack,
#   prints the endpoints. With --record FILE, the names of the services *this* run started are appended to FILE
#   (make test stops exactly those afterwards).
# Environment: NOTION_WORKSPACE (small|medium|large|edge, default medium), NOTION_SEED (42), NOTION_EMULATOR_ARGS
#   (extra emulator flags), SEARCH_HEAP (768m), WORK_VISIBILITY_TIMEOUT (720), *_PORT (see env.sh).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RECORD=""
WANT=()
while [ $# -gt 0 ]; do
  case "$1" in
    --record) RECORD="${2:?--record needs a file}"; shift 2 ;;
    search|localstack|notion-emulator) WANT+=("$1"); shift ;;
    all) WANT+=("${SERVICES[@]}"); shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "up.sh: unknown argument '$1'" ;;
  esac
done
[ ${#WANT[@]} -gt 0 ] || WANT=("${SERVICES[@]}")
wants() { local s; for s in "${WANT[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

declare -A STATE=()   # service -> "started" | "running"

record() {
  STATE[$1]=started
  if [ -n "$RECORD" ]; then echo "$1" >>"$RECORD"; fi
}

# ---- health checks ----------------------------------------------------------------------------------------------------
search_healthy() {
  local h
  h="$(http_get "$SEARCH_URL/_cluster/health")" || return 1
  grep -qE '"status":"(green|yellow)"' <<<"$h" || return 1
  # set by the launcher right after start; present from then on (persistent)
  http_get "$SEARCH_URL/_cluster/settings?flat_settings=true" | grep -q 'cluster.default_number_of_replicas'
}
localstack_healthy() {
  local h
  h="$(http_get "http://127.0.0.1:$LOCALSTACK_PORT/_localstack/health")" || return 1
  grep -qE '"sqs": *"(available|running)"' <<<"$h" &&
    grep -qE '"secretsmanager": *"(available|running)"' <<<"$h" &&
    grep -qE '"events": *"(available|running)"' <<<"$h"
}
emulator_healthy() { http_ok "$NOTION_BASE_URL/__control/stats"; }

# wait_healthy NAME CHECK TIMEOUT: wait until CHECK passes; fail at once if the process we started died
wait_healthy() {
  local name="$1" check="$2" timeout="$3" t0=$SECONDS pid
  while ! "$check"; do
    if [ "${STATE[$name]:-}" = started ] || [ "${STATE[$name]:-}" = starting ]; then
      pid="$(service_pid "$name")"
      if [ -z "$pid" ]; then
        show_log "$(log_file "$name")" 40
        die "$name exited during start-up (log: $(log_file "$name"))"
      fi
    fi
    if ((SECONDS - t0 > timeout)); then
      show_log "$(log_file "$name")" 40
      die "$name not healthy after ${timeout}s (log: $(log_file "$name"))"
    fi
    sleep 0.5
  done
  info "$name healthy ($((SECONDS - t0)) s)"
}

# ensure_free NAME PORT: the port must be free before we start something on it
ensure_free() {
  if port_in_use "$2"; then
    die "port $2 on 127.0.0.1 is taken by a process that is not a healthy $1 (see: ss -ltnp 'sport = :$2')"
  fi
}

# ---- search engine ----------------------------------------------------------------------------------------------------
start_search() {
  if search_healthy; then STATE[search]=running; return; fi
  if [ -n "$(service_pid search)" ]; then STATE[search]=starting; return; fi
  ensure_free search "$SEARCH_PORT"
  local java; java="$(find_java)"
  local home="$LOCAL/search" se="$CACHE/search-engine"
  [ -f "$se/search-engine.jar" ] || die "search engine not installed (run infra/scripts/install.sh search)"
  mkdir -p "$home/tmp"
  say "starting the search engine (OpenSearch 2.19.6) on 127.0.0.1:$SEARCH_PORT"
  start_bg search "$java" \
    -Xms"${SEARCH_HEAP_MIN:-256m}" -Xmx"${SEARCH_HEAP:-768m}" -XX:MaxDirectMemorySize="${SEARCH_DIRECT_MEMORY:-256m}" \
    -XX:+ExitOnOutOfMemoryError -Xss1m -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
    -Djava.io.tmpdir="$home/tmp" -Dlog4j2.formatMsgNoLookups=true -Dlog4j.shutdownHookEnabled=false \
    -Dsearch.home="$home" -Dsearch.http.port="$SEARCH_PORT" -Dsearch.host=127.0.0.1 \
    -cp "$se/search-engine.jar:$se/lib/*" dev.notiones.search.SearchNode >/dev/null
  record search
}

# ---- LocalStack -------------------------------------------------------------------------------------------------------
start_localstack() {
  if localstack_healthy; then STATE[localstack]=running; return; fi
  if [ -n "$(service_pid localstack)" ]; then STATE[localstack]=starting; return; fi
  ensure_free localstack "$LOCALSTACK_PORT"
  local venv="$CACHE/venv-localstack" ls="$LOCAL/localstack"
  [ -x "$venv/bin/python" ] || die "LocalStack not installed (run infra/scripts/install.sh localstack)"
  mkdir -p "$ls/fs" "$ls/cache"
  say "starting LocalStack on 127.0.0.1:$LOCALSTACK_PORT"
  # the variables of ../shared/reference/local-aws.md: no Docker, bind 127.0.0.1 only, path-style queue URLs
  start_bg localstack env \
    OVERRIDE_IN_DOCKER=0 \
    GATEWAY_LISTEN="127.0.0.1:$LOCALSTACK_PORT" GATEWAY_SERVER=hypercorn \
    LOCALSTACK_HOST="127.0.0.1:$LOCALSTACK_PORT" SQS_ENDPOINT_STRATEGY=path \
    DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
    FILESYSTEM_ROOT="$ls/fs" XDG_CACHE_HOME="$ls/cache" \
    "$venv/bin/python" -m localstack.runtime.main >/dev/null
  record localstack
}

bootstrap_localstack() {
  say "bootstrapping LocalStack (queues, secret, schedule rules)"
  local out
  out="$("$CACHE/venv-localstack/bin/python" "$ROOT/infra/scripts/bootstrap_localstack.py")" ||
    die "LocalStack bootstrap failed (infra/scripts/bootstrap_localstack.py)"
  BOOTSTRAP_OUT="$out"
}

# ---- emulated Notion --------------------------------------------------------------------------------------------------
emulator_args() {
  # shellcheck disable=SC2206 # NOTION_EMULATOR_ARGS is split on purpose
  EMU_ARGS=(--port "$NOTION_EMULATOR_PORT" --workspace "$NOTION_WORKSPACE" --seed "$NOTION_SEED" ${NOTION_EMULATOR_ARGS:-})
}

start_emulator() {
  emulator_args
  if emulator_healthy; then
    STATE[notion-emulator]=running
    local was; was="$(cat "$PIDS/notion-emulator.args" 2>/dev/null || true)"
    if [ -n "$was" ] && [ "$was" != "${EMU_ARGS[*]}" ]; then
      warn "the running emulator was started with '$was', not '${EMU_ARGS[*]}'; left alone (make down first to change it)"
    fi
    return
  fi
  if [ -n "$(service_pid notion-emulator)" ]; then STATE[notion-emulator]=starting; return; fi
  need_cmd cargo "the emulated Notion is a Rust binary"
  ensure_free notion-emulator "$NOTION_EMULATOR_PORT"
  say "building notion-emulator (cargo build -p notion-emulator)"
  (cd "$ROOT" && cargo build -p notion-emulator) ||
    die "cargo build -p notion-emulator failed (crate infra/notion-emulator)"
  local target bin
  target="$(cargo_target_dir)"
  [ -n "$target" ] || die "could not find the cargo target directory (cargo metadata failed)"
  bin="$target/debug/notion-emulator"
  [ -x "$bin" ] || die "cargo build succeeded but $bin does not exist"
  ensure_free notion-emulator "$NOTION_EMULATOR_PORT"
  say "starting notion-emulator on 127.0.0.1:$NOTION_EMULATOR_PORT (${EMU_ARGS[*]})"
  start_bg notion-emulator "$bin" "${EMU_ARGS[@]}" >/dev/null
  echo "${EMU_ARGS[*]}" >"$PIDS/notion-emulator.args"
  record notion-emulator
}

# ---- main -------------------------------------------------------------------------------------------------------------
with_lock
T0=$SECONDS
# install what the wanted services need (a no-op when the caches are warm)
INSTALL=()
if wants search; then INSTALL+=(search); fi
if wants localstack; then INSTALL+=(localstack); fi
if [ ${#INSTALL[@]} -gt 0 ] && [ -z "${NOTION_ES_INSTALLED:-}" ]; then "$ROOT/infra/scripts/install.sh" "${INSTALL[@]}"; fi
BOOTSTRAP_OUT=""
# launch the slow starters first, build the emulator while they boot, then wait for all
if wants search; then start_search; fi
if wants localstack; then start_localstack; fi
if wants notion-emulator; then start_emulator; fi

if wants search; then wait_healthy search search_healthy "${SEARCH_START_TIMEOUT:-180}"; fi
if wants localstack; then
  wait_healthy localstack localstack_healthy "${LOCALSTACK_START_TIMEOUT:-120}"
  bootstrap_localstack
fi
if wants notion-emulator; then wait_healthy notion-emulator emulator_healthy "${EMULATOR_START_TIMEOUT:-120}"; fi

say "local stack ready ($((SECONDS - T0)) s)"
line() { printf '  %-16s %-38s %-10s %s\n' "$@"; }
line SERVICE ENDPOINT STATE PID
for s in "${WANT[@]}"; do
  case "$s" in
    search) url="$SEARCH_URL" ;;
    localstack) url="$AWS_ENDPOINT_URL" ;;
    notion-emulator) url="$NOTION_BASE_URL" ;;
  esac
  st="${STATE[$s]:-running}"
  [ "$st" = starting ] && st=running
  [ "$st" = running ] && st="was-up"
  pid="$(service_pid "$s")"
  line "$s" "$url" "$st" "${pid:-(not ours)}"
done
if [ -n "$BOOTSTRAP_OUT" ]; then
  echo "  SECRET_ID=$SECRET_ID"
  sed 's/^/  /' <<<"$BOOTSTRAP_OUT"
fi
echo "  logs: $LOGS   pids: $PIDS   env: . infra/scripts/env.sh"

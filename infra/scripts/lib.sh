# shellcheck shell=bash
# Helpers shared by install.sh / up.sh / down.sh / test.sh. Not meant to be sourced by anything else.

# shellcheck source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ROOT="$NOTION_ES_ROOT"
CACHE="$NOTION_ES_CACHE"
LOCAL="$NOTION_ES_LOCAL"
PIDS="$LOCAL/pids"
LOGS="$LOCAL/logs"
mkdir -p "$CACHE" "$PIDS" "$LOGS"

# shellcheck disable=SC2034 # used by the scripts that source this file
SERVICES=(search localstack notion-emulator)

# ---- messages -----------------------------------------------------------------------------------------------------
if [ -t 2 ]; then _b=$'\e[1m'; _r=$'\e[31m'; _y=$'\e[33m'; _n=$'\e[0m'; else _b=; _r=; _y=; _n=; fi
say()  { printf '%s==> %s%s\n' "$_b" "$*" "$_n" >&2; }
info() { printf '    %s\n' "$*" >&2; }
warn() { printf '%swarning: %s%s\n' "$_y" "$*" "$_n" >&2; }
die()  { printf '%sERROR: %s%s\n' "$_r" "$*" "$_n" >&2; exit 1; }

# print the last lines of a log to stderr (for failure messages)
show_log() {
  local f="$1" n="${2:-40}"
  [ -f "$f" ] || return 0
  printf -- '---- last %s lines of %s ----\n' "$n" "$f" >&2
  tail -n "$n" "$f" >&2
  printf -- '---- end of %s ----\n' "$f" >&2
}

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed or not on PATH (${2:-needed by the local stack})"
}

# sha256 of files, one digest
hash_files() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---- HTTP ---------------------------------------------------------------------------------------------------------
# http_ok URL: true when the URL answers 2xx within 3 s
http_ok() { curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null; }
# http_get URL: body on stdout, false on error
http_get() { curl -fsS --max-time 3 "$1" 2>/dev/null; }

# port_in_use PORT: something listens on 127.0.0.1:PORT
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- processes ----------------------------------------------------------------------------------------------------
pid_file() { echo "$PIDS/$1.pid"; }
log_file() { echo "$LOGS/$1.log"; }

# the string that must appear in /proc/<pid>/cmdline for a PID file to be trusted (PIDs get reused)
cmd_marker() {
  case "$1" in
    search) echo "dev.notiones.search.SearchNode" ;;
    localstack) echo "localstack.runtime.main" ;;
    notion-emulator) echo "notion-emulator" ;;
    *) die "unknown service '$1'" ;;
  esac
}

# service_pid NAME: the PID of a running service we started, or nothing (a stale PID file is removed)
service_pid() {
  local f pid marker
  f="$(pid_file "$1")"
  [ -f "$f" ] || return 0
  pid="$(tr -dc '0-9' <"$f")"
  marker="$(cmd_marker "$1")"
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"; then
    echo "$pid"
  else
    rm -f "$f"
  fi
}

# start_bg NAME CMD...: start CMD detached in its own session (process group = PID), stdout/stderr to the log
start_bg() {
  local name="$1"; shift
  local log; log="$(log_file "$name")"
  [ -f "$log" ] && mv -f "$log" "$log.prev"
  printf '# %s started %s: %s\n' "$name" "$(date -Is)" "$*" >"$log"
  # 9>&-: the service must not inherit the stack lock (it would hold it for its whole life)
  setsid "$@" >>"$log" 2>&1 </dev/null 9>&- &
  local pid=$!
  echo "$pid" >"$(pid_file "$name")"
  echo "$pid"
}

# stop_pid NAME PID [TIMEOUT]: SIGTERM to the process group, SIGKILL after TIMEOUT seconds
stop_pid() {
  local name="$1" pid="$2" timeout="${3:-${STOP_TIMEOUT:-30}}" i
  # the service runs as session/group leader (setsid); signal the group so children go too
  local target="-$pid"
  [ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ] || target="$pid"
  kill -TERM -- "$target" 2>/dev/null || true
  for ((i = 0; i < timeout * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || { info "$name (pid $pid) stopped"; return 0; }
    sleep 0.2
  done
  warn "$name (pid $pid) still running ${timeout}s after SIGTERM; sending SIGKILL"
  kill -KILL -- "$target" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || { info "$name (pid $pid) killed"; return 0; }
    sleep 0.2
  done
  die "could not stop $name (pid $pid)"
}

# rss_mb PID: resident set size of the process and its descendants, in MB
rss_mb() {
  local pid="$1" total=0 p kb
  local pids
  pids="$pid $(pgrep -g "$pid" 2>/dev/null | tr '\n' ' ')"
  for p in $(echo "$pids" | tr ' ' '\n' | sort -u); do
    kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)"
    total=$((total + ${kb:-0}))
  done
  echo $((total / 1024))
}

# ---- locking (two `make up` at once must not start everything twice) ----------------------------------------------------
with_lock() {
  exec 9>"$LOCAL/stack.lock"
  if ! flock -n 9; then
    info "waiting for $LOCAL/stack.lock (another up/down is running)"
  fi
  if ! flock -w "${STACK_LOCK_TIMEOUT:-600}" 9; then die "timed out waiting for $LOCAL/stack.lock (another make up/down running?)"; fi
}

# ---- toolchain lookups --------------------------------------------------------------------------------------------------
# python3 >= 3.12 for the venvs (LocalStack 2026.x uses PEP 695 syntax)
find_python() {
  local c root
  if [ -n "${NOTION_ES_PYTHON:-}" ]; then echo "$NOTION_ES_PYTHON"; return; fi
  if command -v pyenv >/dev/null 2>&1; then
    root="$(pyenv root)"
    for c in "$root"/versions/3.13.0/bin/python3 "$root"/versions/3.13.*/bin/python3 "$root"/versions/3.12.*/bin/python3; do
      [ -x "$c" ] && { echo "$c"; return; }
    done
  fi
  for c in python3.13 python3.12; do
    command -v "$c" >/dev/null 2>&1 && { command -v "$c"; return; }
  done
  die "no Python >= 3.12 found (looked for \$(pyenv root)/versions/3.13.0 and python3.13/python3.12 on PATH); set NOTION_ES_PYTHON"
}

# java for the search engine: $SEARCH_JAVA, else $JAVA_HOME/bin/java, else java on PATH; must be >= 17
find_java() {
  local j v major
  if [ -n "${SEARCH_JAVA:-}" ]; then j="$SEARCH_JAVA"
  elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then j="$JAVA_HOME/bin/java"
  else j="$(command -v java || true)"; fi
  [ -n "$j" ] && [ -x "$j" ] || die "no java found (need a JDK >= 17 for the search engine; set JAVA_HOME or SEARCH_JAVA)"
  v="$("$j" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  major="${v%%.*}"
  [ "$major" = 1 ] && major=8
  [ -n "$major" ] && [ "$major" -ge 17 ] 2>/dev/null || die "$j is Java '$v'; the search engine (OpenSearch 2.19) needs Java >= 17"
  echo "$j"
}

# the workspace's cargo target directory
cargo_target_dir() {
  if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    case "$CARGO_TARGET_DIR" in /*) echo "$CARGO_TARGET_DIR" ;; *) echo "$ROOT/$CARGO_TARGET_DIR" ;; esac
    return
  fi
  (cd "$ROOT" && cargo metadata --no-deps --format-version 1 2>/dev/null) |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p' | head -n1
}

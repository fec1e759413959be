#!/usr/bin/env bash
# Stop local stack services by their PID files (.local/pids/<name>.pid): SIGTERM to the process group, SIGKILL after
# STOP_TIMEOUT seconds (default 30).
# Usage: down.sh [search|localstack|notion-emulator]...   (default: all three)
#        down.sh --from FILE    stop only the services named in FILE (as written by up.sh --record), then delete FILE
# A service running without a PID file of ours (started by someone else) is left alone.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WANT=()
FROM=""
while [ $# -gt 0 ]; do
  case "$1" in
    --from) FROM="${2:?--from needs a file}"; shift 2 ;;
    search|localstack|notion-emulator) WANT+=("$1"); shift ;;
    all) WANT+=("${SERVICES[@]}"); shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) die "down.sh: unknown argument '$1'" ;;
  esac
done
if [ -n "$FROM" ]; then
  [ -f "$FROM" ] && mapfile -t WANT < <(grep -E '^(search|localstack|notion-emulator)$' "$FROM" | sort -u)
  if [ ${#WANT[@]} -eq 0 ]; then info "nothing to stop (this run started no service)"; rm -f "$FROM"; exit 0; fi
elif [ ${#WANT[@]} -eq 0 ]; then
  WANT=("${SERVICES[@]}")
fi

with_lock
rc=0
# reverse start order: the emulator, then LocalStack, then the search engine
for s in notion-emulator localstack search; do
  printf '%s\n' "${WANT[@]}" | grep -qx "$s" || continue
  pid="$(service_pid "$s")"
  if [ -z "$pid" ]; then
    info "$s: not running (no live PID file)"
    continue
  fi
  say "stopping $s (pid $pid)"
  # LocalStack once needed SIGKILL after 70 s of SIGTERM: give it its own timeout
  t="${STOP_TIMEOUT:-30}"
  (stop_pid "$s" "$pid" "$t") || rc=1
  kill -0 "$pid" 2>/dev/null || rm -f "$(pid_file "$s")" "$PIDS/$s.args"
done
[ -n "$FROM" ] && rm -f "$FROM"
exit $rc

#!/usr/bin/env bash
# Show each local service: healthy or not, PID (if started by these scripts), RSS.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

printf '  %-16s %-32s %-8s %-8s %s\n' SERVICE ENDPOINT HEALTH PID RSS
for s in "${SERVICES[@]}"; do
  case "$s" in
    search) url="$SEARCH_URL"; check="$SEARCH_URL/_cluster/health" ;;
    localstack) url="$AWS_ENDPOINT_URL"; check="$AWS_ENDPOINT_URL/_localstack/health" ;;
    notion-emulator) url="$NOTION_BASE_URL"; check="$NOTION_BASE_URL/__control/stats" ;;
  esac
  if http_ok "$check"; then h=up; else h=down; fi
  pid="$(service_pid "$s")"
  rss=""
  [ -n "$pid" ] && rss="$(rss_mb "$pid") MB"
  printf '  %-16s %-32s %-8s %-8s %s\n' "$s" "$url" "$h" "${pid:--}" "$rss"
done

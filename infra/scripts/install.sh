#!/usr/bin/env bash
# Install (idempotently) what the local stack runs on. Usage: install.sh [all|search|localstack|tools]...
#   search      OpenSearch node jars from Maven Central (~/.m2) -> .cache/search-engine/{search-engine.jar,lib/}
#   localstack  .cache/venv-localstack (Python 3.13): localstack-core + boto3
#   tools       .cache/venv-tools (Python 3.13): cargo-lambda, aws-sam-cli, cfn-lint
# A component whose stamp matches is skipped without touching the network.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOCALSTACK_SPEC=("localstack-core[runtime]==2026.3.0" "cbor2<6" "pyopenssl<26" "cryptography<47" "service_identity")
TOOLS_SPEC=("cargo-lambda==1.9.2" "aws-sam-cli" "cfn-lint")

# ensure_venv NAME QUICK-CHECK CHECK-COMMAND SPEC...
#   QUICK-CHECK (cheap, no Python start-up) decides, with the stamp, whether the venv is up to date;
#   CHECK-COMMAND is run with the venv's bin/ first on PATH and must succeed after an install.
ensure_venv() {
  local name="$1" quick="$2" check="$3"; shift 3
  local dir="$CACHE/venv-$name" stamp="$CACHE/venv-$name/.notion-es-installed" log="$CACHE/pip-$name.log"
  local want; want="$(printf '%s\n' "$@")"
  if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
     (cd "$dir" && bash -c "$quick") >/dev/null 2>&1; then
    info "venv-$name: up to date"
    return 0
  fi
  local py; py="$(find_python)"
  if ! [ -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then
    say "creating venv-$name with $py"
    rm -rf "$dir"
    "$py" -m venv "$dir" || die "could not create the venv $dir with $py"
  fi
  say "pip install into venv-$name: $* (log: $log)"
  local t0=$SECONDS
  if ! "$dir/bin/python" -m pip install --disable-pip-version-check "$@" >"$log" 2>&1; then
    show_log "$log" 30
    die "pip install into $dir failed (see $log)"
  fi
  if ! PATH="$dir/bin:$PATH" bash -c "$check" >>"$log" 2>&1; then
    show_log "$log" 30
    die "venv-$name installed but its check failed: $check"
  fi
  echo "$want" >"$stamp"
  info "venv-$name ready in $((SECONDS - t0)) s"
}

install_localstack() {
  ensure_venv localstack \
    "test -f lib/python3*/site-packages/localstack/runtime/main.py -a -f lib/python3*/site-packages/boto3/__init__.py" \
    "python -c 'import localstack, localstack.runtime.main, boto3, hypercorn'" "${LOCALSTACK_SPEC[@]}"
}

install_tools() {
  ensure_venv tools "test -x bin/cargo-lambda -a -x bin/sam -a -x bin/cfn-lint" \
    "cargo-lambda lambda --version && sam --version && cfn-lint --version" "${TOOLS_SPEC[@]}"
}

install_search() {
  local src="$ROOT/infra/search-engine" out="$CACHE/search-engine"
  local stamp="$out/.stamp" want
  local files=("$src/pom.xml")
  mapfile -t -O 1 files < <(find "$src/src" -type f | LC_ALL=C sort)
  want="$(hash_files "${files[@]}")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$out/search-engine.jar" ] && [ -d "$out/lib" ]; then
    info "search-engine: up to date ($out)"
    return 0
  fi
  need_cmd mvn "the search engine is built with Maven (apt-get install maven)"
  find_java >/dev/null
  mkdir -p "$out"
  local log="$out/mvn.log" t0=$SECONDS
  rm -rf "$out/lib.new"
  local goals=(-B -q -f "$src/pom.xml" "-Dsearch.build.dir=$out/build" package dependency:copy-dependencies
               "-DoutputDirectory=$out/lib.new" -DincludeScope=runtime)
  say "building the search engine (OpenSearch 2.19.6 from Maven Central, cached in ~/.m2; log: $log)"
  # offline first: a warm ~/.m2 needs no network at all
  if ! mvn -o "${goals[@]}" >"$log" 2>&1; then
    rm -rf "$out/lib.new"
    info "not everything is in ~/.m2 yet; resolving from Maven Central"
    if ! mvn "${goals[@]}" >>"$log" 2>&1; then
      show_log "$log" 40
      die "Maven build of infra/search-engine failed (see $log)"
    fi
  fi
  cp -f "$out/build/search-engine.jar" "$out/search-engine.jar"
  rm -rf "${out:?}/lib"
  mv "$out/lib.new" "$out/lib"
  echo "$want" >"$stamp"
  info "search-engine ready in $((SECONDS - t0)) s: $out ($(find "$out/lib" -name '*.jar' | wc -l) jars)"
}

main() {
  local what=("$@")
  [ ${#what[@]} -gt 0 ] || what=(all)
  for w in "${what[@]}"; do
    case "$w" in
      all)
        # the three are independent and mostly wait on the network: run them side by side
        local pids=() names=(search localstack tools) i failed=()
        install_search & pids+=($!)
        install_localstack & pids+=($!)
        install_tools & pids+=($!)
        for i in 0 1 2; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done
        [ ${#failed[@]} -eq 0 ] || die "install failed: ${failed[*]} (messages above)"
        ;;
      search) install_search ;;
      localstack) install_localstack ;;
      tools) install_tools ;;
      *) die "install.sh: unknown component '$w' (all|search|localstack|tools)" ;;
    esac
  done
}

main "$@"

#!/usr/bin/env bash
# :module_test — the pinned Envoy 1.40 loads :libsluice (the module directory Bazel built, put on
# ENVOY_DYNAMIC_MODULES_SEARCH_PATH) and the module answers on a real listener:
#   GET /v1/models with the demo key  -> 200, an OpenAI model list naming gpt-4o-mini
#   GET /v1/models without a key      -> 401, an OpenAI-style error
#
#   module_test.sh <libsluice.so in its module directory> <envoy binary> <envoy config>
set -euo pipefail
module_so="$1" envoy="$2" config="$3"
module_dir="$(cd "$(dirname "$module_so")" && pwd)"
[ "$(basename "$module_so")" = libsluice.so ] || { echo "module_test: $module_so is not libsluice.so" >&2; exit 1; }

work="${TEST_TMPDIR:-$(mktemp -d)}"
admin_file="$work/admin-address"
log="$work/envoy.log"
rm -f "$admin_file"

ENVOY_DYNAMIC_MODULES_SEARCH_PATH="$module_dir" "$envoy" -c "$config" --concurrency 1 \
    --admin-address-path "$admin_file" --base-id-path "$work/base-id" --use-dynamic-base-id \
    --log-level info >"$log" 2>&1 &
envoy_pid=$!
trap 'kill "$envoy_pid" 2>/dev/null || true; wait "$envoy_pid" 2>/dev/null || true' EXIT

fail() {
    echo "module_test: FAIL: $*" >&2
    echo "--- envoy log (last 40 lines) ---" >&2
    tail -n 40 "$log" >&2
    exit 1
}

# The listener port comes from Envoy's admin /listeners once the listener is up.
port=""
for _ in $(seq 1 200); do
    kill -0 "$envoy_pid" 2>/dev/null || fail "Envoy exited during startup"
    if [ -s "$admin_file" ]; then
        listeners="$(curl -fsS "http://$(cat "$admin_file")/listeners" 2>/dev/null || true)"
        port="$(printf '%s\n' "$listeners" | sed -n 's/^gateway::127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p')"
        [ -n "$port" ] && break
    fi
    sleep 0.1
done
[ -n "$port" ] || fail "the gateway listener did not come up"
grep -q 'sluice: filter config loaded' "$log" || fail "the module did not log its config load"
echo "module_test: Envoy $("$envoy" --version | sed -n 's/.*version: //p') serving the module on 127.0.0.1:$port"

body="$work/body"
status="$(curl -sS -o "$body" -w '%{http_code}' "http://127.0.0.1:$port/v1/models" -H 'Authorization: Bearer sk-sluice-demo')"
[ "$status" = 200 ] || fail "GET /v1/models with the demo key: status $status: $(cat "$body")"
grep -q '"object":"list"' "$body" || fail "GET /v1/models: not a model list: $(cat "$body")"
grep -q '"id":"gpt-4o-mini"' "$body" || fail "GET /v1/models: gpt-4o-mini missing: $(cat "$body")"
echo "module_test: ok: GET /v1/models with the demo key -> 200 $(cat "$body")"

status="$(curl -sS -o "$body" -w '%{http_code}' "http://127.0.0.1:$port/v1/models")"
[ "$status" = 401 ] || fail "GET /v1/models without a key: status $status, wanted 401: $(cat "$body")"
grep -q '"error"' "$body" || fail "the 401 carries no error object: $(cat "$body")"
echo "module_test: ok: GET /v1/models without a key -> 401 $(cat "$body")"

status="$(curl -sS -o "$body" -w '%{http_code}' "http://127.0.0.1:$port/v1/models" -H 'Authorization: Bearer sk-not-a-key')"
[ "$status" = 401 ] || fail "GET /v1/models with an unknown key: status $status, wanted 401: $(cat "$body")"
echo "module_test: ok: GET /v1/models with an unknown key -> 401"

#!/usr/bin/env bash
# Sets up and runs the gateway on its embedded default: installs the pinned Envoy 1.40, builds
# libsluice.so and the provider simulators (sluice-sim), starts the simulators, and runs Envoy
# with envoy-module/envoy.yaml in the foreground. Ctrl-C stops both.
#
#   curl -s http://127.0.0.1:10000/v1/models -H 'Authorization: Bearer sk-sluice-demo'
#   curl -s http://127.0.0.1:10000/v1/chat/completions -H 'Authorization: Bearer sk-sluice-demo' \
#        -d '{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"Hello"}]}'
#
# Environment: SLUICE_CONCURRENCY (Envoy workers, default 2), SLUICE_SIM_PACE_MS (ms per
# streamed token, default 20). Extra arguments go to Envoy (e.g. --log-level debug).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/envoy-module/install-system-packages.sh"
envoy="$("$root/envoy-module/install-envoy.sh")"
module_dir="$("$root/envoy-module/build-module.sh")"

echo "sluice: building the provider simulators (first build takes a few minutes)" >&2
(cd "$root" && swift build --product sluice-sim >&2)
sim="$(cd "$root" && swift build --product sluice-sim --show-bin-path)/sluice-sim"

"$sim" --pace-ms "${SLUICE_SIM_PACE_MS:-20}" &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true' EXIT INT TERM

echo "sluice: gateway on http://127.0.0.1:10000 (demo key sk-sluice-demo), admin on http://127.0.0.1:9901" >&2
export ENVOY_DYNAMIC_MODULES_SEARCH_PATH="$module_dir"
"$envoy" -c "$root/envoy-module/envoy.yaml" --concurrency "${SLUICE_CONCURRENCY:-2}" --log-level info "$@"

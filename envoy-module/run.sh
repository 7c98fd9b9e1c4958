#!/usr/bin/env bash
# Sets up and runs the gateway on its embedded default: installs the pinned Envoy 1.40, builds
# libsluice.so, the provider simulators (sluice-sim) and the control daemon (sluiced), starts the
# simulators and sluiced (which serves envoy-module/sluice.yaml, its embedded default, over gRPC
# ADS), and runs Envoy bootstrapped only from sluiced (envoy-module/bootstrap.yaml) in the
# foreground. Ctrl-C stops all three.
#
#   curl -s http://127.0.0.1:10000/v1/models -H 'Authorization: Bearer sk-sluice-demo'
#   curl -s http://127.0.0.1:10000/v1/chat/completions -H 'Authorization: Bearer sk-sluice-demo' \
#        -d '{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"Hello"}]}'
#   curl -s http://127.0.0.1:10000/v1/chat/completions -H 'Authorization: Bearer sk-sluice-demo' \
#        -d '{"model":"llama-3.1-8b-instruct","messages":[{"role":"user","content":"Hello"}]}'
#
# Environment: SLUICE_CONCURRENCY (Envoy workers, default 2), SLUICE_SIM_PACE_MS (ms per
# streamed token, default 20), SLUICE_CONFIG (a config file for sluiced instead of the embedded
# default). `--static` runs Envoy on the static envoy-module/envoy.yaml instead, without sluiced
# (that file is `sluiced render` of the embedded default; Tests/IntegrationTests/test_render.py
# checks it is current). Other arguments go to Envoy (e.g. --log-level debug).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
static=0
if [ "${1:-}" = "--static" ]; then static=1; shift; fi
"$root/envoy-module/install-system-packages.sh"
envoy="$("$root/envoy-module/install-envoy.sh")"
module_dir="$("$root/envoy-module/build-module.sh")"

echo "sluice: building the provider simulators and sluiced (the first build takes several minutes)" >&2
(cd "$root" && swift build --product sluice-sim >&2 && swift build --product sluiced >&2)
bin="$(cd "$root" && swift build --show-bin-path)"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# --vllm-pool 4: the vLLM-like replicas on 127.0.0.1:18111-18114 behind the `vllm_pool` cluster
# (model llama-3.1-8b-instruct in envoy-module/sluice.yaml).
"$bin/sluice-sim" --pace-ms "${SLUICE_SIM_PACE_MS:-20}" --vllm-pool 4 --vllm-base-port 18111 &
pids+=($!)

export ENVOY_DYNAMIC_MODULES_SEARCH_PATH="$module_dir"
if [ "$static" = 1 ]; then
    echo "sluice: gateway on http://127.0.0.1:10000 (demo key sk-sluice-demo), Envoy admin on http://127.0.0.1:9901" >&2
    # No sluiced in this mode: the worker's quota leases stay off (each Envoy enforces its quotas
    # alone, as without a fleet), instead of every scope falling back to its lease failure policy.
    static_yaml="$(mktemp "${TMPDIR:-/tmp}/sluice-static-XXXXXX.yaml")"
    trap 'cleanup; rm -f "$static_yaml"' EXIT INT TERM
    sed 's/,\\"leases\\":{\\"interval_ms\\":[0-9]*}//' "$root/envoy-module/envoy.yaml" > "$static_yaml"
    "$envoy" -c "$static_yaml" --concurrency "${SLUICE_CONCURRENCY:-2}" --log-level info "$@"
    exit
fi

# sluiced keeps its admin database and admin token in .sluiced/ of the working directory.
(cd "$root" && exec "$bin/sluiced" ${SLUICE_CONFIG:+--config "$SLUICE_CONFIG"}) &
pids+=($!)
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null http://127.0.0.1:18001/healthz 2>/dev/null && break
    sleep 0.1
done
echo "sluice: gateway on http://127.0.0.1:10000 (demo key sk-sluice-demo), Envoy admin on http://127.0.0.1:9901," >&2
echo "        sluiced admin API on http://127.0.0.1:18001 (token in $root/.sluiced/admin-token), xDS on 127.0.0.1:18000" >&2
# The module's background worker (envoy-module/fleet-worker.yaml) sends usage records to sluiced;
# its config needs the absolute path of the fleet token sluiced keeps in .sluiced/.
fleet_yaml="$(sed "s|@FLEET_TOKEN_FILE@|$root/.sluiced/fleet-token|" "$root/envoy-module/fleet-worker.yaml")"
"$envoy" -c "$root/envoy-module/bootstrap.yaml" --config-yaml "$fleet_yaml" --concurrency "${SLUICE_CONCURRENCY:-2}" --log-level info "$@"

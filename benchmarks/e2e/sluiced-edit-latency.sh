#!/usr/bin/env bash
# Save-to-routable through a real Envoy configured only by sluiced: p50/p99 over 50 edits of
# sluice.yaml (each adds a model) from the file's save to the first 200 for that model.
# See sluiced_edit_latency.py for what it does; options are passed through
# (--edits N, --poll-ms MS, --reload-interval-ms MS, --max-seconds S, --keep).
#
# Binaries: SLUICED / SLUICE_SIM (default: `swift build --show-bin-path` of the repository, i.e.
# the debug build; nothing is built here), SLUICE_ENVOY (default .envoy/bin/envoy, installed by
# envoy-module/install-envoy.sh), SLUICE_MODULE_DIR (default .build/release if it holds
# libsluice.so, else envoy-module/build-module.sh builds it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

bin="${SLUICE_BIN_PATH:-}"
if [[ -z "${SLUICED:-}" || -z "${SLUICE_SIM:-}" ]]; then
    bin="${bin:-$(swift build --show-bin-path)}"
fi
sluiced="${SLUICED:-$bin/sluiced}"
sim="${SLUICE_SIM:-$bin/sluice-sim}"
envoy="${SLUICE_ENVOY:-$root/.envoy/bin/envoy}"
module_dir="${SLUICE_MODULE_DIR:-}"
if [[ -z "$module_dir" ]]; then
    if [[ -f "$root/.build/release/libsluice.so" ]]; then
        module_dir="$root/.build/release"
    else
        module_dir="$(envoy-module/build-module.sh)"
    fi
fi
for f in "$sluiced" "$sim" "$envoy" "$module_dir/libsluice.so"; do
    [[ -x "$f" || -f "$f" ]] || { echo "sluiced-edit-latency: $f not found (build it first: swift build --product sluiced; swift build --product sluice-sim; envoy-module/install-envoy.sh; envoy-module/build-module.sh)" >&2; exit 2; }
done
python="${PYTHON:-python3}"
[[ -x "$root/.venv/bin/python" && -z "${PYTHON:-}" ]] && python="$root/.venv/bin/python"
# MAX_SECONDS (default 300) bounds the whole run; timeout(1) is the backstop.
exec timeout --kill-after=15 "$(( ${MAX_SECONDS:-300} + 60 ))" "$python" "$root/benchmarks/e2e/sluiced_edit_latency.py" \
    --sluiced "$sluiced" --sim "$sim" --envoy "$envoy" --module-dir "$module_dir" "$@"

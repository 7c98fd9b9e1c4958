#!/usr/bin/env bash
# Sets up and runs the gateway on its embedded default: installs the pinned Envoy 1.40, builds
# libsluice.so, and runs Envoy with envoy-module/envoy.yaml in the foreground (Ctrl-C stops it).
#
#   curl -H 'Authorization: Bearer sk-sluice-demo' http://127.0.0.1:10000/v1/models
#
# Options: any extra arguments are passed to Envoy (e.g. --log-level debug, --concurrency 4).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
envoy="$("$root/envoy-module/install-envoy.sh")"
module_dir="$("$root/envoy-module/build-module.sh")"
echo "sluice: gateway on http://127.0.0.1:10000 (demo key sk-sluice-demo), admin on http://127.0.0.1:9901" >&2
export ENVOY_DYNAMIC_MODULES_SEARCH_PATH="$module_dir"
exec "$envoy" -c "$root/envoy-module/envoy.yaml" --concurrency "${SLUICE_CONCURRENCY:-2}" --log-level info "$@"

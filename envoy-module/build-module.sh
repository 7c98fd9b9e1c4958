#!/usr/bin/env bash
# Builds libsluice.so (release, Swift runtime linked in statically) and prints its directory,
# the value for ENVOY_DYNAMIC_MODULES_SEARCH_PATH.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
swift build -c release --product sluice >&2
dir="$(swift build -c release --product sluice --show-bin-path)"
test -f "$dir/libsluice.so" || { echo "build-module: $dir/libsluice.so was not built" >&2; exit 1; }
echo "$dir"

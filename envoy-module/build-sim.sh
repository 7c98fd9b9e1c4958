#!/usr/bin/env bash
# Builds the provider simulators (sluice-sim) in release and prints the binary's path.
# run.sh uses a debug build for demos; benchmarks want release, so the simulator is not the
# slowest part of the path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
swift build -c release --product sluice-sim >&2
binary="$(swift build -c release --product sluice-sim --show-bin-path)/sluice-sim"
test -x "$binary" || { echo "build-sim: $binary was not built" >&2; exit 1; }
echo "$binary"

#!/usr/bin/env bash
# Sets up and runs every test, from a clean clone:
#   1. installs what the tests need (binutils for nm/readelf if missing, the pinned Envoy 1.40,
#      a Python venv with the integration-test clients);
#   2. unit tests: SluiceCore, the ABI layer against the fake Envoy host, sluiced's libraries
#      (the admin store on SQLite and on a throwaway PostgreSQL) (swift test), the hot path's
#      allocation counts against benchmarks/Thresholds/ (benchmarks/check-allocations.sh: malloc
#      counts only, no timing), the DocC catalogues built with warnings as errors
#      (Tests/check-docs.sh: broken symbol links fail), and brief fuzzing;
#   3. builds libsluice.so (release, self-contained) and runs the integration tests against the
#      real Envoy 1.40 binary on loopback with the provider simulators (pytest; the official
#      openai and anthropic SDKs are the clients). Three pytest workers (pytest-xdist): most of a
#      test's time is waiting on sockets, stalls and timeouts, so three share the two cores well
#      (14 min in one process, 5 min in three); every test picks free ports and starts its own
#      processes, so they do not collide;
#   4. bazel-shim/test.sh: `bazel test //...` in bazel-shim/ (offline Bazel 4.2.3, installed from
#      apt if missing) on the module built in step 3: Envoy loading it, and its static archive.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n==> [%s] %s\n' "$(date -u +%T)" "$*" >&2; }

step "system packages"
"$root/envoy-module/install-system-packages.sh"

step "pinned Envoy 1.40"
envoy="$("$root/envoy-module/install-envoy.sh")"
"$envoy" --version >&2

step "Python test environment"
if [ ! -x "$root/.venv/bin/python" ]; then python3 -m venv "$root/.venv"; fi
"$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/Tests/IntegrationTests/requirements.txt"

step "PostgreSQL for the admin store tests (throwaway cluster on loopback)"
eval "$("$root/Tests/start-postgres.sh")"
export SLUICE_TEST_POSTGRES_URL
trap '"$root/Tests/stop-postgres.sh" "$SLUICE_TEST_POSTGRES_DIR" >&2 || true' EXIT

step "unit tests (swift test)"
swift build --build-tests
swift test --skip-build
bin="$(swift build --show-bin-path)"
sim="$bin/sluice-sim"

step "DocC catalogues: every symbol link resolves, no warnings (Tests/check-docs.sh)"
"$root/Tests/check-docs.sh"

step "allocation thresholds of the hot path (benchmarks/check-allocations.sh)"
"$root/benchmarks/check-allocations.sh"

step "fuzz targets (libFuzzer, brief)"
"$root/Tests/Fuzz/run.sh" --seconds "${SLUICE_FUZZ_SECONDS:-20}" --jobs 2

step "libsluice.so (release)"
module_dir="$("$root/envoy-module/build-module.sh")"
ls -l "$module_dir/libsluice.so" >&2

step "bazel-shim: bazel test //... (the module and its static archive as Bazel targets)"
"$root/bazel-shim/test.sh" --module-dir "$module_dir" --envoy "$envoy"

step "integration tests against the real Envoy (pytest)"
SLUICE_ENVOY="$envoy" SLUICE_MODULE_DIR="$module_dir" SLUICE_SIM="$sim" SLUICE_SLUICED="$bin/sluiced" \
    "$root/.venv/bin/python" -m pytest "$root/Tests/IntegrationTests" -q -p no:cacheprovider -n "${SLUICE_PYTEST_WORKERS:-3}"

#!/usr/bin/env bash
# Runs `bazel test //...` in this workspace offline, the way Tests/run-all.sh (CI) does:
#   1. installs what it needs if missing (as root, apt): Debian's bazel-bootstrap (Bazel 4.2.3) and
#      LLVM's libc++ (libc++-dev, libc++abi-dev) for the libc++ link test;
#   2. runs Bazel in batch mode (no server is left running), 2 jobs, its output base in
#      .bazel/ of the Sluice clone (git-ignored; SLUICE_BAZEL_OUTPUT_ROOT overrides), with the
#      module SwiftPM already built and the pinned Envoy handed in, so Swift is not built twice.
#
#   bazel-shim/test.sh [--module-dir DIR] [--envoy PATH] [bazel test arguments...]
#
# Without --module-dir the workspace runs `swift build -c release --product sluice` itself;
# without --envoy it runs envoy-module/install-envoy.sh.
set -euo pipefail
shim="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$shim")"

repo_env=()
while [ $# -gt 0 ]; do
    case "$1" in
        # Bazel runs the repository rules elsewhere: relative paths are made absolute here.
        --module-dir) repo_env+=("--repo_env=SLUICE_MODULE_DIR=$(cd "$2" && pwd)"); shift 2 ;;
        --envoy) repo_env+=("--repo_env=SLUICE_ENVOY=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2 ;;
        *) break ;;
    esac
done

missing=()
command -v bazel >/dev/null 2>&1 || missing+=(bazel-bootstrap)
ls /usr/lib/llvm-*/lib/libc++.a >/dev/null 2>&1 && ls /usr/lib/llvm-*/lib/libc++abi.a >/dev/null 2>&1 || missing+=(libc++-dev libc++abi-dev)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "bazel-shim: please install: ${missing[*]} (apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "bazel-shim: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

output_root="${SLUICE_BAZEL_OUTPUT_ROOT:-$root/.bazel}"
mkdir -p "$output_root"
cd "$shim"
exec bazel --batch --output_user_root="$output_root/user" --output_base="$output_root/base" \
    test "${repo_env[@]}" //... "$@"

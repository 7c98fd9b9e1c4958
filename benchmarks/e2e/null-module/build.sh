#!/usr/bin/env bash
# Builds libnull_filter.so (the null module of `compare.sh --null`, see null_filter.c) and prints
# its directory, the value for ENVOY_DYNAMIC_MODULES_SEARCH_PATH. Output: null-module/.build/
# (ignored by git); NULL_MODULE_OUT=<dir> builds elsewhere. Needs a C compiler (`cc`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${NULL_MODULE_OUT:-$here/.build}"
mkdir -p "$out"
# The ABI header is the one libsluice.so is built against (the Envoy 1.40 subset, checked
# against the binary by Tests/IntegrationTests/test_abi_symbols.py).
cc -std=c11 -O2 -shared -fPIC -Wall -Wextra -Werror -I "$root/include/CEnvoyABI" \
    -o "$out/libnull_filter.so" "$here/null_filter.c" >&2
echo "$out"

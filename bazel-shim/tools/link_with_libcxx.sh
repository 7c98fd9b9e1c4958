#!/usr/bin/env bash
# Compiles and links a C++ test against :sluice_static the way Envoy's own binary is linked:
# clang++ with lld, LLVM's libc++ and libc++abi linked statically (no libstdc++ anywhere on the
# command line), the whole archive taken in, the prefixed hooks exported through a dynamic list,
# and --gc-sections.
#
#   link_with_libcxx.sh OUT LIBCXX_ENV ARCHIVE DYNAMIC_LIST INCLUDE_DIR SOURCE... -- STATIC_LIBCXX...
set -euo pipefail
out="$1" libcxx_env="$2" archive="$3" dynamic_list="$4" include_dir="$5"
shift 5
sources=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do sources+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
libcxx_archives=("$@")

# shellcheck disable=SC1090
. "$libcxx_env"   # CLANGXX, LIBCXX_INCLUDE
work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-libcxx-XXXXXX")"
trap 'rm -rf "$work"' EXIT

objects=()
for source in "${sources[@]}"; do
    object="$work/$(basename "$source").o"
    case "$source" in
        *.c) "$CLANGXX" -x c -O1 -c "$source" -o "$object" ;;
        *) "$CLANGXX" -std=c++17 -O1 -nostdinc++ -isystem "$LIBCXX_INCLUDE" -I "$include_dir" -c "$source" -o "$object" ;;
    esac
    objects+=("$object")
done
"$CLANGXX" -fuse-ld=lld -nostdlib++ -o "$out" "${objects[@]}" \
    -Wl,--whole-archive "$archive" -Wl,--no-whole-archive \
    "${libcxx_archives[@]}" -lm -ldl -lpthread \
    -Wl,--dynamic-list="$dynamic_list" -Wl,--gc-sections

# The point of the exercise: no libstdc++ in the executable's dependencies.
if readelf -d "$out" | grep -q 'libstdc++'; then
    echo "link_with_libcxx: $out depends on libstdc++" >&2
    exit 1
fi

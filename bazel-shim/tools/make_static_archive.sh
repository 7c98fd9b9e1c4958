#!/usr/bin/env bash
# Builds the static archive a custom Envoy links Sluice from (`:sluice_static`):
#
#   make_static_archive.sh OUT.a PREFIX TOOLCHAIN_ENV OBJECT... -- STATIC_LIBRARY...
#
# 1. One relocatable link (`ld -r`) of the module's objects (the ones libsluice.so is linked from,
#    Swift's image registrar swiftrt.o first) with the static libraries the .so links: the Swift
#    runtime, libdispatch, libstdc++ and libcrypto. Only the archive members the module needs are
#    taken in. `-d` allocates common symbols and --force-group-allocation dissolves COMDAT groups,
#    so that nothing in the object can be merged with, or discarded in favour of, a definition
#    elsewhere in Envoy.
# 2. The hooks `envoy_dynamic_module_on_*` are renamed `PREFIX_envoy_dynamic_module_on_*`, the
#    convention of Envoy's envoy_dynamic_module_prefix_symbols (Envoy looks them up as
#    `<module name>_<hook>` with dlsym(RTLD_DEFAULT) when the binary carries the module).
# 3. Every other defined symbol is made local, so the archive defines exactly the prefixed hooks
#    globally: its Swift runtime, libstdc++, OpenSSL and our own code cannot clash with, or be
#    interposed by, Envoy's libc++, BoringSSL or anything else in the executable. (llvm-objcopy,
#    because GNU objcopy leaves STB_GNU_UNIQUE symbols of libstdc++ global.)
#
# What stays undefined: glibc/libm/libgcc functions, the unwinder, and the Envoy callbacks
# `envoy_dynamic_module_callback_*`, which the Envoy executable defines.
set -euo pipefail

out="$1" prefix="$2" toolchain_env="$3"
shift 3
objects=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do objects+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
libraries=("$@")
[ ${#objects[@]} -gt 0 ] || { echo "make_static_archive: no object files" >&2; exit 1; }

# shellcheck disable=SC1090
. "$toolchain_env"   # LLVM_OBJCOPY, the Swift toolchain's
[ -x "$LLVM_OBJCOPY" ] || { echo "make_static_archive: $LLVM_OBJCOPY is not executable" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-static-XXXXXX")"
trap 'rm -rf "$work"' EXIT

ld -r -d --force-group-allocation -o "$work/combined.o" "${objects[@]}" --start-group "${libraries[@]}" --end-group

# The hooks the module defines (global text symbols), each renamed with the prefix.
nm --defined-only -g "$work/combined.o" | awk '$2 == "T" && $3 ~ /^envoy_dynamic_module_on_/ { print $3 }' | sort -u > "$work/hooks"
grep -qx 'envoy_dynamic_module_on_program_init' "$work/hooks" || {
    echo "make_static_archive: the objects define no envoy_dynamic_module_on_program_init" >&2
    exit 1
}
awk -v p="$prefix" '{ print $1 " " p "_" $1 }' "$work/hooks" > "$work/redefine-syms"
# libstdc++'s SystemTap probe notes go too: their anchor `.stapsdt.base` is shared by every object
# of a final link, and with the groups dissolved here the linker would discard ours under the notes.
"$LLVM_OBJCOPY" --redefine-syms="$work/redefine-syms" \
    --remove-section=.note.stapsdt --remove-section=.stapsdt.base "$work/combined.o" "$work/renamed.o"
"$LLVM_OBJCOPY" --wildcard --keep-global-symbol="${prefix}_envoy_dynamic_module_on_*" "$work/renamed.o" "$work/${prefix}_static.o"

# Refuse to produce an archive that defines anything global besides the prefixed hooks.
others="$(nm --defined-only -g "$work/${prefix}_static.o" | awk -v p="${prefix}_envoy_dynamic_module_on_" 'index($3, p) != 1' || true)"
if [ -n "$others" ]; then
    echo "make_static_archive: global symbols other than the ${prefix}_ hooks remain:" >&2
    echo "$others" | head -20 >&2
    exit 1
fi

rm -f "$out"
ar rcsD "$out" "$work/${prefix}_static.o"

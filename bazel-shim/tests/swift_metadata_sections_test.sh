#!/usr/bin/env bash
# :swift_metadata_sections_test — the Swift runtime finds protocols, conformances, type metadata
# and field records by scanning sections (through __start_/__stop_ symbols), not by references a
# linker follows, so --gc-sections in a final link could drop records the runtime later needs.
# Checks that the executables linked from :sluice_static (both link tests, linked with
# --gc-sections) carry exactly as many bytes of these sections as libsluice.so.
#
#   swift_metadata_sections_test.sh <libsluice.so> <executable>...
set -euo pipefail
module_so="$1"
shift
sections="swift5_protocols swift5_protocol_conformances swift5_type_metadata swift5_fieldmd"

section_size() {  # file section -> size in bytes (0 when absent)
    local size
    size="$(readelf -SW "$1" | awk -v name="$2" '{ for (i = 1; i < NF; i++) if ($i == name) { print $(i + 4); exit } }')"
    echo $((16#${size:-0}))
}

failures=0
for section in $sections; do
    expected="$(section_size "$module_so" "$section")"
    [ "$expected" -gt 0 ] || { echo "FAIL: libsluice.so has no $section" >&2; failures=$((failures + 1)); continue; }
    for executable in "$@"; do
        actual="$(section_size "$executable" "$section")"
        if [ "$actual" = "$expected" ]; then
            echo "ok: $(basename "$executable"): $section $actual bytes, as in libsluice.so"
        else
            echo "FAIL: $(basename "$executable"): $section $actual bytes, libsluice.so has $expected" >&2
            failures=$((failures + 1))
        fi
    done
done
[ "$failures" -eq 0 ] || exit 1
echo "PASS"

#!/usr/bin/env bash
# Builds every DocC catalogue (Sources/*/*.docc) against its module's symbol graph and fails on
# any warning: a symbol link (``Name``) that no longer resolves, an article whose name hides a
# symbol, a documented parameter list that misses a parameter. The articles are the project's
# design documentation, so a rename that breaks them should fail like a test does.
#
# Uses the debug build `swift build --build-tests` left (symbol graphs are extracted from it,
# internal symbols included, since the articles describe the implementation); writes only under
# .build/ and a temporary directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v docc >/dev/null || { echo "check-docs: docc is not on PATH (it ships with the Swift toolchain)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
swift package dump-symbol-graph --minimum-access-level internal >"$work/symbol-graph.log" 2>&1 \
    || { cat "$work/symbol-graph.log" >&2; exit 1; }
graphs="$(swift build --show-bin-path)/../symbolgraph"
[ -d "$graphs" ] || graphs="$root/.build/$(uname -m)-unknown-linux-gnu/symbolgraph"
failed=0
for catalogue in Sources/*/*.docc; do
    module="$(basename "$(dirname "$catalogue")")"
    mkdir -p "$work/$module.graphs"
    # Only the module's own graph: extensions it declares on other modules' types stay out.
    cp "$graphs/$module.symbols.json" "$work/$module.graphs/"
    if ! docc convert "$catalogue" --additional-symbol-graph-dir "$work/$module.graphs" \
        --fallback-display-name "$module" --fallback-bundle-identifier "sluice.$module" \
        --output-path "$work/$module.doccarchive" --warnings-as-errors >"$work/$module.log" 2>&1; then
        echo "check-docs: $catalogue:" >&2
        grep -E -A4 '^(warning|error)' "$work/$module.log" >&2 || cat "$work/$module.log" >&2
        failed=1
    else
        echo "check-docs: $module: $(find "$catalogue" -name '*.md' | wc -l) articles, no warnings" >&2
    fi
done
exit "$failed"

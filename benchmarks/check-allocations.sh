#!/usr/bin/env bash
# Allocation thresholds of the hot path, the step of Tests/run-all.sh that fails CI when a change
# adds allocations per request. Builds this benchmark package (release), runs the benchmarks of
# SluiceEnvoyBenchmarks, SluiceTranslateBenchmarks and SluiceQuotaBenchmarks once measuring only
# mallocCountTotal, and compares each benchmark's p90 per 1,000-iteration sample with
# Thresholds/<target>.<benchmark>.p90.json, within the tolerance of its benchmark configuration
# (100, i.e. 0.1 allocation per request, unless a benchmark says otherwise). Time is not checked.
#
#   benchmarks/check-allocations.sh            check; non-zero exit on any failure below
#   benchmarks/check-allocations.sh --update   rewrite these targets' Thresholds/ from one run,
#                                              then check once more (the counts must repeat)
#
# The check fails when a count went up (a regression) or down (an improvement: commit the new
# threshold so the next regression is caught from there), when a benchmark has no threshold file
# or a threshold file has no benchmark, and when a benchmark fails its own set-up check.
# SLUICE_ALLOCATION_CHECK=1 (set here) tells the benchmarks to take 20 samples: a sample's count
# repeats, so a short run gives the p90 of a long one (BenchmarkFixtures.perRequestConfiguration).
# benchmarks/README.md ("Allocation thresholds in CI") has the cost and the stability measured.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

targets=(SluiceEnvoyBenchmarks SluiceTranslateBenchmarks SluiceQuotaBenchmarks)
mode=check
while [ $# -gt 0 ]; do
    case "$1" in
        --update) mode=update ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "check-allocations: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf 'check-allocations: [%ss] %s\n' "$SECONDS" "$*" >&2; }
target_args=()
for target in "${targets[@]}"; do target_args+=(--target "$target"); done

# One run is stored as a named baseline (benchmarks/.benchmarkBaselines/<target>/<name>/, removed
# on exit) that the threshold check (or, with --update, the export) then reads: the benchmarks run
# once, and `baseline update` fails when a benchmark fails its set-up check or crashes, which
# `thresholds check` alone would pass over.
baseline="allocation-check-$$"
work="$(mktemp -d)"
cleanup() {
    rm -rf "$work"
    for target in "${targets[@]}"; do
        rm -rf ".benchmarkBaselines/$target/$baseline"
        rmdir ".benchmarkBaselines/$target" 2>/dev/null || true
    done
    rmdir .benchmarkBaselines 2>/dev/null || true
}
trap cleanup EXIT

benchmark() { swift package --disable-sandbox --allow-writing-to-package-directory benchmark "$@"; }
export SLUICE_ALLOCATION_CHECK=1

# "<target>.<benchmark>" of every *.p90.json of our targets in a directory.
threshold_names() {
    local dir="$1" target file
    for target in "${targets[@]}"; do
        for file in "$dir/$target".*.p90.json; do
            [ -e "$file" ] || continue
            file="${file##*/}"
            echo "${file%.p90.json}"
        done
    done | sort
}

run_benchmarks() {
    say "building (release) and running ${targets[*]}, mallocCountTotal only"
    if ! benchmark baseline update "$baseline" "${target_args[@]}" --metric mallocCountTotal --no-progress 2>&1; then
        say "FAILED: the benchmarks did not build, or a benchmark failed its own check or crashed (see above)."
        exit 1
    fi
    say "ran"
}

# Every benchmark the check listed ("Checking [\"Target:Name\", ...]") has a threshold file and
# every threshold file of our targets a benchmark.
check_one_to_one() {
    local listed="$work/listed" missing stale
    grep '^Checking \[' "$work/check.out" | grep -o '"[^"]*"' | tr -d '"' | tr ':' '.' | sort >"$listed"
    if [ ! -s "$listed" ]; then
        say "FAILED: the threshold check listed no benchmarks (see above)."
        return 1
    fi
    missing="$(comm -23 "$listed" <(threshold_names Thresholds))"
    stale="$(comm -13 "$listed" <(threshold_names Thresholds))"
    [ -z "$missing" ] || { say "benchmarks without a threshold:"; printf '    %s\n' $missing >&2; }
    [ -z "$stale" ] || { say "thresholds without a benchmark (renamed or removed?):"; printf '    Thresholds/%s.p90.json\n' $stale >&2; }
    [ -z "$missing$stale" ]
}

update_hint() {
    cat >&2 <<'EOF'
check-allocations: If the change is meant to alter allocations (or a benchmark was added, renamed
or removed), update the thresholds in the same commit:
    benchmarks/check-allocations.sh --update
    git add benchmarks/Thresholds && git commit ...
To find where a new allocation comes from (Target:Name from the tables above):
    cd benchmarks && swift package --disable-sandbox benchmark run --target Target --filter '^Name$' \
        --export-allocation-stacks --allocation-stacks-export-path stdout --no-progress 2>/dev/null \
        | python3 alloc-owners.py --per 1000
EOF
}

if [ "$mode" = update ]; then
    run_benchmarks
    if ! benchmark thresholds update "$baseline" "${target_args[@]}" --path "$work/measured" >"$work/export.log" 2>&1; then
        cat "$work/export.log" >&2
        say "FAILED: could not export the measured counts."
        exit 1
    fi
    if [ -z "$(threshold_names "$work/measured")" ]; then say "FAILED: the run exported no counts."; exit 1; fi
    for target in "${targets[@]}"; do rm -f "Thresholds/$target".*.p90.json; done
    mkdir -p Thresholds
    for file in "$work/measured"/*.p90.json; do install -m 644 "$file" "Thresholds/${file##*/}"; done
    say "Thresholds/ rewritten for ${targets[*]}; changed (per 1,000 iterations):"
    git -c color.ui=never diff --no-ext-diff -U0 -- Thresholds 2>/dev/null | grep -E '^(\+\+\+|[-+] )' >&2 || true
    git status --short -- Thresholds 2>/dev/null | grep -v '^ M' >&2 || true
    say "checking once more: the counts must repeat"
    cleanup
    trap - EXIT
    # By absolute path: the script cd'd into its own directory, so a relative invocation
    # (benchmarks/check-allocations.sh --update from the repository root) would not be found.
    exec "$here/$(basename "${BASH_SOURCE[0]}")"
fi

run_benchmarks
say "checking against Thresholds/ (each benchmark's tolerance from its configuration)"
# stdout alone feeds the benchmark list (check_one_to_one): the tool's stderr ("error:
# benchmarkThresholdImprovement") lands in the middle of the "Checking [...]" line when both go to
# one pipe, which once made two benchmarks look missing. Both are shown and searched.
{ benchmark thresholds check "$baseline" "${target_args[@]}" --path "$here/Thresholds" 2>"$work/check.err" || true; } \
    | tee "$work/check.out"
cat "$work/check.err" >&2
cat "$work/check.out" "$work/check.err" >"$work/check.log"
one_to_one=1
check_one_to_one || one_to_one=0
if grep -q 'is WORSE than the defined thresholds' "$work/check.log"; then
    say "FAILED: more allocations than benchmarks/Thresholds/ allows (\"Deviations worse than threshold\" above;"
    say "its values are per 1,000 iterations, or per request where the header says (K))."
    update_hint
    exit 1
elif grep -q 'is BETTER than the defined thresholds' "$work/check.log"; then
    say "FAILED: fewer allocations than benchmarks/Thresholds/ (an improvement, \"Deviations better than"
    say "threshold\" above): commit the new counts so the next regression is measured from them."
    update_hint
    exit 1
elif ! grep -q 'is EQUAL to the defined thresholds' "$work/check.log"; then
    say "FAILED: the threshold check did not complete (see above)."
    update_hint
    exit 1
fi
if [ "$one_to_one" = 0 ]; then
    say "FAILED: benchmarks and threshold files do not match one to one (see above)."
    update_hint
    exit 1
fi
say "OK: every benchmark of ${targets[*]} within its allocation threshold."

#!/usr/bin/env bash
# Coverage-guided fuzzing of SluiceCore's parsers and translators with libFuzzer.
#
#   Tests/Fuzz/run.sh                          # build, then every target for 25 s
#   Tests/Fuzz/run.sh --seconds 20 --jobs 2    # two targets at a time (one core each)
#   Tests/Fuzz/run.sh --seconds 3600 --target stream_bedrock
#   Tests/Fuzz/run.sh --list
#
# Builds one binary (.build-fuzz/sluice-fuzz: SluiceCore compiled once with
# -sanitize=fuzzer,address) whose target is chosen with --target=<name>. Per target: the committed
# regressions (Tests/Fuzz/Regressions/<target>/) run first, then libFuzzer runs for N seconds on a
# working corpus (.build-fuzz/corpus/<target>) seeded from the golden fixtures and
# Tests/Fuzz/Seeds/<target>/. Crash inputs land in .build-fuzz/artifacts/<target>/.
# Exits non-zero if any target crashes; ends with "N passed, N failed".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

seconds=25
jobs=1
targets=()
extra=()
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --seconds=*) seconds="${1#*=}"; shift ;;
        --jobs) jobs="$2"; shift 2 ;;
        --jobs=*) jobs="${1#*=}"; shift ;;
        --target) targets+=("$2"); shift 2 ;;
        --target=*) targets+=("${1#*=}"); shift ;;
        --no-build) build=0; shift ;;
        --list) list=1; shift ;;
        --) shift; extra=("$@"); break ;;
        *) echo "usage: $0 [--seconds N] [--jobs N] [--target NAME]... [--no-build] [--list] [-- libFuzzer flags]" >&2; exit 2 ;;
    esac
done

out="${SLUICE_FUZZ_OUT:-$root/.build-fuzz}"   # build output, corpora, artifacts, logs
bin="$out/sluice-fuzz"
fixtures="$root/Tests/SluiceCoreTests/Fixtures"
mkdir -p "$out"
export SWIFT_BACKTRACE=enable=no   # libFuzzer and ASan report crashes; Swift's backtracer would only add time
# Recording every allocation's stack costs a fifth of the run; Swift code rarely needs it (override to debug).
export ASAN_OPTIONS="${ASAN_OPTIONS:-malloc_context_size=0}"

swift_flags=(-sanitize=fuzzer,address -parse-as-library -O -wmo -gline-tables-only -swift-version 6
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility
    -enable-upcoming-feature InternalImportsByDefault)

if [ "$build" = 1 ]; then
    start=$(date +%s)
    mapfile -t core < <(find Sources/SluiceCore -name '*.swift' | sort)
    mapfile -t harness < <(find Tests/Fuzz/Sources -name '*.swift' | sort)
    mkdir -p "$out/obj"
    # SluiceCore is rebuilt only when one of its sources is newer than the object.
    if [ ! -f "$out/obj/SluiceCore.o" ] || [ -n "$(find Sources/SluiceCore -name '*.swift' -newer "$out/obj/SluiceCore.o" | head -1)" ]; then
    swiftc "${swift_flags[@]}" -module-name SluiceCore -emit-module -emit-module-path "$out/obj/SluiceCore.swiftmodule" \
        -emit-object -o "$out/obj/SluiceCore.o" "${core[@]}"
    fi
    # ld.gold warns about every ASan helper symbol it cannot export; those lines are noise.
    swiftc "${swift_flags[@]}" -module-name SluiceFuzz -I "$out/obj" "${harness[@]}" "$out/obj/SluiceCore.o" -o "$bin" \
        2> >(grep -v "Cannot export local symbol" >&2)
    echo "built $bin in $(( $(date +%s) - start )) s" >&2
fi

if [ "${list:-0}" = 1 ]; then "$bin" --list; exit 0; fi
if [ ${#targets[@]} -eq 0 ]; then mapfile -t targets < <("$bin" --list | cut -f1); fi

# Seeds: a fixture with the framing bytes the target expects in front (see Tests/Fuzz/Sources/Support.swift).
seed() {  # seed <target> <prefix as printf escapes> <file>...
    local target="$1" prefix="$2"; shift 2
    local dir="$out/corpus/$target" file
    for file in "$@"; do
        [ -f "$file" ] || continue
        { printf "$prefix"; cat "$file"; } > "$dir/seed-$(printf '%s' "$prefix" | tr -dc 'a-zA-Z0-9')-$(basename "$file")"
    done
}
splits='\003\050\000\121\000\200\001'   # 3 split points, after bytes 40, 81 and 384 (modulo the length)

seed_fixtures() {
    local target="$1" f="$fixtures"
    case "$target" in
        json)
            for file in $(find "$f" -name '*.json' | sort); do seed json '' "$file"; done ;;
        openai_request)
            for p in '\000' '\004'; do
                seed "$target" "$p" "$f"/anthropic/request-full.openai.json "$f"/bedrock/full.json "$f"/bedrock/structured.json \
                    "$f"/bedrock/tool-history-none.json "$f"/gemini/full.request.json "$f"/anthropic/in-full.openai.json
            done
            seed "$target" '\002' "$f"/gemini/embeddings.request.json
            seed "$target" '\003' "$f"/responses/request-full.responses.json ;;
        anthropic_request)
            seed "$target" '\000' "$f"/anthropic/in-full.anthropic.json "$f"/anthropic/request-full.anthropic.json
            seed "$target" '\004' "$f"/anthropic/in-full.anthropic.json ;;
        response)
            for client in 0 1; do
                seed "$target" "\\00$((0 + client * 1))0" "$f"/openai/response.json "$f"/anthropic/hub-response.openai.json \
                    "$f"/anthropic/response-full.openai.json "$f"/bedrock/response.openai.json
                seed "$target" "\\00$((0 + client * 1))2" "$f"/anthropic/response-full.anthropic.json
                seed "$target" "\\00$((0 + client * 1))3" "$f"/bedrock/response.json "$f"/bedrock/guardrail-response.json \
                    "$f"/bedrock/structured-response.json
                seed "$target" "\\00$((0 + client * 1))4" "$f"/gemini/full.response.gemini.json \
                    "$f"/gemini/candidates.response.gemini.json "$f"/gemini/blocked.response.gemini.json
            done
            seed "$target" '\103' "$f"/bedrock/structured-response.json
            seed "$target" '\024' "$f"/gemini/embeddings.response.gemini.json
            seed "$target" '\064' "$f"/gemini/embeddings.response.gemini.json
            # Responses clients (bit 7): a passed-through Responses object, and translated answers.
            seed "$target" '\200' "$f"/responses/response-full.responses.json
            seed "$target" '\202' "$f"/anthropic/response-full.anthropic.json
            seed "$target" '\203' "$f"/bedrock/response.json
            seed "$target" '\204' "$f"/gemini/full.response.gemini.json ;;
        rerank)
            # Requests (bit 2) of both client shapes, and answers of both backend kinds to each client.
            seed "$target" '\004' "$f"/rerank/v1-request.json
            seed "$target" '\005' "$f"/rerank/cohere-request.json
            seed "$target" '\030' "$f"/rerank/vllm-answer.json
            seed "$target" '\331' "$f"/rerank/vllm-answer.json
            seed "$target" '\032' "$f"/rerank/cohere-answer.json
            seed "$target" '\233' "$f"/rerank/cohere-answer.json ;;
        sse)
            for file in $(find "$f" -name '*.sse' | sort); do seed sse '\000\000' "$file"; seed sse "\\000$splits" "$file"; done ;;
        stream_openai)
            for p in '\000' '\001' '\002' '\003' '\004'; do
                seed "$target" "$p\\000" "$f"/openai/stream-with-usage.sse "$f"/anthropic/hub-stream.openai.sse \
                    "$f"/anthropic/stream-text.openai.sse "$f"/anthropic/stream-tools.openai.sse "$f"/gemini/stream.openai.sse
                seed "$target" "$p$splits" "$f"/openai/stream-with-usage.sse "$f"/anthropic/stream-thinking.openai.sse
            done
            # A Responses stream passed through to a Responses client (flags 3).
            seed "$target" "\\003\\000" "$f"/responses/stream.responses.sse ;;
        stream_anthropic)
            for p in '\000' '\001' '\002' '\003'; do
                seed "$target" "$p\\000" "$f"/anthropic/stream-text.anthropic.sse "$f"/anthropic/stream-tools.anthropic.sse \
                    "$f"/anthropic/stream-thinking.anthropic.sse "$f"/anthropic/stream-error.anthropic.sse
                seed "$target" "$p$splits" "$f"/anthropic/stream-tools.anthropic.sse
            done ;;
        stream_gemini)
            for p in '\000' '\001' '\002' '\003' '\004'; do
                seed "$target" "$p\\000" "$f"/gemini/stream.gemini.sse "$f"/gemini/stream-error.gemini.sse
                seed "$target" "$p$splits" "$f"/gemini/stream.gemini.sse
            done ;;
    esac
}

# One target: its regressions, then N seconds of fuzzing. Writes "ok" or "FAILED" to
# $out/<target>.result (targets may run side by side, so the summary is read from those files).
run_target() {
    local target="$1"
    local corpus="$out/corpus/$target"
    local artifacts="$out/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    seed_fixtures "$target"
    if [ -d "$root/Tests/Fuzz/Seeds/$target" ]; then cp -n "$root/Tests/Fuzz/Seeds/$target"/* "$corpus"/ 2>/dev/null || true; fi
    local log="$out/$target.log"
    rm -f "$log" "$out/$target.result"
    local status=0
    # No -max_len here: libFuzzer would cut the committed regression inputs to it.
    local flags=(--target="$target" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
        -artifact_prefix="$artifacts/" -dict="$root/Tests/Fuzz/sluice.dict")
    echo "==> $target" >&2
    local regressions="$root/Tests/Fuzz/Regressions/$target"
    if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
        if ! "$bin" "${flags[@]}" "$regressions"/* > "$out/$target.regressions.log" 2>&1; then
            echo "$target: a committed regression input crashes again:" >&2
            grep -E 'Running:|Fatal error|invariant|ERROR|SUMMARY' "$out/$target.regressions.log" | head -20 >&2
            status=1
        fi
    fi
    if [ "$status" = 0 ]; then
        "$bin" "${flags[@]}" -max_len=65536 -max_total_time="$seconds" "${extra[@]}" "$corpus" > "$log" 2>&1 || status=$?
    fi
    local executed coverage
    executed=$(grep -o 'number_of_executed_units: [0-9]*' "$log" 2>/dev/null | tail -1 | grep -o '[0-9]*$' || true)
    coverage=$(grep -E '^#[0-9]+' "$log" 2>/dev/null | grep -o 'cov: [0-9]* ft: [0-9]*' | tail -1 || true)
    if [ "$status" = 0 ]; then
        echo ok > "$out/$target.result"
        echo "$target: ok, ${executed:-?} inputs, ${coverage:-no coverage line}, corpus $(ls "$corpus" | wc -l)" >&2
    else
        echo FAILED > "$out/$target.result"
        echo "$target: FAILED (exit $status), ${executed:-?} inputs; log $log" >&2
        grep -E 'Fatal error|invariant|ERROR: |SUMMARY|Test unit written|Base64' "$log" 2>/dev/null | head -12 >&2 || true
    fi
}

for target in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    run_target "$target" &
done
wait
failed=0
passed=0
for target in "${targets[@]}"; do
    if [ "$(cat "$out/$target.result" 2>/dev/null)" = ok ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

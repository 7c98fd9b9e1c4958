#!/usr/bin/env bash
# End-to-end cost of the sluice module in a real Envoy 1.40, as ratios measured in one run.
#
# One proxy Envoy (--concurrency 2) has two listeners in front of the same upstream: `plain`
# (router only) and `sluice` (the dynamic-module filter from envoy-module/envoy.yaml, then the
# router). The upstream is a second Envoy (--concurrency 1) answering a fixed 200 with
# direct_response. wrk POSTs a small chat request with the demo key, so sluice forwards it.
# With --upstream-filter BACKEND the sluice listener's cluster also runs the upstream filters of
# that envoy.yaml cluster (`sluice_upstream`: per-attempt translation and credential), i.e. the
# module's whole per-request work; the plain listener stays module-free.
# With --sim BACKEND the upstream is the real provider simulator (release sluice-sim, no pacing)
# listening for BACKEND only, and the comparison includes translation: the sluice listener gets an
# OpenAI chat request for the model envoy.yaml routes to BACKEND and runs the module's whole path
# (downstream filter + that cluster's sluice_upstream: auth, route, quota, OpenAI->provider
# translation, credential or SigV4, the answer translated back and metered); the plain listener
# gets the same request in the provider's own shape, path and credential (what an application
# calling the provider through a plain proxy sends), checked before measuring to be exactly what
# the module sends the simulator.
# With --stream the requests ask for a stream (OpenAI: "stream": true with
# stream_options.include_usage) and the upstream answers with one (the simulator, or a fixed
# OpenAI SSE body from the direct_response upstream); both sides must get a complete stream.
# After a warm-up, rounds alternate between the listeners (ABBA order, so slow drift of a
# shared machine hits both sides alike); each round records req/s, p50/p90/p99 latency and the
# proxy's CPU time per request (utime+stime from /proc/<pid>/stat). Then a concurrency-1 phase
# (wrk -t 1 -c 1, ABBA again) measures the latency one request sees. The summary prints medians,
# sluice/plain ratios, sluice-plain differences and issue 12's targets, met or not.
# --matrix runs, one after the other with the same binaries, every mode issue 12 names and
# prints one table (see benchmarks/README.md).
# --null MODE puts the null module (null-module/null_filter.c: hooks that do no work of their own)
# where the sluice filters would be, direct_response otherwise unchanged: the floor Envoy charges
# for a module of sluice's shape. MODE: `pass` (a dynamic-module filter that only continues),
# `buffer` (holds the headers, buffers the body, sets a header and clears the route cache, as
# `sluice` does), `buffer+upstream` (and on the cluster an upstream filter that writes :path back).
# --fleet adds the module's background worker to the proxy (envoy.yaml's `sluice_fleet` bootstrap
# extension) and starts a sluiced that stores its usage records: run it and a run without it in one
# sitting, and the difference of the two "CPU added" is what the worker costs per request.
#
# Usage: benchmarks/e2e/compare.sh [--rounds N] [--duration S] [--warmup S] [--connections C]
#                                  [--threads T] [--base-port P] [--upstream-filter BACKEND]
#                                  [--sim BACKEND] [--stream] [--latency-rounds N]
#                                  [--latency-duration S] [--summary-json FILE] [--keep]
#                                  [--null pass|buffer|buffer+upstream] [--fleet]
#        benchmarks/e2e/compare.sh --matrix [--rounds N] [--duration S] [...]
# Environment (same meaning, flags win): ROUNDS=3 DURATION=10 WARMUP=5 CONNECTIONS=32 THREADS=1
#   LATENCY_ROUNDS=8 (0 skips the concurrency-1 phase), LATENCY_DURATION=2 (short rounds: at one
#   request at a time a burst of another process's work moves the latency a lot, so many short
#   alternating rounds share it out better than few long ones), STREAM=1, SUMMARY_JSON=<file>
#   (the summary as JSON, what --matrix reads),
#   BASE_PORT=19000 (upstream P, plain P+1, sluice P+2, proxy admin P+3, with --fleet sluiced's
#   admin P+4 and xDS P+5), KEEP=1 keeps logs, FLEET=1 (--fleet), SLUICE_SLUICED=<sluiced binary>,
#   UPSTREAM_FILTER=openai (a cluster name in envoy.yaml; empty: downstream filter only),
#   SIM_BACKEND=anthropic (--sim: openai, azure, anthropic, bedrock, gemini, vertex or local; the
#   simulator listens on port P for that backend only, so it never meets the default 18101-18106),
#   SLUICE_ENVOY=<envoy binary>, SLUICE_MODULE_DIR=<dir with libsluice.so>,
#   SLUICE_SIM=<sluice-sim binary, release build> (skip install/build),
#   NULL_MODE=pass (--null), NULL_MODULE_DIR=<dir with libnull_filter.so> (skip null-module/build.sh),
#   MAX_SECONDS (bound on the measuring part; default from the settings).
# Needs: wrk (apt-get install wrk), curl, python3 with PyYAML (python3-yaml).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
helper="$here/compare_helper.py"

rounds="${ROUNDS:-3}"
duration="${DURATION:-10}"
warmup="${WARMUP:-5}"
connections="${CONNECTIONS:-32}"
threads="${THREADS:-1}"
base_port="${BASE_PORT:-19000}"
keep="${KEEP:-0}"
upstream_filter="${UPSTREAM_FILTER:-}"
sim_backend="${SIM_BACKEND:-}"
stream="${STREAM:-0}"
latency_rounds="${LATENCY_ROUNDS:-}"
latency_duration="${LATENCY_DURATION:-}"
summary_json="${SUMMARY_JSON:-}"
null_mode="${NULL_MODE:-}"
fleet="${FLEET:-0}"
matrix=0

die() { echo "compare: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --base-port) base_port="$2"; shift 2 ;;
        --upstream-filter) upstream_filter="$2"; shift 2 ;;
        --sim) sim_backend="$2"; shift 2 ;;
        --stream) stream=1; shift ;;
        --latency-rounds) latency_rounds="$2"; shift 2 ;;
        --latency-duration) latency_duration="$2"; shift 2 ;;
        --summary-json) summary_json="$2"; shift 2 ;;
        --matrix) matrix=1; shift ;;
        --null) null_mode="$2"; shift 2 ;;
        --fleet) fleet=1; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
latency_rounds="${latency_rounds:-8}"
latency_duration="${latency_duration:-2}"
for value in "$rounds" "$duration" "$warmup" "$connections" "$threads" "$base_port" "$latency_rounds" "$latency_duration"; do
    [[ "$value" =~ ^[0-9]+$ ]] || die "options must be whole numbers, got '$value'"
done
[ "$rounds" -ge 1 ] && [ "$duration" -ge 1 ] || die "need at least one round of at least one second"
[ "$latency_rounds" = 0 ] || [ "$latency_duration" -ge 1 ] || die "--latency-duration must be at least one second"
[ "$stream" = 0 ] || [ "$stream" = 1 ] || die "STREAM must be 0 or 1"
[ "$fleet" = 0 ] || [ "$fleet" = 1 ] || die "FLEET must be 0 or 1"
[ "$fleet" = 0 ] || [ "$matrix" = 0 ] || die "--fleet is one mode: run it next to the same mode without --fleet"
if [ -n "$sim_backend" ]; then
    case "$sim_backend" in
        openai|azure|anthropic|bedrock|gemini|vertex|local) ;;
        *) die "--sim takes openai, azure, anthropic, bedrock, gemini, vertex or local, not '$sim_backend'" ;;
    esac
    # The sluice side always runs the backend cluster's upstream filter: that is where it translates.
    [ -z "$upstream_filter" ] || [ "$upstream_filter" = "$sim_backend" ] \
        || die "--sim $sim_backend already runs the $sim_backend cluster's upstream filter; drop --upstream-filter"
    upstream_filter="$sim_backend"
fi
if [ -n "$null_mode" ]; then
    case "$null_mode" in
        pass|buffer|buffer+upstream) ;;
        *) die "--null takes pass, buffer or buffer+upstream, not '$null_mode'" ;;
    esac
    # The null module stands in for the sluice filters, in front of the direct_response upstream.
    [ -z "$sim_backend" ] && [ -z "$upstream_filter" ] && [ "$matrix" = 0 ] \
        || die "--null replaces the sluice filters: drop --sim, --upstream-filter and --matrix"
fi

upstream_port=$base_port
plain_port=$((base_port + 1))
sluice_port=$((base_port + 2))
admin_port=$((base_port + 3))
sluiced_port=$((base_port + 4))
sluiced_xds_port=$((base_port + 5))

command -v wrk >/dev/null || die "wrk not found: apt-get install wrk"
command -v curl >/dev/null || die "curl not found: apt-get install curl"
command -v python3 >/dev/null || die "python3 not found"

# MARK: - --matrix: every mode issue 12 names, one after the other, with the same binaries

if [ "$matrix" = 1 ]; then
    [ -z "$sim_backend" ] && [ -z "$upstream_filter" ] && [ "$stream" = 0 ] && [ -z "$summary_json" ] \
        || die "--matrix chooses the modes itself: drop --sim, --upstream-filter, --stream and --summary-json"
    # Built or installed once, here, so every mode runs the same binaries.
    SLUICE_ENVOY="${SLUICE_ENVOY:-$(timeout 600 "$root/envoy-module/install-envoy.sh")}"
    SLUICE_MODULE_DIR="${SLUICE_MODULE_DIR:-$(timeout 1800 "$root/envoy-module/build-module.sh")}"
    SLUICE_SIM="${SLUICE_SIM:-$(timeout 1800 "$root/envoy-module/build-sim.sh")}"
    export SLUICE_ENVOY SLUICE_MODULE_DIR SLUICE_SIM
    [ -f "$SLUICE_MODULE_DIR/libsluice.so" ] || die "no libsluice.so in '$SLUICE_MODULE_DIR'"
    # label|arguments: downstream filter only, OpenAI passthrough (without and with the simulator,
    # and streaming), then translation to Anthropic and to Bedrock.
    modes=(
        "direct_response (filter only)|"
        "--upstream-filter openai|--upstream-filter openai"
        "--sim openai|--sim openai"
        "--sim openai --stream|--sim openai --stream"
        "--sim anthropic|--sim anthropic"
        "--sim bedrock|--sim bedrock"
    )
    matrix_dir="$(mktemp -d "${TMPDIR:-/tmp}/sluice-e2e-matrix.XXXXXX")"
    child_pid=""
    matrix_cleanup() {
        local status=$?
        trap - EXIT INT TERM
        if [ -n "$child_pid" ]; then
            # The child stops its own Envoys, simulator and wrk by PID on TERM.
            kill -TERM "$child_pid" 2>/dev/null || true
            wait "$child_pid" 2>/dev/null || true
        fi
        # A few KB: kept, so the table can be printed again (compare_helper.py matrix <manifest>).
        echo "compare: matrix summaries in $matrix_dir (manifest.tsv, one JSON per mode)" >&2
        exit "$status"
    }
    trap matrix_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    common=(--rounds "$rounds" --duration "$duration" --warmup "$warmup" --connections "$connections"
        --threads "$threads" --base-port "$base_port" --latency-rounds "$latency_rounds"
        --latency-duration "$latency_duration")
    [ "$keep" = 1 ] && common+=(--keep)
    # The tree the module was built in (SLUICE_MODULE_DIR is its .build/...), which need not be this one.
    source_tree="$(git -C "$SLUICE_MODULE_DIR" rev-parse --show-toplevel 2>/dev/null || echo "$root")"
    commit="$(git -C "$source_tree" log -1 --format='%h %cd' --date=format:'%Y-%m-%d %H:%M' 2>/dev/null || echo unknown)"
    if [ -n "$(git -C "$source_tree" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        commit="$commit, with uncommitted changes"
    fi
    module_hash="$(sha256sum "$SLUICE_MODULE_DIR/libsluice.so" | cut -c1-12)"
    sim_hash="$(sha256sum "$SLUICE_SIM" | cut -c1-12)"
    started=$SECONDS
    index=0
    for entry in "${modes[@]}"; do
        index=$((index + 1))
        label="${entry%%|*}"
        read -r -a mode_args <<<"${entry#*|}"
        echo
        echo "=== matrix $index/${#modes[@]}: $label (at $(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))"
        "$0" "${common[@]}" "${mode_args[@]}" --summary-json "$matrix_dir/$index.json" &
        child_pid=$!
        mode_status=0
        wait "$child_pid" || mode_status=$?
        child_pid=""
        printf '%s\t%s\t%s\n' "$label" "$mode_status" "$matrix_dir/$index.json" >>"$matrix_dir/manifest.tsv"
    done
    echo
    echo "matrix: $(date -u '+%Y-%m-%d %H:%M') UTC, $((SECONDS - started)) s; module from $source_tree at $commit"
    echo "matrix: libsluice.so ${module_hash} ($SLUICE_MODULE_DIR), sluice-sim ${sim_hash}, envoy $("$SLUICE_ENVOY" --version 2>/dev/null | grep -o '[0-9]\+\.[0-9]\+\.[0-9]\+' | head -1)"
    echo "matrix: $rounds rounds of ${duration}s at $connections connections, $latency_rounds concurrency-1 rounds of ${latency_duration}s per mode; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    python3 "$helper" matrix "$matrix_dir/manifest.tsv"
    exit $?
fi

# MARK: - Processes we start, stopped by PID on any exit

pids=()
load_pid=""
work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-e2e.XXXXXX")"

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$load_pid" ]; then kill -TERM "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; fi
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        # Envoy drains for a moment on TERM; do not leave it behind if it hangs.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$keep" = 1 ] || [ "$status" != 0 ]; then
        echo "compare: logs and configs kept in $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# MARK: - Envoy and the module

max_seconds="${MAX_SECONDS:-$((90 + 2 * (warmup + 10) + 2 * rounds * (duration + 10) + 2 * latency_rounds * (latency_duration + 10)))}"
[[ "$max_seconds" =~ ^[0-9]+$ ]] || die "MAX_SECONDS must be a whole number, got '$max_seconds'"
if [ "$sim_backend" = bedrock ]; then
    # The plain side's SigV4 signature is made once, after the deadline below starts, and the
    # simulator (like AWS) accepts it for 15 minutes: measuring must fit in that window, with a
    # minute to spare.
    [ "$max_seconds" -le 840 ] || die "a Bedrock run may take ${max_seconds}s, longer than the 15-minute SigV4 window allows (fewer or shorter rounds, or MAX_SECONDS<=840)"
fi

envoy="${SLUICE_ENVOY:-}"
if [ -z "$envoy" ]; then envoy="$(timeout 600 "$root/envoy-module/install-envoy.sh")"; fi
[ -x "$envoy" ] || die "no Envoy binary at '$envoy'"
if [ -n "$null_mode" ]; then
    # Envoy loads the module named by dynamic_module_config.name from this directory: the null
    # module's run never loads libsluice.so.
    module_dir="${NULL_MODULE_DIR:-}"
    if [ -z "$module_dir" ]; then module_dir="$(timeout 120 "$here/null-module/build.sh")"; fi
    module_file="$module_dir/libnull_filter.so"
else
    module_dir="${SLUICE_MODULE_DIR:-}"
    if [ -z "$module_dir" ]; then module_dir="$(timeout 1800 "$root/envoy-module/build-module.sh")"; fi
    module_file="$module_dir/libsluice.so"
fi
[ -f "$module_file" ] || die "no $(basename "$module_file") in '$module_dir'"
sim=""
if [ -n "$sim_backend" ]; then
    sim="${SLUICE_SIM:-}"
    if [ -z "$sim" ]; then sim="$(timeout 1800 "$root/envoy-module/build-sim.sh")"; fi
    [ -x "$sim" ] || die "no sluice-sim binary at '$sim'"
fi

# The time bound covers measuring, not the one-off install and builds above.
deadline=$((SECONDS + max_seconds))
check_deadline() {
    local needed=$1
    [ $((SECONDS + needed)) -le "$deadline" ] || die "time limit of ${max_seconds}s would be exceeded (MAX_SECONDS)"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=("$upstream_port" "$plain_port" "$sluice_port" "$admin_port")
[ "$fleet" = 1 ] && ports+=("$sluiced_port" "$sluiced_xds_port")
for port in "${ports[@]}"; do
    if port_in_use "$port"; then die "127.0.0.1:$port is already in use (try --base-port)"; fi
done

fleet_arg=""
if [ "$fleet" = 1 ]; then
    # A sluiced of its own (debug build unless SLUICE_SLUICED says otherwise: it runs beside the
    # proxy, whose CPU alone is measured), with its database and tokens in the work directory.
    sluiced="${SLUICE_SLUICED:-}"
    if [ -z "$sluiced" ]; then
        (cd "$root" && swift build --product sluiced >&2)
        sluiced="$(cd "$root" && swift build --show-bin-path)/sluiced"
    fi
    [ -x "$sluiced" ] || die "no sluiced at '$sluiced'"
    for token in fleet-token admin-token; do
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/$token"
    done
    (cd "$work" && exec "$sluiced" serve --admin "127.0.0.1:$sluiced_port" --xds "127.0.0.1:$sluiced_xds_port" \
        --database "sqlite:$work/sluiced.sqlite" --admin-token-file "$work/admin-token" \
        --fleet-token-file "$work/fleet-token" --log-level warning) 2>"$work/sluiced.log" &
    pids+=($!)
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$sluiced_port/healthz")" = 200 ] && break
        sleep 0.1
    done
    fleet_arg="$sluiced_port:$work/fleet-token"
fi

stream_word=""
[ "$stream" = 1 ] && stream_word=stream
python3 "$helper" bootstraps "$root/envoy-module/envoy.yaml" "$work" \
    "$plain_port" "$sluice_port" "$upstream_port" "$admin_port" "$upstream_filter" "${sim_backend:+sim}" "$stream_word" \
    "$null_mode" "$fleet_arg"
# Both requests (requests.json) and a wrk script per listener (request.plain.lua, request.sluice.lua).
sent_model="$(python3 "$helper" requests "$root/envoy-module/envoy.yaml" "$work" "$upstream_filter" \
    "${sim_backend:+sim}" "$stream_word" "$plain_port" "$null_mode")"

if [ -n "$sim_backend" ]; then
    # One listener, for the backend under test; every other one disabled (0).
    sim_listener="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sim_provider"])' "$work/requests.json")"
    sim_args=(--pace-ms 0)
    sim_names="$("$sim" --list | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)))')"
    for name in $sim_names; do
        if [ "$name" = "$sim_listener" ]; then
            sim_args+=(--listen "$name=127.0.0.1:$upstream_port")
        else
            sim_args+=(--listen "$name=0")
        fi
    done
    # It logs a line per request: to a file, which goes with the work directory.
    "$sim" "${sim_args[@]}" 2>"$work/upstream.log" >&2 &
    upstream_what="sluice-sim pid $! ($sim_listener listener, --pace-ms 0)"
else
    # Two Envoys on one machine: no hot-restart shared memory, so they cannot collide.
    "$envoy" -c "$work/upstream.json" --concurrency 1 --disable-hot-restart \
        --log-level warn --log-path "$work/upstream.log" &
    upstream_what="upstream Envoy pid $! (--concurrency 1, direct_response${stream_word:+, SSE body})"
fi
upstream_pid=$!
pids+=("$upstream_pid")
ENVOY_DYNAMIC_MODULES_SEARCH_PATH="$module_dir" "$envoy" -c "$work/proxy.json" --concurrency 2 \
    --disable-hot-restart --log-level warn --log-path "$work/proxy.log" &
proxy_pid=$!
pids+=("$proxy_pid")

http_status() {  # url, extra curl args...
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" || true
}
ready() {
    if [ -n "$sim_backend" ]; then
        [ "$(http_status "http://127.0.0.1:$upstream_port/healthz")" = 200 ] || return 1
    else
        [ "$(http_status -X POST "http://127.0.0.1:$upstream_port/")" = 200 ] || return 1
    fi
    [ "$(http_status "http://127.0.0.1:$admin_port/ready")" = 200 ]
}
for _ in $(seq 150); do
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || die "a process exited during start-up (see $work/*.log)"
    done
    if ready; then break; fi
    sleep 0.2
done
ready || die "the upstream or the proxy did not come up (see $work/*.log)"
# Both sides answer 200 in their own shape (a complete stream with --stream), the module answers
# 401 without a key, the upstream filter counted the attempt, and with the simulator what the
# module sent it equals the plain request.
python3 "$helper" verify "$work/requests.json" "$plain_port" "$sluice_port" "$upstream_port" "$admin_port" before \
    || die "the listeners are not comparable (see $work/*.log)"

# MARK: - Load

ticks_per_second="$(getconf CLK_TCK)"
cpu_ticks() {  # pid
    # Fields after "pid (comm) ": utime and stime are the 12th and 13th.
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

run_round() {  # phase, label, variant, seconds, threads, connections
    local phase=$1 label=$2 variant=$3 seconds=$4 round_threads=$5 round_connections=$6
    local port before after upstream_before upstream_after output
    port=$plain_port
    [ "$variant" = sluice ] && port=$sluice_port
    output="$work/wrk.$phase.$label.$variant.txt"
    check_deadline $((seconds + 10))
    before="$(cpu_ticks "$proxy_pid")"
    upstream_before="$(cpu_ticks "$upstream_pid")"
    # The Lua script sets the method, path, headers and body, and prints exact percentiles.
    timeout $((seconds + 10)) wrk --latency -t "$round_threads" -c "$round_connections" -d "${seconds}s" \
        -s "$work/request.$variant.lua" "http://127.0.0.1:$port/v1/chat/completions" >"$output" &
    load_pid=$!
    # wait, unlike a foreground command, lets INT/TERM reach the cleanup trap at once.
    wait "$load_pid" || die "wrk failed (see $output)"
    load_pid=""
    after="$(cpu_ticks "$proxy_pid")"
    upstream_after="$(cpu_ticks "$upstream_pid")"
    python3 "$helper" record "$work/results.jsonl" "$phase" "$label" "$variant" "$output" \
        $((after - before)) "$ticks_per_second" $((upstream_after - upstream_before))
}

abba_rounds() {  # phase, rounds, seconds, threads, connections
    local phase=$1 count=$2 seconds=$3 round_threads=$4 round_connections=$5 round order variant
    for round in $(seq "$count"); do
        if [ $((round % 2)) = 1 ]; then order="plain sluice"; else order="sluice plain"; fi
        for variant in $order; do run_round "$phase" "$round" "$variant" "$seconds" "$round_threads" "$round_connections"; done
    done
}

streaming=""
[ "$stream" = 1 ] && streaming=", streaming"
if [ -n "$null_mode" ]; then
    mode="null $null_mode$streaming: the same OpenAI request ($sent_model) to both; plain = router only, sluice = null module ($null_mode) + router"
elif [ -n "$sim_backend" ]; then
    mode="sim $sim_backend$streaming: plain = native $sim_backend request, router only; sluice = OpenAI request for $sent_model, module forwards it in the provider's schema"
else
    mode="direct_response$streaming: the same OpenAI request ($sent_model) to both; plain = router only, sluice = module${upstream_filter:+ + sluice_upstream ($upstream_filter)} + router"
fi
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "mode: $mode"
echo "proxy Envoy pid $proxy_pid (--concurrency 2), $upstream_what"
echo "wrk: $threads thread(s), $connections connections, warm-up ${warmup}s per listener, $rounds rounds of ${duration}s;" \
    "then $latency_rounds rounds of ${latency_duration}s at 1 connection"
if [ -n "$null_mode" ]; then
    null_runs="null_filter 'pass'"
    [ "$null_mode" = pass ] || null_runs="null_filter 'buffer'"
    [ "$null_mode" = buffer+upstream ] && null_runs="$null_runs + null_filter 'upstream' on its cluster"
    echo "module: $module_file; sluice listener runs: $null_runs"
else
    echo "module: $module_file; sluice listener runs: sluice${upstream_filter:+ + sluice_upstream ($upstream_filter cluster)}"
fi
[ "$fleet" = 1 ] && echo "fleet: the proxy runs the background worker, shipping usage records to sluiced on 127.0.0.1:$sluiced_port"
echo "load average before: $load_before"
python3 "$helper" header
if [ "$warmup" -gt 0 ]; then
    run_round throughput warmup plain "$warmup" "$threads" "$connections"
    run_round throughput warmup sluice "$warmup" "$threads" "$connections"
fi
abba_rounds throughput "$rounds" "$duration" "$threads" "$connections"
if [ "$latency_rounds" -gt 0 ]; then
    # Warm already (the saturated phase ran just before); one connection, one request at a time.
    python3 "$helper" header latency
    abba_rounds latency "$latency_rounds" "$latency_duration" 1 1
fi

# The same checks once more: a module that started failing (or a stream cut short, which wrk
# does not see) during the rounds would make them measure something else.
verified_after=1
python3 "$helper" verify "$work/requests.json" "$plain_port" "$sluice_port" "$upstream_port" "$admin_port" after \
    || verified_after=0

summary_status=0
python3 "$helper" summary "$work/results.jsonl" "$work/requests.json" "$mode" "$load_before" "$verified_after" \
    "$summary_json" || summary_status=$?
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# The module's own counters (the upstream filter's are scoped to its cluster): every measured
# sluice request should show up as routed, and with --upstream-filter as an ok attempt.
# The null module counts nothing: Envoy's count of the sluice listener's requests instead.
stats_filter='^(cluster\.upstream_sluice\.)?sluice\.(requests|upstream_attempts)_total'
[ -n "$null_mode" ] && stats_filter='^(http\.sluice\.downstream_rq_(total|2xx)|cluster\.upstream_sluice\.upstream_rq_total)$'
stats="$(curl -s --max-time 2 -G "http://127.0.0.1:$admin_port/stats" --data-urlencode "filter=$stats_filter" || true)"
echo "module stats: $(echo "$stats" | tr '\n' ' ')"
if [ "$fleet" = 1 ]; then
    # Every measured sluice request should be a record in sluiced (the worker flushes every second).
    sleep 2
    fleet_stats="$(curl -s --max-time 2 -G "http://127.0.0.1:$admin_port/stats" --data-urlencode 'filter=^sluice\.fleet_usage_' || true)"
    received="$(curl -s --max-time 2 "http://127.0.0.1:$sluiced_port/metrics" | grep -E '^sluiced_usage_records_(received|duplicated)_total' || true)"
    echo "fleet: worker $(echo "$fleet_stats" | tr '\n' ' '); sluiced $(echo "$received" | tr '\n' ' ')"
fi
exit "$summary_status"

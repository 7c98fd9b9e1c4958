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
# After a warm-up, rounds alternate between the listeners (ABBA order, so slow drift of a
# shared machine hits both sides alike); each round records req/s, p50/p90/p99 latency and the
# proxy's CPU time per request (utime+stime from /proc/<pid>/stat). The summary prints medians
# and sluice/plain ratios.
#
# Usage: benchmarks/e2e/compare.sh [--rounds N] [--duration S] [--warmup S] [--connections C]
#                                  [--threads T] [--base-port P] [--upstream-filter BACKEND]
#                                  [--sim BACKEND] [--keep]
# Environment (same meaning, flags win): ROUNDS=3 DURATION=10 WARMUP=5 CONNECTIONS=32 THREADS=1
#   BASE_PORT=18000 (upstream P, plain P+1, sluice P+2, proxy admin P+3), KEEP=1 keeps logs,
#   UPSTREAM_FILTER=openai (a cluster name in envoy.yaml; empty: downstream filter only),
#   SIM_BACKEND=anthropic (--sim: openai, azure, anthropic, bedrock, gemini, vertex or local; the
#   simulator listens on port P for that backend only, so it never meets the default 18101-18106),
#   SLUICE_ENVOY=<envoy binary>, SLUICE_MODULE_DIR=<dir with libsluice.so>,
#   SLUICE_SIM=<sluice-sim binary, release build> (skip install/build),
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
base_port="${BASE_PORT:-18000}"
keep="${KEEP:-0}"
upstream_filter="${UPSTREAM_FILTER:-}"
sim_backend="${SIM_BACKEND:-}"

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
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
for value in "$rounds" "$duration" "$warmup" "$connections" "$threads" "$base_port"; do
    [[ "$value" =~ ^[0-9]+$ ]] || die "options must be whole numbers, got '$value'"
done
[ "$rounds" -ge 1 ] && [ "$duration" -ge 1 ] || die "need at least one round of at least one second"
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

upstream_port=$base_port
plain_port=$((base_port + 1))
sluice_port=$((base_port + 2))
admin_port=$((base_port + 3))

command -v wrk >/dev/null || die "wrk not found: apt-get install wrk"
command -v curl >/dev/null || die "curl not found: apt-get install curl"
command -v python3 >/dev/null || die "python3 not found"

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

max_seconds="${MAX_SECONDS:-$((90 + 2 * (warmup + 10) + 2 * rounds * (duration + 10)))}"
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
module_dir="${SLUICE_MODULE_DIR:-}"
if [ -z "$module_dir" ]; then module_dir="$(timeout 1800 "$root/envoy-module/build-module.sh")"; fi
[ -f "$module_dir/libsluice.so" ] || die "no libsluice.so in '$module_dir'"
sim=""
if [ -n "$sim_backend" ]; then
    sim="${SLUICE_SIM:-}"
    if [ -z "$sim" ]; then sim="$(timeout 1800 "$root/envoy-module/build-sim.sh")"; fi
    [ -x "$sim" ] || die "no sluice-sim binary at '$sim'"
fi

# The time bound covers measuring, not the one-off install and build below.
deadline=$((SECONDS + max_seconds))
check_deadline() {
    local needed=$1
    [ $((SECONDS + needed)) -le "$deadline" ] || die "time limit of ${max_seconds}s would be exceeded (MAX_SECONDS)"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$upstream_port" "$plain_port" "$sluice_port" "$admin_port"; do
    if port_in_use "$port"; then die "127.0.0.1:$port is already in use (try --base-port)"; fi
done

python3 "$helper" bootstraps "$root/envoy-module/envoy.yaml" "$work" \
    "$plain_port" "$sluice_port" "$upstream_port" "$admin_port" "$upstream_filter" "${sim_backend:+sim}"

if [ -n "$sim_backend" ]; then
    sim_model="$(python3 "$helper" sim-requests "$root/envoy-module/envoy.yaml" "$work" "$sim_backend" "$plain_port")"
    # One listener, for the backend under test; every other one disabled (0).
    sim_listener="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sim_provider"])' "$work/sim.json")"
    sim_args=(--pace-ms 0)
    for option in openai azure anthropic bedrock gemini compat; do
        if [ "$option" = "$sim_listener" ]; then
            sim_args+=("--$option" "127.0.0.1:$upstream_port")
        else
            sim_args+=("--$option" 0)
        fi
    done
    # It logs a line per request: to a file, which goes with the work directory.
    "$sim" "${sim_args[@]}" 2>"$work/upstream.log" >&2 &
    upstream_what="sluice-sim pid $! ($sim_listener listener, --pace-ms 0)"
else
    # Two Envoys on one machine: no hot-restart shared memory, so they cannot collide.
    "$envoy" -c "$work/upstream.json" --concurrency 1 --disable-hot-restart \
        --log-level warn --log-path "$work/upstream.log" &
    upstream_what="upstream Envoy pid $! (--concurrency 1, direct_response)"
fi
upstream_pid=$!
pids+=("$upstream_pid")
ENVOY_DYNAMIC_MODULES_SEARCH_PATH="$module_dir" "$envoy" -c "$work/proxy.json" --concurrency 2 \
    --disable-hot-restart --log-level warn --log-path "$work/proxy.log" &
proxy_pid=$!
pids+=("$proxy_pid")

body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}]}'
request() {  # port, extra curl args...; prints the HTTP status
    local port=$1; shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST "http://127.0.0.1:$port/v1/chat/completions" \
        -H 'content-type: application/json' --data "$body" "$@" || true
}

ready() {
    if [ -n "$sim_backend" ]; then
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$upstream_port/healthz" || true)" = 200 ] &&
            [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$admin_port/ready" || true)" = 200 ]
    else
        [ "$(request "$plain_port")" = 200 ] && [ "$(request "$sluice_port" -H 'authorization: Bearer sk-sluice-demo')" = 200 ]
    fi
}
for _ in $(seq 150); do
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || die "a process exited during start-up (see $work/*.log)"
    done
    if ready; then break; fi
    sleep 0.2
done
if [ -n "$sim_backend" ]; then
    ready || die "the simulator or the proxy did not come up (see $work/*.log)"
    # Both sides answer 200 in their own shape, the module answers 401 without a key, and what
    # the module sent the simulator equals the plain request.
    python3 "$helper" verify "$work/sim.json" "$plain_port" "$sluice_port" "$upstream_port" "$admin_port" \
        || die "the listeners are not comparable (see $work/*.log)"
else
    [ "$(request "$plain_port")" = 200 ] || die "plain listener does not answer 200 (see $work/*.log)"
    status="$(request "$sluice_port" -H 'authorization: Bearer sk-sluice-demo')"
    [ "$status" = 200 ] || die "sluice listener answered $status to the demo key, not a forwarded 200 (see $work/proxy.log)"
    # Proves the module is really in the path: without a key it must answer itself.
    status="$(request "$sluice_port")"
    [ "$status" = 401 ] || die "sluice listener answered $status without a key; expected the module's 401"
fi

# MARK: - Load

if [ -z "$sim_backend" ]; then
    # The same request to both listeners (sim mode wrote request.plain.lua and request.sluice.lua).
    cat >"$work/request.lua" <<EOF
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-sluice-demo"
EOF
    cp "$work/request.lua" "$work/request.plain.lua"
    cp "$work/request.lua" "$work/request.sluice.lua"
fi

ticks_per_second="$(getconf CLK_TCK)"
cpu_ticks() {  # pid
    # Fields after "pid (comm) ": utime and stime are the 12th and 13th.
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

run_round() {  # label, variant, seconds
    local label=$1 variant=$2 seconds=$3 port before after upstream_before upstream_after
    port=$plain_port
    [ "$variant" = sluice ] && port=$sluice_port
    check_deadline $((seconds + 10))
    before="$(cpu_ticks "$proxy_pid")"
    upstream_before="$(cpu_ticks "$upstream_pid")"
    # The Lua script sets the method, headers and body (and in sim mode the path).
    timeout $((seconds + 10)) wrk --latency -t "$threads" -c "$connections" -d "${seconds}s" \
        -s "$work/request.$variant.lua" "http://127.0.0.1:$port/v1/chat/completions" >"$work/wrk.$label.$variant.txt" &
    load_pid=$!
    # wait, unlike a foreground command, lets INT/TERM reach the cleanup trap at once.
    wait "$load_pid" || die "wrk failed (see $work/wrk.$label.$variant.txt)"
    load_pid=""
    after="$(cpu_ticks "$proxy_pid")"
    upstream_after="$(cpu_ticks "$upstream_pid")"
    python3 "$helper" record "$work/results.jsonl" "$label" "$variant" "$work/wrk.$label.$variant.txt" \
        $((after - before)) "$ticks_per_second" $((upstream_after - upstream_before))
}

if [ -n "$sim_backend" ]; then
    mode="sim $sim_backend: plain = native $sim_backend request, router only; sluice = OpenAI request for $sim_model, module translates"
else
    mode="direct_response: the same OpenAI request to both; plain = router only, sluice = module + router"
fi
echo "mode: $mode"
echo "proxy Envoy pid $proxy_pid (--concurrency 2), $upstream_what"
echo "wrk: $threads thread(s), $connections connections, warm-up ${warmup}s per listener, $rounds rounds of ${duration}s"
echo "module: $module_dir/libsluice.so; sluice listener runs: sluice${upstream_filter:+ + sluice_upstream ($upstream_filter cluster)}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$helper" header
if [ "$warmup" -gt 0 ]; then
    run_round warmup plain "$warmup"
    run_round warmup sluice "$warmup"
fi
for round in $(seq "$rounds"); do
    if [ $((round % 2)) = 1 ]; then order="plain sluice"; else order="sluice plain"; fi
    for variant in $order; do run_round "$round" "$variant" "$duration"; done
done

summary_status=0
python3 "$helper" summary "$work/results.jsonl" "$mode" || summary_status=$?
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# The module's own counters (the upstream filter's are scoped to its cluster): every measured
# sluice request should show up as routed, and with --upstream-filter as an ok attempt.
stats="$(curl -s --max-time 2 -G "http://127.0.0.1:$admin_port/stats" \
    --data-urlencode 'filter=^(cluster\.upstream_sluice\.)?sluice\.(requests|upstream_attempts)_total' || true)"
echo "module stats: $(echo "$stats" | tr '\n' ' ')"
exit "$summary_status"

#!/usr/bin/env bash
# Where the module's time goes inside real Envoy, per request: a perf profile of the proxy while
# wrk loads only the sluice listener, split by hook, by Envoy callback (and the Swift function
# that made it), and by our own code.
#
# It reuses the configs of a compare.sh run kept with KEEP=1, so the listener, upstream and
# request are exactly the ones compare.sh measures:
#
#   KEEP=1 LATENCY_ROUNDS=0 benchmarks/e2e/compare.sh --upstream-filter openai --rounds 1 --duration 2
#   # -> "compare: logs and configs kept in /tmp/sluice-e2e.XXXXXX"
#   benchmarks/e2e/profile-hooks.sh /tmp/sluice-e2e.XXXXXX [--seconds 15] [--port P]
#
# The port is the sluice listener's (compare.sh's --base-port + 2; default 19002). The per-request
# figures scale sample shares by the proxy's CPU per request measured during the same run (perf
# itself adds ≈ 10 %): compare them within one run, not across runs on a shared machine.
# Needs: perf (linux-perf), wrk, python3; the pip Envoy is stripped, so Envoy's own frames are
# unnamed, but the callbacks it exports to the module (envoy_dynamic_module_callback_*) are named.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${1:?usage: profile-hooks.sh <kept compare.sh directory> [--seconds S] [--port P]}"
shift
seconds=15
port=19002
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        *) echo "profile-hooks: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 3 ]] || { echo "profile-hooks: --seconds must be a whole number >= 3" >&2; exit 2; }
for file in proxy.json upstream.json request.sluice.lua; do
    [ -f "$work/$file" ] || { echo "profile-hooks: no $file in $work (run compare.sh with KEEP=1)" >&2; exit 2; }
done
command -v perf >/dev/null || { echo "profile-hooks: perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
envoy="${SLUICE_ENVOY:-$("$root/envoy-module/install-envoy.sh")}"
module_dir="${SLUICE_MODULE_DIR:-$("$root/envoy-module/build-module.sh")}"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

if grep -q '"simulated": *true' "$work/requests.json" 2>/dev/null; then
    echo "profile-hooks: a --sim run's upstream is the simulator; profile a direct_response run" >&2
    exit 2
fi
"$envoy" -c "$work/upstream.json" --concurrency 1 --disable-hot-restart --log-level warn --log-path "$work/profile-upstream.log" &
pids+=($!)
ENVOY_DYNAMIC_MODULES_SEARCH_PATH="$module_dir" "$envoy" -c "$work/proxy.json" --concurrency 2 --disable-hot-restart \
    --log-level warn --log-path "$work/profile-proxy.log" &
proxy=$!
pids+=($proxy)
for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && break
    sleep 0.1
done
wrk -t1 -c32 -d3s -s "$work/request.sluice.lua" "http://127.0.0.1:$port/" >/dev/null  # warm-up
cpu() { awk '{print $14 + $15}' "/proc/$proxy/stat"; }
before=$(cpu)
wrk -t1 -c32 -d"${seconds}s" -s "$work/request.sluice.lua" "http://127.0.0.1:$port/" >"$work/profile-wrk.txt" &
load=$!
perf record -F 1999 -g -e cpu-clock -o "$work/perf.data" -p "$proxy" -- sleep $((seconds - 1)) >/dev/null 2>&1
wait "$load"
after=$(cpu)
requests=$(grep -o '[0-9]* requests in' "$work/profile-wrk.txt" | cut -d' ' -f1)
ticks=$(getconf CLK_TCK)
us_per_request=$(python3 -c "print(($after - $before) * 1e6 / $ticks / $requests)")
echo "profile-hooks: $requests requests, proxy CPU $us_per_request µs per request (under perf)"
# Swift names demangled when the toolchain is on PATH.
demangle() { if command -v swift >/dev/null; then swift demangle --simplified; else cat; fi; }
perf script -i "$work/perf.data" -F ip,sym,dso 2>/dev/null | demangle | python3 "$here/profile_hooks.py" --per-request "$us_per_request"

#!/usr/bin/env bash
# Stops a cluster started by Tests/start-postgres.sh and removes its directory.
#
#   Tests/stop-postgres.sh "$SLUICE_TEST_POSTGRES_DIR"
#
# Asks pg_ctl for a fast shutdown (bounded to 20 s); if the postmaster whose PID the directory
# records is still there, kills that PID alone.
set -uo pipefail

DIR="${1:-${SLUICE_TEST_POSTGRES_DIR:-}}"
if [[ -z "$DIR" || ! -d "$DIR/data" || "$DIR" != /tmp/sluice-postgres.* ]]; then
    echo "stop-postgres: expected the directory start-postgres.sh printed (/tmp/sluice-postgres.*)" >&2
    exit 1
fi
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
PID=""
[[ -f "$DIR/data/postmaster.pid" ]] && PID="$(head -n 1 "$DIR/data/postmaster.pid")"

# True while $PID is still this cluster's live postmaster (not exited, not a zombie, not a
# recycled PID running something else).
ours_alive() {
    [[ -n "$PID" && -r "/proc/$PID/cmdline" ]] || return 1
    [[ "$(awk '{print $3}' "/proc/$PID/stat" 2>/dev/null)" != "Z" ]] || return 1
    tr '\0' ' ' <"/proc/$PID/cmdline" | grep -qF -- "$DIR/data"
}

(cd "$DIR" && timeout 30 runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -m fast -t 20 stop >&2) || true
for _ in $(seq 50); do
    ours_alive || break
    sleep 0.1
done
if ours_alive; then
    echo "stop-postgres: pg_ctl did not stop $PID; killing it" >&2
    kill -KILL "$PID" 2>/dev/null || true
fi
rm -rf "$DIR"

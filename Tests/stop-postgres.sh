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

(cd "$DIR" && timeout 30 runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -m fast -t 20 stop >&2) || true
if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    echo "stop-postgres: pg_ctl did not stop $PID; killing it" >&2
    kill -KILL "$PID" 2>/dev/null || true
fi
rm -rf "$DIR"

#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for the admin store tests (SluiceAdminTests).
#
#   eval "$(Tests/start-postgres.sh [PORT])"      # as root; PORT defaults to a free one
#   swift test --skip-build --filter SluiceAdminTests
#   Tests/stop-postgres.sh "$SLUICE_TEST_POSTGRES_DIR"
#
# Initialises a cluster in a new temp dir owned by the `postgres` user (Debian's package:
# installed with apt when missing), listens on 127.0.0.1 only, creates the user `sluice` with a
# random password and the database `sluice_test`, and prints shell assignments on stdout:
#
#   SLUICE_TEST_POSTGRES_URL=postgres://sluice:<password>@127.0.0.1:<port>/sluice_test
#   SLUICE_TEST_POSTGRES_DIR=<dir>      (the data, socket and log; give it to stop-postgres.sh)
#   SLUICE_TEST_POSTGRES_PID=<pid>      (the postmaster)
#
# Progress and errors go to stderr. Every step is bounded in time; on failure the cluster is
# stopped and its directory removed.
set -euo pipefail

PORT="${1:-}"
log() { echo "start-postgres: $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
    log "run as root (initdb and pg_ctl run as the postgres user through runuser)"
    exit 1
fi

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
BIN="$(find_bin)"
if [[ -z "$BIN" || ! -x "$BIN/initdb" ]]; then
    log "installing postgresql with apt"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq >&2 || true
    timeout 600 apt-get install -y -qq --no-install-recommends postgresql >&2
    BIN="$(find_bin)"
fi
if ! id postgres >/dev/null 2>&1; then
    log "the postgres user does not exist (is Debian's postgresql package installed?)"
    exit 1
fi

if [[ -z "$PORT" ]]; then
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
fi

DIR="$(mktemp -d /tmp/sluice-postgres.XXXXXX)"
chmod 700 "$DIR"
chown postgres:postgres "$DIR"
cleanup_on_error() {
    log "failed; see $DIR/postgres.log if it exists"
    [[ -f "$DIR/postgres.log" ]] && tail -n 20 "$DIR/postgres.log" >&2 || true
    timeout 30 runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -m immediate -t 20 stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup_on_error ERR

PASSWORD="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
cd "$DIR"  # runuser keeps the working directory; postgres must be able to read it

log "initdb in $DIR/data"
timeout 120 runuser -u postgres -- "$BIN/initdb" -D "$DIR/data" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$DIR/initdb.log" 2>&1

log "starting on 127.0.0.1:$PORT"
timeout 60 runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >&2

PID="$(head -n 1 "$DIR/data/postmaster.pid")"

timeout 30 runuser -u postgres -- "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q >&2 <<SQL
CREATE ROLE sluice LOGIN PASSWORD '$PASSWORD';
CREATE DATABASE sluice_test OWNER sluice;
SQL

trap - ERR
log "ready (pid $PID); stop with: Tests/stop-postgres.sh $DIR"
echo "SLUICE_TEST_POSTGRES_URL=postgres://sluice:$PASSWORD@127.0.0.1:$PORT/sluice_test"
echo "SLUICE_TEST_POSTGRES_DIR=$DIR"
echo "SLUICE_TEST_POSTGRES_PID=$PID"

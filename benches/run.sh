#!/usr/bin/env bash
# benches/run.sh: builds the `coplan` server and `coplan-bench`, then for each
# backend in ${BACKENDS:-sqlite postgres} starts a fresh server on loopback,
# waits for GET /healthz, runs coplan-bench against it (with --server-pid for
# RSS), and stops it with SIGTERM. Everything is bounded in time and only
# 127.0.0.1 is touched.
#
# Usage: benches/run.sh [coplan-bench options, e.g. --duration 5 --connections 16]
# In the options, {db-url} becomes the backend's database URL and {db-file} its SQLite file
# (e.g. `--watch-file {db-file}-wal`, `--pg-connections-url {db-url}` for a soak).
# Environment:
#   BACKENDS                  backends to run (default "sqlite postgres")
#   CARGO_TARGET_DIR          cargo target dir (default <repo>/target)
#   COPLAN_BENCH_SERVER_ARGS  extra args for `coplan serve` (default --insecure-no-auth);
#                             {port} becomes the server's port
#   COPLAN_BENCH_SETUP        a command run once the server is up, given its origin
#                             (http://127.0.0.1:PORT) and database URL; the words it prints are
#                             added to coplan-bench's options (benches/soak_auth.sh: a token)
#   COPLAN_BENCH_PG_URL       PostgreSQL server URL without database
#                             (default postgres://postgres@127.0.0.1:5432)
#   COPLAN_BENCH_TIMEOUT      hard limit in seconds for one coplan-bench run (default 900)
#   COPLAN_BENCH_SKIP_BUILD   set to 1 to use already built binaries
#   COPLAN_BENCH_KEEP_LOG     a directory to keep each server's log in, as server-<backend>.log
#                             (the run's own directory is removed)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SERVER_BIN=$TARGET_DIR/release/coplan
BENCH_BIN=$TARGET_DIR/release/coplan-bench
PG_URL=${COPLAN_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
BENCH_TIMEOUT=${COPLAN_BENCH_TIMEOUT:-900}
# shellcheck disable=SC2206 # word splitting of extra args is intended
# The storage benchmarks run without access control unless told otherwise (the cost of
# authentication is measured separately; see README "Benchmark").
SERVER_ARGS=(${COPLAN_BENCH_SERVER_ARGS---insecure-no-auth})

if [[ ${COPLAN_BENCH_SKIP_BUILD:-0} != 1 ]]; then
    echo "== building coplan and coplan-bench (release)"
    cargo build --release -p coplan --bin coplan
    cargo build --release -p coplan-bench --bin coplan-bench
fi
for bin in "$SERVER_BIN" "$BENCH_BIN"; do
    [[ -x $bin ]] || { echo "missing $bin" >&2; exit 1; }
done

SERVER_PID=""
WORK_DIR=""
PG_DB=""

stop_server() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server $SERVER_PID ignored SIGTERM for 10 s; killing" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

drop_pg_db() {
    if [[ -n $PG_DB ]]; then
        timeout 30 psql -h 127.0.0.1 -U postgres -d test -q -v ON_ERROR_STOP=1 \
            -c "drop database if exists $PG_DB" >/dev/null || echo "could not drop $PG_DB" >&2
        PG_DB=""
    fi
}

cleanup() {
    stop_server
    drop_pg_db
    if [[ -n $WORK_DIR ]]; then rm -rf "$WORK_DIR"; WORK_DIR=""; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# run_backend NAME DATABASE_URL [coplan-bench args...]
run_backend() {
    local name=$1 url=$2
    shift 2
    local port log
    port=$(free_port) || { echo "no free port" >&2; return 1; }
    log=$WORK_DIR/server.log
    local server_args=() arg
    for arg in "${SERVER_ARGS[@]}"; do
        server_args+=("${arg//\{port\}/$port}")
    done
    echo "== server: coplan serve --listen 127.0.0.1:$port --database-url $url ${server_args[*]}"
    "$SERVER_BIN" serve --listen "127.0.0.1:$port" --database-url "$url" "${server_args[@]}" \
        >"$log" 2>&1 &
    SERVER_PID=$!
    local ok=0
    for _ in $(seq 1 300); do # up to 60 s for start-up and migrations
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server exited during start-up; log:" >&2
            tail -n 40 "$log" >&2
            SERVER_PID=""
            return 1
        fi
        if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/healthz" || true) == 200 ]]; then
            ok=1
            break
        fi
        sleep 0.2
    done
    if [[ $ok != 1 ]]; then
        echo "server did not answer GET /healthz with 200 within 60 s; log:" >&2
        tail -n 40 "$log" >&2
        stop_server
        return 1
    fi
    local rc=0 args=()
    for arg in "$@"; do
        arg=${arg//\{db-url\}/$url}
        args+=("${arg//\{db-file\}/${url#sqlite://}}")
    done
    if [[ -n ${COPLAN_BENCH_SETUP:-} ]]; then
        local extra
        if ! extra=$("$COPLAN_BENCH_SETUP" "http://127.0.0.1:$port" "$url"); then
            echo "setup $COPLAN_BENCH_SETUP failed; last server log lines:" >&2
            tail -n 20 "$log" >&2
            stop_server
            return 1
        fi
        # shellcheck disable=SC2206 # the setup prints words (options and their values)
        args+=($extra)
    fi
    timeout --signal=INT --kill-after=10 "$BENCH_TIMEOUT" \
        "$BENCH_BIN" --base "http://127.0.0.1:$port/fhir" --server-pid "$SERVER_PID" "${args[@]}" || rc=$?
    stop_server
    if [[ -n ${COPLAN_BENCH_KEEP_LOG:-} ]]; then
        cp "$log" "$COPLAN_BENCH_KEEP_LOG/server-$name.log"
    fi
    if [[ $rc != 0 ]]; then
        echo "coplan-bench exited with $rc ($name); last server log lines:" >&2
        tail -n 20 "$log" >&2
    fi
    return $rc
}

overall=0
for backend in ${BACKENDS:-sqlite postgres}; do
    echo
    echo "################ backend: $backend ################"
    WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/coplan-bench.XXXXXX")
    rc=0
    case $backend in
        sqlite)
            run_backend sqlite "sqlite://$WORK_DIR/coplan.db" "$@" || rc=$?
            ;;
        postgres)
            PG_DB=coplan_bench_$(date +%s)_$RANDOM
            if timeout 30 psql -h 127.0.0.1 -U postgres -d test -q -v ON_ERROR_STOP=1 \
                -c "create database $PG_DB" >/dev/null; then
                run_backend postgres "$PG_URL/$PG_DB" "$@" || rc=$?
            else
                echo "could not create database $PG_DB on 127.0.0.1; skipping postgres" >&2
                PG_DB=""
                rc=1
            fi
            drop_pg_db
            ;;
        *)
            echo "unknown backend $backend (expected sqlite or postgres)" >&2
            rc=2
            ;;
    esac
    rm -rf "$WORK_DIR"
    WORK_DIR=""
    [[ $rc == 0 ]] || overall=$rc
done
exit "$overall"

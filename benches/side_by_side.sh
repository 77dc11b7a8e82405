#!/bin/bash
# benches/side_by_side.sh [BACKEND] [SECONDS]: what auditing costs a read by id, measured with the
# host's noise cancelled. Two servers — COPLAN_AUDIT_EVENTS=false and =true, each on a fresh
# database — are pinned together to CPU 1 and loaded at the same time, each by its own
# coplan-bench (16 connections, read by id) on CPU 0. Both get half the core, so the ratio of
# their throughputs is the ratio of their costs per read, and a slow phase of the machine (this
# VM's throughput wanders by 10-30 % between runs minutes apart) slows both alike; one server
# after the other (benches/pinned_read.sh) compares runs from different phases. Prints
# throughput and server CPU per read of each and both ratios.
# BACKEND: postgres (default) or sqlite. Needs a release build in $CARGO_TARGET_DIR (default
# /var/tmp/coplan-release) and, for postgres, the local PostgreSQL.
# PostgreSQL's own processes are not pinned: the audited server's database work may land on
# CPU 1 beside the servers, where it slows both alike (which flatters the ratio a little).
set -u
BIN=${CARGO_TARGET_DIR:-/var/tmp/coplan-release}/release
backend=${1:-postgres}
secs=${2:-10}
work=$(mktemp -d -t coplan-side.XXXXXX)
declare -A port=([false]=18091 [true]=18092) pid=()
psql_test() { psql -q -h 127.0.0.1 -U postgres -d test -c "$1" >/dev/null 2>&1; }
cleanup() {
  for p in "${pid[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "$backend" = postgres ]; then
    for audit in false true; do psql_test "DROP DATABASE IF EXISTS coplan_side_$audit"; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for audit in false true; do
  if curl -s -o /dev/null "http://127.0.0.1:${port[$audit]}/healthz"; then
    echo "side_by_side: port ${port[$audit]} is taken (a server left running?)" >&2
    exit 1
  fi
  if [ "$backend" = postgres ]; then
    # Fixed names, so a database an interrupted run left behind is dropped here.
    db="coplan_side_$audit"
    psql_test "DROP DATABASE IF EXISTS $db"
    psql_test "CREATE DATABASE $db" || { echo "side_by_side: cannot create $db" >&2; exit 1; }
    url="postgres://postgres@127.0.0.1:5432/$db"
  else
    url="sqlite://$work/$audit.db"
  fi
  COPLAN_AUDIT_EVENTS=$audit taskset -c 1 "$BIN/coplan" serve --listen "127.0.0.1:${port[$audit]}" \
    --database-url "$url" --insecure-no-auth >"$work/server-$audit.log" 2>&1 &
  pid[$audit]=$!
done
for audit in false true; do
  up=
  for _ in $(seq 1 50); do
    curl -s -o /dev/null "http://127.0.0.1:${port[$audit]}/healthz" && { up=1; break; }
    sleep 0.2
  done
  if [ -z "$up" ]; then
    echo "side_by_side: the server with audit=$audit did not start:" >&2
    tail -5 "$work/server-$audit.log" >&2
    exit 1
  fi
  # Seed 1,000 patients (and read for a second), one server at a time.
  taskset -c 0 "$BIN/coplan-bench" --base "http://127.0.0.1:${port[$audit]}/fhir" --duration 1 \
    --connections 16 --scenarios read >/dev/null 2>&1
done
# The audited server makes AuditEvents of the seeding once idle: let it finish first.
sleep 2
loads=()
for audit in false true; do
  taskset -c 0 "$BIN/coplan-bench" --base "http://127.0.0.1:${port[$audit]}/fhir" \
    --existing-patients 1000 --server-pid "${pid[$audit]}" --duration "$secs" --warmup 2 \
    --connections 16 --scenarios read >"$work/bench-$audit.out" 2>&1 &
  loads+=($!)
done
wait "${loads[@]}"
# Columns of a coplan-bench result line: $6 req/s, $11 server CPU µs a request.
off=$(awk '/^read /{print $6, $11}' "$work/bench-false.out")
on=$(awk '/^read /{print $6, $11}' "$work/bench-true.out")
for audit in false true; do
  line=$([ "$audit" = false ] && echo "$off" || echo "$on")
  if [ "$(echo "$line" | wc -w)" -ne 2 ] || [[ "$line" == 0* ]] || [[ "$line" == *" 0"* ]]; then
    echo "side_by_side: no usable result with audit=$audit:" >&2
    cat "$work/bench-$audit.out" >&2
    exit 1
  fi
done
echo "$off $on" | awk -v b="$backend" '{printf "%s audit off %.0f req/s (%.1f us) on %.0f req/s (%.1f us): on/off %.3f, cpu off/on %.3f\n", b, $1, $2, $3, $4, $3/$1, $2/$4}'

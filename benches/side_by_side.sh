#!/bin/bash
# benches/side_by_side.sh [BACKEND] [SECONDS]: read by id on two servers measured with the host's
# noise cancelled. Two servers, each on a fresh database, are pinned together to CPU 1 and loaded
# at the same time, each by its own coplan-bench (16 connections, read by id) on CPU 0. Both get
# half the core, so the ratio of their throughputs is the ratio of their costs per read, and a
# slow phase of the machine (this VM's throughput wanders by 10-30 % between runs minutes apart)
# slows both alike; one server after the other (benches/pinned_read.sh) compares runs from
# different phases. Prints throughput and server CPU per read of each and both ratios.
#
# Two comparisons:
# - what auditing costs (the default): the same build with COPLAN_AUDIT_EVENTS=false ("a") and
#   =true ("b"), from the release build in $CARGO_TARGET_DIR (default /var/tmp/coplan-release);
# - two builds (SIDE_A=<target dir> SIDE_B=<target dir>, each holding release/coplan): both with
#   the default audit (on), "b" against "a" — a change to the read path, before and after.
#
# BACKEND: postgres (default) or sqlite; postgres needs the local PostgreSQL. Its own processes
# are not pinned: database work may land on CPU 1 beside the servers, where it slows both alike.
set -u
DEFAULT=${CARGO_TARGET_DIR:-/var/tmp/coplan-release}
backend=${1:-postgres}
secs=${2:-10}
if [ -n "${SIDE_A:-}${SIDE_B:-}" ]; then
  declare -A bin=([a]=${SIDE_A:?set both SIDE_A and SIDE_B}/release [b]=${SIDE_B:?set both SIDE_A and SIDE_B}/release)
  declare -A audit=([a]=true [b]=true) label=([a]="a (${SIDE_A})" [b]="b (${SIDE_B})")
else
  declare -A bin=([a]=$DEFAULT/release [b]=$DEFAULT/release)
  declare -A audit=([a]=false [b]=true) label=([a]="audit off" [b]="audit on")
fi
work=$(mktemp -d -t coplan-side.XXXXXX)
declare -A port=([a]=18091 [b]=18092) pid=()
psql_test() { psql -q -h 127.0.0.1 -U postgres -d test -c "$1" >/dev/null 2>&1; }
cleanup() {
  for p in "${pid[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "$backend" = postgres ]; then
    for side in a b; do psql_test "DROP DATABASE IF EXISTS coplan_side_$side"; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for side in a b; do
  if curl -s -o /dev/null "http://127.0.0.1:${port[$side]}/healthz"; then
    echo "side_by_side: port ${port[$side]} is taken (a server left running?)" >&2
    exit 1
  fi
  if [ "$backend" = postgres ]; then
    # Fixed names, so a database an interrupted run left behind is dropped here.
    db="coplan_side_$side"
    psql_test "DROP DATABASE IF EXISTS $db"
    psql_test "CREATE DATABASE $db" || { echo "side_by_side: cannot create $db" >&2; exit 1; }
    url="postgres://postgres@127.0.0.1:5432/$db"
  else
    url="sqlite://$work/$side.db"
  fi
  COPLAN_AUDIT_EVENTS=${audit[$side]} taskset -c 1 "${bin[$side]}/coplan" serve \
    --listen "127.0.0.1:${port[$side]}" --database-url "$url" --insecure-no-auth \
    >"$work/server-$side.log" 2>&1 &
  pid[$side]=$!
done
for side in a b; do
  up=
  for _ in $(seq 1 50); do
    curl -s -o /dev/null "http://127.0.0.1:${port[$side]}/healthz" && { up=1; break; }
    sleep 0.2
  done
  if [ -z "$up" ]; then
    echo "side_by_side: server ${label[$side]} did not start:" >&2
    tail -5 "$work/server-$side.log" >&2
    exit 1
  fi
  # Seed 1,000 patients (and read for a second), one server at a time.
  taskset -c 0 "${bin[a]}/coplan-bench" --base "http://127.0.0.1:${port[$side]}/fhir" --duration 1 \
    --connections 16 --scenarios read >/dev/null 2>&1
done
# An audited server makes AuditEvents of the seeding once idle: let it finish first.
sleep 2
loads=()
for side in a b; do
  taskset -c 0 "${bin[a]}/coplan-bench" --base "http://127.0.0.1:${port[$side]}/fhir" \
    --existing-patients 1000 --server-pid "${pid[$side]}" --duration "$secs" --warmup 2 \
    --connections 16 --scenarios read >"$work/bench-$side.out" 2>&1 &
  loads+=($!)
done
wait "${loads[@]}"
# Columns of a coplan-bench result line: $6 req/s, $11 server CPU µs a request.
declare -A result
for side in a b; do
  result[$side]=$(awk '/^read /{print $6, $11}' "$work/bench-$side.out")
  line=${result[$side]}
  if [ "$(echo "$line" | wc -w)" -ne 2 ] || [[ "$line" == 0* ]] || [[ "$line" == *" 0"* ]]; then
    echo "side_by_side: no usable result from ${label[$side]}:" >&2
    cat "$work/bench-$side.out" >&2
    exit 1
  fi
done
echo "${result[a]} ${result[b]}" | awk -v backend="$backend" -v a="${label[a]}" -v b="${label[b]}" \
  '{printf "%s %s %.0f req/s (%.1f us) %s %.0f req/s (%.1f us): b/a %.3f, cpu a/b %.3f\n",
    backend, a, $1, $2, b, $3, $4, $3/$1, $2/$4}'

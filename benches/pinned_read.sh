#!/bin/bash
# benches/pinned_read.sh AUDIT BACKEND: read by id with the server pinned to CPU 1 and coplan-bench
# to CPU 0 (less interference between the load generator and the server than benches/run.sh).
# AUDIT: true|false (COPLAN_AUDIT_EVENTS); BACKEND: sqlite|postgres. Needs a release build in
# $CARGO_TARGET_DIR (default /var/tmp/coplan-release) and, for postgres, the local PostgreSQL.
set -u
BIN=${CARGO_TARGET_DIR:-/var/tmp/coplan-release}/release
audit=${1:?usage: benches/pinned_read.sh true|false [sqlite|postgres]}
backend=${2:-sqlite}
rm -rf /tmp/pp && mkdir -p /tmp/pp
if [ "$backend" = postgres ]; then
  db="pinned_$$"; psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $db" >/dev/null
  url="postgres://postgres@127.0.0.1:5432/$db"
else
  url="sqlite:///tmp/pp/coplan.db"
fi
COPLAN_AUDIT_EVENTS=$audit taskset -c 1 $BIN/coplan serve --listen 127.0.0.1:18081 --database-url $url --insecure-no-auth > /tmp/pp/server.log 2>&1 &
SP=$!
for i in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:18081/healthz && break; sleep 0.2; done
taskset -c 0 $BIN/coplan-bench --base http://127.0.0.1:18081/fhir --server-pid $SP --duration 10 --connections 32 --scenarios read > /tmp/pp/bench.out 2>&1
grep -E "^read " /tmp/pp/bench.out | awk -v a=$audit -v b=$backend '{print b, "audit=" a, "read", $6, "p50", $7, "p99", $9, "server_cpu_us/req", $11}'
kill $SP; wait $SP 2>/dev/null
if [ "$backend" = postgres ]; then
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
fi

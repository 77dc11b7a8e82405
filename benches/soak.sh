#!/usr/bin/env bash
# benches/soak.sh: the soak of issue 17 §5 — the careplan workload (plan reads with includes,
# If-Match co-edits, PHQ-9 submissions) for MINUTES (default 30) per backend on a fresh release
# server, sampled every 10 s (server RSS, p99, req/s, errors; the SQLite WAL's size; the
# PostgreSQL connections), written to $SOAK_OUT/soak-<backend>.csv and drawn as a PNG when
# matplotlib is importable by $SOAK_PYTHON (see benches/soak_plot.py); the server's log is kept
# beside them as server-<backend>.log (its statistics refreshes and checkpoints, with timings).
#
# With SOAK_AUTH=1 the server enforces access control and the workload runs as a clinician
# whose token is refreshed every SOAK_REFRESH_EVERY (default 60) s (benches/soak_auth.sh); each
# sample counts the refreshes, a failed one is an error.
#
# Usage: benches/soak.sh [MINUTES]   (BACKENDS, CARGO_TARGET_DIR, COPLAN_BENCH_SKIP_BUILD as
#                                     for benches/run.sh; SOAK_CONNECTIONS, default 16;
#                                     SOAK_PATIENTS, the patients seeded, default 1000 — each
#                                     plan moves to a new patient after 20 rounds either way)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MINUTES=${1:-30}
OUT=${SOAK_OUT:-$ROOT/benches/soak}
PYTHON=${SOAK_PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd) # benches/run.sh works from the repository's root
export COPLAN_BENCH_TIMEOUT=$((MINUTES * 60 + 900))
export COPLAN_BENCH_KEEP_LOG=$OUT
if [[ ${SOAK_AUTH:-0} == 1 ]]; then
    export COPLAN_BENCH_SERVER_ARGS="--base-url http://127.0.0.1:{port}/fhir"
    export COPLAN_PRACTITIONERS_SEE_ALL_PATIENTS=true
    export COPLAN_BENCH_SETUP=$ROOT/benches/soak_auth.sh
fi
overall=0
for backend in ${BACKENDS:-sqlite postgres}; do
    case $backend in
        sqlite) watch=(--watch-file '{db-file}-wal') ;;
        postgres) watch=(--pg-connections-url '{db-url}') ;;
        *) echo "unknown backend $backend" >&2; exit 2 ;;
    esac
    csv=$OUT/soak-$backend.csv
    rc=0
    BACKENDS=$backend "$ROOT/benches/run.sh" --scenarios careplan \
        --connections "${SOAK_CONNECTIONS:-16}" --seed-patients "${SOAK_PATIENTS:-1000}" --warmup 5 --duration $((MINUTES * 60)) \
        --soak-window 10 --soak-csv "$csv" --timeout 30 "${watch[@]}" || rc=$?
    [[ $rc == 0 ]] || overall=$rc
    if "$PYTHON" -c 'import matplotlib' 2>/dev/null; then
        "$PYTHON" "$ROOT/benches/soak_plot.py" "$csv" "$OUT/soak-$backend.png" \
            "$backend, $MINUTES min, careplan workload"
        echo "plot: $OUT/soak-$backend.png"
    else
        echo "matplotlib is not importable by $PYTHON: no plot (the CSV is $csv)"
    fi
done
exit "$overall"

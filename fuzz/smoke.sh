#!/usr/bin/env bash
# Fuzz smoke run for CI (docs/fuzzing.md): build every target, then run each over its committed
# corpus for a few seconds; any crash, 500, broken invariant or input slower than the time limit
# fails. Inputs the run discovers go to a temporary directory, never into fuzz/corpus/.
#
#   fuzz/smoke.sh [seconds per target, default 9]
#
# Needs the nightly toolchain and cargo-fuzz. Builds into $COPLAN_FUZZ_TARGET_DIR
# (default /var/tmp/coplan-fuzz-target). COPLAN_FUZZ_PROFILE=dev builds without optimisation
# (what .ci/run does: minutes instead of the optimised build's ~40 after a change to the server;
# slower executions, a 30 s limit per input, debug assertions and overflow checks on).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER_TARGET="${1:-9}"
TARGET_DIR="${COPLAN_FUZZ_TARGET_DIR:-/var/tmp/coplan-fuzz-target}"
# The build flags every fuzz command must repeat (or cargo fuzz rebuilds): no sanitizer (safe
# Rust; SQLite and ring are not instrumented anyway), 16 codegen units (the server is large).
BUILD_FLAGS=(-s none --codegen-units 16 --target-dir "$TARGET_DIR")
PROFILE_DIR=release
INPUT_TIMEOUT=10
if [ "${COPLAN_FUZZ_PROFILE:-release}" = dev ]; then
    BUILD_FLAGS+=(--dev)
    PROFILE_DIR=debug
    INPUT_TIMEOUT=30
fi

echo "== cargo fuzz build (nightly, ${COPLAN_FUZZ_PROFILE:-release})"
nice -n 19 cargo +nightly fuzz build "${BUILD_FLAGS[@]}"

BIN="$TARGET_DIR/x86_64-unknown-linux-gnu/$PROFILE_DIR"
WORK="$(mktemp -d -t coplan-fuzz-smoke.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
failed=()
for target in $(cargo +nightly fuzz list); do
    echo "== $target: ${SECONDS_PER_TARGET}s over fuzz/corpus/$target"
    mkdir -p "$WORK/$target/new" "$WORK/$target/artifacts"
    if ! nice -n 19 "$BIN/$target" "$WORK/$target/new" "fuzz/corpus/$target" \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -max_len=65536 \
        -timeout="$INPUT_TIMEOUT" \
        -artifact_prefix="$WORK/$target/artifacts/" -print_final_stats=1 \
        >"$WORK/$target/log" 2>&1; then
        failed+=("$target")
        tail -n 60 "$WORK/$target/log"
        for artifact in "$WORK/$target/artifacts"/*; do
            [ -e "$artifact" ] || continue
            echo "-- input that failed ($artifact), base64:"
            base64 -w 0 "$artifact"
            echo
        done
    else
        grep -E 'DONE|stat::number_of_executed_units' "$WORK/$target/log" || true
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAIL: fuzz targets found a bug: ${failed[*]} (keep the input under fuzz/regressions/<target>/)" >&2
    exit 1
fi
echo "fuzz smoke: all targets ran clean"

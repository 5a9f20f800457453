#!/usr/bin/env bash
# The whole test suite: a -Werror release build and its tests, then the same tests again
# under AddressSanitizer + UndefinedBehaviorSanitizer, then the formatting check.
# Ends with one line "N passed, N failed" summing every ctest run.
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
export VELA_SHARED_DIR="${VELA_SHARED_DIR:-$(cd .. && pwd)/shared}"

pass=0
fail=0
skip=0
status=0

run_suite() { # name build-dir cmake-args...
    local name=$1 dir=$2
    shift 2
    echo "=== $name: configure and build ($dir)"
    mkdir -p "$dir"
    if ! cmake -S . -B "$dir" -DVELA_WERROR=ON "$@" >"$dir/configure.log" 2>&1; then
        cat "$dir/configure.log"
        echo "$name: configure failed"
        fail=$((fail + 1)); status=1; return
    fi
    if ! cmake --build "$dir" -j"$JOBS" 2>&1 | tail -n 40; then :; fi
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then
        echo "$name: build failed"
        fail=$((fail + 1)); status=1; return
    fi
    echo "=== $name: tests"
    local log="$dir/ctest.log"
    (cd "$dir" && ctest --output-on-failure -j"$JOBS" 2>&1) | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line total failed
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n1)
    if [ -z "$line" ]; then
        fail=$((fail + 1)); status=1; return
    fi
    failed=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
    total=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/')
    # ctest counts a skipped test (exit 77) as not failed; report it as skipped, never as passed.
    local skipped
    skipped=$(grep -c '(Skipped)' "$log" || true)
    pass=$((pass + total - failed - skipped))
    fail=$((fail + failed))
    skip=$((skip + skipped))
    [ "$rc" -eq 0 ] || status=1
}

scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh || exit 1

run_suite release build/release -DCMAKE_BUILD_TYPE=Release
run_suite sanitize build/sanitize -DCMAKE_BUILD_TYPE=Debug -DVELA_SANITIZE=ON -DVELA_CUDA=OFF

echo "=== format check"
if scripts/format.sh --check; then
    pass=$((pass + 1))
else
    fail=$((fail + 1)); status=1
fi

echo "$pass passed, $fail failed, $skip skipped"
exit $status

#!/usr/bin/env bash
# gpu-check: the one script a machine with an NVIDIA GPU runs to check the CUDA backend.
# Builds the tree with -DVELA_CUDA=ON (Release), runs the GPU tests (ctest -R cuda: every op
# against the CPU backend, then the tiny model end to end, GPU vs CPU greedy tokens), then the
# kernel micro-benchmarks. Needs the CUDA toolkit and this checkout only (no network). Sized to
# finish within 8 minutes on one H100; every step has its own time limit so a hang cannot eat
# the budget. Results go to $OUT if set (else build/gpu-check/):
#   gpu-check.log       everything below, in order
#   ctest.log           verbose ctest output (nerr of each failing comparison, e2e lines)
#   bench_kernels.txt   GEMM TFLOP/s, attention TFLOP/s and decode GB/s
#   summary.txt         one line per step: PASS / FAIL / SKIP and seconds
# Exit status: 0 when the build and every GPU test passed.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RES=${OUT:-$ROOT/build/gpu-check}
BUILD=${VELA_GPU_BUILD:-$ROOT/build/gpu-check-build}
JOBS=$(nproc 2>/dev/null || echo 4)
mkdir -p "$RES" "$BUILD"
exec > >(tee "$RES/gpu-check.log") 2>&1
: > "$RES/summary.txt"
status=0

step() { # step NAME LIMIT_S CMD...: runs CMD under a time limit and records the outcome
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS rc=0
    echo "==== $name (limit ${limit}s): $*"
    timeout "$limit" "$@" || rc=$?
    local verdict=PASS
    if [ "$rc" -eq 77 ]; then verdict=SKIP; elif [ "$rc" -ne 0 ]; then verdict="FAIL(rc=$rc)"; fi
    [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && status=1
    echo "$name: $verdict $((SECONDS - t0))s" | tee -a "$RES/summary.txt"
    return "$rc"
}

date -u
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
command -v nvcc && nvcc --version | tail -1

# No -DVELA_WERROR here: a warning from another compiler version must not cost the GPU run
# (CI checks warnings); the CUDA target keeps its own -Werror=all-warnings.
step configure 120 cmake -S "$ROOT" -B "$BUILD" -DVELA_CUDA=ON -DCMAKE_BUILD_TYPE=Release ||
    { echo "configure failed"; exit 1; }
step build 240 cmake --build "$BUILD" -j"$JOBS" --target vela velacuda \
    backend_test_cuda_consistency backend_test_cuda_e2e bench_kernels || { echo "build failed"; exit 1; }

# The GPU tests, verbose so every comparison line lands in the log.
step ctest-cuda 180 bash -c 'ctest --test-dir "$0" -R cuda --output-on-failure -V 2>&1 |
    tee "$1"; exit "${PIPESTATUS[0]}"' "$BUILD" "$RES/ctest.log" || true
# A GPU test that skips on a machine with a GPU means the backend did not find the device.
if nvidia-smi -L >/dev/null 2>&1 && grep -q "(Skipped)" "$RES/ctest.log"; then
    echo "ctest-cuda: FAIL (a GPU is present but CUDA tests were skipped)" | tee -a "$RES/summary.txt"
    status=1
fi
# Micro-benchmarks last: informative, never a failure of the check.
step bench-kernels 120 bash -c '"$0" --iters 20 > "$1"' "$BUILD/bench/bench_kernels" \
    "$RES/bench_kernels.txt" || true
cat "$RES/bench_kernels.txt" 2>/dev/null

echo "==== summary"
cat "$RES/summary.txt"
date -u
exit $status

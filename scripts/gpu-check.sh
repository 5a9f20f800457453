#!/usr/bin/env bash
# gpu-check: the one script a machine with an NVIDIA GPU runs to check the CUDA backend.
# Two ways to run it:
#   - packed (what a lent GPU machine without our Debian packages needs): on the build machine
#     `scripts/gpu-pack.sh DIR`, then on the GPU machine `DIR/gpu-check.sh`: prebuilt binaries
#     from DIR/bin, their libraries from DIR/lib, the 7B config from DIR/q7;
#   - from the checkout (a machine with the CUDA toolkit and our build dependencies): it
#     configures and builds first, and takes the 7B config from $VELA_SHARED_DIR.
# Steps, each under its own time limit so that a hang cannot eat the budget (the whole run
# fits 8 minutes on one H100):
#   1. the GPU tests: every op against the CPU backend, both attention fast paths, the tiny
#      model end to end (GPU vs CPU greedy tokens);
#   2. kernel micro-benchmarks, with the attention fast paths and with the general kernel;
#   3. the per-op profile of a 7B decode step (16 sequences at 8,500 tokens);
#   4. the guide's 7B workloads with --load-format dummy: prompt-heavy 8000/1000 and balanced
#      1000/1000, 16 prompts each (decode-heavy 1000/8000 when time is left).
# Results go to $OUT if set (else ./gpu-check-results): summary.txt (one line per step),
# tests.txt, kernels.txt, profile.txt, workloads.txt.
# Exit status: 0 when every GPU test passed, 77 where no GPU is found, 1 otherwise.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
RES=${OUT:-$PWD/gpu-check-results}
LIMIT=${GPU_CHECK_SECONDS:-450}
mkdir -p "$RES"
: > "$RES/summary.txt"
status=0

log() { echo "$@" | tee -a "$RES/summary.txt"; }
# step FILE NAME LIMIT CMD...: CMD's output appended to FILE, verdict to the summary
step() {
    local f=$1 name=$2 lim=$3
    shift 3
    local left=$((LIMIT - SECONDS - 5))
    if [ "$left" -lt 15 ]; then
        log "$name: SKIP (out of time)"
        return 0
    fi
    [ "$lim" -gt "$left" ] && lim=$left
    local t=$SECONDS rc=0
    echo "==== $name: $*" >>"$RES/$f"
    timeout "$lim" "$@" >>"$RES/$f" 2>&1 || rc=$?
    local verdict=PASS
    if [ "$rc" -eq 77 ]; then verdict=SKIP; elif [ "$rc" -ne 0 ]; then verdict="FAIL(rc=$rc)"; fi
    log "$name: $verdict $((SECONDS - t))s"
    return "$rc"
}

if [ -d "$HERE/bin" ]; then # packed by gpu-pack.sh
    BIN=$HERE/bin
    Q7=$HERE/q7
    export LD_LIBRARY_PATH=$HERE/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
    TESTS=("$BIN"/backend_test_cuda_*)
    KERN=$BIN/bench_kernels LM=$BIN/bench_lm VELA=$BIN/vela
else # from the checkout
    ROOT=$(cd "$HERE/.." && pwd)
    BUILD=${VELA_GPU_BUILD:-$ROOT/build/gpu-check-build}
    Q7=${VELA_SHARED_DIR:-$ROOT/../shared}/models/qwen2.5-vl-7b
    # No -DVELA_WERROR: a warning from another compiler must not cost the GPU run (CI checks
    # warnings); the CUDA target keeps its own -Werror=all-warnings.
    step build.txt configure 120 cmake -S "$ROOT" -B "$BUILD" -DVELA_CUDA=ON \
        -DCMAKE_BUILD_TYPE=Release || exit 1
    step build.txt build 300 cmake --build "$BUILD" -j"$(nproc)" --target vela bench_kernels \
        bench_lm backend_test_cuda_consistency backend_test_cuda_e2e backend_test_cuda_attn_tc \
        backend_test_cuda_attn_dec || exit 1
    TESTS=("$BUILD"/backend_test_cuda_*)
    KERN=$BUILD/bench/bench_kernels LM=$BUILD/bench/bench_lm VELA=$BUILD/vela
fi

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
} >>"$RES/summary.txt" 2>&1

# 1. tests; a GPU test that skips on a machine with a GPU means the backend found no device
for t in "${TESTS[@]}"; do
    [ -x "$t" ] || continue
    rc=0
    TC_NO_TIMING=1 step tests.txt "$(basename "$t")" 90 "$t" || rc=$?
    [ "$rc" -ne 0 ] && status=1
done
if nvidia-smi -L >/dev/null 2>&1 && grep -q "^SKIP" "$RES/tests.txt"; then
    log "tests: FAIL (a GPU is present but CUDA tests were skipped)"
    status=1
fi

if ! nvidia-smi -L >/dev/null 2>&1; then
    log "gpu-check: SKIP (no GPU here: the tests skipped, nothing measured)"
    exit 77
fi

# 2-4. measurements: informative, never a failure of the check
step kernels.txt bench_kernels 30 "$KERN" --iters 20
VELA_CUDA_ATTN=general step kernels.txt bench_kernels_general 40 "$KERN" --iters 10
if [ -f "$Q7/config.json" ]; then
    step profile.txt decode_profile 60 "$LM" --model "$Q7" --load-format dummy --device cuda \
        --pp 1024 --batches 1,16 --ctx 8500 --steps 5 --rounds 2
    W=(bench throughput --model "$Q7" --load-format dummy --device cuda
        --no-enable-prefix-caching --num-prompts 16)
    step workloads.txt prompt_heavy 90 "$VELA" "${W[@]}" --input-len 8000 --output-len 1000
    step workloads.txt balanced 60 "$VELA" "${W[@]}" --input-len 1000 --output-len 1000
    step workloads.txt decode_heavy 150 "$VELA" "${W[@]}" --input-len 1000 --output-len 8000
else
    log "7B workloads: SKIP (no config.json in $Q7)"
fi

grep -h "^====\|Elapsed\|TTFT\|TPOT" "$RES/workloads.txt" 2>/dev/null
log "gpu-check: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status

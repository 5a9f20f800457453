#!/usr/bin/env bash
# gpu-pack: builds everything scripts/gpu-check.sh runs, on a machine with the CUDA toolkit
# (no GPU needed), and packs it into one folder that a GPU machine can run without building:
# the binaries, the shared libraries they need beyond the C runtime and CUDA's own (a GPU
# machine's image may lack jansson, PCRE2, utf8proc or the image libraries), the script, and
# the 7B config for --load-format dummy. The GPU machine must have a CUDA 13 driver and
# cuBLASLt 13 (the CUDA toolkit or its runtime packages).
# Usage: scripts/gpu-pack.sh OUTDIR [MODEL_CONFIG_DIR]
#   MODEL_CONFIG_DIR: a folder with the 7B's config.json (default: the shared test data's
#   models/qwen2.5-vl-7b under $VELA_SHARED_DIR, or ../shared beside the checkout)
# Then, on the GPU machine: OUTDIR/gpu-check.sh (results in $OUT, or OUTDIR/results).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUTDIR=${1:?usage: scripts/gpu-pack.sh OUTDIR [MODEL_CONFIG_DIR]}
SHARED=${VELA_SHARED_DIR:-$ROOT/../shared}
CFG=${2:-$SHARED/models/qwen2.5-vl-7b}
BUILD=${VELA_GPU_BUILD:-$ROOT/build/gpu-pack}
[ -f "$CFG/config.json" ] || { echo "gpu-pack: no config.json in $CFG" >&2; exit 1; }
cmake -S "$ROOT" -B "$BUILD" -DVELA_CUDA=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
TESTS=(backend_test_cuda_consistency backend_test_cuda_e2e backend_test_cuda_attn_tc
    backend_test_cuda_attn_dec)
cmake --build "$BUILD" -j"$(nproc)" --target vela bench_kernels bench_lm "${TESTS[@]}"
mkdir -p "$OUTDIR/bin" "$OUTDIR/lib" "$OUTDIR/q7"
cp "$BUILD/vela" "$BUILD/bench/bench_kernels" "$BUILD/bench/bench_lm" "$OUTDIR/bin/"
for t in "${TESTS[@]}"; do cp "$BUILD/$t" "$OUTDIR/bin/"; done
cp "$CFG/config.json" "$OUTDIR/q7/"
cp "$ROOT/scripts/gpu-check.sh" "$OUTDIR/"
# Shared libraries beyond libc, libstdc++, libgcc and CUDA's (those come with the driver and
# toolkit there); -L copies the files links point to.
ldd "$OUTDIR"/bin/* | awk '/=> \// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+|libcudart|libcublas|libcublasLt)\.so' |
    while read -r lib; do cp -L "$lib" "$OUTDIR/lib/"; done
du -sh "$OUTDIR"
echo "packed: run $OUTDIR/gpu-check.sh on the GPU machine"

#!/usr/bin/env bash
# emu/run.sh: runs the CUDA backend's kernels and host code on the CPU, without a GPU, by
# compiling them against the stand-in headers of this directory (cuda_runtime.h, cublasLt.h)
# and emu.cpp: every CUDA thread is a coroutine, __syncthreads/__syncwarp/shuffles are
# barriers, device memory is host memory (so ASan sees out-of-bounds kernel accesses), and
# cuBLASLt is a naive column-major GEMM honouring transposes, leading dimensions and the bias
# epilogue. Then it runs tests/backend/test_cuda_consistency.c and test_cuda_e2e.c against it.
# This checks indexing, masking, tiling, split/combine and host planning logic; it says
# nothing about real warp scheduling, memory ordering, cuBLASLt's own layout rules or speed:
# only scripts/gpu-check.sh on a GPU does. Slow (minutes): coroutine switches per barrier.
# Usage: bench/kernels/emu/run.sh [--asan]   (outputs under build/emu/ or build/emu-asan/)
# EMU_TESTS="test_cuda_consistency" runs only the named tests (default: every test_cuda_*.c).
# EMU_SCHED=warp or warp-rev runs the warps of a block one at a time between __syncthreads
# (default lockstep), to expose missing block barriers (emu.cpp).
# EMU_BUILD_DIR=dir builds under dir (and dir-asan) instead of build/emu, so that two runs of
# this script at once do not share object files.
# EMU_NO_BIAS_ALGO=1 makes the emulated cuBLASLt refuse the bias epilogue, so the matmul
# fallback (plain GEMM + bias kernel) runs instead.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
HERE=$ROOT/bench/kernels/emu
SAN=""
BTYPE=Release
if [ "${1:-}" = "--asan" ]; then
    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer"
    BTYPE=Debug
fi
B=${EMU_BUILD_DIR:-$ROOT/build/emu}${SAN:+-asan}
CPU=$B/cpu
O=$B/obj
mkdir -p "$O" "$B/gen"
if [ -n "$SAN" ]; then EXTRA=(-DVELA_SANITIZE=ON); else EXTRA=(); fi
cmake -S "$ROOT" -B "$CPU" -DVELA_CUDA=OFF -DCMAKE_BUILD_TYPE=$BTYPE "${EXTRA[@]}" >/dev/null
cmake --build "$CPU" -j"$(nproc)" --target velacore >/dev/null
CF="-I$HERE -I$ROOT/src -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1 -ffp-contract=off $SAN"
g++ -std=c++17 $CF -c "$HERE/emu.cpp" -o "$O/emu.o"
for f in "$ROOT"/src/backend/cuda/*.cu; do
    b=$(basename "$f" .cu)
    [ "$b" = cuda_probe ] && continue
    # dynamic shared memory and <<<...>>> launches become calls into emu.cpp; nvcc's unroll
    # hints go (g++ warns on them)
    perl -0pe 's/extern __shared__ float sm\[\];/float *sm = (float *)emu_dyn_smem();/g;
               s/^[ \t]*#pragma unroll[^\n]*\n//mg;
               s/(\w+)\s*<<<(.+?)>>>\s*\((.*?)\);/emu_launch(emu_cfg($2), [&]() { $1($3); });/gs' \
        "$f" > "$B/gen/$b.cpp"
    g++ -std=c++17 $CF -Wall -Wno-unused-function -c "$B/gen/$b.cpp" -o "$O/$b.o"
done
for f in "$ROOT"/src/backend/cuda/*.c; do
    gcc -std=c11 $CF -Wall -Wextra -c "$f" -o "$O/$(basename "$f" .c).o"
done
rm -f "$B/libemucuda.a"
ar rcs "$B/libemucuda.a" "$O"/*.o
LIBS=$(pkg-config --libs jansson libpcre2-8 libutf8proc libjpeg libpng libwebp libevent libcurl zlib)
status=0
for t in ${EMU_TESTS:-$(cd "$ROOT/tests/backend" && ls test_cuda_*.c | sed 's/\.c$//')}; do
    gcc -std=c11 $CF -DVELA_HAVE_CUDA=1 -I"$ROOT/tests" -c "$ROOT/tests/backend/$t.c" -o "$B/$t.o"
    g++ "$B/$t.o" "$B/libemucuda.a" "$CPU/libvelacore.a" $LIBS -lpthread -lm $SAN -o "$B/$t"
    echo "== $t (emulated device)"
    (cd "$ROOT" && VELA_TMP_DIR=$B ASAN_OPTIONS=detect_leaks=1 "$B/$t") || status=1
done
exit $status

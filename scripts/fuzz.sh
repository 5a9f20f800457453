#!/usr/bin/env bash
# Builds every libFuzzer target with clang and runs each for N seconds (default 60) on a copy
# of its committed corpus. New crashes land in build/fuzz/crash-*; minimize them into
# tests/fuzz/corpus/<name>/ so the replay test keeps them fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
CC=clang CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DVELA_FUZZ=ON \
    -DVELA_SANITIZE=ON -DVELA_CUDA=OFF -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
cmake --build build/fuzz -j"$(nproc)"
for bin in build/fuzz/fuzz_*; do
    name=$(basename "$bin")
    short=${name#fuzz_}
    work="build/fuzz/corpus-$short"
    mkdir -p "$work"
    cp -n tests/fuzz/corpus/"$short"/* "$work"/ 2>/dev/null || true
    echo "=== $name for ${SECS}s"
    (cd build/fuzz && "./$name" -max_total_time="$SECS" -artifact_prefix="crash-$short-" \
        "corpus-$short")
done

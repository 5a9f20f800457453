#!/bin/sh
# side_by_side: llama.cpp and vela, pp512 and tg128 (llama-bench's definitions), interleaved
# round by round on one machine, then the medians of the per-run means and their ratio.
# The machine is shared and noisy, so each round runs llama.cpp, then vela, then the
# roofline probes, and the load average is logged next to every run.
#
# Usage: bench/llama/side_by_side.sh BUILD_DIR MODEL_DIR MODEL.gguf [ROUNDS] [THREADS] [REPS]
# Writes every RESULT line to stdout; the summary comes last. VELA_FLAGS (e.g. "--mmap 0")
# goes to bench_llama_style as it is.
set -eu
build=$1 model=$2 gguf=$3 rounds=${4:-3} threads=${5:-2} reps=${6:-5}
here=$(dirname "$0")
log=$(mktemp)
trap 'rm -f "$log"' EXIT

i=1
while [ "$i" -le "$rounds" ]; do
    echo "# round $i $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
    python3 "$here/llama_bench.py" "$gguf" --threads "$threads" --reps "$reps" --seed "$i" \
        | grep '^RESULT' | sed "s/\$/ round=$i load=$(cut -d' ' -f1 /proc/loadavg)/" | tee -a "$log"
    "$build/bench/bench_llama_style" --model "$model" --threads "$threads" --reps "$reps" \
        --seed "$i" ${VELA_FLAGS:-} | grep '^RESULT' | sed "s/\$/ round=$i load=$(cut -d' ' -f1 /proc/loadavg)/" \
        | tee -a "$log"
    "$build/bench/roofline" --rounds 3 | grep -E 'thread' | sed "s/^/# round $i roofline: /"
    i=$((i + 1))
done

echo "# summary: median over rounds of each run's mean tokens/s"
python3 - "$log" <<'EOF'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    runs.setdefault((kv["test"], kv["engine"]), []).append(float(kv["mean"]))
for test in sorted({t for t, _ in runs}):
    l, v = runs.get((test, "llama.cpp"), []), runs.get((test, "vela"), [])
    ml = statistics.median(l) if l else float("nan")
    mv = statistics.median(v) if v else float("nan")
    print(f"{test}: llama.cpp {ml:.2f} t/s (runs {', '.join(f'{x:.2f}' for x in l)}); "
          f"vela {mv:.2f} t/s (runs {', '.join(f'{x:.2f}' for x in v)}); "
          f"vela/llama.cpp {mv / ml:.2f}x")
EOF

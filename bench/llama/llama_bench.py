#!/usr/bin/env python3
"""llama_bench: llama.cpp's pp512 and tg128 through llama-cpp-python's low-level API, the
way llama-bench (tools/llama-bench/llama-bench.cpp) measures them, for the side-by-side with
vela's bench_llama_style (docs/BENCHMARKS.md):
  - ppN: memory cleared, one llama_decode of N random ids (n_batch = n_ubatch = N, logits
    for the last token only: llama_batch_get_one), then llama_synchronize;
  - tgN: memory cleared, N single-token llama_decode calls of random ids at positions
    0 .. N-1, each followed by llama_synchronize; no sampling;
  - one warm-up run per test (the whole prompt; one generated token), then --reps timed
    repetitions; tokens/s per repetition, mean and sample stddev (plus the median);
  - context size n_prompt + n_gen of the test, the default KV type (F16) and flash-attention
    setting (auto), mmap on, and a ggml threadpool attached as llama-bench does (poll 50).
Python's per-call overhead (a few microseconds per llama_decode) is left in; it is far below
the noise of a decode step (tens of milliseconds).

Usage: python3 bench/llama/llama_bench.py MODEL.gguf [--threads N] [--pp N] [--tg N]
                                          [--reps N] [--seed N]
Prints a llama-bench-style table and one "RESULT" line per test for scripts.
"""
import argparse
import ctypes
import os
import random
import statistics
import sys
import time

import llama_cpp as L


def null_log(level, text, user_data):
    pass


NULL_LOG = L.llama_log_callback(null_log)


class ThreadpoolParams(ctypes.Structure):
    # struct ggml_threadpool_params (ggml.h): cpumask[GGML_MAX_N_THREADS = 512], ...
    _fields_ = [("cpumask", ctypes.c_bool * 512), ("n_threads", ctypes.c_int),
                ("prio", ctypes.c_int), ("poll", ctypes.c_uint32),
                ("strict_cpu", ctypes.c_bool), ("paused", ctypes.c_bool)]


def attach_threadpool(ctx, n_threads):
    """llama-bench creates one ggml threadpool and attaches it; the Python binding has no
    wrapper for it, so call the C symbols directly. Returns a description for the log."""
    libdir = os.path.join(os.path.dirname(L.__file__), "lib")
    try:
        cpu = ctypes.CDLL(os.path.join(libdir, "libggml-cpu.so"))
        base = ctypes.CDLL(os.path.join(libdir, "libggml-base.so"))
        lib = L.llama_cpp._lib
    except OSError as ex:
        return f"no threadpool ({ex}); ggml makes one per graph"
    p = ThreadpoolParams()
    base.ggml_threadpool_params_init.argtypes = [ctypes.POINTER(ThreadpoolParams), ctypes.c_int]
    base.ggml_threadpool_params_init(ctypes.byref(p), n_threads)
    cpu.ggml_threadpool_new.restype = ctypes.c_void_p
    cpu.ggml_threadpool_new.argtypes = [ctypes.POINTER(ThreadpoolParams)]
    tp = cpu.ggml_threadpool_new(ctypes.byref(p))
    if not tp:
        return "ggml_threadpool_new failed; ggml makes one per graph"
    lib.llama_attach_threadpool.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.llama_attach_threadpool(ctx, tp, None)
    return f"threadpool attached ({n_threads} threads, poll {p.poll})"


def new_context(model, n_ctx, n_batch, n_threads):
    cp = L.llama_context_default_params()
    cp.n_ctx = n_ctx
    cp.n_batch = n_batch
    cp.n_ubatch = n_batch
    cp.n_threads = n_threads
    cp.n_threads_batch = n_threads
    cp.no_perf = True
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        raise SystemExit("llama_init_from_model failed")
    return ctx


def decode(ctx, ids):
    arr = (L.llama_token * len(ids))(*ids)
    rc = L.llama_decode(ctx, L.llama_batch_get_one(arr, len(ids)))
    if rc != 0:
        raise SystemExit(f"llama_decode returned {rc}")
    L.llama_synchronize(ctx)


def test_prompt(ctx, n, n_vocab):
    decode(ctx, [random.randrange(n_vocab) for _ in range(n)])


def test_gen(ctx, n, n_vocab):
    for _ in range(n):
        decode(ctx, [random.randrange(n_vocab)])


def run_test(model, n_vocab, args, gen, n):
    ctx = new_context(model, n, max(args.pp, 1), args.threads)
    how = attach_threadpool(ctx, args.threads)
    mem = L.llama_get_memory(ctx)
    fn = test_gen if gen else test_prompt
    fn(ctx, 1 if gen else n, n_vocab)  # warm-up, as llama-bench
    ts = []
    for _ in range(args.reps):
        L.llama_memory_clear(mem, False)
        t0 = time.perf_counter_ns()
        fn(ctx, n, n_vocab)
        ts.append(1e9 * n / (time.perf_counter_ns() - t0))
    L.llama_free(ctx)
    return ts, how


def report(name, args, ts):
    mean = statistics.mean(ts)
    sd = statistics.stdev(ts) if len(ts) > 1 else 0.0
    print(f"| {os.path.basename(args.model)} | BF16 | llama.cpp CPU | {args.threads} | {name} "
          f"| {mean:10.2f} ± {sd:.2f} |")
    print(f"RESULT engine=llama.cpp test={name} threads={args.threads} reps={len(ts)} "
          f"mean={mean:.3f} sd={sd:.3f} median={statistics.median(ts):.3f} "
          f"samples={','.join(f'{t:.2f}' for t in ts)}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pp", type=int, default=512)
    ap.add_argument("--tg", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    random.seed(args.seed)
    if not args.verbose:
        L.llama_log_set(NULL_LOG, ctypes.c_void_p())
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = 0
    model = L.llama_model_load_from_file(args.model.encode(), mp)
    if not model:
        raise SystemExit(f"{args.model}: llama_model_load_from_file failed")
    n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
    print(f"llama-cpp-python {L.__version__}; {L.llama_print_system_info().decode().strip()}",
          file=sys.stderr)
    print("| model | type | backend | threads | test | t/s |\n|---|---|---|---|---|---|")
    for gen, n in ((False, args.pp), (True, args.tg)):
        if n > 0:
            ts, how = run_test(model, n_vocab, args, gen, n)
            if args.verbose:
                print(how, file=sys.stderr)
            report(f"{'tg' if gen else 'pp'}{n}", args, ts)
    L.llama_model_free(model)
    L.llama_backend_free()


if __name__ == "__main__":
    main()

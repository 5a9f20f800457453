/* cmd_bench_throughput: `vela bench throughput` (vLLM's offline throughput benchmark): N
 * requests of random token prompts (seeded RNG, so every run sends the same ids) pushed
 * straight into the engine, ignore_eos and max_tokens = --output-len, then one report:
 * requests/s, total tokens/s, output tokens/s, as vLLM prints them, plus time to first token,
 * the prefix-cache hit rate and preemptions.
 *
 * With --prefix-len P every prompt starts with the same P tokens. To show what the prefix
 * cache buys, request 0 is then sent alone and request 1 only after request 0's first token
 * (its prompt blocks are cached by then), and the rest after request 1's first token; the
 * report gives both requests' time to first token. Without it all requests go in at once.
 *
 * `vela bench` dispatches its subcommands here (throughput is the only one so far).
 * Main thread; the engine runs on its own thread. */
#include "backend/device.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "engine/engine.h"
#include "engine/kv_plan.h"
#include "engine/request.h"
#include "model/lm.h"
#include "model/weights.h"
#include "util/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct tp_args {
    const char *model;
    int64_t input_len, output_len, num_prompts, max_num_seqs, max_batched, prefix_len;
    int64_t max_model_len, kv_bytes, threads, seed;
    double mem_fraction, gpu_fraction;
    enum be_dtype kv_dtype;
    enum be_device_kind device;
    bool no_prefix_caching, no_mmap, dummy;
};

static const char USAGE[] =
    "usage: vela bench throughput --model DIR --input-len N --output-len N --num-prompts N\n"
    "         [--max-num-seqs N] [--max-num-batched-tokens N] [--prefix-len N]\n"
    "         [--max-model-len N] [--kv-cache-memory BYTES] [--cpu-memory-utilization F]\n"
    "         [--kv-cache-dtype bf16|f32] [--threads N] [--seed N] [--no-enable-prefix-caching]\n"
    "         [--no-mmap] [--device auto|cpu|cuda] [--gpu-memory-utilization F]\n"
    "         [--load-format auto|safetensors|dummy]\n"
    "Random-token prompts through the engine (ignore_eos); prints requests/s and tokens/s.\n"
    "--no-mmap reads the weights into memory backed by 2 MB pages instead of mapping them.\n"
    "--load-format dummy generates weights of the config's shapes (DIR needs config.json only).\n"
    "--device auto is cuda when this build has it and a GPU is present, else cpu.\n";

static int parse_flag(struct tp_args *a, int argc, char **argv, int *i) {
    static const char *const vf[] = {
        "--model",          "--input-len",     "--output-len",
        "--num-prompts",    "--max-num-seqs",  "--max-num-batched-tokens",
        "--prefix-len",     "--max-model-len", "--kv-cache-memory",
        "--threads",        "--seed",          "--cpu-memory-utilization",
        "--kv-cache-dtype", "--device",        "--gpu-memory-utilization",
        "--load-format"};
    int64_t *ints[] = {NULL,
                       &a->input_len,
                       &a->output_len,
                       &a->num_prompts,
                       &a->max_num_seqs,
                       &a->max_batched,
                       &a->prefix_len,
                       &a->max_model_len,
                       &a->kv_bytes,
                       &a->threads,
                       &a->seed};
    const int64_t lo[] = {0, 1, 1, 1, 1, 1, 0, 2, 1, 1, 0};
    const int64_t hi[] = {0,       1 << 20, 1 << 20,   1 << 24, 65536,    1 << 20,
                          1 << 20, 1 << 20, INT64_MAX, 256,     INT64_MAX};
    const char *v = NULL;
    for (int f = 0; f < (int)(sizeof vf / sizeof vf[0]); f++) {
        int r = args_value(argc, argv, i, vf[f], &v);
        if (r < 0) return -1;
        if (r == 0) continue;
        if (f == 0) {
            a->model = v;
            return 0;
        }
        if (f == 11) return args_double(vf[f], v, 0.01, 1.0, &a->mem_fraction);
        if (f == 13) {
            struct err e = {0};
            if (be_device_parse(v, &a->device, &e) == 0) return 0;
            fprintf(stderr, "error: %s\n", e.msg);
            return -1;
        }
        if (f == 14) return args_double(vf[f], v, 0.01, 1.0, &a->gpu_fraction);
        if (f == 15) {
            if (strcmp(v, "dummy") == 0 || strcmp(v, "auto") == 0 ||
                strcmp(v, "safetensors") == 0) {
                a->dummy = strcmp(v, "dummy") == 0;
                return 0;
            }
            fprintf(stderr, "error: --load-format %s: expected auto, safetensors or dummy\n", v);
            return -1;
        }
        if (f == 12) {
            if (strcmp(v, "bf16") == 0 || strcmp(v, "auto") == 0) {
                a->kv_dtype = BE_BF16;
            } else if (strcmp(v, "f32") == 0) {
                a->kv_dtype = BE_F32;
            } else {
                fprintf(stderr, "error: --kv-cache-dtype %s: expected bf16 or f32\n", v);
                return -1;
            }
            return 0;
        }
        return args_int(vf[f], v, lo[f], hi[f], ints[f]);
    }
    if (args_switch(argv, *i, "--no-enable-prefix-caching")) {
        a->no_prefix_caching = true;
        return 0;
    }
    if (args_switch(argv, *i, "--no-mmap")) {
        a->no_mmap = true;
        return 0;
    }
    fprintf(stderr, "error: unknown argument %s\n", argv[*i]);
    return -1;
}

static int parse_args(struct tp_args *a, int argc, char **argv) {
    *a = (struct tp_args){.max_num_seqs = 256,
                          .max_batched = 8192,
                          .threads = 2,
                          .mem_fraction = 0.5,
                          .gpu_fraction = 0.9,
                          .kv_dtype = BE_BF16};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return 1;
        }
        if (parse_flag(a, argc, argv, &i) != 0) return -1;
    }
    if (!a->model || !a->input_len || !a->output_len || !a->num_prompts) {
        fputs(USAGE, stderr);
        return -1;
    }
    if (a->prefix_len >= a->input_len) {
        fprintf(stderr, "error: --prefix-len %lld must be below --input-len %lld\n",
                (long long)a->prefix_len, (long long)a->input_len);
        return -1;
    }
    if (!a->max_model_len) a->max_model_len = a->input_len + a->output_len;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sizes the KV cache and prints vLLM's start-up lines. */
static int plan_cache(const struct tp_args *a, const struct lm_files *f, struct kv_plan *p,
                      struct err *e) {
    struct kv_plan_in in = {.cfg = &f->cfg,
                            .block_size = 16,
                            .kv_dtype_bytes = be_dtype_size(a->kv_dtype),
                            .max_model_len = (int32_t)a->max_model_len,
                            .max_num_batched_tokens = (int32_t)a->max_batched,
                            .max_num_seqs = (int32_t)a->max_num_seqs,
                            .kv_cache_bytes = (size_t)a->kv_bytes,
                            .mem_fraction = a->mem_fraction,
                            .weights_bytes = (size_t)weights_params_lm(f->w) * 2};
    int rc = 0;
    if (be_device_resolve(a->device) == BE_DEVICE_CUDA) {
        /* The GPU's memory: what is already taken (the CUDA context, the backend's scratch)
         * is counted with the weights, which lm_new will copy there. */
        size_t free_b = 0;
        in.mem_fraction = a->gpu_fraction;
        rc = a->kv_bytes ? 0 : be_device_mem_info(a->device, &free_b, &in.total_bytes, e);
        if (rc == 0 && !a->kv_bytes) in.weights_bytes += in.total_bytes - free_b;
    } else {
        rc = a->kv_bytes ? 0 : kv_mem_available(&in.total_bytes, e);
        /* Weights read into memory (--no-mmap, dummy) have already left MemAvailable, while
         * mapped ones are still in it as page cache: count them in the total either way. */
        if (rc == 0 && !a->kv_bytes && (a->no_mmap || a->dummy)) in.total_bytes += in.weights_bytes;
    }
    if (rc == 0) rc = kv_plan_compute(&in, p, e);
    if (rc != 0) return rc;
    char buf[256];
    kv_plan_describe(p, 16, (int32_t)a->max_model_len, buf, sizeof buf);
    fputs(buf, stdout);
    return 0;
}

/* Per-request timing, indexed by request id. */
struct tp_req {
    double t_submit, t_first, t_done;
    int32_t n_out, n_cached;
};

struct tp_run {
    struct engine *en;
    struct tp_req *rq;
    int64_t n_done, n_errors;
    int32_t vocab;
};

static int submit(struct tp_run *r, const struct tp_args *a, int64_t k, struct err *e) {
    int32_t n = (int32_t)a->input_len;
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids) return err_set(e, VELA_ENOMEM, "out of memory");
    for (int32_t i = 0; i < n; i++) {
        uint64_t stream = i < a->prefix_len ? 0 : 1 + (uint64_t)k;
        ids[i] = (int32_t)(rng_hash((uint64_t)a->seed, stream, (uint64_t)i) % (uint64_t)r->vocab);
    }
    struct sampling_params p;
    sp_defaults(&p); /* vLLM's benchmark: temperature 1, top_p 1, ignore_eos */
    p.ignore_eos = true;
    p.max_tokens = (int32_t)a->output_len;
    struct request *q = req_new((uint64_t)k, ids, n, NULL, 0, &p, e);
    free(ids);
    if (!q) return e->code;
    r->rq[k].t_submit = now_s();
    return eng_submit(r->en, q, e);
}

/* Reads events until request `until` has its first token (or everything is done when -1). */
static int drain(struct tp_run *r, int64_t n_total, int64_t until, struct err *e) {
    while (r->n_done < n_total && (until < 0 || r->rq[until].t_first == 0)) {
        struct eng_events *chain = eng_wait_events(r->en, 1000);
        double t = now_s();
        for (struct eng_events *b = chain; b; b = eng_events_next(b))
            for (int32_t i = 0; i < b->n; i++) {
                const struct eng_event *v = &b->ev[i];
                struct tp_req *q = &r->rq[v->id];
                if (v->token >= 0 && q->t_first == 0) q->t_first = t, q->n_cached = v->n_cached;
                if (v->token >= 0) q->n_out++;
                if (v->finish == ENG_FINISH_NONE) continue;
                q->t_done = t;
                r->n_done++;
                if (v->finish == ENG_FINISH_ERROR) {
                    if (r->n_errors++ == 0)
                        err_set(e, VELA_EINTERNAL, "request %llu: %s", (unsigned long long)v->id,
                                v->error);
                    if (until >= 0 && (int64_t)v->id == until) q->t_first = t;
                }
            }
        eng_events_free_all(chain);
    }
    return r->n_errors ? VELA_EINTERNAL : 0;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Time per output token after the first, per request (vLLM's TPOT: (latency - TTFT) /
 * (output tokens - 1)), over the requests with two or more tokens; buf has n slots. */
static void report_tpot(const struct tp_run *r, int64_t n, double *buf) {
    int64_t m = 0;
    double sum = 0;
    for (int64_t k = 0; k < n; k++)
        if (r->rq[k].n_out > 1) {
            buf[m] = (r->rq[k].t_done - r->rq[k].t_first) / (double)(r->rq[k].n_out - 1);
            sum += buf[m++];
        }
    if (m == 0) return;
    qsort(buf, (size_t)m, sizeof *buf, cmp_double);
    printf("TPOT: mean %.2f ms, median %.2f ms, max %.2f ms\n", 1e3 * sum / (double)m,
           1e3 * buf[m / 2], 1e3 * buf[m - 1]);
}

static void report(const struct tp_args *a, const struct tp_run *r, double t0, double t1) {
    int64_t n = a->num_prompts, out = 0;
    double *ttft = malloc((size_t)n * sizeof *ttft), sum = 0;
    for (int64_t k = 0; k < n; k++) {
        out += r->rq[k].n_out;
        if (ttft) ttft[k] = r->rq[k].t_first - r->rq[k].t_submit, sum += ttft[k];
    }
    double el = t1 - t0, total = (double)(out + n * a->input_len);
    struct eng_stats st;
    eng_stats(r->en, &st);
    printf("Throughput: %.2f requests/s, %.2f total tokens/s, %.2f output tokens/s\n",
           (double)n / el, total / el, (double)out / el);
    printf("Elapsed: %.3f s for %lld requests (%lld prompt + %lld output tokens), %lld steps\n", el,
           (long long)n, (long long)(n * a->input_len), (long long)out, (long long)st.n_steps);
    printf("Engine time: forward %.3f s, sampling %.3f s, batch building %.3f s, other %.3f s\n",
           st.t_forward, st.t_sample, st.t_prepare, el - st.t_forward - st.t_sample - st.t_prepare);
    if (ttft) {
        qsort(ttft, (size_t)n, sizeof *ttft, cmp_double);
        printf("TTFT: mean %.1f ms, median %.1f ms, max %.1f ms\n", 1e3 * sum / (double)n,
               1e3 * ttft[n / 2], 1e3 * ttft[n - 1]);
        report_tpot(r, n, ttft);
    }
    double hit = st.sched.prefix_query_tokens ? 100.0 * (double)st.sched.prefix_hit_tokens /
                                                    (double)st.sched.prefix_query_tokens
                                              : 0.0;
    printf("Prefix cache hit rate: %.1f%% (%llu of %llu prompt tokens); preemptions: %lld\n", hit,
           (unsigned long long)st.sched.prefix_hit_tokens,
           (unsigned long long)st.sched.prefix_query_tokens, (long long)st.sched.n_preemptions);
    if (a->prefix_len > 0 && n >= 2)
        printf("Shared prefix of %lld tokens: request 0 TTFT %.1f ms (%d cached), request 1 "
               "TTFT %.1f ms (%d cached)\n",
               (long long)a->prefix_len, 1e3 * (r->rq[0].t_first - r->rq[0].t_submit),
               r->rq[0].n_cached, 1e3 * (r->rq[1].t_first - r->rq[1].t_submit), r->rq[1].n_cached);
    free(ttft);
}

static int run(const struct tp_args *a, struct tp_run *r, struct err *e) {
    int64_t n = a->num_prompts;
    double t0 = now_s();
    int rc = 0;
    int64_t k = 0;
    if (a->prefix_len > 0) /* one at a time until request 1 has its first token */
        for (; rc == 0 && k < 2 && k < n; k++) {
            rc = submit(r, a, k, e);
            if (rc == 0) rc = drain(r, n, k, e);
        }
    for (; rc == 0 && k < n; k++) rc = submit(r, a, k, e);
    if (rc == 0) rc = drain(r, n, -1, e);
    if (rc == 0) report(a, r, t0, now_s());
    return rc;
}

static int bench(const struct tp_args *a, struct lm_files *f, struct err *e) {
    char desc[64];
    struct kv_plan p;
    struct be *b = NULL;
    struct lm *m = NULL;
    struct tp_run r = {.vocab = f->cfg.vocab_size};
    int rc = be_device_open(a->device, (int)a->threads, &b, e);
    if (rc == 0) rc = plan_cache(a, f, &p, e);
    struct lm_options lo = {.max_tokens = (int32_t)a->max_batched,
                            .max_seqs = (int32_t)a->max_num_seqs,
                            .n_blocks = p.n_blocks,
                            .block_size = 16,
                            .kv_dtype = a->kv_dtype};
    if (rc == 0) rc = lm_new(&m, b, &f->cfg, f->w, &lo, e);
    struct eng_config c = {.seed = (uint64_t)a->seed};
    sched_config_defaults(&c.sched);
    c.sched.n_blocks = p.n_blocks;
    c.sched.max_num_batched_tokens = (int32_t)a->max_batched;
    c.sched.max_num_seqs = (int32_t)a->max_num_seqs;
    c.sched.max_model_len = (int32_t)a->max_model_len;
    c.sched.prefix_caching = !a->no_prefix_caching;
    if (rc == 0) rc = eng_new(&r.en, m, &c, e);
    if (rc == 0) rc = eng_start(r.en, e);
    r.rq = calloc((size_t)a->num_prompts, sizeof *r.rq);
    if (rc == 0 && !r.rq) rc = err_set(e, VELA_ENOMEM, "out of memory");
    if (rc == 0)
        printf("Model %s%s: %s, %lld prompts of %lld tokens, %lld output "
               "tokens, max_num_seqs %lld, max_num_batched_tokens %lld\n",
               a->model, a->dummy ? " (dummy weights)" : "",
               be_device_describe(b, (int)a->threads, desc, sizeof desc), (long long)a->num_prompts,
               (long long)a->input_len, (long long)a->output_len, (long long)a->max_num_seqs,
               (long long)a->max_batched);
    if (rc == 0) rc = run(a, &r, e);
    eng_free(r.en);
    free(r.rq);
    lm_free(m);
    be_free(b);
    return rc;
}

/* Dummy weights are generated on every core: the 7B's 16 GB take seconds, not minutes. */
static int32_t dummy_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int32_t)n;
}

static int cmd_bench_throughput(int argc, char **argv) {
    struct tp_args a;
    int pr = parse_args(&a, argc, argv);
    if (pr != 0) return pr > 0 ? 0 : 2;
    struct err e = {0};
    struct lm_files f = {0};
    int rc = be_device_check(a.device, &e); /* before minutes of loading */
    if (rc == 0)
        rc = a.dummy
                 ? lm_files_open_dummy(&f, a.model, (uint64_t)a.seed, dummy_threads(), &e)
                 : lm_files_open_mode(&f, a.model, a.no_mmap ? FILE_MAP_READ : FILE_MAP_MMAP, &e);
    if (rc == 0) rc = bench(&a, &f, &e);
    if (rc != 0) fprintf(stderr, "error: %s\n", e.msg);
    lm_files_close(&f);
    return rc == 0 ? 0 : 1;
}

int cmd_bench(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "throughput") == 0)
        return cmd_bench_throughput(argc - 1, argv + 1);
    fprintf(stderr, "usage: vela bench throughput [options] (--help for the options)\n");
    return 2;
}

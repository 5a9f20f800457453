/* bench_lm: the language-model forward on the CPU (model/lm.c): prefill tokens/s for one
 * prompt (pp), decode tokens/s at several batch sizes (tg), llama-bench-style tg (one
 * sequence generating N tokens from an empty context), and the time of one decode step
 * split by op, each next to its roofline from bench/roofline's probes measured in the same
 * run:
 *   - memory roof: bytes the step must read (every matmul weight once, lm_head included, plus
 *     the K/V the attention reads) / streaming read GB/s;
 *   - compute roof: 2 flops per weight per token / the compute peak: the faster of the
 *     vdpbf16ps and the FP32 FMA probes (FP32 FMAs on this core: the AVX-512 matmul runs them
 *     on widened BF16 weights from 11 rows on, so the vdpbf16ps peak would flatter it).
 * The roofline time is the larger of the two (M or C in the op table says which);
 * "% roof" = roofline time / measured time. Then each batch's token rate over the first
 * batch's, all from the same run.
 *
 * Decode batches do not run a prefill first: the cache blocks of each sequence are assigned
 * and n_computed set to --ctx, so attention reads ctx keys of (zeroed) cache, which costs
 * exactly what real keys cost, without minutes of prefill on the large shapes.
 * Usage: bench_lm --model DIR [--threads N] [--isa auto|avx512|avx2|portable] [--pp N]
 *                 [--batches 1,8,32] [--ctx N] [--steps N] [--tg N] [--rounds N]
 *                 [--kv-cache-dtype bf16|f32] [--mmap 1|0] [--device auto|cpu|cuda]
 *                 [--load-format dummy] [--gpu-gbps G] [--gpu-tflops T]
 * On a GPU there are no probes: the roofline is --gpu-gbps (3350) and --gpu-tflops (989), an
 * H100 SXM's datasheet figures, and each op's time includes a sync after it.
 * --mmap 0 reads the weights into 2 MB-page memory (vela's --no-mmap) instead of mapping them.
 * The read probe's buffer is always advised as huge pages: a roofline is the best the machine
 * can do, and 2 MB pages read 3-5% faster than 4 KB ones on the reference machine. */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "backend/device.h"
#include "model/batch.h"
#include "model/lm.h"
#include "model/weights.h"
#include "roofline/probe.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifdef VELA_HAVE_CUDA
#include "backend/cuda/backend_cuda.h"
#endif

#define MAX_BATCHES 8
/* Longest --pp, --ctx + 1 and --tg: the prompt ids and a sequence's block table are arrays of
 * this size. */
#define LMB_MAX_TOKENS 16384

struct opts {
    const char *model;
    int threads, pp, ctx, steps, tg, rounds, n_batches, mmap;
    int batches[MAX_BATCHES];
    enum cpu_isa isa;
    enum be_dtype kv;
    enum be_device_kind device;  /* --device */
    bool dummy;                  /* --load-format dummy */
    double gpu_gbps, gpu_tflops; /* the roofline on a GPU (no probe there) */
};

struct roof {
    double gbps, gflops;   /* probes: read GB/s, compute peak (the faster of the next two) */
    double bf16, fma;      /* vdpbf16ps and FP32 FMA peaks */
    double w_bytes;        /* matmul weight bytes read per step (lm_head included) */
    double flops_per_tok;  /* 2 x matmul weights */
    double head_flops;     /* the lm_head's share of flops_per_tok */
    double kv_bytes_per_k; /* bytes of K+V per cached token, all layers */
    struct model_config c;
};

static int parse(struct opts *o, int argc, char **argv) {
    *o = (struct opts){.threads = 2,
                       .pp = 512,
                       .ctx = 128,
                       .steps = 8,
                       .tg = 0,
                       .rounds = 3,
                       .mmap = 1,
                       .n_batches = 3,
                       .batches = {1, 8, 32},
                       .isa = CPU_ISA_AUTO,
                       .kv = BE_BF16,
                       .device = BE_DEVICE_CPU,
                       .gpu_gbps = 3350,
                       .gpu_tflops = 989};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return -1;
        i++;
        if (strcmp(a, "--model") == 0)
            o->model = v;
        else if (strcmp(a, "--threads") == 0)
            o->threads = atoi(v);
        else if (strcmp(a, "--pp") == 0)
            o->pp = atoi(v);
        else if (strcmp(a, "--ctx") == 0)
            o->ctx = atoi(v);
        else if (strcmp(a, "--steps") == 0)
            o->steps = atoi(v);
        else if (strcmp(a, "--tg") == 0)
            o->tg = atoi(v);
        else if (strcmp(a, "--rounds") == 0)
            o->rounds = atoi(v);
        else if (strcmp(a, "--mmap") == 0)
            o->mmap = atoi(v);
        else if (strcmp(a, "--device") == 0) {
            struct err e = {0};
            if (!v || be_device_parse(v, &o->device, &e) != 0) return -1;
        } else if (strcmp(a, "--load-format") == 0) {
            if (!v || (strcmp(v, "dummy") != 0 && strcmp(v, "safetensors") != 0)) return -1;
            o->dummy = strcmp(v, "dummy") == 0;
        } else if (strcmp(a, "--gpu-gbps") == 0)
            o->gpu_gbps = v ? atof(v) : 0;
        else if (strcmp(a, "--gpu-tflops") == 0)
            o->gpu_tflops = v ? atof(v) : 0;
        else if (strcmp(a, "--kv-cache-dtype") == 0)
            o->kv = strcmp(v, "f32") == 0 ? BE_F32 : BE_BF16;
        else if (strcmp(a, "--isa") == 0) {
            int isa = cpu_isa_parse(v);
            if (isa < 0) return -1;
            o->isa = (enum cpu_isa)isa;
        } else if (strcmp(a, "--batches") == 0) {
            o->n_batches = 0;
            for (char *p = (char *)v; *p && o->n_batches < MAX_BATCHES;) {
                o->batches[o->n_batches++] = (int)strtol(p, &p, 10);
                if (*p == ',') p++;
            }
        } else
            return -1;
    }
    bool lens_ok = o->pp > 0 && o->pp <= LMB_MAX_TOKENS && o->ctx >= 0 && o->ctx < LMB_MAX_TOKENS &&
                   o->tg >= 0 && o->tg <= LMB_MAX_TOKENS;
    return o->model && o->threads > 0 && lens_ok && o->steps > 0 && o->rounds > 0 ? 0 : -1;
}

/* The probes, 5 times each; the best run is the roof (the machine is shared, and a roofline
 * is what the hardware can do, not what a busy moment allowed). Raises r's values only, so
 * calling it before and after the measurements keeps the best of both. */
static void probe(struct roof *r, int threads) {
    struct err e = {0};
    struct tp *pool = NULL;
    if (tp_new(&pool, threads, &e) != 0) return;
    size_t n = (size_t)1 << 30;
    void *buf = aligned_alloc((size_t)2 << 20, n);
    if (buf) (void)madvise(buf, n, MADV_HUGEPAGE); /* advice: 4 KB pages without THP */
    if (buf) memset(buf, 1, n);
    for (int i = 0; i < 5; i++) {
        double g = buf ? probe_read_gbps(pool, buf, n) : 0, f = probe_bf16_gflops(pool, 20000000);
        double fm = probe_f32_fma_gflops(pool, 20000000);
        r->gbps = g > r->gbps ? g : r->gbps;
        r->bf16 = f > r->bf16 ? f : r->bf16;
        r->fma = fm > r->fma ? fm : r->fma;
        r->gflops = r->fma > r->bf16 ? r->fma : r->bf16;
    }
    free(buf);
    tp_free(pool);
}

/* Flops of attention for n_rows query rows attending to `keys` cached keys each on average:
 * q·k and p·v, 2 flops per multiply-add, every query head, every layer. */
static double attn_flops(const struct roof *r, double n_rows, double keys) {
    const struct model_config *c = &r->c;
    return 4.0 * n_rows * keys * c->num_attention_heads * c->head_dim * c->num_hidden_layers;
}

/* Roofline seconds for n tokens of which n_head go through lm_head, each attending to `keys`
 * cached keys on average, with kv_tokens tokens of K/V read from memory: every row's keys in
 * decode (one row per sequence), the sequence's cache once in a prefill, whose rows share
 * it. */
static double roof_s(const struct roof *r, double n_tok, double n_head, double keys,
                     double kv_tokens) {
    double mem = (r->w_bytes + kv_tokens * r->kv_bytes_per_k) / (r->gbps * 1e9);
    double fl = n_tok * (r->flops_per_tok - r->head_flops) + n_head * r->head_flops +
                attn_flops(r, n_tok, keys);
    double cmp = r->gflops > 0 ? fl / (r->gflops * 1e9) : 0;
    return mem > cmp ? mem : cmp;
}

/* One step of B sequences; sequence s owns blocks s*nb .. s*nb+nb-1 and has ctx tokens. */
static int step(struct lm *m, struct lm_batch_buf *bb, int B, int nb, int ctx, int pp,
                float *logits, struct err *e) {
    static int32_t ids[LMB_MAX_TOKENS], table[LMB_MAX_TOKENS / 16];
    lmb_reset(bb);
    int n = pp ? pp : 1, rc = 0;
    int32_t V = lm_vocab(m);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)((i * 7919 + 13) % V);
    for (int s = 0; rc == 0 && s < B; s++) {
        for (int j = 0; j < nb; j++) table[j] = s * nb + j;
        rc = lmb_add(bb, ids, n, pp ? 0 : ctx, NULL, 0, 0, table, nb, true, e);
    }
    return rc == 0 ? lm_forward(m, &bb->b, logits, e) : rc;
}

static double median_time(struct lm *m, struct lm_batch_buf *bb, int B, int nb, int ctx, int pp,
                          int reps, float *logits) {
    double t[64];
    struct err e = {0};
    if (reps > 64) reps = 64;
    for (int i = 0; i < reps; i++) {
        double t0 = probe_now_s();
        if (step(m, bb, B, nb, ctx, pp, logits, &e) != 0) {
            fprintf(stderr, "error: %s\n", e.msg);
            return -1;
        }
        t[i] = probe_now_s() - t0;
    }
    return probe_median(t, reps);
}

/* Op table of `steps` profiled forwards of B rows (n_head of them through lm_head), each row
 * attending to ctx cached tokens on average, kv_tokens tokens of K/V read (as roof_s). */
static void print_ops(const struct lm_profile *p, int steps, const struct roof *r, int B,
                      int n_head, double ctx, double kv_tokens) {
    const struct model_config *c = &r->c;
    double L = c->num_hidden_layers, D = c->hidden_size, F = c->intermediate_size;
    double hd = c->head_dim, q = c->num_attention_heads * hd, kv = c->num_key_value_heads * hd;
    double wb[LM_N_OPS] = {0}, fl[LM_N_OPS] = {0}; /* bytes and flops per step and op */
    wb[LM_OP_QKV] = 2 * L * D * (q + 2 * kv);
    wb[LM_OP_O_PROJ] = 2 * L * q * D;
    wb[LM_OP_GATE_UP] = 2 * L * 2 * F * D;
    wb[LM_OP_DOWN] = 2 * L * F * D;
    wb[LM_OP_LM_HEAD] = 2 * (double)c->vocab_size * D;
    for (int i = 0; i < LM_N_OPS; i++) fl[i] = B * wb[i]; /* 2 flops per BF16 weight (2 B) */
    fl[LM_OP_LM_HEAD] = n_head * wb[LM_OP_LM_HEAD];
    wb[LM_OP_ATTN] = kv_tokens * r->kv_bytes_per_k;
    fl[LM_OP_ATTN] = attn_flops(r, B, ctx);
    double total = 0;
    for (int i = 0; i < LM_N_OPS; i++) total += p->seconds[i];
    printf("  %-14s %10s %7s %12s %8s\n", "op", "ms/step", "share", "roof ms", "% roof");
    for (int i = 0; i < LM_N_OPS; i++) {
        double ms = 1e3 * p->seconds[i] / steps, mem = 1e3 * wb[i] / (r->gbps * 1e9);
        double cmp = r->gflops > 0 ? 1e3 * fl[i] / (r->gflops * 1e9) : 0;
        double roof = mem > cmp ? mem : cmp;
        if (wb[i] > 0)
            printf("  %-14s %10.3f %6.1f%% %10.3f %s %7.1f%%\n", lm_op_name((enum lm_op)i), ms,
                   100 * p->seconds[i] / total, roof, mem >= cmp ? "M" : "C",
                   ms > 0 ? 100 * roof / ms : 0);
        else
            printf("  %-14s %10.3f %6.1f%% %12s %8s\n", lm_op_name((enum lm_op)i), ms,
                   100 * p->seconds[i] / total, "-", "-");
    }
}

struct results {
    double pp_t, tg_t, t[MAX_BATCHES];
    struct lm_profile pp_prof, prof[MAX_BATCHES];
};

static void report(const struct opts *o, const struct roof *r, const struct results *res) {
    double pp_keys = (o->pp + 1) / 2.0; /* row i of a causal prefill sees i + 1 keys */
    double rt = roof_s(r, o->pp, 1, pp_keys, o->pp);
    printf("prefill pp%d: %.3f s, %.1f tokens/s (roofline %.1f tokens/s, %.0f%%)\n", o->pp,
           res->pp_t, o->pp / res->pp_t, o->pp / rt, 100 * rt / res->pp_t);
    print_ops(&res->pp_prof, o->rounds, r, o->pp, 1, pp_keys, o->pp);
    for (int i = 0; i < o->n_batches; i++) {
        int B = o->batches[i];
        double t = res->t[i];
        rt = roof_s(r, B, B, o->ctx, (double)B * o->ctx);
        printf("\ndecode batch %d (context %d): %.1f ms/step, %.2f tokens/s (roofline %.2f "
               "tokens/s, %.0f%%)\n",
               B, o->ctx, 1e3 * t, B / t, B / rt, 100 * rt / t);
        print_ops(&res->prof[i], o->steps, r, B, B, o->ctx, (double)B * o->ctx);
    }
    /* Each batch's token rate against the first batch's (a goal of the CPU backend: batch 32 at
     * least 8x batch 1), from the same run. */
    for (int i = 1; i < o->n_batches && o->batches[0] > 0; i++)
        printf("%sbatch %d / batch %d: %.2fx the token rate\n", i == 1 ? "\n" : "", o->batches[i],
               o->batches[0], (o->batches[i] / res->t[i]) / (o->batches[0] / res->t[0]));
    if (o->tg > 0)
        printf("\ntg%d (one sequence from an empty context): %.3f s, %.2f tokens/s\n", o->tg,
               res->tg_t, o->tg / res->tg_t);
}

static int run(const struct opts *o, struct lm_files *f, struct roof *r) {
    struct err e = {0};
    struct be *b = NULL;
    struct be_cpu_opts bo = be_cpu_opts_default(o->threads);
    bo.isa = o->isa;
    int maxB = 1, rc;
    for (int i = 0; i < o->n_batches; i++) maxB = o->batches[i] > maxB ? o->batches[i] : maxB;
    int dec_len = o->ctx + 1 > o->tg ? o->ctx + 1 : o->tg;
    int nb = ((o->pp > dec_len ? o->pp : dec_len) + 15) / 16;
    struct lm_options lo = {.max_tokens = o->pp > maxB ? o->pp : maxB,
                            .max_seqs = maxB,
                            .n_blocks = nb * maxB,
                            .kv_dtype = o->kv,
                            .logit_rows = maxB};
    struct lm *m = NULL;
    struct lm_batch_buf bb = {0};
    float *logits = malloc((size_t)maxB * f->cfg.vocab_size * sizeof(float));
    bool gpu = be_device_resolve(o->device) == BE_DEVICE_CUDA;
    rc = gpu ? be_device_open(o->device, o->threads, &b, &e) : be_cpu_new_opts(&b, &bo, &e);
    if (rc == 0) rc = lm_new(&m, b, &f->cfg, f->w, &lo, &e);
    if (rc == 0) rc = lmb_init(&bb, lo.max_tokens, maxB, nb, 16, &e);
    if (rc != 0 || !logits) {
        fprintf(stderr, "error: %s\n", e.msg);
        goto done;
    }
    struct results res = {.pp_t = 0};
    struct lm_profile pp_prof = {0};
    /* warm-up, as llama-bench does: the first forward also faults in every mmapped weight
     * page (about 0.1 s per GB), which a served model pays once at its first request */
    step(m, &bb, 1, nb, 0, o->pp, logits, &e);
    lm_set_profile(m, &pp_prof);
    res.pp_t = median_time(m, &bb, 1, nb, 0, o->pp, o->rounds, logits);
    lm_set_profile(m, NULL);
    res.pp_prof = pp_prof;
    for (int i = 0; i < o->n_batches; i++) {
        step(m, &bb, o->batches[i], nb, o->ctx, 0, logits, &e); /* warm-up */
        lm_set_profile(m, &res.prof[i]);
        res.t[i] = median_time(m, &bb, o->batches[i], nb, o->ctx, 0, o->steps, logits);
        lm_set_profile(m, NULL);
    }
    if (o->tg > 0) { /* llama-bench tg: one sequence, tokens 0..tg-1 */
        double t0 = probe_now_s();
        for (int i = 0; i < o->tg && rc == 0; i++) rc = step(m, &bb, 1, nb, i, 0, logits, &e);
        res.tg_t = probe_now_s() - t0;
    }
    if (gpu) {
        printf("GPU roofline as given: %.0f GB/s, %.0f TFLOP/s; KV cache %s; per-op times "
               "include a sync after each op\n\n",
               r->gbps, r->gflops / 1e3, be_dtype_name(o->kv));
    } else {
        probe(r, o->threads); /* again after the runs: the roof is the best of both */
        printf("roofline probes (best of 10, before and after): read %.1f GB/s, compute peak "
               "%.1f GFLOP/s (vdpbf16ps %.1f, FP32 FMA %.1f)\nisa %s, %d threads, KV cache %s\n\n",
               r->gbps, r->gflops, r->bf16, r->fma, cpu_isa_name(be_cpu_isa(b)), o->threads,
               be_dtype_name(o->kv));
    }
    report(o, r, &res);
done:
    free(logits);
    lmb_deinit(&bb);
    lm_free(m);
    be_free(b);
    return rc;
}

int main(int argc, char **argv) {
    struct opts o;
    if (parse(&o, argc, argv) != 0) {
        fprintf(stderr, "usage: bench_lm --model DIR [--threads N] [--isa ISA] [--pp N] "
                        "[--batches 1,8,32] [--ctx N] [--steps N] [--tg N] [--rounds N] "
                        "[--kv-cache-dtype bf16|f32] [--mmap 1|0] [--device auto|cpu|cuda] "
                        "[--load-format dummy] [--gpu-gbps G] [--gpu-tflops T]\n");
        return 2;
    }
    struct err e = {0};
    struct lm_files f;
#ifdef VELA_HAVE_CUDA
    be_cuda_register_device();
#endif
    int frc = be_device_check(o.device, &e);
    if (frc == 0)
        frc = o.dummy ? lm_files_open_dummy(&f, o.model, 0, 16, &e)
                      : lm_files_open_mode(&f, o.model, o.mmap ? FILE_MAP_MMAP : FILE_MAP_READ, &e);
    if (frc != 0) {
        fprintf(stderr, "error: %s\n", e.msg);
        return 1;
    }
    struct roof r = {.c = f.cfg};
    const struct model_config *c = &f.cfg;
    double D = c->hidden_size, V = c->vocab_size;
    double mm = (double)weights_params_lm(f.w) - (c->tie_word_embeddings ? 0 : V * D);
    mm -= (2.0 * c->num_hidden_layers + 1) * D; /* norms are not matmul weights */
    r.w_bytes = 2 * mm;
    r.flops_per_tok = 2 * mm;
    r.head_flops = 2 * V * D;
    r.kv_bytes_per_k = 2.0 * c->num_hidden_layers * c->num_key_value_heads * c->head_dim *
                       (o.kv == BE_F32 ? 4 : 2);
    if (be_device_resolve(o.device) == BE_DEVICE_CUDA)
        r.gbps = o.gpu_gbps, r.gflops = o.gpu_tflops * 1e3;
    else
        probe(&r, o.threads);
    printf("model %s: %d layers, hidden %d, %d/%d heads, vocab %d; %.2f GB of matmul weights "
           "per step\n",
           o.model, c->num_hidden_layers, c->hidden_size, c->num_attention_heads,
           c->num_key_value_heads, c->vocab_size, r.w_bytes / 1e9);
    int rc = run(&o, &f, &r);
    lm_files_close(&f);
    return rc == 0 ? 0 : 1;
}

/* bench_vit: vision-encoder throughput (patches/s) of model/vit.c on the CPU at the real 7B
 * vision-tower shape (hidden 1280, 32 blocks, 16 heads, intermediate 3420, merger to 3584),
 * for square images of the given sizes (448 -> grid 32x32, 1008 -> 72x72), next to the
 * FLOP roofline measured in the same run: the faster of bench/roofline's vdpbf16ps and FP32
 * FMA peak probes (the AVX-512 matmul runs FP32 FMAs on widened weights from 11 rows on).
 *
 * Weights are the generator's deterministic BF16 values for the 7b preset's vision tensors,
 * made in memory (gen_tensor_bf16, 1.3 GB) instead of writing the 16 GB checkpoint; the
 * tower reads them through vit_new_lookup. Inputs are pseudo-random pixel values.
 * FLOPs counted per forward: 2 per multiply-add of every Linear (patch embedding, qkv, proj,
 * gate, up, down, merger) plus 4·len²·C per attention segment and block (QKᵀ and P·V).
 * Usage: bench_vit [--threads N] [--isa auto|avx512|avx2|portable] [--runs N]
 *                  [--sizes 448,1008] */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "model/generator.h"
#include "model/params.h"
#include "model/presets.h"
#include "model/vit.h"
#include "model/vit_window.h"
#include "roofline/probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIZES 8
#define MAX_RUNS  16

struct gen_src {
    struct gen_spec g;
    struct param_tensor *pts; /* owned (free) */
    int64_t n;
    uint16_t **data; /* (n), generated on first lookup, owned */
};

static int gen_lookup(void *ctx, const char *name, struct vit_tensor_src *out, struct err *e) {
    struct gen_src *s = ctx;
    for (int64_t i = 0; i < s->n; i++) {
        const struct param_tensor *pt = &s->pts[i];
        if (strcmp(pt->name, name) != 0) continue;
        int64_t n = params_n_elems(pt);
        if (!s->data[i]) {
            s->data[i] = malloc((size_t)n * 2);
            if (!s->data[i]) return err_set(e, VELA_ENOMEM, "bench: out of memory");
            int rc = gen_tensor_bf16(&s->g, pt, 0, n, s->data[i], e);
            if (rc != 0) return rc;
        }
        out->bf16 = s->data[i];
        out->n_dims = pt->n_dims;
        out->n_elems = n;
        for (int d = 0; d < 5; d++) out->shape[d] = d < pt->n_dims ? pt->shape[d] : 1;
        return 0;
    }
    return err_set(e, VELA_ENOTFOUND, "bench: no tensor %s", name);
}

/* FLOPs of one forward over grid g (see the file comment). */
static double forward_flops(const struct vision_config *c, struct vit_grid g) {
    double S = (double)g.t * g.h * g.w, C = c->hidden_size, F = c->intermediate_size;
    double K = 3.0 * 2 * 14 * 14, O = c->out_hidden_size, MC = 4 * C;
    double lin = 2 * S * K * C + c->depth * 2 * S * (3 * C * C + C * C + 3 * C * F);
    lin += 2 * (S / 4) * (MC * MC + MC * O);
    int64_t units = (int64_t)S / 4;
    int32_t *widx = malloc((size_t)units * 4), *cu = malloc((size_t)(units + 1) * 4);
    int64_t n_cu = vitw_window_index(&g, 1, 2, 4, widx, cu);
    double win = 0;
    for (int64_t i = 0; i + 1 < n_cu; i++) win += (double)(cu[i + 1] - cu[i]) * (cu[i + 1] - cu[i]);
    double full = (double)g.t * ((double)g.h * g.w) * ((double)g.h * g.w);
    double att = 4 * C * ((c->depth - c->n_fullatt) * win + c->n_fullatt * full);
    free(widx), free(cu);
    return lin + att;
}

/* The best of 20 short windows of the compute peak (the faster of vdpbf16ps and FP32 FMA),
 * or of these and earlier ones (prev): on a shared machine the best window approximates the
 * idle peak (as bench/roofline reports it). */
static double best_peak(struct tp *pool, double prev) {
    for (int i = 0; i < 20; i++) {
        double g = probe_compute_gflops(pool, 2 * 1000 * 1000);
        prev = g > prev ? g : prev;
    }
    return prev;
}

static int parse_sizes(const char *s, int *sizes) {
    int n = 0;
    while (s && *s && n < MAX_SIZES) {
        sizes[n++] = atoi(s);
        s = strchr(s, ',');
        if (s) s++;
    }
    return n;
}

int main(int argc, char **argv) {
    int threads = 2, runs = 3, n_sizes = 2, sizes[MAX_SIZES] = {448, 1008};
    enum cpu_isa isa = CPU_ISA_AUTO;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0) threads = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--runs") == 0) runs = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--sizes") == 0) n_sizes = parse_sizes(argv[i + 1], sizes);
        if (strcmp(argv[i], "--isa") == 0) isa = (enum cpu_isa)cpu_isa_parse(argv[i + 1]);
    }
    if (runs < 1 || runs > MAX_RUNS || threads < 1 || (int)isa < 0 || n_sizes < 1) {
        fprintf(stderr, "usage: bench_vit [--threads N] [--isa I] [--runs 1..%d] [--sizes A,B]\n",
                MAX_RUNS);
        return 2;
    }
    struct err e = {0};
    struct model_config cfg = preset_find("7b")->cfg;
    struct gen_src src = {.g = {.seed = 0}};
    struct be *b = NULL;
    struct vit *v = NULL;
    struct tp *pool = NULL;
    int max_side = 0;
    for (int i = 0; i < n_sizes; i++) max_side = sizes[i] > max_side ? sizes[i] : max_side;
    int64_t max_grid = max_side / 28 * 2;
    struct be_cpu_opts bo = be_cpu_opts_default(threads);
    bo.isa = isa;
    struct vit_options vo = {.max_patches = max_grid * max_grid};
    int rc = params_tensors(&cfg, &src.pts, &src.n, &e);
    if (rc == 0) src.data = calloc((size_t)src.n, sizeof *src.data);
    if (rc == 0 && !src.data) rc = err_set(&e, VELA_ENOMEM, "bench: out of memory");
    if (rc == 0) rc = be_cpu_new_opts(&b, &bo, &e);
    double t0 = probe_now_s();
    if (rc == 0) rc = vit_new_lookup(&v, b, &cfg, gen_lookup, &src, &vo, &e);
    if (rc == 0) rc = tp_new(&pool, threads, &e);
    if (rc != 0) {
        fprintf(stderr, "bench_vit: %s\n", e.msg);
        return 1;
    }
    double peak = best_peak(pool, 0);
    printf("7B vision tower (C 1280, 32 blocks, F 3420, out 3584), cpu isa %s, %d threads; "
           "weights generated in %.1f s\n",
           cpu_isa_name(be_cpu_isa(b)), threads, probe_now_s() - t0);
    printf("roofline: compute peak %.1f GFLOP/s (faster of vdpbf16ps and FP32 FMA, best of 20 "
           "windows before the runs)\n\n",
           peak);
    printf("| image | grid | patches | tokens | s/forward (median of %d) | patches/s | GFLOP | "
           "GFLOP/s | %% of peak |\n|---|---|---|---|---|---|---|---|---|\n",
           runs);
    for (int i = 0; rc == 0 && i < n_sizes; i++) {
        int32_t gs = sizes[i] / 28 * 2;
        struct vit_grid g = {1, gs, gs};
        int64_t S = (int64_t)gs * gs;
        float *px = malloc((size_t)S * 1176 * sizeof(float));
        float *out = malloc((size_t)(S / 4) * 3584 * sizeof(float));
        uint32_t r = 1;
        for (int64_t j = 0; px && j < S * 1176; j++) {
            r = r * 1664525u + 1013904223u;
            px[j] = (float)(r >> 8) / 8388608.0f - 1.0f;
        }
        double t[MAX_RUNS];
        rc = vit_forward(v, px, S, &g, 1, out, &e); /* warm-up: page in weights and scratch */
        for (int k = 0; rc == 0 && k < runs; k++) {
            double s0 = probe_now_s();
            rc = vit_forward(v, px, S, &g, 1, out, &e);
            t[k] = probe_now_s() - s0;
        }
        if (rc == 0) {
            double med = probe_median(t, runs), gf = forward_flops(&cfg.vision, g) / 1e9;
            printf("| %dx%d | (1, %d, %d) | %lld | %lld | %.2f | %.0f | %.0f | %.1f | %.0f%% |\n",
                   sizes[i], sizes[i], gs, gs, (long long)S, (long long)(S / 4), med,
                   (double)S / med, gf, gf / med, 100 * gf / med / peak);
        }
        free(px), free(out);
    }
    if (rc == 0)
        printf("\npeak after the runs (best of 40 windows, before and after): %.1f GFLOP/s\n",
               best_peak(pool, peak));
    if (rc != 0) fprintf(stderr, "bench_vit: %s\n", e.msg);
    vit_free(v);
    be_free(b);
    tp_free(pool);
    for (int64_t i = 0; src.data && i < src.n; i++) free(src.data[i]);
    free(src.data);
    free(src.pts);
    return rc == 0 ? 0 : 1;
}

/* Tests for be_matmul_multi: several products of one x give, bit for bit, what be_matmul gives
 * each of them, on every CPU path, for odd shapes (column counts that are not multiples of
 * the kernels' 4-column tiles or of the 32-column thread blocks), biases on some outputs, F32
 * and BF16 x and y, chunked activations (small scratch), and 1 to 3 threads; the argument
 * checks (output count, aliasing between outputs). */
#include "backend/backend.h"
#include "backend/cpu/backend_cpu.h"
#include "t.h"
#include "be_fixture.h"

#include <string.h>

static uint32_t g_rng = 777;

static float *rand_vec(int64_t n) {
    float *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        g_rng = g_rng * 1664525u + 1013904223u;
        v[i] = (float)((g_rng >> 8) & 0xffffff) / 8388608.0f - 1.0f;
    }
    return v;
}

/* n_out products of one [m, k] x with widths ns[], bias on the odd ones: multi against one
 * be_matmul per output, compared exactly. */
static void check_multi(enum cpu_isa isa, int threads, size_t scratch, int64_t m, int64_t k,
                        const int64_t *ns, int n_out, enum be_dtype xdt, enum be_dtype ydt) {
    struct err e = {0};
    struct be *b = mk_cpu(isa, threads, scratch);
    if (!b) return;
    float *xv = rand_vec(m * k);
    struct tensor x = mk(b, xdt, m, k, xv), w[BE_MM_MAX_OUT], bias[BE_MM_MAX_OUT];
    struct tensor y1[BE_MM_MAX_OUT], y2[BE_MM_MAX_OUT];
    struct be_mm_out outs[BE_MM_MAX_OUT];
    for (int i = 0; i < n_out; i++) {
        float *wv = rand_vec(ns[i] * k), *bv = rand_vec(ns[i]);
        w[i] = mk(b, BE_BF16, ns[i], k, wv);
        bias[i] = mk(b, BE_F32, 1, ns[i], bv);
        y1[i] = mk(b, ydt, m, ns[i], NULL);
        y2[i] = mk(b, ydt, m, ns[i], NULL);
        outs[i] = (struct be_mm_out){&y2[i], &w[i], i % 2 ? &bias[i] : NULL};
        T_RC(be_matmul(b, &y1[i], &x, &w[i], outs[i].bias, &e), &e);
        free(wv), free(bv);
    }
    T_RC(be_matmul_multi(b, outs, n_out, &x, &e), &e);
    int same = 1;
    for (int i = 0; i < n_out; i++) {
        size_t n = (size_t)(m * ns[i]);
        float *a = malloc(n * 4), *c = malloc(n * 4);
        get(b, &y1[i], a);
        get(b, &y2[i], c);
        if (memcmp(a, c, n * 4) != 0) same = 0;
        free(a), free(c);
    }
    if (!same)
        fprintf(stderr, "  isa %s threads %d m %lld k %lld n_out %d: outputs differ\n",
                cpu_isa_name(isa), threads, (long long)m, (long long)k, n_out);
    T_OK(same);
    free(xv);
    free_bufs();
    be_free(b);
}

static void test_same_as_single(void) {
    static const enum cpu_isa isas[] = {CPU_ISA_PORTABLE, CPU_ISA_AVX2, CPU_ISA_AVX512};
    static const int64_t qkv[] = {96, 33, 33}, gate_up[] = {130, 130}, four[] = {1, 5, 64, 37};
    static const int64_t ms[] = {1, 3, 8, 45};
    for (int ii = 0; ii < 3; ii++) {
        if (!cpu_isa_supported(isas[ii])) continue;
        for (int mi = 0; mi < 4; mi++) {
            int t = 1 + (ii + mi) % 3;
            check_multi(isas[ii], t, 0, ms[mi], 67, qkv, 3, BE_F32, BE_F32);
            check_multi(isas[ii], t, 0, ms[mi], 64, gate_up, 2, BE_BF16, BE_F32);
            check_multi(isas[ii], t, 0, ms[mi], 40, four, 4, BE_F32, BE_BF16);
        }
        /* a 4 KiB scratch: many chunks of rows, each packed and run for every output */
        check_multi(isas[ii], 2, 4096, 45, 67, qkv, 3, BE_F32, BE_F32);
        /* one output is exactly be_matmul */
        check_multi(isas[ii], 2, 0, 9, 67, qkv, 1, BE_F32, BE_F32);
        /* a large x: packed on the pool (rows split across threads) */
        check_multi(isas[ii], 3, 0, 200, 160, gate_up, 2, BE_F32, BE_F32);
    }
}

static void test_errors(void) {
    struct err e = {0};
    struct be *b = mk_cpu(CPU_ISA_PORTABLE, 1, 0);
    struct tensor x = mk(b, BE_F32, 2, 8, NULL), w = mk(b, BE_BF16, 4, 8, NULL);
    struct tensor w6 = mk(b, BE_BF16, 6, 8, NULL);
    struct tensor y = mk(b, BE_F32, 2, 4, NULL), y2 = mk(b, BE_F32, 2, 4, NULL);
    struct be_mm_out outs[BE_MM_MAX_OUT + 1];
    for (int i = 0; i <= BE_MM_MAX_OUT; i++) outs[i] = (struct be_mm_out){&y, &w, NULL};
    outs[1].y = &y2;
    T_RC(be_matmul_multi(b, outs, 2, &x, &e), &e);
    T_FAILS(be_matmul_multi(b, outs, 0, &x, &e), VELA_EINVAL, &e);
    T_FAILS(be_matmul_multi(b, outs, BE_MM_MAX_OUT + 1, &x, &e), VELA_EINVAL, &e);
    T_FAILS(be_matmul_multi(b, NULL, 1, &x, &e), VELA_EINVAL, &e);
    outs[1].y = &y; /* two outputs into one y */
    T_FAILS(be_matmul_multi(b, outs, 2, &x, &e), VELA_EINVAL, &e);
    outs[1].y = &y2;
    outs[1].w = &w6; /* y2 is [2, 4], w6 has 6 rows */
    T_FAILS(be_matmul_multi(b, outs, 2, &x, &e), VELA_EINVAL, &e);
    T_OK(strstr(e.msg, "output 1") != NULL);
    outs[1].w = NULL;
    T_FAILS(be_matmul_multi(b, outs, 2, &x, &e), VELA_EINVAL, &e);
    outs[1].w = &w;
    outs[0].y = &x; /* output over x */
    T_FAILS(be_matmul_multi(b, outs, 2, &x, &e), VELA_EINVAL, &e);
    free_bufs();
    be_free(b);
}

int main(void) {
    T_RUN(test_same_as_single);
    T_RUN(test_errors);
    return t_done();
}

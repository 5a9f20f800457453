/* cuda_matmul: y[m, n] = x[m, k] · w[n, k]ᵀ + bias through cuBLASLt, BF16 inputs with FP32
 * accumulation (CUBLAS_COMPUTE_32F), y F32 or BF16.
 *
 * Layout: cuBLASLt is column-major, so row-major y (ld = y's row stride) is seen as yᵀ
 * [n x m], computed as yᵀ = op(A) · B with A = w seen column-major [k x n] (ld = w's row
 * stride) and op = transpose, and B = xᵀ [k x m] (ld = x's row stride). Column views work
 * unchanged: only the base address and the leading dimension matter.
 * Numerics: x BF16 is used in place; x F32 is first rounded to BF16 (round to nearest even)
 * into the backend's staging buffer, in chunks of rows that fit it: the same as the CPU
 * avx512 path and as running the Linear layer in BF16. The bias is added in FP32 by the
 * epilogue (CUBLASLT_EPILOGUE_BIAS, its dtype given explicitly) before the one rounding of a
 * BF16 y; if no algorithm takes that epilogue for these shapes (or the bias vector is not
 * 16-byte aligned, or its dtype is not y's), the GEMM runs plain and a kernel adds the bias
 * (one extra rounding for BF16 y).
 * The heuristic is told each pointer's real alignment, so column views at odd offsets never
 * get an algorithm that assumes 16-byte alignment.
 * Algorithms: cuBLASLt's heuristic is asked once per shape (m, n, k, strides, dtypes, bias,
 * alignments) and its answer kept in the backend (struct cu_algo): asking costs more host
 * time than a decode-sized GEMM takes on the GPU.
 * Invariants: nothing is allocated on the device (descriptors are host objects made and
 * destroyed per call); every call is queued on the backend's stream. Owner thread only. */
#include "backend/cuda/cuda_impl.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Largest power of two up to 256 dividing the address (what cuBLASLt calls alignment). */
static uint32_t align_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t al = 256;
    while (al > 1 && a % al != 0) al /= 2;
    return al;
}

static cudaDataType_t dt_cuda(enum be_dtype d) {
    return d == BE_F32 ? CUDA_R_32F : CUDA_R_16BF;
}

struct gemm {
    void *y;
    int64_t ldy;
    enum be_dtype y_dt;
    const void *x; /* BF16 */
    int64_t ldx;
    const void *w; /* BF16 */
    int64_t ldw;
    const void *bias; /* NULL: none */
    enum be_dtype bias_dt;
    int64_t m, n, k;
};

/* log2 of a power of two up to 256. */
static uint64_t log2_of(uint32_t a) {
    uint64_t l = 0;
    while (a > 1) a >>= 1, l++;
    return l;
}

/* g's cache key: shape, strides, dtypes, bias, alignments (word 3 is never 0). */
static void algo_key(const struct gemm *g, uint64_t key[4]) {
    key[0] = (uint64_t)g->m << 32 | (uint64_t)g->n;
    key[1] = (uint64_t)g->k << 32 | (uint64_t)g->ldw;
    key[2] = (uint64_t)g->ldx << 32 | (uint64_t)g->ldy;
    key[3] = 1 | (uint64_t)g->y_dt << 4 | (uint64_t)(g->bias ? 1 + g->bias_dt : 0) << 8 |
             log2_of(align_of(g->w)) << 12 | log2_of(align_of(g->x)) << 16 |
             log2_of(align_of(g->y)) << 20;
}

/* The slot holding key (*hit), or the empty slot where it would go; NULL when the cache is
 * full enough that probes would grow long (the heuristic is then asked every time). */
static struct cu_algo *algo_slot(struct be_cuda *c, const uint64_t key[4], bool *hit) {
    uint64_t h = 0;
    for (int i = 0; i < 4; i++) h = (h ^ key[i]) * 0x9e3779b97f4a7c15ull;
    *hit = false;
    for (uint32_t probe = 0; probe < CU_ALGO_SLOTS; probe++) {
        struct cu_algo *a = &c->algos[(h + probe) % CU_ALGO_SLOTS];
        if (a->key[3] == 0) return c->n_algos < CU_ALGO_SLOTS * 3 / 4 ? a : NULL;
        if (memcmp(a->key, key, sizeof a->key) == 0) {
            *hit = true;
            return a;
        }
    }
    return NULL;
}

/* cuBLASLt's choice for g, from the cache or the heuristic (then remembered). *none when it
 * has nothing for these shapes. */
static cublasStatus_t algo_for(struct be_cuda *c, const struct gemm *g, cublasLtMatmulDesc_t op,
                               cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                               cublasLtMatrixLayout_t ld, cublasLtMatmulAlgo_t *algo, bool *none) {
    uint64_t key[4];
    bool hit = false;
    memset(algo, 0, sizeof *algo);
    algo_key(g, key);
    struct cu_algo *slot = algo_slot(c, key, &hit);
    if (hit) {
        *none = slot->none, *algo = slot->algo;
        return CUBLAS_STATUS_SUCCESS;
    }
    cublasLtMatmulPreference_t pref = NULL;
    cublasStatus_t st = cublasLtMatmulPreferenceCreate(&pref);
    size_t ws = c->workspace_bytes;
    uint32_t al[3] = {align_of(g->w), align_of(g->x), align_of(g->y)};
    const cublasLtMatmulPreferenceAttributes_t at[5] = {
        CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    const void *av[5] = {&ws, &al[0], &al[1], &al[2], &al[2]};
    const size_t as[5] = {sizeof ws, 4, 4, 4, 4};
    for (int i = 0; st == CUBLAS_STATUS_SUCCESS && i < 5; i++)
        st = cublasLtMatmulPreferenceSetAttribute(pref, at[i], av[i], as[i]);
    cublasLtMatmulHeuristicResult_t res;
    int n_res = 0;
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulAlgoGetHeuristic(c->lt, op, la, lb, ld, ld, pref, 1, &res, &n_res);
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    *none = st == CUBLAS_STATUS_NOT_SUPPORTED || (st == CUBLAS_STATUS_SUCCESS && n_res == 0);
    if (*none) st = CUBLAS_STATUS_SUCCESS;
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (!*none) *algo = res.algo;
    if (slot) {
        memcpy(slot->key, key, sizeof key);
        slot->none = *none, slot->algo = *algo;
        c->n_algos++;
    }
    return CUBLAS_STATUS_SUCCESS;
}

/* One GEMM; *no_algo set (and 0 returned) when the heuristic offers nothing. */
static int gemm_run(struct be_cuda *c, const struct gemm *g, bool *no_algo, struct err *e) {
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, ld = NULL;
    cublasStatus_t st;
    const char *what = "cublasLtMatmulDescCreate";
    int rc = 0;
    *no_algo = false;
#define LT_STEP(call, name)                                                                        \
    do {                                                                                           \
        what = name;                                                                               \
        if ((st = (call)) != CUBLAS_STATUS_SUCCESS) goto fail;                                     \
    } while (0)
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    LT_STEP(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc create");
    LT_STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta),
            "transa");
    LT_STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb),
            "transb");
    if (g->bias) {
        cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        int32_t bdt = (int32_t)dt_cuda(g->bias_dt);
        LT_STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi),
                "epilogue");
        LT_STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g->bias,
                                               sizeof g->bias),
                "bias pointer");
        LT_STEP(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bdt,
                                               sizeof bdt),
                "bias dtype");
    }
    LT_STEP(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, (uint64_t)g->k, (uint64_t)g->n, g->ldw),
            "layout w");
    LT_STEP(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, (uint64_t)g->k, (uint64_t)g->m, g->ldx),
            "layout x");
    LT_STEP(
        cublasLtMatrixLayoutCreate(&ld, dt_cuda(g->y_dt), (uint64_t)g->n, (uint64_t)g->m, g->ldy),
        "layout y");
    cublasLtMatmulAlgo_t algo;
    bool none = false;
    LT_STEP(algo_for(c, g, op, la, lb, ld, &algo, &none), "heuristic");
    if (none) {
        *no_algo = true;
        goto done;
    }
    float alpha = 1.0f, beta = 0.0f;
    what = "cublasLtMatmul";
    st = cublasLtMatmul(c->lt, op, &alpha, g->w, la, g->x, lb, &beta, g->y, ld, g->y, ld, &algo,
                        c->workspace, c->workspace_bytes, c->stream);
    if (st == CUBLAS_STATUS_NOT_SUPPORTED) /* refused before touching y: take the fallback */
        *no_algo = true;
    else if (st != CUBLAS_STATUS_SUCCESS)
        goto fail;
    goto done;
#undef LT_STEP
fail:
    rc =
        err_set(e, st == CUBLAS_STATUS_ALLOC_FAILED ? VELA_ENOMEM : VELA_EDEVICE,
                "matmul [%" PRId64 " x %" PRId64 "] x [%" PRId64 " x %" PRId64 "]: cuBLASLt %s: %s",
                g->m, g->k, g->n, g->k, what, cublasLtGetStatusString(st));
done:
    if (ld) cublasLtMatrixLayoutDestroy(ld);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    return rc;
}

/* The GEMM with its bias in the epilogue; a plain GEMM and the bias kernel when the bias is
 * not 16-byte aligned or cuBLASLt refuses the epilogue (heuristic or call NOT_SUPPORTED). */
static int gemm_bias(struct be_cuda *c, struct gemm *g, const struct tensor *bias, struct err *e) {
    bool no_algo = false;
    int rc = 0;
    /* The epilogue wants an aligned bias vector of D's dtype (on an H100, cuBLASLt 13 refuses
     * an F32 bias with BF16 D and a BF16 bias with F32 D). */
    if (g->bias && (align_of(g->bias) < 16 || g->bias_dt != g->y_dt)) g->bias = NULL;
    if (g->bias) rc = gemm_run(c, g, &no_algo, e);
    if (rc != 0) return rc;
    if (!g->bias || no_algo) {
        g->bias = NULL;
        rc = gemm_run(c, g, &no_algo, e);
        if (rc == 0 && no_algo)
            return err_set(e, VELA_EUNSUP,
                           "matmul [%" PRId64 " x %" PRId64 "] x [%" PRId64 " x %" PRId64
                           "]: no cuBLASLt algorithm for these strides/alignments",
                           g->m, g->k, g->n, g->k);
        if (rc == 0 && bias) {
            struct kmat y = {g->y, g->ldy, (int32_t)g->y_dt};
            CU_TRY(kl_bias_add(c->stream, y, cu_kmat(bias), g->m, g->n), e);
        }
    }
    return rc;
}

int cu_matmul(struct be *b, struct tensor *y, const struct tensor *x, const struct tensor *w,
              const struct tensor *bias, struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int64_t m = be_tensor_rows(x), k = be_tensor_cols(x), n = be_tensor_rows(w);
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    int64_t chunk = m;
    if (x->dtype == BE_F32) {
        chunk = (int64_t)(c->scratch_bytes / ((size_t)k * 2));
        if (chunk < 1)
            return err_set(e, VELA_ELIMIT,
                           "matmul: k = %" PRId64 " needs %zu staging bytes per row, have %zu", k,
                           (size_t)k * 2, c->scratch_bytes);
    }
    for (int64_t r0 = 0; r0 < m; r0 += chunk) {
        int64_t rows = m - r0 < chunk ? m - r0 : chunk;
        struct gemm g = {.y = be_tensor_addr(y, r0, 0),
                         .ldy = y->row_stride,
                         .y_dt = y->dtype,
                         .w = be_tensor_addr(w, 0, 0),
                         .ldw = w->row_stride,
                         .bias = bias ? be_tensor_addr(bias, 0, 0) : NULL,
                         .bias_dt = bias ? bias->dtype : BE_F32,
                         .m = rows,
                         .n = n,
                         .k = k};
        if (x->dtype == BE_BF16) {
            g.x = be_tensor_addr(x, r0, 0);
            g.ldx = x->row_stride;
        } else {
            struct kmat xs = cu_kmat(x);
            xs.p = be_tensor_addr(x, r0, 0);
            CU_TRY(kl_to_bf16(c->stream, c->scratch, xs, rows, k), e);
            g.x = c->scratch;
            g.ldx = k;
        }
        rc = gemm_bias(c, &g, bias, e);
        if (rc != 0) return rc;
    }
    return 0;
}

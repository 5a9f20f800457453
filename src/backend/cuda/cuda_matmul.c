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
 * Invariants: nothing is allocated (descriptors are host objects made and destroyed per
 * call); every call is queued on the backend's stream. Owner thread only. */
#include "backend/cuda/cuda_impl.h"

#include <inttypes.h>
#include <stdint.h>

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

/* One GEMM; *no_algo set (and 0 returned) when the heuristic offers nothing. */
static int gemm_run(struct be_cuda *c, const struct gemm *g, bool *no_algo, struct err *e) {
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, ld = NULL;
    cublasLtMatmulPreference_t pref = NULL;
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
    LT_STEP(cublasLtMatmulPreferenceCreate(&pref), "preference");
    size_t ws = c->workspace_bytes;
    uint32_t aa = align_of(g->w), ab = align_of(g->x), ay = align_of(g->y);
    LT_STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &ws, sizeof ws),
            "workspace");
    LT_STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                 &aa, sizeof aa),
            "align a");
    LT_STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                 &ab, sizeof ab),
            "align b");
    LT_STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                 &ay, sizeof ay),
            "align c");
    LT_STEP(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                 &ay, sizeof ay),
            "align d");
    cublasLtMatmulHeuristicResult_t res;
    int n_res = 0;
    st = cublasLtMatmulAlgoGetHeuristic(c->lt, op, la, lb, ld, ld, pref, 1, &res, &n_res);
    /* With a bias epilogue cuBLASLt 13 answers INVALID_VALUE (not NOT_SUPPORTED) for bias/D
     * dtype pairs it lacks: that too means "take the fallback". */
    if (st == CUBLAS_STATUS_NOT_SUPPORTED || (st == CUBLAS_STATUS_SUCCESS && n_res == 0) ||
        (st == CUBLAS_STATUS_INVALID_VALUE && g->bias)) {
        *no_algo = true;
        goto done;
    }
    what = "heuristic";
    if (st != CUBLAS_STATUS_SUCCESS) goto fail;
    float alpha = 1.0f, beta = 0.0f;
    what = "cublasLtMatmul";
    st = cublasLtMatmul(c->lt, op, &alpha, g->w, la, g->x, lb, &beta, g->y, ld, g->y, ld, &res.algo,
                        c->workspace, ws, c->stream);
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
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
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

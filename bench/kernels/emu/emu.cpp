/* emu: the CPU stand-in for the CUDA runtime, cuBLASLt and kernel execution that run.sh links
 * the CUDA backend against (no GPU needed). A launch runs its blocks one after another; inside
 * a block every CUDA thread is a ucontext coroutine. __syncthreads parks a thread until every
 * live thread of the block is parked; __syncwarp and each shuffle (a put and a get) park it
 * until every live lane of its warp is, so a barrier reached by only part of a block or warp
 * is reported as a deadlock (a divergent barrier on a GPU). Device memory is malloc'ed and
 * filled with a pattern (0xa5) so reads of never-written memory show; streams are immediate.
 * cuBLASLt: a naive column-major GEMM that honours TRANSA/TRANSB, leading dimensions, the BIAS
 * epilogue and its dtype, and rounds BF16 output once. Tensor-core and cp.async stand-ins
 * live in emu_mma.h (reset per launch, pending copies checked per block). Checks logic, not
 * GPU timing or memory ordering. Single-threaded. */
#include "cuda_runtime.h"
#include "cublasLt.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ucontext.h>
#include <vector>

dim3 emu_bidx, emu_bdim, emu_gdim;
static cudaError_t g_last = cudaSuccess;
enum { RUN = 0, WAIT_BLOCK, WAIT_WARP, DONE };
struct th {
    ucontext_t ctx;
    int state;
};
static std::vector<th> g_th;
static std::vector<char *> g_stacks;
static ucontext_t g_sched;
static int g_cur;
static std::function<void()> *g_fn;
static std::vector<char> g_smem;
static uint64_t g_slots[1024];
static const size_t STACK = 256 * 1024;

/* Frees the coroutine stacks at exit, so leak checkers see only the backend's own memory. */
static struct stack_owner {
    ~stack_owner() {
        for (char *p : g_stacks) free(p);
    }
} g_stack_owner;

dim3 emu_tidx(void) {
    return dim3((unsigned)g_cur, 0, 0);
}
void *emu_dyn_smem(void) {
    return g_smem.data();
}
size_t emu_dyn_smem_bytes(void) {
    return g_smem.size() - 16; /* the launch's request; 16 bytes of slack follow */
}
int emu_lane(void) {
    return g_cur % 32;
}

static void yield_state(int s) {
    g_th[g_cur].state = s;
    swapcontext(&g_th[g_cur].ctx, &g_sched);
}
void __syncthreads(void) {
    yield_state(WAIT_BLOCK);
}
void __syncwarp(unsigned) {
    yield_state(WAIT_WARP);
}
void emu_shfl_put(uint64_t v) {
    g_slots[g_cur] = v;
    yield_state(WAIT_WARP);
}
uint64_t emu_shfl_get(int lane) {
    int src = (g_cur / 32) * 32 + (lane & 31);
    uint64_t v = g_slots[src];
    yield_state(WAIT_WARP); /* nobody overwrites slots before all have read */
    return v;
}

static void entry(void) {
    (*g_fn)();
    g_th[g_cur].state = DONE;
    swapcontext(&g_th[g_cur].ctx, &g_sched);
}

/* EMU_SCHED: how the warps of a block interleave between barriers. lockstep (default): each
 * pass runs every runnable thread to its next barrier. warp / warp-rev: one warp at a time
 * (lowest / highest first) runs until it waits at __syncthreads, the most skewed legal
 * schedule, which exposes a missing __syncthreads between a shared-memory write and another
 * warp's read. */
enum { SCHED_LOCKSTEP = 0, SCHED_WARP, SCHED_WARP_REV };
static int g_sched_mode = -1;

static void sched_init(void) {
    if (g_sched_mode >= 0) return;
    const char *s = getenv("EMU_SCHED");
    g_sched_mode = !s || !strcmp(s, "lockstep") ? SCHED_LOCKSTEP
                   : !strcmp(s, "warp")         ? SCHED_WARP
                   : !strcmp(s, "warp-rev")     ? SCHED_WARP_REV
                                                : -1;
    if (g_sched_mode < 0) {
        fprintf(stderr, "EMU_SCHED=%s: expected lockstep, warp or warp-rev\n", s);
        abort();
    }
}

static void run_block(int n) {
    sched_init();
    for (int t = 0; t < n; t++) {
        getcontext(&g_th[t].ctx);
        g_th[t].ctx.uc_stack.ss_sp = g_stacks[t];
        g_th[t].ctx.uc_stack.ss_size = STACK;
        g_th[t].ctx.uc_link = nullptr;
        makecontext(&g_th[t].ctx, entry, 0);
        g_th[t].state = RUN;
    }
    for (;;) {
        bool ran = false;
        int nw = (n + 31) / 32;
        for (int i = 0; i < nw; i++) {
            /* lockstep: every warp a step per pass; warp-serial: only the first (last) warp
             * that can run, so it runs ahead of the others up to the next __syncthreads */
            int w = g_sched_mode == SCHED_WARP_REV ? nw - 1 - i : i;
            for (int t = w * 32; t < n && t < w * 32 + 32; t++)
                if (g_th[t].state == RUN) {
                    g_cur = t;
                    swapcontext(&g_sched, &g_th[t].ctx);
                    ran = true;
                }
            if (ran && g_sched_mode != SCHED_LOCKSTEP) break;
        }
        bool all_done = true, released = false;
        for (int w = 0; w * 32 < n; w++) {
            int live = 0, waiting = 0;
            for (int t = w * 32; t < n && t < w * 32 + 32; t++) {
                if (g_th[t].state != DONE) live++;
                if (g_th[t].state == WAIT_WARP) waiting++;
            }
            if (live && waiting == live) {
                for (int t = w * 32; t < n && t < w * 32 + 32; t++) g_th[t].state = RUN;
                released = true;
            }
        }
        int live = 0, wb = 0;
        for (int t = 0; t < n; t++) {
            if (g_th[t].state != DONE) live++, all_done = false;
            if (g_th[t].state == WAIT_BLOCK) wb++;
        }
        if (all_done) return;
        if (live && wb == live) {
            for (int t = 0; t < n; t++) g_th[t].state = RUN;
            released = true;
        }
        if (!ran && !released) {
            fprintf(stderr, "EMU DEADLOCK: divergent barrier\n");
            abort();
        }
    }
}

void emu_launch(emu_cfg_t c, std::function<void()> fn) {
    int n = (int)(c.b.x * c.b.y * c.b.z);
    if (n > 1024 || c.g.x == 0 || c.g.y == 0 || c.g.z == 0 || c.g.y > 65535 || c.g.z > 65535) {
        g_last = cudaErrorInvalidValue;
        return;
    }
    if ((int)g_th.size() < n) {
        g_th.resize(n);
        while ((int)g_stacks.size() < n) g_stacks.push_back((char *)malloc(STACK));
    }
    g_smem.assign(c.smem + 16, 0x7f); /* a pattern, so reads of unset shared memory show */
    g_fn = &fn;
    emu_mma_reset();
    emu_bdim = c.b;
    emu_gdim = c.g;
    for (unsigned z = 0; z < c.g.z; z++)
        for (unsigned y = 0; y < c.g.y; y++)
            for (unsigned x = 0; x < c.g.x; x++) {
                emu_bidx = dim3(x, y, z);
                run_block(n);
                emu_mma_block_end(n);
            }
}

extern "C" {
cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d) {
    (void)d;
    memset(p, 0, sizeof *p);
    strcpy(p->name, "emulated sm_90");
    p->major = 9, p->minor = 0, p->multiProcessorCount = 132;
    p->sharedMemPerBlockOptin = 232448;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int) {
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    *s = (cudaStream_t)malloc(1);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    free(s);
    return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t n) {
    if (n > ((size_t)1 << 36)) return cudaErrorMemoryAllocation;
    *p = malloc(n);
    if (!*p) return cudaErrorMemoryAllocation;
    memset(*p, 0xa5, n); /* device memory is not zeroed */
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) {
    *p = malloc(n);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) {
    memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind, cudaStream_t) {
    memcpy(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpy2DAsync(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h,
                              enum cudaMemcpyKind, cudaStream_t) {
    if (dp < w || sp < w) return cudaErrorInvalidValue;
    for (size_t r = 0; r < h; r++) memcpy((char *)d + r * dp, (const char *)s + r * sp, w);
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_last;
    g_last = cudaSuccess;
    return e;
}
const char *cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess                 ? "no error"
           : e == cudaErrorMemoryAllocation ? "out of memory"
                                            : "emulated error";
}
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) {
    *f = *t = (size_t)80 << 30;
    return cudaSuccess;
}

/* ---- cuBLASLt, naive ---- */
struct emu_lt {
    int x;
};
struct emu_desc {
    int ta, tb, epi;
    const void *bias;
    int bias_dt;
};
struct emu_layout {
    cudaDataType_t t;
    uint64_t rows, cols;
    int64_t ld;
};
struct emu_pref {
    int x;
};
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    *h = new emu_lt();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasLtGetStatusString(cublasStatus_t s) {
    return s ? "emulated cublas error" : "success";
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t,
                                        cudaDataType_t) {
    *d = new emu_desc{0, 0, CUBLASLT_EPILOGUE_DEFAULT, nullptr, -1};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d,
                                              cublasLtMatmulDescAttributes_t a, const void *buf,
                                              size_t n) {
    switch (a) {
        case CUBLASLT_MATMUL_DESC_TRANSA:
            if (n != 4) return CUBLAS_STATUS_INVALID_VALUE;
            d->ta = *(const int *)buf;
            break;
        case CUBLASLT_MATMUL_DESC_TRANSB:
            if (n != 4) return CUBLAS_STATUS_INVALID_VALUE;
            d->tb = *(const int *)buf;
            break;
        case CUBLASLT_MATMUL_DESC_EPILOGUE:
            if (n != 4) return CUBLAS_STATUS_INVALID_VALUE;
            d->epi = *(const int *)buf;
            break;
        case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
            if (n != 8) return CUBLAS_STATUS_INVALID_VALUE;
            d->bias = *(const void *const *)buf;
            break;
        case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
            if (n != 4) return CUBLAS_STATUS_INVALID_VALUE;
            d->bias_dt = *(const int *)buf;
            break;
        default:
            return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType_t t,
                                          uint64_t rows, uint64_t cols, int64_t ld) {
    if ((int64_t)rows > ld) return CUBLAS_STATUS_INVALID_VALUE;
    *l = new emu_layout{t, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    *p = new emu_pref();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t,
                                                    cublasLtMatmulPreferenceAttributes_t a,
                                                    const void *, size_t n) {
    if (a == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES && n != 8) return CUBLAS_STATUS_INVALID_VALUE;
    if (a != CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES && n != 4) return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}
static int g_no_bias_algo = 0;
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t d,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t dd,
                                              cublasLtMatmulPreference_t, int,
                                              cublasLtMatmulHeuristicResult_t *res, int *n) {
    uint64_t ar = d->ta ? a->cols : a->rows, ac = d->ta ? a->rows : a->cols;
    uint64_t br = d->tb ? b->cols : b->rows, bc = d->tb ? b->rows : b->cols;
    if (ac != br || ar != dd->rows || bc != dd->cols || c != dd) return CUBLAS_STATUS_INVALID_VALUE;
    if (getenv("EMU_NO_BIAS_ALGO") && d->epi == CUBLASLT_EPILOGUE_BIAS) {
        *n = 0;
        g_no_bias_algo++;
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    memset(res, 0, sizeof *res);
    *n = 1;
    return CUBLAS_STATUS_SUCCESS;
}
static float ldv(const void *p, cudaDataType_t t, size_t i) {
    if (t == CUDA_R_32F) return ((const float *)p)[i];
    uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint16_t tobf(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t la, const void *B,
                              cublasLtMatrixLayout_t lb, const void *beta, const void *,
                              cublasLtMatrixLayout_t, void *D, cublasLtMatrixLayout_t ld,
                              const cublasLtMatmulAlgo_t *, void *, size_t, cudaStream_t) {
    float al = *(const float *)alpha, be = *(const float *)beta;
    if (be != 0.0f) return CUBLAS_STATUS_NOT_SUPPORTED;
    uint64_t M = ld->rows, N = ld->cols, K = d->ta ? la->rows : la->cols;
    for (uint64_t j = 0; j < N; j++)
        for (uint64_t i = 0; i < M; i++) {
            float acc = 0;
            for (uint64_t l = 0; l < K; l++) {
                size_t ia = d->ta ? l + i * la->ld : i + l * la->ld;
                size_t ib = d->tb ? j + l * lb->ld : l + j * lb->ld;
                acc += ldv(A, la->t, ia) * ldv(B, lb->t, ib);
            }
            acc *= al;
            if (d->epi == CUBLASLT_EPILOGUE_BIAS)
                acc += ldv(d->bias, d->bias_dt < 0 ? ld->t : (cudaDataType_t)d->bias_dt, i);
            size_t id = i + j * ld->ld;
            if (ld->t == CUDA_R_32F)
                ((float *)D)[id] = acc;
            else
                ((uint16_t *)D)[id] = tobf(acc);
        }
    return CUBLAS_STATUS_SUCCESS;
}
}

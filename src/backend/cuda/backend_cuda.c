/* backend_cuda: the CUDA backend's op table, buffers, host copies, metadata ring and
 * constructor (design notes: docs/CUDA.md).
 *
 * Invariants:
 *   1. every buffer is device memory (cudaMalloc), never host-visible: code above the backend
 *      reaches it only through be_tensor_write/read; weights are copied once at
 *      be_buffer_from_host and the caller's host memory is not kept;
 *   2. one stream per backend: every kernel, cuBLASLt call and copy is queued on it, so ops
 *      see each other's results in call order without events;
 *   3. all device scratch (cuBLASLt workspace, BF16 staging, attention partials, metadata
 *      ring) is allocated here; ops allocate nothing except when one call's metadata outgrows
 *      the ring (it regrows once to the new high-water mark);
 *   4. every CUDA and cuBLASLt call goes through CU_TRY/LT_TRY: a failure (device OOM, launch
 *      error, a fault surfacing at a sync) becomes a struct err and a return, never an abort.
 * Threads: the backend's owner thread. */
#include "backend/cuda/backend_cuda.h"
#include "backend/device.h"
#include "backend/cuda/cuda_impl.h"

#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)

int cu_fail(struct err *e, cudaError_t rc, const char *file, int line, const char *call) {
    int code = rc == cudaErrorMemoryAllocation ? VELA_ENOMEM : VELA_EDEVICE;
    if (rc == cudaErrorMemoryAllocation) (void)cudaGetLastError(); /* not sticky: clear it */
    return err_set(e, code, "%s:%d: %s: %s", file, line, call, cudaGetErrorString(rc));
}

int lt_fail(struct err *e, cublasStatus_t st, const char *file, int line, const char *call) {
    int code = st == CUBLAS_STATUS_ALLOC_FAILED ? VELA_ENOMEM : VELA_EDEVICE;
    return err_set(e, code, "%s:%d: %s: %s", file, line, call, cublasLtGetStatusString(st));
}

int cu_enter(struct be_cuda *c, struct err *e) {
    CU_TRY(cudaSetDevice(c->device), e);
    return 0;
}

struct kmat cu_kmat(const struct tensor *t) {
    struct kmat m = {be_tensor_addr(t, 0, 0), t->row_stride, (int32_t)t->dtype};
    return m;
}

/* ---- metadata ring (cuda_impl.h) ---- */

static void meta_release(struct be_cuda *c) {
    if (c->meta_host) cudaFreeHost(c->meta_host);
    if (c->meta_dev) cudaFree(c->meta_dev);
    c->meta_host = NULL, c->meta_dev = NULL, c->meta_bytes = 0, c->meta_used = 0;
}

static int meta_alloc(struct be_cuda *c, size_t n_bytes, struct err *e) {
    CU_TRY(cudaMallocHost((void **)&c->meta_host, n_bytes), e);
    CU_TRY(cudaMalloc((void **)&c->meta_dev, n_bytes), e);
    c->meta_bytes = n_bytes;
    c->meta_used = 0;
    return 0;
}

int cu_meta_reserve(struct be_cuda *c, size_t n_bytes, void **host, void **dev, struct err *e) {
    size_t n = (n_bytes + 255) & ~(size_t)255;
    if (n < n_bytes) return err_set(e, VELA_ELIMIT, "cuda metadata: %zu bytes", n_bytes);
    if (n > c->meta_bytes || c->meta_used + n > c->meta_bytes) {
        CU_TRY(cudaStreamSynchronize(c->stream), e); /* nothing in flight reads the ring now */
        c->meta_used = 0;
        if (n > c->meta_bytes) {
            size_t grow = 2 * n > n ? 2 * n : n;
            meta_release(c);
            int rc = meta_alloc(c, grow, e);
            if (rc != 0) {
                meta_release(c);
                return err_wrap(e, "cuda metadata ring of %zu bytes", grow);
            }
        }
    }
    *host = c->meta_host + c->meta_used;
    *dev = c->meta_dev + c->meta_used;
    c->meta_used += n;
    return 0;
}

int cu_meta_send(struct be_cuda *c, const void *host, void *dev, size_t n_bytes, struct err *e) {
    CU_TRY(cudaMemcpyAsync(dev, host, n_bytes, cudaMemcpyHostToDevice, c->stream), e);
    return 0;
}

int cu_meta_put(struct be_cuda *c, const void *src, size_t n_bytes, void **dev, struct err *e) {
    void *h = NULL;
    int rc = cu_meta_reserve(c, n_bytes, &h, dev, e);
    if (rc != 0) return rc;
    memcpy(h, src, n_bytes);
    return cu_meta_send(c, h, *dev, n_bytes, e);
}

/* ---- buffers and host copies ---- */

static int cu_buffer_new(struct be *b, struct be_buffer *buf, struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    void *p = NULL;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    CU_TRY(cudaMalloc(&p, buf->n_bytes), e);
    cudaError_t z = cudaMemsetAsync(p, 0, buf->n_bytes, c->stream); /* fresh tensors read 0 */
    if (z != cudaSuccess) {
        cudaFree(p);
        return cu_fail(e, z, __FILE__, __LINE__, "cudaMemsetAsync");
    }
    buf->base = p;
    buf->host_visible = false;
    return 0;
}

static int cu_buffer_from_host(struct be *b, struct be_buffer *buf, const void *host,
                               struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    void *p = NULL;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    CU_TRY(cudaMalloc(&p, buf->n_bytes), e);
    cudaError_t r = cudaMemcpyAsync(p, host, buf->n_bytes, cudaMemcpyHostToDevice, c->stream);
    if (r == cudaSuccess) r = cudaStreamSynchronize(c->stream); /* host may go after return */
    if (r != cudaSuccess) {
        cudaFree(p);
        return cu_fail(e, r, __FILE__, __LINE__, "weights upload");
    }
    buf->base = p;
    buf->host_visible = false;
    return 0;
}

static void cu_buffer_free(struct be_buffer *buf) {
    struct be_cuda *c = (struct be_cuda *)buf->owner;
    cudaSetDevice(c->device);
    cudaFree(buf->base); /* waits for the device; a sticky fault was already reported */
}

static int cu_tensor_write(struct be *b, struct tensor *t, const void *src, struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    size_t es = be_dtype_size(t->dtype), row = (size_t)be_tensor_cols(t) * es;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    CU_TRY(cudaMemcpy2DAsync(be_tensor_addr(t, 0, 0), (size_t)t->row_stride * es, src, row, row,
                             (size_t)be_tensor_rows(t), cudaMemcpyHostToDevice, c->stream),
           e);
    CU_TRY(cudaStreamSynchronize(c->stream), e); /* synchronous, as backend.h promises */
    return 0;
}

static int cu_tensor_read(struct be *b, const struct tensor *t, void *dst, struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    size_t es = be_dtype_size(t->dtype), row = (size_t)be_tensor_cols(t) * es;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    CU_TRY(cudaMemcpy2DAsync(dst, row, be_tensor_addr(t, 0, 0), (size_t)t->row_stride * es, row,
                             (size_t)be_tensor_rows(t), cudaMemcpyDeviceToHost, c->stream),
           e);
    CU_TRY(cudaStreamSynchronize(c->stream), e);
    return 0;
}

static int cu_sync(struct be *b, struct err *e) {
    struct be_cuda *c = (struct be_cuda *)b;
    int rc = cu_enter(c, e);
    if (rc != 0) return rc;
    CU_TRY(cudaStreamSynchronize(c->stream), e);
    CU_TRY(cudaGetLastError(), e);
    return 0;
}

static void cu_free(struct be *b) {
    struct be_cuda *c = (struct be_cuda *)b;
    cudaSetDevice(c->device);
    if (c->stream) cudaStreamSynchronize(c->stream);
    meta_release(c);
    if (c->rd_host) cudaFreeHost(c->rd_host);
    if (c->partial) cudaFree(c->partial);
    if (c->scratch) cudaFree(c->scratch);
    if (c->workspace) cudaFree(c->workspace);
    if (c->lt) cublasLtDestroy(c->lt);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

static const struct be_ops g_cuda_ops = {
    .name = "cuda",
    .free = cu_free,
    .buffer_new = cu_buffer_new,
    .buffer_from_host = cu_buffer_from_host,
    .buffer_free = cu_buffer_free,
    .tensor_write = cu_tensor_write,
    .tensor_read = cu_tensor_read,
    .matmul = cu_matmul,
    .rms_norm = cu_rms_norm,
    .add = cu_add,
    .silu_mul = cu_silu_mul,
    .embed = cu_embed,
    .sync = cu_sync,
    .rope = cu_rope,
    .kv_store = cu_kv_store,
    .attention = cu_attention,
    .rope2d = cu_rope2d,
    .attention_varlen = cu_attention_varlen,
    .gelu = cu_gelu,
    .gather_rows = cu_gather_rows,
    .layer_norm = cu_layer_norm,
    .quick_gelu = cu_quick_gelu,
    .sample_greedy = cu_sample_greedy,
    .sample = cu_sample,
    .add_rms_norm = cu_add_rms_norm,
};

int be_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* "no driver" is an answer, not an error */
        return 0;
    }
    return n;
}

/* Everything after the struct exists: device, stream, handle, scratch. */
static int cuda_setup(struct be_cuda *c, const struct be_cuda_opts *o, struct err *e) {
    struct cudaDeviceProp prop;
    CU_TRY(cudaGetDeviceProperties(&prop, c->device), e);
    if (prop.major < 8)
        return err_set(e, VELA_EUNSUP, "cuda device %d (%s): compute capability %d.%d, need 8.0",
                       c->device, prop.name, prop.major, prop.minor);
    c->n_sms = prop.multiProcessorCount;
    c->max_smem = prop.sharedMemPerBlockOptin;
    CU_TRY(cudaSetDevice(c->device), e);
    CU_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), e);
    LT_TRY(cublasLtCreate(&c->lt), e);
    c->workspace_bytes = o->workspace_bytes ? o->workspace_bytes : 32 * MIB;
    c->scratch_bytes = o->scratch_bytes ? o->scratch_bytes : 64 * MIB;
    c->partial_bytes = o->partial_bytes ? o->partial_bytes : 64 * MIB;
    CU_TRY(cudaMalloc(&c->workspace, c->workspace_bytes), e);
    CU_TRY(cudaMalloc((void **)&c->scratch, c->scratch_bytes), e);
    CU_TRY(cudaMalloc((void **)&c->partial, c->partial_bytes), e);
    CU_TRY(cudaMallocHost((void **)&c->rd_host, CU_RD_IDS * sizeof(int32_t)), e);
    int rc = meta_alloc(c, o->meta_bytes ? o->meta_bytes : 8 * MIB, e);
    if (rc != 0) return rc;
    CU_TRY(kl_attention_setup(c->max_smem), e);
    const char *att = getenv("VELA_CUDA_ATTN");
    c->attn_general = att && strcmp(att, "general") == 0;
    return 0;
}

int be_cuda_new(struct be **out, int device, const struct be_cuda_opts *opts, struct err *e) {
    if (!out) return err_set(e, VELA_EINVAL, "cuda backend: NULL result");
    int n = be_cuda_device_count();
    if (n == 0) return err_set(e, VELA_EUNSUP, "cuda backend: no CUDA device");
    if (device < 0 || device >= n)
        return err_set(e, VELA_EINVAL, "cuda backend: device %d outside [0, %d)", device, n);
    struct be_cuda_opts o = {0};
    if (opts) o = *opts;
    struct be_cuda *c = calloc(1, sizeof *c);
    if (!c) return err_set(e, VELA_ENOMEM, "cuda backend: out of memory");
    c->base.ops = &g_cuda_ops;
    c->base.device = BE_DEV_CUDA;
    c->device = device;
    int rc = cuda_setup(c, &o, e);
    if (rc != 0) {
        cu_free(&c->base);
        return err_wrap(e, "cuda backend on device %d", device);
    }
    *out = &c->base;
    return 0;
}

/* ---- registration with backend/device.h (velacore cannot call this library directly) ---- */

static int dev_open(struct be **out, int index, struct err *e) {
    return be_cuda_new(out, index, NULL, e);
}

static int dev_mem_info(int index, size_t *free_bytes, size_t *total_bytes, struct err *e) {
    CU_TRY(cudaSetDevice(index), e);
    CU_TRY(cudaMemGetInfo(free_bytes, total_bytes), e);
    return 0;
}

void be_cuda_register_device(void) {
    static const struct be_device_ops ops = {
        .count = be_cuda_device_count, .open = dev_open, .mem_info = dev_mem_info};
    be_device_register_cuda(&ops);
}

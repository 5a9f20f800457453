/* attention: the CUDA attention kernel shared by the language model's paged causal attention
 * (prefill chunks and decode tokens mixed, grouped-query heads) and the vision tower's
 * non-causal segment attention, plus the combine pass of split-key (flash-decoding) runs.
 *
 * One thread block = (tile, kv head, head group, key split). A tile is up to rows_per_tile
 * consecutive query rows of one sequence (built on the host, cuda_attn.c); the block takes
 * the heads_per_block query heads of its group that share kv head kvh, so every K/V row it
 * loads serves rows_per_tile x heads_per_block query vectors (GQA heads share each KV load).
 * Keys are walked 32 at a time (ATT_BK): the tile of K and V is staged in shared memory as
 * FP32 (K rows padded by one float so the 32 lanes of a warp, one key each, hit distinct
 * banks), then each warp takes query vectors in turn: lane j scores key j, the warp keeps an
 * online softmax (running max m and sum l in shared memory; the accumulator rescaled by
 * exp(m_old - m_new) when the max grows) and adds P.V with lanes over head dimensions.
 * Causality: row i of a tile sits at sequence position pos0 + i and sees keys 0 .. pos0 + i;
 * key j of a paged sequence lives in cache row block_tables[seq][j / bs] * bs + j % bs.
 * With n_splits > 1 the key range is cut into split_keys chunks, one per blockIdx.z, whose
 * unnormalized accumulators and (m, l) go to a partial buffer; combine_kernel merges them.
 * Precision: FP32 scores, softmax and accumulation (SDPA's, as backend/cpu/attention.c and
 * attention_varlen.c); BF16 inputs widened exactly; o rounded once.
 *
 * Invariants:
 *   1. every (query row, q head) is produced by exactly one block (one per split), and each
 *      of its output elements by one thread;
 *   2. a block reads only cache rows reachable from its own sequence's block table at key
 *      indices below the tile's n_keys (or its own segment's k/v rows): sequences stay apart;
 *   3. a fully masked key tile leaves (m, l, acc) untouched, so exp(-inf - -inf) never runs;
 *      the combine pass skips splits with l = 0, so their accumulators are never read.
 * Owner thread of the stream. */
#include "backend/cuda/kern_common.cuh"

#define ATT_THREADS 128
#define ATT_WARPS   (ATT_THREADS / 32)
#define ATT_BK      32

extern "C" size_t kl_attention_smem(int32_t head_dim, int32_t n_qv) {
    size_t hd = (size_t)head_dim, q = (size_t)n_qv;
    size_t floats = 2 * q * hd + ATT_BK * (hd + 1) + ATT_BK * hd + 2 * q + ATT_WARPS * ATT_BK;
    return floats * sizeof(float);
}

/* Cache or packed row of key `key` of the tile's sequence. */
static __device__ __forceinline__ int64_t key_row(const struct katt_params &p,
                                                  const struct katt_tile &t, int32_t key) {
    if (!p.block_tables) return (int64_t)t.key_base + key;
    const int32_t *bt = p.block_tables + (int64_t)t.seq * p.max_blocks;
    return (int64_t)bt[key / p.block_size] * p.block_size + key % p.block_size;
}

static __global__ void __launch_bounds__(ATT_THREADS) att_kernel(const struct katt_params p) {
    extern __shared__ float sm[];
    const struct katt_tile t = p.tiles[blockIdx.x];
    const int32_t hd = p.head_dim, kvh = blockIdx.y / p.n_head_groups;
    const int32_t g0 = (blockIdx.y % p.n_head_groups) * p.heads_per_block;
    const int32_t gh = min(p.heads_per_block, p.group - g0);
    const int32_t n_qv = t.n_rows * gh, cap = p.rows_per_tile * p.heads_per_block;
    float *sQ = sm, *sAcc = sQ + (size_t)cap * hd, *sK = sAcc + (size_t)cap * hd;
    float *sV = sK + (size_t)ATT_BK * (hd + 1), *sM = sV + (size_t)ATT_BK * hd, *sL = sM + cap;
    float *sP = sL + cap;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

    for (int32_t i = threadIdx.x; i < n_qv * hd; i += ATT_THREADS) {
        int32_t qv = i / hd, d = i % hd;
        int32_t h = kvh * p.group + g0 + qv % gh;
        sQ[i] = k_ld(p.q, t.row0 + qv / gh, (int64_t)h * hd + d);
        sAcc[i] = 0.0f;
    }
    for (int32_t i = threadIdx.x; i < n_qv; i += ATT_THREADS) sM[i] = -INFINITY, sL[i] = 0.0f;
    int32_t k_begin = 0, k_end = t.n_keys;
    if (p.n_splits > 1) {
        k_begin = blockIdx.z * p.split_keys;
        k_end = min(k_end, k_begin + p.split_keys);
    }
    __syncthreads();

    for (int32_t kb = k_begin; kb < k_end; kb += ATT_BK) {
        int32_t nk = min(ATT_BK, k_end - kb);
        for (int32_t i = threadIdx.x; i < ATT_BK * hd; i += ATT_THREADS) {
            int32_t j = i / hd, d = i % hd;
            float kv = 0.0f, vv = 0.0f;
            if (j < nk) {
                int64_t row = key_row(p, t, kb + j), col = (int64_t)kvh * hd + d;
                kv = k_ld(p.k, row, col);
                vv = k_ld(p.v, row, col);
            }
            sK[j * (hd + 1) + d] = kv;
            sV[j * hd + d] = vv;
        }
        __syncthreads();
        for (int32_t qv = warp; qv < n_qv; qv += ATT_WARPS) {
            int32_t r = qv / gh;
            int32_t n_keys_r = p.causal ? t.pos0 + r + 1 : t.n_keys;
            bool valid = lane < nk && kb + lane < n_keys_r;
            float s = -INFINITY;
            if (valid) {
                const float *q = sQ + (size_t)qv * hd, *kr = sK + lane * (hd + 1);
                float dot = 0.0f;
                for (int32_t d = 0; d < hd; d++) dot += q[d] * kr[d];
                s = dot * p.scale;
            }
            float m_old = sM[qv];
            float m_new = fmaxf(m_old, k_warp_max(s));
            if (m_new == -INFINITY) continue; /* invariant 3: uniform across the warp */
            float pj = valid ? expf(s - m_new) : 0.0f;
            float alpha = expf(m_old - m_new); /* 0 while nothing was summed (m_old = -inf) */
            float lsum = k_warp_sum(pj);
            sP[warp * ATT_BK + lane] = pj;
            __syncwarp();
            float *acc = sAcc + (size_t)qv * hd;
            for (int32_t d = lane; d < hd; d += 32) {
                float a = acc[d] * alpha;
                for (int32_t j = 0; j < nk; j++) a += sP[warp * ATT_BK + j] * sV[j * hd + d];
                acc[d] = a;
            }
            __syncwarp();
            if (lane == 0) sM[qv] = m_new, sL[qv] = sL[qv] * alpha + lsum;
            __syncwarp();
        }
        __syncthreads();
    }

    for (int32_t i = threadIdx.x; i < n_qv * hd; i += ATT_THREADS) {
        int32_t qv = i / hd, d = i % hd;
        int32_t h = kvh * p.group + g0 + qv % gh;
        int64_t row = (int64_t)t.row0 + qv / gh;
        if (p.n_splits == 1) {
            k_st(p.o, row, (int64_t)h * hd + d, sAcc[i] * (1.0f / sL[qv]));
            continue;
        }
        int64_t idx = (row * p.n_q_heads + h) * p.n_splits + blockIdx.z;
        p.part_acc[idx * hd + d] = sAcc[i];
        if (d == 0) p.part_ml[idx * 2] = sM[qv], p.part_ml[idx * 2 + 1] = sL[qv];
    }
}

/* One block per (row, q head): merges the splits' partial softmax states. */
static __global__ void combine_kernel(const struct katt_params p) {
    int64_t rh = blockIdx.x;
    int64_t row = rh / p.n_q_heads, h = rh % p.n_q_heads;
    const float *ml = p.part_ml + rh * p.n_splits * 2;
    float mx = -INFINITY, l = 0.0f;
    for (int32_t s = 0; s < p.n_splits; s++) mx = fmaxf(mx, ml[2 * s]);
    for (int32_t s = 0; s < p.n_splits; s++)
        if (ml[2 * s + 1] > 0.0f) l += ml[2 * s + 1] * expf(ml[2 * s] - mx);
    float inv = 1.0f / l;
    for (int32_t d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
        float a = 0.0f;
        for (int32_t s = 0; s < p.n_splits; s++)
            if (ml[2 * s + 1] > 0.0f)
                a += p.part_acc[(rh * p.n_splits + s) * p.head_dim + d] * expf(ml[2 * s] - mx);
        k_st(p.o, row, h * p.head_dim + d, a * inv);
    }
}

extern "C" cudaError_t kl_attention_setup(size_t max_bytes) {
    return cudaFuncSetAttribute(att_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int)max_bytes);
}

extern "C" cudaError_t kl_attention(cudaStream_t s, const struct katt_params *p) {
    size_t smem = kl_attention_smem(p->head_dim, p->rows_per_tile * p->heads_per_block);
    dim3 grid((unsigned)p->n_tiles, (unsigned)(p->n_q_heads / p->group * p->n_head_groups),
              (unsigned)p->n_splits);
    att_kernel<<<grid, ATT_THREADS, smem, s>>>(*p);
    cudaError_t rc = cudaGetLastError();
    if (rc != cudaSuccess || p->n_splits == 1) return rc;
    combine_kernel<<<(unsigned)(p->n_rows * p->n_q_heads), 128, 0, s>>>(*p);
    return cudaGetLastError();
}

/* attention_dec: flash-decoding over the paged BF16 KV cache for sequences with few new rows
 * (decode tokens, short tails of chunked prefills), built to stream K and V at memory speed.
 *
 * One thread block = (chunk, key split, kv head): up to QV query vectors (new rows x query
 * heads of one kv head's group; GQA heads share every K/V load, so the cache is read once per
 * step when a chunk holds the whole group) against one contiguous range of keys. Its
 * KDEC_WARPS warps take 16-key tiles of that range in turn, each keeping its own online
 * softmax; the warps' states are merged through shared memory at the end. A tile:
 *   - K: lane pair (2t, 2t+1) owns key t; per 16-byte load the pair reads one 32-byte sector
 *     of the key's row (lane 2t the first half), so a warp load covers 16 rows x 32 bytes and
 *     the HD/16 loads of a lane read its whole half row;
 *   - V: lanes over head dims (HD/32 each), one coalesced row per warp load, 16 rows;
 *   - scores: each lane dots its 8-wide K pieces with the query vectors in shared memory
 *     (broadcast reads), the pair adds halves with one shuffle; the warp max (4 shuffles) sets
 *     the new running max, the accumulators are rescaled once per tile;
 *   - P.V: each pair's probabilities go to shared memory, every lane reads them back as
 *     float4 broadcasts and accumulates its dims;
 *   - pipelining: the next tile's K loads go out as soon as the scores have consumed K, its V
 *     loads as soon as P.V has consumed V (block-table entry fetched a tile ahead), so each
 *     warp always has 4 KB (head_dim 128) of one tile in flight while it computes, at no
 *     register cost: 12 warps per SM keep about 48-96 KB of K/V requests outstanding.
 * Scores are kept in base 2 (scale * log2 e folded in), so exp2f is the only exponential.
 * With n_splits > 1 a block writes its unnormalized accumulators and (max, sum) as partial
 * records; dec_combine merges a chunk's splits into o. Otherwise the block writes o itself.
 * Precision: q as given (F32 stays FP32), K/V widened exactly, FP32 scores, softmax and sums,
 * o rounded once.
 *
 * Invariants:
 *   1. each (row, q head) of a chunk is written by exactly one block (no splits) or one
 *      combine block; padded query vectors (i >= n_qv) are zero and never written;
 *   2. a block reads cache rows only through its own sequence's block table, at keys below
 *      its split end (<= the chunk's n_keys); row r of the sequence only scores keys
 *      0 .. pos0 + r (causal), the rest get probability 0;
 *   3. a state that has seen no key keeps (m, l, acc) = (-inf, 0, 0): exp2f(-inf - -inf)
 *      never runs, and merges weight such states by exp2f(-inf) = 0 or skip them (l = 0);
 *      split 0 of every chunk holds key 0, which every row sees, so every output has l > 0;
 *   4. K/V loads beyond the split end are not issued and count as zeros (no NaN from
 *      unwritten cache rows reaches an accumulator).
 * Owner thread of the stream. */
#include "backend/cuda/kern_common.cuh"
#include "backend/cuda/kernels_dec.h"

#define DEC_FULL 0xffffffffu
#define DEC_PW   8 /* probabilities per key in shared memory (KDEC_MAX_QV, float4-padded) */

/* Register arrays stay in registers only when their loops unroll fully (the emulator's g++
 * does not know the pragma). */
#ifdef __CUDACC__
#define DEC_UNROLL _Pragma("unroll")
#else
#define DEC_UNROLL
#endif

/* At most 168 registers, so 3 blocks (12 warps) share an SM at any query width: the
 * unbounded allocation of QV 7-8 (about 186) would leave 2 (ptxas spills 8-16 bytes).
 * DEC_MIN_BLOCKS may be set at build time for measurements. */
#ifndef DEC_MIN_BLOCKS
#define DEC_MIN_BLOCKS 3
#endif
#ifdef __CUDACC__
#define DEC_BOUNDS __launch_bounds__(KDEC_THREADS, DEC_MIN_BLOCKS)
#else
#define DEC_BOUNDS
#endif

/* Shared-memory words: q [QV][HD], probabilities [warps][16][8], per-warp max and sum
 * [warps][QV], per-warp accumulators [warps][QV][HD], causal key ends [QV] (int32). */
static size_t dec_smem_floats(int32_t hd, int32_t qv) {
    return (size_t)qv * hd + KDEC_WARPS * KDEC_TILE * DEC_PW + 2 * KDEC_WARPS * qv +
           (size_t)KDEC_WARPS * qv * hd + qv;
}

/* 8 BF16 values (little endian: element 2k is the low half of word k) as FP32, exactly. */
static __device__ __forceinline__ void dec_unpack8(const uint4 w, float *f) {
    f[0] = __uint_as_float(w.x << 16), f[1] = __uint_as_float(w.x & 0xffff0000u);
    f[2] = __uint_as_float(w.y << 16), f[3] = __uint_as_float(w.y & 0xffff0000u);
    f[4] = __uint_as_float(w.z << 16), f[5] = __uint_as_float(w.z & 0xffff0000u);
    f[6] = __uint_as_float(w.w << 16), f[7] = __uint_as_float(w.w & 0xffff0000u);
}

/* A lane's HD/32 BF16 values of one V row: 8 bytes at head_dim 128, 4 at 64. */
template <int DPL> struct dec_vw { uint32_t w[DPL / 2]; };

static __device__ __forceinline__ void dec_ldv(dec_vw<4> &r, const uint16_t *p) {
    const uint2 u = __ldg((const uint2 *)p);
    r.w[0] = u.x, r.w[1] = u.y;
}

static __device__ __forceinline__ void dec_ldv(dec_vw<2> &r, const uint16_t *p) {
    r.w[0] = __ldg((const unsigned int *)p);
}

/* Query vector v of chunk c: its row in q/o and the column of its head's element 0. */
static __device__ __forceinline__ int64_t dec_row(const struct kdec_params &p,
                                                  const struct kdec_chunk &c, int32_t v) {
    return (int64_t)c.row0 + (c.qv0 + v) / p.group;
}

static __device__ __forceinline__ int64_t dec_col(const struct kdec_params &p,
                                                  const struct kdec_chunk &c, int32_t kvh,
                                                  int32_t v) {
    return ((int64_t)kvh * p.group + (c.qv0 + v) % p.group) * p.head_dim;
}

/* sQ[i][d] = query vector i of the chunk (zeros for padded i >= n_qv). */
template <int HD, int QV>
static __device__ __forceinline__ void
dec_load_q(const struct kdec_params &p, const struct kdec_chunk &c, int32_t kvh, float *sQ) {
    for (int32_t x = threadIdx.x; x < QV * HD; x += KDEC_THREADS) {
        int32_t i = x / HD, d = x % HD;
        sQ[x] = i < c.n_qv ? k_ld(p.q, dec_row(p, c, i), dec_col(p, c, kvh, i) + d) : 0.0f;
    }
}

/* Scores (base 2) of the lane pair's key with the QV query vectors; both lanes get them. */
template <int HD, int QV>
static __device__ __forceinline__ void dec_scores(const uint4 (&kw)[HD / 16], const float *sQ,
                                                  int lane, float (&s)[QV]) {
    DEC_UNROLL
    for (int i = 0; i < QV; i++) s[i] = 0.0f;
    DEC_UNROLL
    for (int j = 0; j < HD / 16; j++) {
        float kf[8];
        dec_unpack8(kw[j], kf);
        DEC_UNROLL
        for (int i = 0; i < QV; i++) {
            const float4 *qp = (const float4 *)(sQ + i * HD + j * 16 + (lane & 1) * 8);
            const float4 a = qp[0], b = qp[1];
            float t = s[i];
            t += a.x * kf[0], t += a.y * kf[1], t += a.z * kf[2], t += a.w * kf[3];
            t += b.x * kf[4], t += b.y * kf[5], t += b.z * kf[6], t += b.w * kf[7];
            s[i] = t;
        }
    }
    DEC_UNROLL
    for (int i = 0; i < QV; i++) s[i] += __shfl_xor_sync(DEC_FULL, s[i], 1);
}

/* Cache row of key `key` of the chunk's sequence; 0 (never read) for keys >= k1. Slots fit
 * int32, as slot_mapping does. */
static __device__ __forceinline__ int32_t dec_key_row(const struct kdec_params &p,
                                                      const struct kdec_chunk &c, int32_t key,
                                                      int32_t k1) {
    if (key >= k1) return 0;
    const int32_t *bt = p.block_tables + (int64_t)c.seq * p.max_blocks;
    return bt[key / p.block_size] * p.block_size + key % p.block_size;
}

/* The lane's half of its pair's K row (row `row`, present when `in`): HD/16 16-byte loads,
 * lane 2t + h reading bytes 32j + 16h, so each warp load covers whole 32-byte sectors. */
template <int HD>
static __device__ __forceinline__ void dec_load_k(const struct kdec_params &p, int32_t kvh,
                                                  int32_t row, bool in, int lane,
                                                  uint4 (&kw)[HD / 16]) {
    const uint16_t *kp = p.k + (int64_t)row * p.k_stride + kvh * HD + (lane & 1) * 8;
    DEC_UNROLL
    for (int j = 0; j < HD / 16; j++)
        kw[j] = in ? __ldg((const uint4 *)(kp + j * 16)) : make_uint4(0, 0, 0, 0);
}

/* The lane's HD/32 dims of the V rows of keys kb .. kb + 15 (rows held by the pairs; keys
 * >= k1 are zeros, invariant 4). */
template <int HD>
static __device__ __forceinline__ void dec_load_v(const struct kdec_params &p, int32_t kvh,
                                                  int32_t row, int32_t kb, int32_t k1, int lane,
                                                  dec_vw<HD / 32> (&vw)[KDEC_TILE]) {
    constexpr int DPL = HD / 32;
    const uint16_t *vp = p.v + kvh * HD + lane * DPL;
    DEC_UNROLL
    for (int t = 0; t < KDEC_TILE; t++) {
        const int32_t rt = __shfl_sync(DEC_FULL, row, 2 * t);
        DEC_UNROLL
        for (int w = 0; w < DPL / 2; w++) vw[t].w[w] = 0;
        if (kb + t < k1) dec_ldv(vw[t], vp + (int64_t)rt * p.v_stride);
    }
}

/* Online softmax update of one tile: s (the pair's scores) becomes its probabilities under
 * the new running max; acc and the lane's partial sums are rescaled to it. */
template <int HD, int QV>
static __device__ __forceinline__ void
dec_softmax(const struct kdec_params &p, int32_t key, const int32_t *sEnd, float (&s)[QV],
            float (&acc)[QV][HD / 32], float (&m)[QV], float (&l)[QV]) {
    DEC_UNROLL
    for (int i = 0; i < QV; i++) {
        const float x = key < sEnd[i] ? s[i] * p.scale_log2 : -INFINITY;
        float mx = x;
        DEC_UNROLL
        for (int o = 2; o < 32; o <<= 1) mx = fmaxf(mx, __shfl_xor_sync(DEC_FULL, mx, o));
        const float mn = fmaxf(m[i], mx);
        const float alpha = mn == -INFINITY ? 1.0f : exp2f(m[i] - mn); /* invariant 3 */
        s[i] = x == -INFINITY ? 0.0f : exp2f(x - mn);
        l[i] = l[i] * alpha + s[i];
        m[i] = mn;
        DEC_UNROLL
        for (int d = 0; d < HD / 32; d++) acc[i][d] *= alpha;
    }
}

/* acc += P.V over the tile: the pairs' probabilities go through the warp's [16][DEC_PW]
 * scratch sP and come back to every lane as float4 broadcasts. */
template <int HD, int QV>
static __device__ __forceinline__ void dec_pv(const dec_vw<HD / 32> (&vw)[KDEC_TILE],
                                              const float (&pr)[QV], float *sP, int lane,
                                              float (&acc)[QV][HD / 32]) {
    constexpr int DPL = HD / 32;
    if ((lane & 1) == 0) {
        DEC_UNROLL
        for (int i = 0; i < QV; i++) sP[(lane / 2) * DEC_PW + i] = pr[i];
    }
    __syncwarp();
    DEC_UNROLL
    for (int t = 0; t < KDEC_TILE; t++) {
        float vf[DPL], pt[DEC_PW];
        DEC_UNROLL
        for (int w = 0; w < DPL / 2; w++) {
            vf[2 * w] = __uint_as_float(vw[t].w[w] << 16);
            vf[2 * w + 1] = __uint_as_float(vw[t].w[w] & 0xffff0000u);
        }
        const float4 *pp = (const float4 *)(sP + t * DEC_PW);
        DEC_UNROLL
        for (int h = 0; h < (QV + 3) / 4; h++) {
            const float4 q4 = pp[h];
            pt[4 * h] = q4.x, pt[4 * h + 1] = q4.y, pt[4 * h + 2] = q4.z, pt[4 * h + 3] = q4.w;
        }
        DEC_UNROLL
        for (int i = 0; i < QV; i++) DEC_UNROLL
        for (int d = 0; d < DPL; d++) acc[i][d] += pt[i] * vf[d];
    }
    __syncwarp(); /* sP is rewritten by the next tile */
}

/* A warp's walk over its tiles kb = k0 + 16 * warp, + 16 * KDEC_WARPS, ... below k1,
 * software-pipelined: the next tile's K loads are issued as soon as this tile's scores have
 * consumed K, its V loads once P.V has consumed V, so every warp keeps a tile's K or V in
 * flight while it computes, with no extra registers. */
template <int HD, int QV>
static __device__ __forceinline__ void
dec_walk(const struct kdec_params &p, const struct kdec_chunk &c, int32_t kvh, int32_t k0,
         int32_t k1, const int32_t *sEnd, const float *sQ, float *sP, float (&acc)[QV][HD / 32],
         float (&m)[QV], float (&l)[QV]) {
    constexpr int STEP = KDEC_WARPS * KDEC_TILE;
    const int lane = threadIdx.x % 32;
    int32_t kb = k0 + (int32_t)(threadIdx.x / 32) * KDEC_TILE;
    uint4 kw[HD / 16];
    dec_vw<HD / 32> vw[KDEC_TILE];
    int32_t row = dec_key_row(p, c, kb + lane / 2, k1);
    dec_load_k<HD>(p, kvh, row, kb + lane / 2 < k1, lane, kw);
    dec_load_v<HD>(p, kvh, row, kb, k1, lane, vw);
    for (; kb < k1; kb += STEP) {
        const int32_t key = kb + lane / 2;
        row = dec_key_row(p, c, key + STEP, k1); /* the next tile's block-table entry */
        float s[QV];
        dec_scores<HD, QV>(kw, sQ, lane, s);
        dec_load_k<HD>(p, kvh, row, key + STEP < k1, lane, kw);
        dec_softmax<HD, QV>(p, key, sEnd, s, acc, m, l);
        dec_pv<HD, QV>(vw, s, sP, lane, acc);
        dec_load_v<HD>(p, kvh, row, kb + STEP, k1, lane, vw);
    }
}

/* Merges the warps' states; writes o (one split) or the split's partial records. */
template <int HD, int QV>
static __device__ __forceinline__ void
dec_finish(const struct kdec_params &p, const struct kdec_chunk &c, int32_t split, int32_t kvh,
           const float (&acc)[QV][HD / 32], const float (&m)[QV], const float (&l)[QV], float *sM,
           float *sL, float *sAcc) {
    constexpr int DPL = HD / 32;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    DEC_UNROLL
    for (int i = 0; i < QV; i++) {
        const float lw = k_warp_sum(l[i]) * 0.5f; /* both lanes of a pair counted each key */
        if (lane == 0) sM[warp * QV + i] = m[i], sL[warp * QV + i] = lw;
        DEC_UNROLL
        for (int d = 0; d < DPL; d++) sAcc[(warp * QV + i) * HD + lane * DPL + d] = acc[i][d];
    }
    __syncthreads();
    for (int32_t x = threadIdx.x; x < c.n_qv * HD; x += KDEC_THREADS) {
        const int32_t i = x / HD, d = x % HD;
        float mx = -INFINITY, a = 0.0f, ls = 0.0f;
        for (int w = 0; w < KDEC_WARPS; w++) mx = fmaxf(mx, sM[w * QV + i]);
        if (mx != -INFINITY) {
            for (int w = 0; w < KDEC_WARPS; w++) {
                const float e = exp2f(sM[w * QV + i] - mx);
                a += e * sAcc[(w * QV + i) * HD + d];
                ls += e * sL[w * QV + i];
            }
        }
        if (c.n_splits == 1) {
            k_st(p.o, dec_row(p, c, i), dec_col(p, c, kvh, i) + d, a / ls);
            continue;
        }
        const int64_t rec = c.part + ((int64_t)kvh * c.n_qv + i) * c.n_splits + split;
        p.part_acc[rec * HD + d] = a;
        if (d == 0) p.part_ml[rec * 2] = mx, p.part_ml[rec * 2 + 1] = ls;
    }
}

template <int HD, int QV> static __global__ void DEC_BOUNDS dec_kernel(const struct kdec_params p) {
    extern __shared__ float sm[];
    constexpr int DPL = HD / 32;
    const struct kdec_block b = p.blocks[blockIdx.x];
    const struct kdec_chunk c = p.chunks[b.chunk];
    const int32_t kvh = b.kvh;
    const int warp = threadIdx.x / 32;
    float *sQ = sm, *sP = sQ + QV * HD, *sM = sP + KDEC_WARPS * KDEC_TILE * DEC_PW;
    float *sL = sM + KDEC_WARPS * QV, *sAcc = sL + KDEC_WARPS * QV;
    int32_t *sEnd = (int32_t *)(sAcc + KDEC_WARPS * QV * HD);

    dec_load_q<HD, QV>(p, c, kvh, sQ);
    const int32_t k0 = b.split * c.split_len, k1 = min(c.n_keys, k0 + c.split_len);
    if (threadIdx.x < QV) { /* query vector i scores keys < sEnd[i]: its row's causal end */
        int32_t r = (c.qv0 + min((int)threadIdx.x, c.n_qv - 1)) / p.group;
        sEnd[threadIdx.x] = min(k1, c.pos0 + r + 1);
    }
    float acc[QV][DPL], m[QV], l[QV];
    DEC_UNROLL
    for (int i = 0; i < QV; i++) {
        m[i] = -INFINITY, l[i] = 0.0f;
        DEC_UNROLL
        for (int d = 0; d < DPL; d++) acc[i][d] = 0.0f;
    }
    __syncthreads();
    dec_walk<HD, QV>(p, c, kvh, k0, k1, sEnd, sQ, sP + warp * KDEC_TILE * DEC_PW, acc, m, l);
    dec_finish<HD, QV>(p, c, b.split, kvh, acc, m, l, sM, sL, sAcc);
}

/* One block per (split chunk, kv head, query vector), one thread per head dim: merges the
 * chunk's splits into o. Blocks of a long context's many splits stay spread over the SMs. */
template <int HD>
static __global__ void __launch_bounds__(HD) dec_combine(const struct kdec_params p) {
    const struct kdec_chunk c = p.chunks[p.split_chunks[blockIdx.x]];
    const int32_t kvh = blockIdx.y, i = blockIdx.z, d = threadIdx.x;
    if (i >= c.n_qv) return;
    const int64_t rec0 = c.part + ((int64_t)kvh * c.n_qv + i) * c.n_splits;
    const float *ml = p.part_ml + rec0 * 2, *pa = p.part_acc + rec0 * HD + d;
    float mx = -INFINITY, a = 0.0f, ls = 0.0f;
    for (int32_t s = 0; s < c.n_splits; s++)
        if (ml[2 * s + 1] > 0.0f) mx = fmaxf(mx, ml[2 * s]);
    for (int32_t s = 0; s < c.n_splits; s++) {
        if (!(ml[2 * s + 1] > 0.0f)) continue; /* invariant 3: a split this row never saw */
        const float e = exp2f(ml[2 * s] - mx);
        ls += e * ml[2 * s + 1];
        a += e * pa[(int64_t)s * HD];
    }
    k_st(p.o, dec_row(p, c, i), dec_col(p, c, kvh, i) + d, a / ls);
}

typedef void (*dec_fn)(const struct kdec_params);

template <int HD> static dec_fn dec_pick(int32_t qv) {
    static const dec_fn tab[] = {dec_kernel<HD, 1>, dec_kernel<HD, 2>, dec_kernel<HD, 3>,
                                 dec_kernel<HD, 4>, dec_kernel<HD, 5>, dec_kernel<HD, 6>,
                                 dec_kernel<HD, 7>, dec_kernel<HD, 8>};
    return qv >= 1 && qv <= 8 ? tab[qv - 1] : NULL;
}

static dec_fn dec_kernel_of(int32_t head_dim, int32_t qv) {
    if (head_dim == 64) return dec_pick<64>(qv);
    if (head_dim == 128) return dec_pick<128>(qv);
    return NULL;
}

extern "C" size_t kl_attn_dec_smem(int32_t head_dim, int32_t qv) {
    return dec_smem_floats(head_dim, qv) * sizeof(float);
}

extern "C" cudaError_t kl_attn_dec_occupancy(int32_t head_dim, int32_t qv, int *blocks_per_sm) {
    dec_fn k = dec_kernel_of(head_dim, qv);
    *blocks_per_sm = 1;
    if (!k) return cudaErrorInvalidValue;
    int n = 0;
    cudaError_t rc = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k, KDEC_THREADS,
                                                                   kl_attn_dec_smem(head_dim, qv));
    if (rc == cudaSuccess && n > 1) *blocks_per_sm = n;
    return rc;
}

extern "C" cudaError_t kl_attn_dec(cudaStream_t s, const struct kdec_params *p) {
    dec_fn k = dec_kernel_of(p->head_dim, p->qv);
    if (!k || p->n_blocks < 1 || p->n_kv > 65535 || p->n_split_chunks < 0)
        return cudaErrorInvalidValue;
    unsigned blocks = (unsigned)p->n_blocks;
    size_t smem = kl_attn_dec_smem(p->head_dim, p->qv);
    k<<<blocks, KDEC_THREADS, smem, s>>>(*p);
    cudaError_t rc = cudaGetLastError();
    if (rc != cudaSuccess || p->n_split_chunks < 1) return rc;
    dec_fn comb = p->head_dim == 64 ? dec_combine<64> : dec_combine<128>;
    dim3 cgrid((unsigned)p->n_split_chunks, (unsigned)p->n_kv, (unsigned)p->qv);
    comb<<<cgrid, p->head_dim, 0, s>>>(*p);
    return cudaGetLastError();
}

/* matmul_avx512_tf: the AVX-512 kernel for chunks of MM_TF_MIN_ROWS rows and more (prefill,
 * decode batches), with FP32 FMAs on weights widened from BF16.
 *
 * Why FP32 FMAs: on the cores we run on, vdpbf16ps issues once per two cycles while vfmadd on
 * ZMM issues twice per cycle, so FP32 FMAs do twice the flops per cycle (bench/roofline prints
 * both peaks). A BF16 weight becomes FP32 by a 16-bit shift (even elements of a 32-bit lane)
 * or a mask (odd elements): two instructions per 32 weights, paid once per weight and call
 * and shared by every row of the chunk.
 *
 * Layout. Lanes are tokens: the activations of a group of 16 rows are packed once per chunk
 * as FP32, k-major (vector k of the group holds x[t][k] for its 16 rows t), rounded to BF16
 * first, so the numerics are mm_avx512's (see below). A tile pass covers two groups (or the
 * last one alone) x TF_NB outputs over one block of k: for each k it loads the groups'
 * activation vectors and broadcasts TF_NB widened weights into 2 x TF_NB FMAs; accumulators
 * stay in registers for the block, and between blocks of a long k they are kept in the
 * thread's buffer (partial sums). A tile ends with one 16 x 16 transpose per group (vector t
 * = row t's outputs) instead of horizontal sums.
 *
 * A chunk of one group (up to 16 rows) is packed in pairs instead (mm_avx512_pack_tf_pairs):
 * a vector holds 8 rows x two k, so one 64-bit broadcast of two adjacent widened weights of
 * an output feeds two FMAs (rows 0-7 and 8-15), as a weight does for two groups. With one
 * vector per k, each weight fed a single FMA: 9 loads per 8 FMAs over 8 dependency chains,
 * which held the FMA loop to about two thirds of the peak (docs/BENCHMARKS.md). Each output
 * then sums two partial sums, one per lane of the pair, added at the end.
 *
 * Widened weights go to the thread's buffer.
 *   - Up to 32 rows (decode batches): one pass per block, each weight used once, so the
 *     widening runs one 32-k chunk ahead of the FMAs in the same order (struct tf_feed), into
 *     a ring of TF_RING chunks that stays in L1, and each pass prefetches the weights of the
 *     block TF_PF_UNITS ahead into L2 (tf_one_pass, tf_cursor for the order of blocks).
 *     Widening the whole next block during a pass instead (two 32 KB buffers) measured 5-8%
 *     slower at 32 rows (docs/BENCHMARKS.md).
 *   - More rows (prefill): a block of TF_NB rows x up to MM_TF_KB k is widened once and every
 *     pair of groups runs over it.
 *
 * Numerics: BF16 activations (round to nearest even), BF16 x BF16 products, exact in FP32,
 * FP32 sums (in k order per output; for one group, two sums over alternate k pairs of each
 * chunk, added at the end), bias in FP32, one rounding for a BF16 y.
 * Invariants: a call touches only columns [n0, n1) of y, reads weight rows [n0, n1) and
 * prefetches rows past them inside w; packed groups hold zeros in the rows past m and the
 * k past k, and widened rows past k are zeros, so padding never adds to an output; tmp is
 * the calling thread's own MM_TF_TMP_FLOATS. Pool threads. */
#include "backend/cpu/matmul.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "backend/cpu/simd512.h"

#include <string.h>

#define TF_TARGET "avx512f,avx512bf16,avx512bw,avx512vl,avx512dq"
#define TF_FN     __attribute__((target(TF_TARGET)))
#define TF_INLINE static inline __attribute__((always_inline, target(TF_TARGET)))

/* Outputs per tile: 2 x TF_NB accumulators + 2 activation vectors + broadcasts fit the 32
 * vector registers (12 outputs measured slower), and 32-column chunks split into whole
 * tiles. */
#define TF_NB 8
/* Floats of one widened block (TF_NB rows x MM_TF_KB k). */
#define TF_WB (TF_NB * MM_TF_KB)
/* k above which the one-pass path widens blocks of TF_LONG_K_KB instead of MM_TF_KB: the
 * span's activation block (32 rows x 256 k x 4 bytes = 32 KB) then stays in L1. Measured at
 * 32 rows, 1 thread (docs/BENCHMARKS.md): 9% faster at k = 11008 (the 3b down_proj), the
 * same at k = 4864, 1% slower at k = 2048, where L2 serves the 1024-k block well. */
#define TF_LONG_K    4096
#define TF_LONG_K_KB 256
/* Columns per span of the one-pass path when k spans several blocks (see tf_cursor). */
#define TF_SPAN 256
/* Blocks ahead of the current one whose weights the one-pass path prefetches into L2 (one
 * block ahead measured slower, four the same, eight slower). */
#define TF_PF_UNITS 2
/* Weight rows ahead that a tile of the many-rows path prefetches into L2. */
#define TF_PF_ROWS (2 * TF_NB)
/* The one-pass path's ring of widened chunks (TF_NB x 32 floats, 1 KB each) and how many
 * chunks ahead of the FMAs the feed widens (measured: 1 ahead 1-2% faster than 2). */
#define TF_RING     4
#define TF_AHEAD    1
#define TF_CHUNK_FL (TF_NB * 32)

_Static_assert(2 * TF_WB + (MM_TF_MAX_ROWS / 16) * TF_NB * 16 <= MM_TF_TMP_FLOATS,
               "thread buffer: two widened blocks plus the partial sums of a chunk");
_Static_assert(
    (TF_RING & (TF_RING - 1)) == 0 && TF_AHEAD < TF_RING && TF_RING * TF_CHUNK_FL <= TF_WB,
    "the ring: a power of two with a slot free for the chunk in use, in one block's room");
_Static_assert(TF_SPAN % TF_NB == 0 && TF_PF_UNITS >= 1 &&
                   TF_SPAN / TF_NB * 2 * TF_NB * 16 <= MM_TF_MAX_ROWS * 16,
               "thread buffer: the partial sums of a span's tiles");

/* 16 activations of one row from k0 (zeros past k), rounded to BF16, as FP32. */
TF_INLINE __m512 row16(const void *row, enum be_dtype dt, int64_t k0, int64_t k) {
    int64_t n = k - k0 < 16 ? k - k0 : 16;
    __mmask16 m = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
    __m512i h;
    if (dt == BE_BF16)
        h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + k0));
    else
        h = _mm512_cvtepu16_epi32(
            (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, (const float *)row + k0)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
}

TF_FN void mm_avx512_pack_tf(float *dst, int64_t kpad, const void *src, enum be_dtype dt,
                             int64_t src_stride, int64_t rows, int64_t k) {
    size_t es = dt == BE_F32 ? 4 : 2;
    for (int64_t g = 0; g * 16 < rows; g++) {
        float *d = dst + g * kpad * 16;
        int64_t nr = rows - g * 16 < 16 ? rows - g * 16 : 16;
        for (int64_t k0 = 0; k0 < kpad; k0 += 16) {
            __m512 v[16];
            for (int t = 0; t < 16; t++) {
                const char *row =
                    (const char *)src + (size_t)(g * 16 + t) * (size_t)src_stride * es;
                v[t] = t < nr && k0 < k ? row16(row, dt, k0, k) : _mm512_setzero_ps();
            }
            simd512_transpose16(v);
            for (int i = 0; i < 16; i++) _mm512_store_ps(d + (k0 + i) * 16, v[i]);
        }
    }
}

TF_FN void mm_avx512_pack_tf_pairs(float *dst, int64_t kpad, const void *src, enum be_dtype dt,
                                   int64_t src_stride, int64_t rows, int64_t k) {
    size_t es = dt == BE_F32 ? 4 : 2;
    /* rows 0-7 (lo) or 8-15 (hi) of vectors a and b, interleaved: a0 b0 a1 b1 ... */
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    _Alignas(64) float g[32 * 16]; /* one chunk in the group layout */
    for (int64_t kc = 0; kc < kpad; kc += 32) {
        mm_avx512_pack_tf(g, 32, (const char *)src + (size_t)kc * es, dt, src_stride, rows, k - kc);
        float *d = dst + kc * 16;
        for (int q = 0; q < 16; q++) {
            __m512 a = _mm512_load_ps(g + SIMD512_PAIR_ELEM(2 * q) * 16);
            __m512 b = _mm512_load_ps(g + SIMD512_PAIR_ELEM(2 * q + 1) * 16);
            _mm512_store_ps(d + q * 32, _mm512_permutex2var_ps(a, lo, b));
            _mm512_store_ps(d + q * 32 + 16, _mm512_permutex2var_ps(a, hi, b));
        }
    }
}

/* Widens the 32 k from kc of weight rows c0.. (the first nr real, the others repeat row
 * c0) into d: row b at d + 32 b, 16 even then 16 odd elements (zeros past k). A block is
 * stored chunk by chunk (TF_NB x 32 floats each), so the broadcasts of one k step read one
 * kilobyte and a block of any length is contiguous: rows a fixed stride apart would share
 * L1 sets. */
TF_INLINE void widen_chunk(const struct mm_job *j, int64_t c0, int nr, int64_t kc, float *d) {
    int64_t n = j->k - kc;
    __mmask32 m = n >= 32 ? ~(__mmask32)0 : n <= 0 ? 0 : (__mmask32)((1u << n) - 1);
#pragma GCC unroll 16
    for (int b = 0; b < TF_NB; b++) {
        __m512i v = _mm512_maskz_loadu_epi16(m, j->w + (c0 + (b < nr ? b : 0)) * j->w_stride + kc);
        simd512_widen_pairs(d + b * 32, v);
    }
}

/* Widens k [kb0, kb1) of the tile's weight rows into wb (offsets from kb0). */
TF_INLINE void widen(const struct mm_job *j, int64_t c0, int nr, int64_t kb0, int64_t kb1,
                     float *wb) {
    for (int64_t kc = kb0; kc < kb1; kc += 32) widen_chunk(j, c0, nr, kc, wb + (kc - kb0) * TF_NB);
}

/* The bias of outputs c0.. in the lanes of m (zeros without a bias), as FP32. */
TF_INLINE __m512 tf_bias(const struct mm_job *j, int64_t c0, __mmask16 m) {
    if (!j->bias) return _mm512_setzero_ps();
    if (j->bias_dtype == BE_F32) return _mm512_maskz_loadu_ps(m, (const float *)j->bias + c0);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)j->bias + c0);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* y[r][c0..] = v + bias in the lanes of m, rounded once for a BF16 y. */
TF_INLINE void tf_store_row(const struct mm_job *j, int64_t r, int64_t c0, __mmask16 m, __m512 v,
                            __m512 bias) {
    __m512 yv = _mm512_add_ps(v, bias);
    if (j->y_dtype == BE_F32)
        _mm512_mask_storeu_ps((float *)j->y + r * j->y_stride + c0, m, yv);
    else
        _mm256_mask_storeu_epi16((uint16_t *)j->y + r * j->y_stride + c0, m,
                                 (__m256i)_mm512_cvtneps_pbh(yv));
}

/* Stores the outputs c0.. (the first nr) of group g's rows below m: v[b] holds output
 * c0 + b of the group's 16 rows (v[TF_NB..16) are ignored). */
TF_INLINE void store_group(const struct mm_job *j, int64_t g, int64_t c0, int nr, __m512 *v) {
    simd512_transpose16(v); /* v[t]: row 16 g + t, lanes b = outputs c0 + b */
    __mmask16 m = (__mmask16)((1u << nr) - 1);
    __m512 bias = tf_bias(j, c0, m);
    int64_t rows = j->m - g * 16 < 16 ? j->m - g * 16 : 16;
    for (int64_t t = 0; t < rows; t++) tf_store_row(j, g * 16 + t, c0, m, v[t], bias);
}

/* Stores the outputs c0.. (the first nr) of a one-group chunk in pairs: lanes 2i and 2i + 1
 * of a0[b] are row i's two partial sums of output c0 + b, those of a1[b] row 8 + i's. */
TF_INLINE void store_pairs(const struct mm_job *j, int64_t c0, int nr, const __m512 *a0,
                           const __m512 *a1) {
    __m512 v[16];
#pragma GCC unroll 8
    for (int b = 0; b < TF_NB; b++) { /* lane 2i: the sum of lanes 2i and 2i + 1 */
        v[b] = _mm512_add_ps(a0[b], _mm512_permute_ps(a0[b], 0xb1));
        v[TF_NB + b] = _mm512_add_ps(a1[b], _mm512_permute_ps(a1[b], 0xb1));
    }
    simd512_transpose16(v); /* v[2i]: row i's outputs in lanes 0-7, row 8 + i's in 8-15 */
    __mmask16 m = (__mmask16)((1u << nr) - 1);
    __m512 bias = tf_bias(j, c0, m);
    for (int64_t r = 0; r < j->m; r++) {
        __m512 o = v[2 * (r & 7)];
        if (r >= 8) o = _mm512_shuffle_f32x4(o, o, 0x4e); /* lanes 8-15 down to 0-7 */
        tf_store_row(j, r, c0, m, o, bias);
    }
}

/* A block of a tile pass: weight rows c0.. (the first nr real), k [kb0, kb1). */
struct tf_block {
    int64_t c0, kb0, kb1;
    int nr;
};

/* Tile rows from c (the last tile of [n0, n1) may be short). */
static inline int tf_rows(int64_t c, int64_t n1) {
    return n1 - c >= TF_NB ? TF_NB : (int)(n1 - c);
}

/* The one-pass path's order of blocks over columns [n0, n1): spans of TF_SPAN columns (all
 * of them when k is one block), within a span k block by k block, within a k block tile by
 * tile. A span's activation block is thus reused by all its tiles while it is in L1/L2 (at
 * k = 11008, 32 rows of FP32 activations are 1.4 MB: walked whole per tile, they would
 * fall out of L2), at the cost of one partial-sum set per tile of the span. A cursor walks
 * that order by additions (no divisions: a pass of 256 k is only about 2000 cycles). */
struct tf_cursor {
    int64_t n1, kpad, kb, span; /* fixed */
    int64_t s0, s1, kb0, c;     /* span, k block and tile of the current block; c = n1: done */
};

static inline struct tf_cursor tf_cursor_make(int64_t n0, int64_t n1, int64_t kpad) {
    struct tf_cursor o = {.n1 = n1, .kpad = kpad, .s0 = n0, .c = n0};
    o.kb = kpad > TF_LONG_K ? TF_LONG_K_KB : MM_TF_KB;
    o.span = kpad <= o.kb ? n1 - n0 : TF_SPAN;
    o.s1 = n1 - n0 < o.span ? n1 : n0 + o.span;
    return o;
}

static inline void tf_cursor_next(struct tf_cursor *o) {
    if (o->c >= o->n1) return;
    o->c += TF_NB;
    if (o->c < o->s1) return;
    o->kb0 += o->kb;
    if (o->kb0 < o->kpad) {
        o->c = o->s0;
        return;
    }
    o->kb0 = 0;
    o->s0 = o->c = o->s1;
    o->s1 = o->n1 - o->s0 < o->span ? o->n1 : o->s0 + o->span;
}

static inline struct tf_block tf_cursor_block(const struct tf_cursor *o) {
    struct tf_block b = {.c0 = o->c, .kb0 = o->kb0, .nr = tf_rows(o->c, o->n1)};
    b.kb1 = o->kpad - o->kb0 < o->kb ? o->kpad : o->kb0 + o->kb;
    return b;
}

/* The one-pass path's widening: a cursor over the same blocks as the passes, chunk by chunk,
 * TF_AHEAD chunks ahead of the one the FMAs use. Chunk q (counting from the call's first)
 * lives in ring slot q % TF_RING from its widening until the FMAs are done with it. */
struct tf_feed {
    struct tf_cursor cur; /* the block being widened (cur.c = n1: nothing left) */
    struct tf_block bk;
    int64_t kc;            /* its next chunk's k */
    int64_t widened, used; /* chunks widened, chunks handed to the FMAs */
    float *ring;
};

/* Widens the feed's next chunk, if any, into its ring slot. */
TF_INLINE void tf_feed_widen(const struct mm_job *j, struct tf_feed *f) {
    if (f->cur.c >= f->cur.n1) return;
    widen_chunk(j, f->bk.c0, f->bk.nr, f->kc,
                f->ring + (f->widened++ & (TF_RING - 1)) * TF_CHUNK_FL);
    f->kc += 32;
    if (f->kc < f->bk.kb1) return;
    tf_cursor_next(&f->cur);
    if (f->cur.c >= f->cur.n1) return;
    f->bk = tf_cursor_block(&f->cur);
    f->kc = f->bk.kb0;
}

/* Groups g0 and (G = 2) g0 + 1 over the block bk, or with P (G = 2, g0 = 0) the two halves of
 * one group packed in pairs. Its widened weights come from wb (the whole block) or, with a
 * feed, chunk by chunk from the feed's ring, each pass widening the feed's next chunk as it
 * goes so that those loads and stores overlap the FMAs. The first block of k starts from
 * zero, others from the partial sums in part; the last stores y, others save to part. pf (or
 * NULL): a block whose weight rows to prefetch into L2 on the way. */
TF_INLINE void tile(const struct mm_job *j, int G, bool P, int64_t g0, const struct tf_block *bk,
                    const float *wb, float *part, const struct tf_block *pf, struct tf_feed *feed) {
    int64_t c0 = bk->c0, kb0 = bk->kb0, kb1 = bk->kb1;
    bool first = kb0 == 0, last = kb1 == j->x_stride;
    int64_t kpad = j->x_stride;
    const float *x0 = (const float *)j->x + g0 * kpad * 16, *x1 = x0 + kpad * 16;
    __m512 a0[TF_NB], a1[TF_NB];
#pragma GCC unroll 16
    for (int b = 0; b < TF_NB; b++) {
        a0[b] = first ? _mm512_setzero_ps() : _mm512_load_ps(part + b * 16);
        a1[b] = first || G == 1 ? _mm512_setzero_ps() : _mm512_load_ps(part + (TF_NB + b) * 16);
    }
    /* pf's rows are prefetched a line per row per chunk. The one-pass path keeps their
     * addresses and advances them (computing them per chunk measured 3-4% slower there); the
     * many-rows path computes them per chunk (keeping them measured 3% slower there, at 512
     * rows: its tiles prefetch only for the first group pair). */
    const char *pfr[TF_NB] = {0};
    int64_t pf_end = kb0;
    if (feed && pf) {
        for (int b = 0; b < TF_NB; b++)
            pfr[b] = (const char *)(j->w + (pf->c0 + (b < pf->nr ? b : 0)) * j->w_stride + pf->kb0);
        pf_end = kb0 + (pf->kb1 - pf->kb0);
    }
    for (int64_t kc = kb0; kc < kb1; kc += 32) {
        if (feed && kc < pf_end)
#pragma GCC unroll 16
            for (int b = 0; b < TF_NB; b++) {
                _mm_prefetch(pfr[b], _MM_HINT_T1);
                pfr[b] += 64;
            }
        int64_t pk = pf ? pf->kb0 + (kc - kb0) : 0;
        if (!feed && pf && pk < pf->kb1)
#pragma GCC unroll 16
            for (int b = 0; b < TF_NB; b++)
                if (b < pf->nr)
                    _mm_prefetch((const char *)(j->w + (pf->c0 + b) * j->w_stride + pk),
                                 _MM_HINT_T1);
        const float *wc;
        if (feed) {
            tf_feed_widen(j, feed);
            wc = feed->ring + (feed->used++ & (TF_RING - 1)) * TF_CHUNK_FL;
        } else {
            wc = wb + (kc - kb0) * TF_NB;
        }
        if (P) { /* pair q of the chunk (widened positions 2q, 2q + 1): rows 0-7 and 8-15 */
            const float *xc = x0 + kc * 16;
#pragma GCC unroll 16
            for (int q = 0; q < 16; q++) {
                __m512 xa = _mm512_load_ps(xc + q * 32), xb = _mm512_load_ps(xc + q * 32 + 16);
#pragma GCC unroll 16
                for (int b = 0; b < TF_NB; b++) {
                    double w2;
                    memcpy(&w2, wc + b * 32 + 2 * q, sizeof w2);
                    __m512 wv = _mm512_castpd_ps(_mm512_set1_pd(w2));
                    a0[b] = _mm512_fmadd_ps(xa, wv, a0[b]);
                    a1[b] = _mm512_fmadd_ps(xb, wv, a1[b]);
                }
            }
            continue;
        }
#pragma GCC unroll 32
        for (int t = 0; t < 32; t++) {
            int e = SIMD512_PAIR_AT(t); /* where k = kc + t sits in the widened chunk */
            __m512 xa = _mm512_load_ps(x0 + (kc + t) * 16);
            __m512 xb = G == 2 ? _mm512_load_ps(x1 + (kc + t) * 16) : xa;
#pragma GCC unroll 16
            for (int b = 0; b < TF_NB; b++) {
                __m512 wv = _mm512_set1_ps(wc[b * 32 + e]);
                a0[b] = _mm512_fmadd_ps(xa, wv, a0[b]);
                if (G == 2) a1[b] = _mm512_fmadd_ps(xb, wv, a1[b]);
            }
        }
    }
    if (!last) {
#pragma GCC unroll 16
        for (int b = 0; b < TF_NB; b++) {
            _mm512_store_ps(part + b * 16, a0[b]);
            if (G == 2) _mm512_store_ps(part + (TF_NB + b) * 16, a1[b]);
        }
        return;
    }
    if (P) {
        store_pairs(j, c0, bk->nr, a0, a1);
        return;
    }
    __m512 v[16];
    for (int b = 0; b < 16; b++) v[b] = b < TF_NB ? a0[b] : _mm512_setzero_ps();
    store_group(j, g0, c0, bk->nr, v);
    if (G == 1) return;
    for (int b = 0; b < 16; b++) v[b] = b < TF_NB ? a1[b] : _mm512_setzero_ps();
    store_group(j, g0 + 1, c0, bk->nr, v);
}

/* Up to 32 rows (two groups, or one in pairs with P): one pass per block, fed by the
 * widening ring. */
TF_INLINE void tf_one_pass(const struct mm_job *j, bool P, int64_t n0, int64_t n1, float *tmp) {
    float *part = tmp + 2 * TF_WB;
    struct tf_cursor cur = tf_cursor_make(n0, n1, j->x_stride), pf = cur;
    for (int i = 0; i < TF_PF_UNITS; i++) tf_cursor_next(&pf);
    struct tf_feed feed = {.cur = cur, .bk = tf_cursor_block(&cur), .ring = tmp};
    feed.kc = feed.bk.kb0;
    for (int i = 0; i < TF_AHEAD; i++) tf_feed_widen(j, &feed);
    for (; cur.c < n1; tf_cursor_next(&cur), tf_cursor_next(&pf)) {
        struct tf_block bk = tf_cursor_block(&cur), pb = tf_cursor_block(&pf);
        if (pf.c >= n1) { /* near the end: the rows past n1 (another chunk's), same k */
            pb = bk;
            pb.c0 += TF_PF_ROWS;
            pb.nr = TF_NB;
        }
        float *p = part + (bk.c0 - cur.s0) / TF_NB * 2 * TF_NB * 16;
        tile(j, 2, P, 0, &bk, NULL, p, pb.c0 + TF_NB <= j->n ? &pb : NULL, &feed);
    }
}

TF_FN void mm_avx512_tf(const struct mm_job *j, int64_t n0, int64_t n1, float *tmp) {
    int64_t groups = (j->m + 15) / 16, kpad = j->x_stride;
    if (groups == 2) { /* P a constant in each call, so each pass loop is branch-free */
        tf_one_pass(j, false, n0, n1, tmp);
        return;
    }
    if (groups == 1) {
        tf_one_pass(j, true, n0, n1, tmp);
        return;
    }
    /* Many groups: each widened block is reused by every group pair in turn. */
    float *wb = tmp, *part = tmp + 2 * TF_WB;
    for (int64_t c = n0; c < n1; c += TF_NB) {
        for (int64_t kb0 = 0; kb0 < kpad; kb0 += MM_TF_KB) {
            struct tf_block bk = {.c0 = c, .kb0 = kb0, .nr = tf_rows(c, n1)};
            bk.kb1 = kpad - kb0 < MM_TF_KB ? kpad : kb0 + MM_TF_KB;
            struct tf_block pf = bk;
            pf.c0 += TF_PF_ROWS;
            pf.nr = TF_NB;
            const struct tf_block *pfp = pf.c0 + TF_NB <= j->n ? &pf : NULL;
            widen(j, c, bk.nr, bk.kb0, bk.kb1, wb);
            for (int64_t g = 0; g < groups; g += 2) {
                float *p = part + g * TF_NB * 16;
                if (g + 1 < groups)
                    tile(j, 2, false, g, &bk, wb, p, g == 0 ? pfp : NULL, NULL);
                else
                    tile(j, 1, false, g, &bk, wb, p, g == 0 ? pfp : NULL, NULL);
            }
        }
    }
}

#else
void mm_avx512_tf(const struct mm_job *j, int64_t n0, int64_t n1, float *tmp) {
    mm_portable(j, n0, n1, tmp); /* never selected: cpu_isa_supported() is false off x86 */
}
void mm_avx512_pack_tf(float *dst, int64_t kpad, const void *src, enum be_dtype dt,
                       int64_t src_stride, int64_t rows, int64_t k) {
    (void)dst, (void)kpad, (void)src, (void)dt, (void)src_stride, (void)rows, (void)k;
}
void mm_avx512_pack_tf_pairs(float *dst, int64_t kpad, const void *src, enum be_dtype dt,
                             int64_t src_stride, int64_t rows, int64_t k) {
    (void)dst, (void)kpad, (void)src, (void)dt, (void)src_stride, (void)rows, (void)k;
}
#endif

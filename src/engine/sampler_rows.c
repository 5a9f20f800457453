/* sampler_rows: see sampler_rows.h. The loops work on SMR_LANES floats at a time through GCC
 * vector types (also understood by clang), which each build of a function lowers to its
 * instruction set: one ZMM register under avx512f, two YMM under avx2, four XMM otherwise.
 * Sums keep SMR_LANES partial sums, so the order of every addition is fixed by the source. */
#include "engine/sampler_rows.h"

#include <math.h>
#include <string.h>

#define SMR_LANES 16

/* The helpers below take and return vector types; they are inlined into each clone, so no
 * vector ever crosses a call and the compilers' note about the AVX-512 calling convention is
 * moot. */
#if defined(__GNUC__) /* gcc and clang */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

typedef float smr_vf __attribute__((vector_size(SMR_LANES * 4)));
typedef int32_t smr_vi __attribute__((vector_size(SMR_LANES * 4)));
typedef double smr_vd __attribute__((vector_size(SMR_LANES * 8)));

/* One version per instruction set where the compiler can dispatch at run time (ifunc): gcc on
 * x86-64, outside the sanitizer builds. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
#define SMR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SMR_CLONES
#endif

static inline __attribute__((always_inline)) smr_vf smr_load(const float *p) {
    smr_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void smr_store(float *p, smr_vf v) {
    memcpy(p, &v, sizeof v);
}

/* Lanes of a where mask is set (all ones), else of b. */
static inline __attribute__((always_inline)) smr_vf smr_select(smr_vi mask, smr_vf a, smr_vf b) {
    return (smr_vf)((mask & (smr_vi)a) | (~mask & (smr_vi)b));
}

static inline __attribute__((always_inline)) smr_vf smr_splat(float x) {
    smr_vf v;
    for (int j = 0; j < SMR_LANES; j++) v[j] = x;
    return v;
}

/* Whether any lane of a comparison result is set: OR of halves, four times. */
static inline __attribute__((always_inline)) bool smr_any(smr_vi m) {
    typedef int32_t vi8 __attribute__((vector_size(32)));
    typedef int32_t vi4 __attribute__((vector_size(16)));
    typedef int32_t vi2 __attribute__((vector_size(8)));
    vi8 a = __builtin_shufflevector(m, m, 0, 1, 2, 3, 4, 5, 6, 7) |
            __builtin_shufflevector(m, m, 8, 9, 10, 11, 12, 13, 14, 15);
    vi4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) | __builtin_shufflevector(a, a, 4, 5, 6, 7);
    vi2 c = __builtin_shufflevector(b, b, 0, 1) | __builtin_shufflevector(b, b, 2, 3);
    return (c[0] | c[1]) != 0;
}

static inline __attribute__((always_inline)) float smr_hmax(smr_vf v, float best) {
    for (int j = 0; j < SMR_LANES; j++) best = v[j] > best ? v[j] : best;
    return best;
}

SMR_CLONES bool smr_copy_finite(float *dst, const float *src, int64_t n) {
    smr_vi bad = {0};
    int64_t i = 0;
    for (; i + SMR_LANES <= n; i += SMR_LANES) {
        smr_vf v = smr_load(src + i);
        smr_store(dst + i, v);
        bad |= ~((v - v) == smr_splat(0.0f)); /* NaN or inf: x - x is NaN */
    }
    int tail = 0;
    for (; i < n; i++) {
        dst[i] = src[i];
        tail |= !(src[i] - src[i] == 0.0f);
    }
    for (int j = 0; j < SMR_LANES; j++) tail |= bad[j] != 0;
    return !tail;
}

SMR_CLONES float smr_div_max(float *row, int64_t n, float t) {
    smr_vf m = smr_splat(-INFINITY), tv = smr_splat(t);
    int64_t i = 0;
    for (; i + SMR_LANES <= n; i += SMR_LANES) {
        smr_vf v = smr_load(row + i) / tv;
        smr_store(row + i, v);
        m = smr_select(v > m, v, m);
    }
    float best = smr_hmax(m, -INFINITY);
    for (; i < n; i++) {
        row[i] /= t;
        best = row[i] > best ? row[i] : best;
    }
    return best;
}

SMR_CLONES float smr_max(const float *row, int64_t n) {
    smr_vf m = smr_splat(-INFINITY);
    int64_t i = 0;
    for (; i + SMR_LANES <= n; i += SMR_LANES) {
        smr_vf v = smr_load(row + i);
        m = smr_select(v > m, v, m);
    }
    float best = smr_hmax(m, -INFINITY);
    for (; i < n; i++) best = row[i] > best ? row[i] : best;
    return best;
}

SMR_CLONES int64_t smr_count_at_least(const float *row, int64_t n, float v) {
    smr_vi count = {0};
    smr_vf vv = smr_splat(v);
    int64_t i = 0, total = 0;
    for (; i + SMR_LANES <= n; i += SMR_LANES) count -= smr_load(row + i) >= vv; /* -1 per hit */
    for (int j = 0; j < SMR_LANES; j++) total += count[j];
    for (; i < n; i++) total += row[i] >= v;
    return total;
}

SMR_CLONES int64_t smr_argmax(const float *row, int64_t n) {
    int64_t i;
    float best = smr_max(row, n);
    if (best == -INFINITY) return -1;
    /* the first block holding the maximum, then its first entry equal to it */
    smr_vf bv = smr_splat(best);
    for (i = 0; i + SMR_LANES <= n; i += SMR_LANES) {
        if (smr_any(smr_load(row + i) == bv)) break;
    }
    for (; i < n; i++)
        if (row[i] == best) return i;
    return -1; /* not reached: best is some entry */
}

/* exp(x) lane by lane for x <= 0; 0 below -87.33 (where expf turns denormal) and for -inf. */
static inline __attribute__((always_inline)) smr_vf smr_exp(smr_vf x) {
    const float lo = -87.33654f;
    smr_vi under = x < smr_splat(lo);
    smr_vf xc = smr_select(under, smr_splat(lo), x);
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick (exact for |n| < 2^22) */
    smr_vf n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    smr_vf r = xc - n * 0.693359375f; /* ln 2 in two parts: this product is exact */
    r = r - n * -2.12194440e-4f;
    smr_vf p = smr_splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    smr_vi ni = __builtin_convertvector(n, smr_vi);
    smr_vf scale = (smr_vf)((ni + 127) << 23); /* 2^n, n in [-126, 0] */
    return smr_select(under, smr_splat(0.0f), p * scale);
}

/* exp(row[i] - m) for the tail [i, n) (fewer than SMR_LANES entries) through one vector
 * padded with -inf, whose lanes come out 0. */
static inline __attribute__((always_inline)) smr_vf smr_exp_tail(const float *row, float m,
                                                                 int64_t i, int64_t n) {
    float in[SMR_LANES];
    for (int j = 0; j < SMR_LANES; j++) in[j] = i + j < n ? row[i + j] - m : -INFINITY;
    return smr_exp(smr_load(in));
}

SMR_CLONES void smr_exp_row(const float *row, float m, float *w, int64_t n) {
    smr_vf mv = smr_splat(m);
    int64_t i = 0;
    for (; i + SMR_LANES <= n; i += SMR_LANES) smr_store(w + i, smr_exp(smr_load(row + i) - mv));
    if (i < n) {
        smr_vf t = smr_exp_tail(row, m, i, n);
        for (int j = 0; i + j < n; j++) w[i + j] = t[j];
    }
}

SMR_CLONES double smr_exp_sum(const float *row, float m, int64_t n) {
    smr_vd acc = {0};
    smr_vf mv = smr_splat(m);
    int64_t i = 0;
    for (; i + SMR_LANES <= n; i += SMR_LANES)
        acc += __builtin_convertvector(smr_exp(smr_load(row + i) - mv), smr_vd);
    double z = 0.0;
    for (int j = 0; j < SMR_LANES; j++) z += acc[j];
    if (i < n) {
        smr_vf t = smr_exp_tail(row, m, i, n);
        for (int j = 0; j < SMR_LANES; j++) z += (double)t[j];
    }
    return z;
}

SMR_CLONES double smr_block_sums(const float *w, int64_t n, double *bsum) {
    double z = 0.0;
    for (int64_t b0 = 0; b0 < n; b0 += SMR_BLOCK) {
        smr_vd acc = {0};
        double s = 0.0;
        int64_t i = b0, end = n - b0 < SMR_BLOCK ? n : b0 + SMR_BLOCK;
        for (; i + SMR_LANES <= end; i += SMR_LANES)
            acc += __builtin_convertvector(smr_load(w + i), smr_vd);
        for (int j = 0; j < SMR_LANES; j++) s += acc[j];
        for (; i < end; i++) s += (double)w[i];
        bsum[b0 / SMR_BLOCK] = s;
        z += s;
    }
    return z;
}

SMR_CLONES void smr_drop_below(float *row, float *w, int64_t n, float thr, bool by_w) {
    smr_vf tv = smr_splat(thr), ninf = smr_splat(-INFINITY), zero = smr_splat(0.0f);
    int64_t i = 0;
    for (; i + SMR_LANES <= n; i += SMR_LANES) {
        smr_vf r = smr_load(row + i), x = smr_load(w + i);
        smr_vi d = (by_w ? x : r) < tv;
        smr_store(row + i, smr_select(d, ninf, r));
        smr_store(w + i, smr_select(d, zero, x));
    }
    for (; i < n; i++)
        if ((by_w ? w[i] : row[i]) < thr) row[i] = -INFINITY, w[i] = 0.0f;
}

/* Puts v into buf[0..*have) (descending, at most k entries), dropping the smallest when full:
 * a binary search for its place (after the values >= v), then one move of the rest. */
static void smr_topk_insert(float *buf, int64_t *have, int64_t k, float v) {
    int64_t end = *have < k ? (*have)++ : k - 1, lo = 0, hi = end;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (buf[mid] >= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(buf + lo + 1, buf + lo, (size_t)(end - lo) * sizeof *buf);
    buf[lo] = v;
}

SMR_CLONES float smr_kth_largest(const float *row, int64_t n, int64_t k, float *buf) {
    int64_t have = 0, i = 0;
    for (; i < n && have < k; i++) smr_topk_insert(buf, &have, k, row[i]);
    for (; i < n && i % SMR_LANES; i++)
        if (row[i] > buf[k - 1]) smr_topk_insert(buf, &have, k, row[i]);
    for (; i + SMR_LANES <= n; i += SMR_LANES) {
        if (!smr_any(smr_load(row + i) > smr_splat(buf[k - 1])))
            continue; /* almost every block once the buffer holds large values */
        for (int j = 0; j < SMR_LANES; j++)
            if (row[i + j] > buf[k - 1]) smr_topk_insert(buf, &have, k, row[i + j]);
    }
    for (; i < n; i++)
        if (row[i] > buf[k - 1]) smr_topk_insert(buf, &have, k, row[i]);
    return buf[k - 1];
}

SMR_CLONES double smr_mass_below(const float *row, const float *w, int64_t n, float thr) {
    smr_vd acc = {0};
    smr_vf tv = smr_splat(thr), zero = smr_splat(0.0f);
    int64_t i = 0;
    for (; i + SMR_LANES <= n; i += SMR_LANES)
        acc += __builtin_convertvector(smr_select(smr_load(row + i) < tv, smr_load(w + i), zero),
                                       smr_vd);
    double z = 0.0;
    for (int j = 0; j < SMR_LANES; j++) z += acc[j];
    for (; i < n; i++)
        if (row[i] < thr) z += (double)w[i];
    return z;
}

SMR_CLONES int64_t smr_find_at_least(const float *row, int64_t n, float thr, int64_t from) {
    int64_t i = from;
    for (; i < n && i % SMR_LANES; i++)
        if (row[i] >= thr) return i;
    for (; i + SMR_LANES <= n; i += SMR_LANES)
        if (smr_any(smr_load(row + i) >= smr_splat(thr))) break;
    for (; i < n; i++)
        if (row[i] >= thr) return i;
    return n;
}

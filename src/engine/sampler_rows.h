/* sampler_rows: the sampler's passes over a whole vocabulary row, written so the compiler
 * vectorizes them (no early exits, fixed-width partial sums) and built for AVX-512, AVX2 and
 * a baseline, chosen at run time where the compiler supports function multi-versioning. A
 * 152k-entry row through scalar code cost about 1 ms per sequence (30 ms per 32-sequence
 * decode step), as long as a whole step of a small model (docs/BENCHMARKS.md).
 *
 * Numerics: smr_exp_row's exponential is a Cody-Waite reduction and a degree-6 polynomial
 * (Cephes' expf constants), within 2 ulp of expf on [-87.3, 0] and exactly 0 below (no
 * denormals: those probabilities are under 1e-38 of the largest). Sums are in double, in a
 * fixed order (SMR_LANES interleaved partial sums), so results are reproducible run to run.
 * Pure functions of their arguments; any thread. */
#ifndef VELA_ENGINE_SAMPLER_ROWS_H
#define VELA_ENGINE_SAMPLER_ROWS_H

#include <stdbool.h>
#include <stdint.h>

/* Entries per block of smr_block_sums (the draw's first level). */
#define SMR_BLOCK 256

/* dst = src; false when some entry is NaN or infinite. */
bool smr_copy_finite(float *dst, const float *src, int64_t n);
/* row[i] /= t (a division, as vLLM's logits.div_), returning the largest result (-inf when
 * every entry is -inf). */
float smr_div_max(float *row, int64_t n, float t);
/* The largest value (n >= 1). */
float smr_max(const float *row, int64_t n);
/* The sum of exp(row[i] - m) in double (row[i] <= m), the exponentials as smr_exp_row's. */
double smr_exp_sum(const float *row, float m, int64_t n);
/* How many entries are >= v. */
int64_t smr_count_at_least(const float *row, int64_t n, float v);
/* The lowest index holding the largest value; -1 when every entry is -inf (n >= 1). */
int64_t smr_argmax(const float *row, int64_t n);
/* w[i] = exp(row[i] - m) (row[i] <= m; -inf gives 0). */
void smr_exp_row(const float *row, float m, float *w, int64_t n);
/* Where row[i] < thr (by_w false) or w[i] < thr (by_w true): row[i] = -inf and w[i] = 0. */
void smr_drop_below(float *row, float *w, int64_t n, float thr, bool by_w);
/* The k-th largest value of row, counting equal values (1 <= k <= SMR_TOPK_MAX, k < n), from
 * a sorted buffer of the k largest that a vector compare against its smallest keeps closed to
 * almost every entry. buf holds SMR_TOPK_MAX floats of scratch. */
#define SMR_TOPK_MAX 256
float smr_kth_largest(const float *row, int64_t n, int64_t k, float *buf);
/* The sum of w[i] over the entries with row[i] < thr. */
double smr_mass_below(const float *row, const float *w, int64_t n, float thr);
/* The first index i >= from with row[i] >= thr, or n. */
int64_t smr_find_at_least(const float *row, int64_t n, float thr, int64_t from);
/* bsum[b] = sum of w over block b of SMR_BLOCK entries ((n + SMR_BLOCK - 1) / SMR_BLOCK of
 * them, the last partial); returns their sum. */
double smr_block_sums(const float *w, int64_t n, double *bsum);

#endif

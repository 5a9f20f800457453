/* emu_mma.h: C++ stand-ins for the PTX helpers of attention_tc.cu (tc_mma, tc_ldsm_x4,
 * tc_ldsm_x4_trans, tc_cp16, tc_cp_commit, tc_cp_wait, tc_pack_bf16, tc_exp2), with the same
 * per-lane semantics as the PTX ISA gives them (tc_exp2: libm's exp2f here, ex2.approx on the
 * GPU); groupID g = lane >> 2, threadID_in_group t = lane % 4:
 *   mma m16n8k16 .bf16: A register r holds row g + 8 (r & 1), columns 8 (r >> 1) + 2t, +1
 *   (low half first); B register r holds rows (k) 8 r + 2t, +1 of column (n) g; C/D float i
 *   holds row g + 8 (i >> 1), column 2t + (i & 1);
 *   ldmatrix .x4: lanes 8j .. 8j+7 give the row addresses of matrix j; r[j] of lane l is row
 *   l / 4, elements 2(l % 4), +1 (with .trans: column l / 4, rows 2(l % 4), +1).
 * Warp-wide operations exchange operands through per-thread slots and one __syncwarp: two
 * slot sets alternate, so a lane refills a set only after the next operation's barrier, when
 * every lane has read it. cp.async is checked strictly: at issue the 16 target bytes are
 * poisoned (0xff: BF16 NaN) and the data lands only at the cp.async.wait_group that retires
 * its group, so a read before the wait or a refill of a buffer another warp still reads shows
 * up as NaN or wrong data. Addresses are checked for 16-byte alignment and, for shared memory,
 * for lying inside the launch's dynamic shared memory. emu.cpp resets the slots at each launch
 * (emu_mma_reset) and checks that no copy is left pending when a block ends (emu_mma_block_end).
 * Included by cuda_runtime.h (C++ only). */
#ifndef EMU_MMA_H
#define EMU_MMA_H
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

size_t emu_dyn_smem_bytes(void);

struct emu_mma_slot {
    const uint16_t *rows;
    uint32_t a[4], b[2];
};
inline emu_mma_slot emu_mma_slots[2][1024];
inline unsigned emu_mma_phase[1024];

struct emu_cp {
    uint16_t *dst;
    const uint16_t *src;
    bool valid;
};
inline std::vector<emu_cp> emu_cp_open[1024];               /* issued, not committed */
inline std::deque<std::vector<emu_cp>> emu_cp_groups[1024]; /* committed, oldest first */

static inline void emu_mma_reset(void) {
    memset(emu_mma_phase, 0, sizeof emu_mma_phase);
}

static inline void emu_mma_fail(const char *what, const void *p) {
    fprintf(stderr, "EMU: %s (%p, thread %u, block %u)\n", what, p, emu_tidx().x, emu_bidx.x);
    abort();
}

/* A pending copy at block end would land in a later block's shared memory. */
static inline void emu_mma_block_end(int n_threads) {
    for (int t = 0; t < n_threads; t++)
        if (!emu_cp_open[t].empty() || !emu_cp_groups[t].empty()) {
            fprintf(stderr, "EMU: cp.async still pending at block end (thread %d)\n", t);
            abort();
        }
}

static inline void emu_check_smem(const void *p, size_t n) {
    const char *b = (const char *)emu_dyn_smem(), *c = (const char *)p;
    if ((uintptr_t)c % 16 != 0) emu_mma_fail("shared address not 16-byte aligned", p);
    if (c < b || c + n > b + emu_dyn_smem_bytes()) emu_mma_fail("shared address out of range", p);
}

/* This thread's slot set for its next warp-wide operation. */
static inline emu_mma_slot *emu_mma_set(int t) {
    return emu_mma_slots[emu_mma_phase[t]++ & 1];
}

static inline float emu_bf16_half(uint32_t w, int hi) {
    uint32_t u = (hi ? w >> 16 : w & 0xffffu) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline void tc_mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    int t = (int)emu_tidx().x, w = t & ~31, l = t & 31, g = l >> 2, tq = l & 3;
    emu_mma_slot *s = emu_mma_set(t);
    memcpy(s[t].a, a, sizeof s[t].a);
    s[t].b[0] = b0, s[t].b[1] = b1;
    __syncwarp();
    for (int i = 0; i < 4; i++) {
        int row = g + 8 * (i >> 1), col = 2 * tq + (i & 1);
        float sum = 0.0f;
        for (int k = 0; k < 16; k++) {
            const emu_mma_slot &sa = s[w + (row & 7) * 4 + ((k & 7) >> 1)];
            const emu_mma_slot &sb = s[w + col * 4 + ((k & 7) >> 1)];
            float x = emu_bf16_half(sa.a[(row >> 3) + 2 * (k >> 3)], k & 1);
            float y = emu_bf16_half(sb.b[k >> 3], k & 1);
            sum += x * y;
        }
        d[i] += sum;
    }
}

static inline void emu_ldsm(uint32_t (&r)[4], const uint16_t *row, bool trans) {
    int t = (int)emu_tidx().x, w = t & ~31, l = t & 31, g = l >> 2, tq = l & 3;
    emu_check_smem(row, 16);
    emu_mma_slot *s = emu_mma_set(t);
    s[t].rows = row;
    __syncwarp();
    for (int j = 0; j < 4; j++) {
        const emu_mma_slot *m = s + w + 8 * j;
        uint32_t lo, hi;
        if (trans)
            lo = m[2 * tq].rows[g], hi = m[2 * tq + 1].rows[g];
        else
            lo = m[g].rows[2 * tq], hi = m[g].rows[2 * tq + 1];
        r[j] = lo | hi << 16;
    }
}

static inline void tc_ldsm_x4(uint32_t (&r)[4], const uint16_t *row) {
    emu_ldsm(r, row, false);
}

static inline void tc_ldsm_x4_trans(uint32_t (&r)[4], const uint16_t *row) {
    emu_ldsm(r, row, true);
}

static inline void tc_cp16(uint16_t *dst, const uint16_t *src, bool valid) {
    emu_check_smem(dst, 16);
    if ((uintptr_t)src % 16 != 0) emu_mma_fail("cp.async source not 16-byte aligned", src);
    memset(dst, 0xff, 16);
    emu_cp_open[emu_tidx().x].push_back(emu_cp{dst, src, valid});
}

static inline void tc_cp_commit(void) {
    int t = (int)emu_tidx().x;
    emu_cp_groups[t].push_back(std::move(emu_cp_open[t]));
    emu_cp_open[t].clear();
}

template <int N> static inline void tc_cp_wait(void) {
    int t = (int)emu_tidx().x;
    while (emu_cp_groups[t].size() > (size_t)N) {
        for (const emu_cp &c : emu_cp_groups[t].front()) {
            if (c.valid)
                memcpy(c.dst, c.src, 16);
            else
                memset(c.dst, 0, 16);
        }
        emu_cp_groups[t].pop_front();
    }
}

static inline float tc_exp2(float x) {
    return exp2f(x);
}

static inline uint16_t emu_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline uint32_t tc_pack_bf16(float lo, float hi) {
    return (uint32_t)emu_to_bf16(lo) | (uint32_t)emu_to_bf16(hi) << 16;
}

#endif

/* bpe: byte-level BPE, matching the HF tokenizers BPE model (models/bpe/model.rs,
 * merge_word) for configurations without dropout, byte fallback or subword affixes.
 *
 * Tables (all built in bpe_load, read-only afterwards; vocab and merges are read either from
 * the jansson tree or, for speed, straight from the file text through tokjson):
 *   vocab  open-addressed map from the token's byte-level string to its id; the strings live
 *          in one pool, so loading does one allocation per table, not one per token;
 *   merges open-addressed map (left id, right id) -> (rank, merged id);
 *   byte_id the id of each single byte's token (the byte-level mapping folded in), so words
 *          are processed as raw bytes and never converted to the byte-level alphabet.
 *
 * Merge loop: the word's symbols form a doubly linked list over an array; candidate pairs sit
 * in a binary heap ordered by (rank, left position). A popped pair is re-checked against the
 * current neighbours (stale entries are skipped), merged, and the two new neighbouring pairs
 * are pushed. This applies the lowest-ranked pair first and the leftmost among equals, as the
 * reference does.
 *
 * Invariants:
 *  1. merges: every value's merged id is the vocab id of left string + right string.
 *  2. The word cache maps a byte string to exactly the ids bpe_encode_word computes for it;
 *     it is cleared wholesale when full, so its memory is bounded by the ctx allocation.
 * Threads: struct bpe any thread (read-only); a struct bpe_ctx belongs to one thread. */
#include "tokenizer/bpe_impl.h"

#include "tokenizer/bytelevel.h"
#include "util/limits.h"

#include <stdlib.h>
#include <string.h>

uint64_t bpe_hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, s, n);
    h = (h ^ v) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

uint64_t bpe_pow2_at_least(uint64_t n) {
    uint64_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

int tok_ids_push(struct tok_ids *v, int32_t id) {
    if (v->n == v->cap) {
        int64_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->ids, (size_t)cap * sizeof *p);
        if (!p) return VELA_ENOMEM;
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return 0;
}

void tok_ids_free(struct tok_ids *v) {
    if (!v) return;
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

int32_t bpe_token_to_id(const struct bpe *b, const char *s, size_t n) {
    uint64_t i = bpe_hash_bytes(s, n) & b->vmask;
    for (;; i = (i + 1) & b->vmask) {
        int32_t k = b->vslots[i];
        if (k == 0) return -1;
        const struct bpe_entry *en = &b->entries[k - 1];
        if (en->len == n && memcmp(b->str_pool + en->off, s, n) == 0) return en->id;
    }
}

const char *bpe_id_to_token(const struct bpe *b, int32_t id, size_t *n) {
    if (id < 0 || id >= b->n_ids || b->id_entry[id] < 0) return NULL;
    const struct bpe_entry *en = &b->entries[b->id_entry[id]];
    *n = en->len;
    return b->str_pool + en->off;
}

int32_t bpe_n_ids(const struct bpe *b) {
    return b->n_ids;
}
int32_t bpe_n_merges(const struct bpe *b) {
    return b->n_merges;
}

static const struct bpe_merge *merge_find(const struct bpe *b, int32_t l, int32_t r) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    uint64_t i = hash_u64(key) & b->mmask;
    for (;; i = (i + 1) & b->mmask) {
        const struct bpe_merge *m = &b->mslots[i];
        if (m->key == key) return m;
        if (m->key == MERGE_EMPTY) return NULL;
    }
}

void bpe_merge_put(struct bpe *b, int32_t l, int32_t r, int32_t rank, int32_t id) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    uint64_t i = hash_u64(key) & b->mmask;
    while (b->mslots[i].key != MERGE_EMPTY && b->mslots[i].key != key) i = (i + 1) & b->mmask;
    b->mslots[i] = (struct bpe_merge){key, rank, id};
}

/* Indexes entries[0..n_entries) (keys already in str_pool): id table and hash slots. */
/* ---- per-thread encoding: merge scratch and the word cache ---- */

/* Word cache bounds: words longer than this are not cached (they are rare and would crowd
 * out the common ones); the pools bound the memory of one ctx to about 2.5 MB. */
#define CACHE_SLOTS    (1u << 15)
#define CACHE_MAX_WORD 128
#define CACHE_KEY_POOL (1u << 20)
#define CACHE_ID_POOL  (1u << 18)

struct cache_slot {
    uint64_t h;
    uint32_t koff, ioff;
    uint16_t klen, n_ids; /* klen 0 = empty slot */
};

struct sym {
    int32_t id, prev, next; /* prev/next -1 at the ends; id -1 once merged away */
};
struct cand {
    int32_t rank, pos; /* pos: index of the left symbol */
};

struct bpe_ctx {
    const struct bpe *b;
    struct sym *syms;
    struct cand *heap;
    size_t cap;
    struct cache_slot *slots;
    unsigned char *keys;
    int32_t *ids;
    uint32_t n_slots_used, keys_used, ids_used;
};

struct bpe_ctx *bpe_ctx_new(const struct bpe *b) {
    struct bpe_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->b = b;
    c->slots = calloc(CACHE_SLOTS, sizeof *c->slots);
    c->keys = malloc(CACHE_KEY_POOL);
    c->ids = malloc(CACHE_ID_POOL * sizeof *c->ids);
    if (!c->slots || !c->keys || !c->ids) {
        bpe_ctx_free(c);
        return NULL;
    }
    return c;
}

void bpe_ctx_free(struct bpe_ctx *c) {
    if (!c) return;
    free(c->syms);
    free(c->heap);
    free(c->slots);
    free(c->keys);
    free(c->ids);
    free(c);
}

static bool cand_less(struct cand a, struct cand b) {
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(struct cand *h, size_t *n, struct cand x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(x, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static struct cand heap_pop(struct cand *h, size_t *n) {
    struct cand top = h[0], x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        struct cand best = x;
        if (l < *n && cand_less(h[l], best)) m = l, best = h[l];
        if (r < *n && cand_less(h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n > 0) h[i] = x;
    return top;
}

static void push_pair(const struct bpe *b, const struct sym *s, int32_t pos, struct cand *h,
                      size_t *nh) {
    if (pos < 0 || s[pos].next < 0) return;
    const struct bpe_merge *m = merge_find(b, s[pos].id, s[s[pos].next].id);
    if (m) heap_push(h, nh, (struct cand){m->rank, pos});
}

static int grow_scratch(struct bpe_ctx *c, size_t n) {
    if (n <= c->cap) return 0;
    size_t cap = c->cap ? c->cap : 64;
    while (cap < n) cap *= 2;
    struct sym *s = realloc(c->syms, cap * sizeof *s);
    if (!s) return VELA_ENOMEM;
    c->syms = s;
    struct cand *h = realloc(c->heap, cap * 2 * sizeof *h);
    if (!h) return VELA_ENOMEM;
    c->heap = h;
    c->cap = cap;
    return 0;
}

/* The merge loop proper (see the file comment); appends the final symbols' ids. */
static int merge_word(struct bpe_ctx *c, const unsigned char *w, size_t n, struct tok_ids *out) {
    const struct bpe *b = c->b;
    if (grow_scratch(c, n) != 0) return VELA_ENOMEM;
    struct sym *s = c->syms;
    int32_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = b->byte_id[w[i]];
        if (id < 0) continue; /* no token for this byte and no unk: dropped */
        s[ns] = (struct sym){id, ns - 1, ns + 1};
        ns++;
    }
    if (ns == 0) return 0;
    s[ns - 1].next = -1;
    size_t nh = 0;
    for (int32_t i = 0; i + 1 < ns; i++) push_pair(b, s, i, c->heap, &nh);
    while (nh > 0) {
        struct cand top = heap_pop(c->heap, &nh);
        int32_t l = top.pos, r = s[l].next;
        if (s[l].id < 0 || r < 0) continue;
        const struct bpe_merge *m = merge_find(b, s[l].id, s[r].id);
        if (!m || m->rank != top.rank) continue; /* stale: a neighbour changed */
        s[l].id = m->id;
        s[l].next = s[r].next;
        if (s[r].next >= 0) s[s[r].next].prev = l;
        s[r].id = -1;
        push_pair(b, s, s[l].prev, c->heap, &nh);
        push_pair(b, s, l, c->heap, &nh);
    }
    for (int32_t i = 0; i >= 0; i = s[i].next)
        if (tok_ids_push(out, s[i].id) != 0) return VELA_ENOMEM;
    return 0;
}

static void cache_clear(struct bpe_ctx *c) {
    memset(c->slots, 0, CACHE_SLOTS * sizeof *c->slots);
    c->n_slots_used = c->keys_used = c->ids_used = 0;
}

static void cache_put(struct bpe_ctx *c, uint64_t h, const unsigned char *w, size_t n,
                      const int32_t *ids, int64_t n_ids) {
    if (n_ids > 0xffff) return;
    if (c->n_slots_used >= CACHE_SLOTS / 2 || c->keys_used + n > CACHE_KEY_POOL ||
        c->ids_used + (uint32_t)n_ids > CACHE_ID_POOL)
        cache_clear(c);
    uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);
    while (c->slots[i].klen != 0) i = (i + 1) & (CACHE_SLOTS - 1);
    memcpy(c->keys + c->keys_used, w, n);
    memcpy(c->ids + c->ids_used, ids, (size_t)n_ids * sizeof *ids);
    c->slots[i] = (struct cache_slot){h, c->keys_used, c->ids_used, (uint16_t)n, (uint16_t)n_ids};
    c->keys_used += (uint32_t)n;
    c->ids_used += (uint32_t)n_ids;
    c->n_slots_used++;
}

int bpe_encode_word(struct bpe_ctx *c, const unsigned char *w, size_t n, struct tok_ids *out) {
    const struct bpe *b = c->b;
    if (n == 1 && b->byte_id[w[0]] >= 0) return tok_ids_push(out, b->byte_id[w[0]]);
    bool cacheable = n <= CACHE_MAX_WORD;
    uint64_t h = 0;
    if (cacheable) {
        h = bpe_hash_bytes(w, n);
        for (uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1); c->slots[i].klen != 0;
             i = (i + 1) & (CACHE_SLOTS - 1)) {
            const struct cache_slot *sl = &c->slots[i];
            if (sl->h == h && sl->klen == n && memcmp(c->keys + sl->koff, w, n) == 0) {
                for (uint32_t k = 0; k < sl->n_ids; k++)
                    if (tok_ids_push(out, c->ids[sl->ioff + k]) != 0) return VELA_ENOMEM;
                return 0;
            }
        }
    }
    int64_t start = out->n;
    if (b->ignore_merges && n <= CACHE_MAX_WORD) {
        /* the whole word, if it is a token, wins over merging (ignore_merges: true) */
        char buf[CACHE_MAX_WORD * 2];
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t cp = bl_byte_to_cp(w[i]);
            if (cp < 0x80)
                buf[m++] = (char)cp;
            else
                buf[m++] = (char)(0xC0 | (cp >> 6)), buf[m++] = (char)(0x80 | (cp & 0x3F));
        }
        int32_t id = bpe_token_to_id(b, buf, m);
        if (id >= 0) {
            if (tok_ids_push(out, id) != 0) return VELA_ENOMEM;
        } else if (merge_word(c, w, n, out) != 0)
            return VELA_ENOMEM;
    } else if (merge_word(c, w, n, out) != 0) {
        return VELA_ENOMEM;
    }
    if (cacheable) cache_put(c, h, w, n, out->ids + start, out->n - start);
    return 0;
}

/* bpe_impl: the tables of struct bpe, shared by bpe.c (lookups, merging) and bpe_load.c
 * (building them). Private to src/tokenizer/bpe*.c. */
#ifndef VELA_TOKENIZER_BPE_IMPL_H
#define VELA_TOKENIZER_BPE_IMPL_H

#include "tokenizer/bpe.h"

#include <stdbool.h>
#include <stdint.h>

struct bpe_entry {
    uint32_t off, len; /* key in str_pool */
    int32_t id;
};

struct bpe_merge {
    uint64_t key; /* left << 32 | right; MERGE_EMPTY when the slot is free */
    int32_t rank;
    int32_t id;
};
#define MERGE_EMPTY UINT64_MAX

struct bpe {
    char *str_pool; /* all vocab keys, concatenated */
    struct bpe_entry *entries;
    int32_t n_entries;
    int32_t *vslots; /* entry index + 1, 0 = empty */
    uint64_t vmask;
    int32_t *id_entry; /* (n_ids) entry index of each id, -1 when absent */
    int32_t n_ids;
    struct bpe_merge *mslots;
    uint64_t mmask;
    int32_t n_merges;
    int32_t byte_id[256]; /* id of the single-byte token, or unk_id, or -1 */
    int32_t unk_id;
    bool ignore_merges;
};

/* Hash of a byte string (vocab keys, cached words). */
uint64_t bpe_hash_bytes(const void *p, size_t n);
/* Inserts (l, r) -> (rank, id); a later duplicate overwrites, as the reference's map does. */
void bpe_merge_put(struct bpe *b, int32_t l, int32_t r, int32_t rank, int32_t id);
/* Smallest power of two >= n (and >= 16): hash table capacities. */
uint64_t bpe_pow2_at_least(uint64_t n);

#endif

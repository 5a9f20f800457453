/* hash: the 64-bit hash used for KV block prefix keys and image content keys.
 *
 * Not cryptographic: a hit is always confirmed by comparing the block's tokens, parent hash
 * and extra key (block_pool.c), so a collision costs a miss, never a wrong answer. Stable
 * across runs and machines (no random seed), so logs and tests can quote values.
 * Any thread; pure functions. */
#ifndef VELA_ENGINE_HASH_H
#define VELA_ENGINE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Mixes one 64-bit word into h. */
uint64_t hash_mix(uint64_t h, uint64_t w);
/* Hash of n bytes, chained from seed. p may be NULL when n == 0. */
uint64_t hash_bytes(uint64_t seed, const void *p, size_t n);
/* Key of one full KV block: the parent block's hash (0 for the first block), its n token ids
 * and an extra key (0 when no image overlaps the block; see req_block_extra()). */
uint64_t hash_block(uint64_t parent, const int32_t *tokens, int32_t n, uint64_t extra);

#endif

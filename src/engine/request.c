/* request: construction, reservation, forking and block keys of struct request.
 *
 * Invariants once admitted (sched.c keeps them; sched_check verifies):
 *  1. 0 <= n_computed <= n_tokens <= cap_tokens, n_prompt <= n_tokens.
 *  2. n_blocks * block_size >= n_computed, and n_blocks <= cap_blocks.
 *  3. n_cached <= n_hashes <= n_tokens / block_size.
 *  4. images are sorted, non-overlapping and lie inside the prompt.
 * Thread: see request.h. */
#include "engine/request.h"

#include "engine/hash.h"
#include "model/mm_prompt.h"
#include "util/limits.h"

#include <stdlib.h>
#include <string.h>

static int check_images(const struct req_image *im, int32_t n, int32_t n_prompt, struct err *e) {
    if (n < 0 || n > VELA_REQ_MAX_IMAGES)
        return err_set(e, VELA_ELIMIT, "%d images in one request, limit %d", n,
                       VELA_REQ_MAX_IMAGES);
    int32_t end = 0;
    for (int32_t i = 0; i < n; i++) {
        if (im[i].n_tokens < 1 || im[i].offset < end || im[i].offset > n_prompt - im[i].n_tokens)
            return err_set(e, VELA_EINVAL,
                           "image %d: placeholders [%d, +%d) overlap another image or leave "
                           "the %d-token prompt",
                           i, im[i].offset, im[i].n_tokens, n_prompt);
        end = im[i].offset + im[i].n_tokens;
    }
    return 0;
}

struct request *req_new(uint64_t id, const int32_t *prompt, int32_t n_prompt,
                        const struct req_image *images, int32_t n_images,
                        const struct sampling_params *params, struct err *e) {
    if (n_prompt < 1 || n_prompt > VELA_REQ_MAX_TOKENS) {
        err_set(e, VELA_ELIMIT, "prompt of %d tokens outside [1, %d]", n_prompt,
                VELA_REQ_MAX_TOKENS);
        return NULL;
    }
    if (check_images(images, n_images, n_prompt, e) != 0) return NULL;
    struct request *r = calloc(1, sizeof *r);
    if (!r) goto nomem;
    r->tokens = malloc((size_t)n_prompt * sizeof *r->tokens);
    if (n_images > 0) r->images = malloc((size_t)n_images * sizeof *r->images);
    if (!r->tokens || (n_images > 0 && !r->images)) goto nomem;
    memcpy(r->tokens, prompt, (size_t)n_prompt * sizeof *prompt);
    for (int32_t i = 0; i < n_images; i++) {
        r->images[i] = images[i];
        r->images[i].ec_ref = false;
        r->images[i].ec_new = false;
    }
    r->id = id;
    r->params = *params;
    r->n_prompt = r->n_tokens = r->cap_tokens = n_prompt;
    r->n_images = n_images;
    r->stop_token = -1;
    r->state = REQ_WAITING;
    return r;
nomem:
    req_free(r);
    err_set(e, VELA_ENOMEM, "request %llu: out of memory", (unsigned long long)id);
    return NULL;
}

void req_free(struct request *r) {
    if (!r) return;
    free(r->tokens);
    free(r->images);
    free(r->blocks);
    free(r->hashes);
    mmp_unref(r->mm);
    free(r);
}

int req_attach_mm(struct request *r, struct mm_prompt *mm, struct err *e) {
    bool ok = mm->n_ids == r->n_prompt && mm->n_media == r->n_images &&
              memcmp(mm->ids, r->tokens, (size_t)r->n_prompt * sizeof *r->tokens) == 0;
    for (int32_t i = 0; ok && i < r->n_images; i++)
        ok = mm->media[i].offset == r->images[i].offset &&
             mm->media[i].n_tokens == r->images[i].n_tokens &&
             mm->media[i].hash == r->images[i].hash;
    if (!ok)
        return err_set(e, VELA_EINVAL, "request %llu: its prompt and images are not the media's",
                       (unsigned long long)r->id);
    mmp_unref(r->mm);
    r->mm = mm;
    return 0;
}

int req_reserve(struct request *r, int32_t cap_tokens, int32_t block_size, struct err *e) {
    if (cap_tokens < r->n_tokens) cap_tokens = r->n_tokens;
    int32_t cap_blocks = (cap_tokens + block_size - 1) / block_size;
    if (cap_tokens > r->cap_tokens) {
        int32_t *t = realloc(r->tokens, (size_t)cap_tokens * sizeof *t);
        if (!t) goto nomem;
        r->tokens = t;
        r->cap_tokens = cap_tokens;
    }
    if (cap_blocks > r->cap_blocks) {
        int32_t *b = realloc(r->blocks, (size_t)cap_blocks * sizeof *b);
        if (!b) goto nomem;
        r->blocks = b;
        uint64_t *h = realloc(r->hashes, (size_t)cap_blocks * sizeof *h);
        if (!h) goto nomem;
        r->hashes = h;
        r->cap_blocks = cap_blocks;
    }
    return 0;
nomem:
    return err_set(e, VELA_ENOMEM, "request %llu: no memory for %d tokens",
                   (unsigned long long)r->id, cap_tokens);
}

struct request *req_fork(const struct request *r, int32_t index, struct err *e) {
    struct request *c =
        req_new(r->id, r->tokens, r->n_prompt, r->images, r->n_images, &r->params, e);
    if (!c) return NULL;
    c->index = index;
    c->mm = mmp_ref(r->mm);
    c->forked = true; /* a child never forks again */
    return c;
}

uint64_t req_block_extra(const struct request *r, int32_t ib, int32_t block_size) {
    int64_t lo = (int64_t)ib * block_size, hi = lo + block_size;
    uint64_t x = 0;
    for (int32_t i = 0; i < r->n_images; i++) {
        const struct req_image *im = &r->images[i];
        if (im->offset >= hi) break; /* sorted: nothing later overlaps */
        if (im->offset + im->n_tokens <= lo) continue;
        /* The offset and length go in too: the same image placed differently is a different
         * block content even when the placeholder ids agree. */
        x = hash_mix(hash_mix(hash_mix(x ? x : 0x696d67ull, im->hash), (uint64_t)im->offset),
                     (uint64_t)im->n_tokens);
    }
    return x;
}

const char *req_finish_name(enum req_finish f) {
    switch (f) {
        case REQ_FINISH_STOP:
            return "stop";
        case REQ_FINISH_LENGTH:
            return "length";
        case REQ_FINISH_ABORT:
            return "abort";
        case REQ_FINISH_NONE:
            break;
    }
    return "none";
}

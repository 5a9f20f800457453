/* generator: deterministic BF16 weights and complete model folders (see generator.h).
 *
 * Value of element k of tensor t: u = rng_unit_f32(rng_hash(seed, fnv1a(t.name), k)), a
 * uniform in (-1, 1); then bf16(u * a) with a = gen_tensor_scale(t). The stream is named by
 * the tensor's name, not its position in the list, so adding a tensor elsewhere, sharding
 * for tensor parallelism or generating on a device leaves every other value unchanged.
 *
 * Scales (uniform(-a, a) has standard deviation a / sqrt(3)):
 *  - linear and conv weights: std 1/sqrt(fan_in), so each projection keeps the variance
 *    of its normalized input (q.k / sqrt(head_dim) and the logits stay O(1));
 *  - residual-branch outputs (o_proj, down_proj, ViT attn.proj): std 0.5/sqrt(fan_in), so
 *    the residual stream grows slowly (about sqrt(1 + L/4)) even through 80 layers;
 *  - embeddings: std 0.05: RMSNorm rescales them anyway, and tied heads then give logits of
 *    std 0.05*sqrt(D) (1.4 at D = 768, 4.5 at D = 8192), peaked but finite;
 *  - biases (and LayerNorm biases): uniform +-0.02, small next to the O(1) activations;
 *  - norm gains: exactly 1.0.
 * Only integer hashing, exact conversions, one float multiply and f32_to_bf16 touch each
 * element; sqrt (exactly rounded in IEEE 754) runs once per tensor.
 *
 * Invariants: (1) the bytes depend only on (seed, tensor name, shape, kind, fan_in);
 * (2) memory stays under GEN_CHUNK_BYTES plus the tensor list, whatever the model size;
 * (3) a failed write leaves no half-written file under a final name (st_writer renames at
 * finish). Main thread; worker threads only run gen_tensor_bf16 on disjoint ranges. */
#include "model/generator.h"

#include "model/gen_files.h"
#include "model/safetensors.h"
#include "util/bf16.h"
#include "util/file.h"
#include "util/limits.h"
#include "util/rng.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int64_t tensor_elems(const struct param_tensor *pt) {
    int64_t n = 1;
    for (int32_t i = 0; i < pt->n_dims; i++) n *= pt->shape[i];
    return n;
}

float gen_tensor_scale(const struct param_tensor *pt) {
    switch (pt->kind) {
        case PARAM_NORM:
            return 0.0f;
        case PARAM_BIAS:
        case PARAM_NORM_BIAS:
            return 0.02f;
        case PARAM_EMBED:
            return (float)sqrt(3.0 * 0.05 * 0.05);
        case PARAM_LINEAR:
        case PARAM_CONV:
        default: {
            int64_t fan_in = pt->fan_in > 0 ? pt->fan_in : pt->shape[pt->n_dims - 1];
            double gain =
                (ends_with(pt->name, "o_proj.weight") || ends_with(pt->name, "down_proj.weight") ||
                 ends_with(pt->name, "attn.proj.weight"))
                    ? 0.5
                    : 1.0;
            return (float)(gain * sqrt(3.0 / (double)fan_in));
        }
    }
}

int gen_tensor_bf16(const struct gen_spec *g, const struct param_tensor *pt, int64_t elem_begin,
                    int64_t n, uint16_t *out, struct err *e) {
    int64_t total = tensor_elems(pt);
    if (elem_begin < 0 || n < 0 || elem_begin > total || n > total - elem_begin)
        return err_set(e, VELA_EINVAL, "%s: elements [%" PRId64 ", +%" PRId64 ") outside %" PRId64,
                       pt->name, elem_begin, n, total);
    float a = gen_tensor_scale(pt);
    if (a == 0.0f) {
        for (int64_t i = 0; i < n; i++) out[i] = 0x3f80; /* bf16 1.0 */
        return 0;
    }
    uint64_t base = rng_stream(g->seed, rng_fnv1a(RNG_FNV_INIT, pt->name, strlen(pt->name)));
    for (int64_t i = 0; i < n; i++)
        out[i] = f32_to_bf16(rng_unit_f32(rng_at(base, (uint64_t)(elem_begin + i))) * a);
    return 0;
}

/* ---- parallel chunk generation ---- */

struct gen_job {
    const struct gen_spec *g;
    const struct param_tensor *pt;
    int64_t begin, n;
    uint16_t *out;
};

static void *gen_job_run(void *arg) {
    struct gen_job *j = arg;
    struct err e;
    /* Ranges are checked by the caller, so this cannot fail. */
    (void)gen_tensor_bf16(j->g, j->pt, j->begin, j->n, j->out, &e);
    return NULL;
}

int gen_tensor_bf16_par(const struct gen_spec *g, const struct param_tensor *pt, int64_t begin,
                        int64_t n, uint16_t *out, int32_t n_threads, struct err *e) {
    if (begin < 0 || n < 0 || begin + n > params_n_elems(pt))
        return err_set(e, VELA_EINVAL, "generator: elements [%lld, %lld) outside tensor %s",
                       (long long)begin, (long long)(begin + n), pt->name);
    if (n_threads > GEN_MAX_THREADS) n_threads = GEN_MAX_THREADS;
    /* Below 64K elements a thread start costs more than it saves. */
    if (n_threads <= 1 || n < (1 << 16)) return gen_tensor_bf16(g, pt, begin, n, out, e);
    pthread_t th[GEN_MAX_THREADS];
    struct gen_job jobs[GEN_MAX_THREADS];
    int32_t started = 0;
    int64_t per = (n + n_threads - 1) / n_threads;
    for (int32_t t = 0; t < n_threads; t++) {
        int64_t b = t * per < n ? t * per : n, m = n - b < per ? n - b : per;
        jobs[t] = (struct gen_job){g, pt, begin + b, m, out + b};
    }
    for (int32_t t = 1; t < n_threads; t++) {
        if (pthread_create(&th[t], NULL, gen_job_run, &jobs[t]) != 0) break;
        started = t;
    }
    gen_job_run(&jobs[0]);
    for (int32_t t = 1; t <= started; t++) pthread_join(th[t], NULL);
    for (int32_t t = started + 1; t < n_threads; t++) gen_job_run(&jobs[t]); /* not started */
    return 0;
}

/* ---- safetensors files ---- */

struct gen_plan {
    struct param_tensor *pts; /* owned (params_tensors) */
    int64_t n;
    int32_t *shard; /* tensor -> shard index; owned */
    int32_t n_shards;
    uint64_t total_bytes;
};

static void plan_free(struct gen_plan *p) {
    free(p->pts);
    free(p->shard);
}

/* Greedy in tensor order, as transformers' shard splitter: a new shard starts when the
 * next tensor would push the current one past the limit (a larger tensor gets its own). */
static int plan_shards(struct gen_plan *p, const struct model_config *c, uint64_t max_bytes,
                       struct err *e) {
    int rc = params_tensors(c, &p->pts, &p->n, e);
    if (rc != 0) return rc;
    p->shard = calloc((size_t)(p->n ? p->n : 1), sizeof *p->shard);
    if (!p->shard) return err_set(e, VELA_ENOMEM, "weights: out of memory");
    uint64_t cur = 0;
    p->n_shards = 1;
    for (int64_t i = 0; i < p->n; i++) {
        uint64_t b = (uint64_t)tensor_elems(&p->pts[i]) * 2;
        if (cur > 0 && cur + b > max_bytes) {
            p->n_shards++;
            cur = 0;
        }
        if (p->n_shards > VELA_MAX_SHARDS)
            return err_set(e, VELA_ELIMIT, "weights: more than %d shards of %" PRIu64 " bytes",
                           VELA_MAX_SHARDS, max_bytes);
        p->shard[i] = p->n_shards - 1;
        cur += b;
        p->total_bytes += b;
    }
    return 0;
}

static void shard_name(char *buf, size_t cap, int32_t s, int32_t n_shards) {
    if (n_shards == 1)
        snprintf(buf, cap, "model.safetensors");
    else
        snprintf(buf, cap, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
}

struct gen_writer {
    const struct gen_plan *plan;
    const struct gen_options *o;
    struct gen_spec g;
    uint16_t *buf; /* chunk buffer, cap elements */
    int64_t cap;
    uint64_t done;
};

static int write_tensor(struct gen_writer *w, struct st_writer *sw, const struct param_tensor *pt,
                        struct err *e) {
    int64_t total = tensor_elems(pt);
    for (int64_t b = 0; b < total; b += w->cap) {
        int64_t n = total - b < w->cap ? total - b : w->cap;
        int rc = gen_tensor_bf16_par(&w->g, pt, b, n, w->buf, w->o->n_threads, e);
        if (rc == 0) rc = st_writer_write(sw, w->buf, (size_t)n * 2, e);
        if (rc != 0) return rc;
        w->done += (uint64_t)n * 2;
        if (w->o->progress) w->o->progress(w->o->progress_ctx, w->done, w->plan->total_bytes);
    }
    return 0;
}

static int write_shard(struct gen_writer *w, const char *dir, int32_t s, struct err *e) {
    const struct gen_plan *p = w->plan;
    char name[64], path[4096];
    shard_name(name, sizeof name, s, p->n_shards);
    int rc = path_join(path, sizeof path, dir, name, e);
    struct st_writer *sw = NULL;
    if (rc == 0) rc = st_writer_new(&sw, path, e);
    for (int64_t i = 0; rc == 0 && i < p->n; i++)
        if (p->shard[i] == s)
            rc = st_writer_declare(sw, p->pts[i].name, ST_BF16, p->pts[i].n_dims, p->pts[i].shape,
                                   e);
    for (int64_t i = 0; rc == 0 && i < p->n; i++)
        if (p->shard[i] == s) rc = write_tensor(w, sw, &p->pts[i], e);
    if (rc == 0) rc = st_writer_finish(sw, e);
    st_writer_free(sw);
    return rc;
}

/* model.safetensors.index.json with keys sorted, as transformers writes it. */
static int write_index(const struct gen_plan *p, const char *dir, struct err *e) {
    json_t *map = json_object();
    bool ok = map != NULL;
    for (int64_t i = 0; ok && i < p->n; i++) {
        char name[64];
        shard_name(name, sizeof name, p->shard[i], p->n_shards);
        ok = json_object_set_new(map, p->pts[i].name, json_string(name)) == 0;
    }
    json_t *root = ok ? json_pack("{s:{s:I}, s:o}", "metadata", "total_size",
                                  (json_int_t)p->total_bytes, "weight_map", map)
                      : NULL;
    if (!ok) json_decref(map);
    char path[4096], *s = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    if (!s) return err_set(e, VELA_ENOMEM, "model.safetensors.index.json: out of memory");
    int rc = path_join(path, sizeof path, dir, "model.safetensors.index.json", e);
    if (rc == 0) rc = file_write_all(path, s, strlen(s), e);
    free(s);
    return rc;
}

/* A folder holds one layout: drop the other one's entry file left by an earlier run, so
 * loaders cannot mix old and new weights. */
static void remove_stale(const char *dir, bool sharded) {
    char path[4096];
    struct err e;
    const char *name = sharded ? "model.safetensors" : "model.safetensors.index.json";
    if (path_join(path, sizeof path, dir, name, &e) == 0) unlink(path);
}

int gen_weights_write(const struct model_config *c, const char *dir, const struct gen_options *o,
                      struct err *e) {
    struct gen_plan p = {0};
    uint64_t max = o->max_shard_bytes ? o->max_shard_bytes : GEN_DEFAULT_SHARD_BYTES;
    int rc = plan_shards(&p, c, max, e);
    struct gen_writer w = {.plan = &p, .o = o, .g = {.seed = o->seed}};
    if (rc == 0) {
        uint64_t largest = 0;
        for (int64_t i = 0; i < p.n; i++)
            if ((uint64_t)tensor_elems(&p.pts[i]) > largest)
                largest = (uint64_t)tensor_elems(&p.pts[i]);
        w.cap = (int64_t)(largest < GEN_CHUNK_BYTES / 2 ? largest : GEN_CHUNK_BYTES / 2);
        w.buf = malloc((size_t)(w.cap ? w.cap : 1) * 2);
        if (!w.buf)
            rc = err_set(e, VELA_ENOMEM, "weights: no memory for a %" PRId64 "-element chunk",
                         w.cap);
    }
    if (rc == 0) remove_stale(dir, p.n_shards > 1);
    for (int32_t s = 0; rc == 0 && s < p.n_shards; s++) rc = write_shard(&w, dir, s, e);
    if (rc == 0 && p.n_shards > 1) rc = write_index(&p, dir, e);
    free(w.buf);
    plan_free(&p);
    return rc;
}

/* ---- the whole folder ---- */

static int write_config(const struct model_config *c, const char *dir, struct err *e) {
    char *json = NULL, path[4096];
    int rc = cfg_to_json(c, &json, e);
    if (rc == 0) rc = path_join(path, sizeof path, dir, "config.json", e);
    if (rc == 0) rc = file_write_all(path, json, strlen(json), e);
    free(json);
    return rc;
}

int gen_model_write(const struct preset *p, const char *dir, const struct gen_options *o,
                    struct model_config *cfg_out, struct err *e) {
    struct gen_tok tok = {0};
    struct model_config c;
    if (p->vocab == PRESET_VOCAB_FIXED && !o->tokenizer_dir)
        return err_set(e, VELA_EINVAL,
                       "preset %s has the real Qwen vocabulary: give the real tokenizer with "
                       "--tokenizer DIR",
                       p->name);
    int rc = file_mkdirs(dir, e);
    if (rc == 0) rc = gen_tok_load(&tok, o->tokenizer_dir, e);
    if (rc == 0) rc = preset_config(p, &tok.sp, &c, e);
    if (rc == 0) rc = cfg_validate(&c, e);
    if (rc == 0) rc = write_config(&c, dir, e);
    if (rc == 0) rc = gen_write_side_files(dir, p, &c, &tok, e);
    gen_tok_deinit(&tok);
    if (rc == 0 && !o->config_only) rc = gen_weights_write(&c, dir, o, e);
    if (rc == 0 && cfg_out) *cfg_out = c;
    return rc;
}

/* gen_mm: `vela generate --image FILE ... [--video-frames F1,F2,...]` (see gen_mm.h).
 *
 * The prompt is the chat template's rendering of one user message whose content lists the
 * images (then the video) before the text, as the Qwen README builds it; the template writes
 * one <|vision_start|><|image_pad|><|vision_end|> per image, and mm_prompt expands the pads.
 * The run goes through the engine's own scheduler and runner (engine/solo.h), so chunked
 * prefill, the encoder cache and the embeddings override are the served code path.
 * Main thread only. */
#include "cli/gen_mm.h"

#include "backend/device.h"
#include "engine/request.h"
#include "engine/solo.h"
#include "model/lm.h"
#include "model/mm_prompt.h"
#include "model/vit.h"
#include "server/stop.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/detok.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int gen_mm_set_frames(struct gen_mm_args *a, const char *list, struct err *e) {
    free(a->frames_buf);
    a->n_frames = 0;
    size_t n = strlen(list);
    a->frames_buf = malloc(n + 1);
    if (!a->frames_buf) return err_set(e, VELA_ENOMEM, "out of memory");
    memcpy(a->frames_buf, list, n + 1);
    for (char *p = a->frames_buf;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (!*p) return err_set(e, VELA_EINVAL, "--video-frames: empty file name in \"%s\"", list);
        if (a->n_frames == GEN_MM_MAX_FRAMES)
            return err_set(e, VELA_ELIMIT, "--video-frames: more than %d frames",
                           GEN_MM_MAX_FRAMES);
        a->frames[a->n_frames++] = p;
        if (!comma) return 0;
        p = comma + 1;
    }
}

/* The rendered chat prompt: image parts, a video part, then the text. *out freed by caller. */
static int render(const struct gen_mm_args *a, char **out, struct err *e) {
    struct chat_template *ct = NULL;
    int rc = ct_load(&ct, a->model, e);
    json_t *content = json_array(), *msgs = NULL;
    for (int32_t i = 0; content && i < a->n_images; i++)
        json_array_append_new(content, json_pack("{s:s}", "type", "image"));
    if (content && a->n_frames > 0)
        json_array_append_new(content, json_pack("{s:s}", "type", "video"));
    if (content) {
        json_array_append_new(content, json_pack("{s:s, s:s}", "type", "text", "text", a->prompt));
        msgs = json_pack("[{s:s, s:o}]", "role", "user", "content", content);
    }
    if (rc == 0 && !msgs) rc = err_set(e, VELA_ENOMEM, "out of memory");
    struct ct_options o = {.add_generation_prompt = true};
    if (rc == 0) rc = ct_render(ct, msgs, &o, out, e);
    json_decref(msgs);
    ct_free(ct);
    return rc;
}

/* Reads the media and builds the expanded prompt. */
static int build_prompt(const struct gen_mm_args *a, const struct lm_files *f,
                        const struct tokenizer *tok, struct mm_prompt **mp, struct err *e) {
    struct preproc_config pc;
    struct preproc_params pp;
    int rc = preproc_config_load(&pc, a->model, e);
    if (rc != 0) return rc;
    preproc_params_from_config(&pp, &pc);
    if (a->min_pixels > 0) pp.min_pixels = a->min_pixels;
    if (a->max_pixels > 0) pp.max_pixels = a->max_pixels;
    rc = preproc_params_check(&pp, e);
    struct mmp_media media[GEN_MM_MAX_IMAGES + 1];
    memset(media, 0, sizeof media);
    int32_t n = 0;
    for (int32_t i = 0; rc == 0 && i < a->n_images; i++)
        rc = mmp_load_image(&media[n++], a->images[i], &pp, e);
    if (rc == 0 && a->n_frames > 0)
        rc = mmp_load_frames(&media[n++], (const char *const *)a->frames, a->n_frames, &pp, e);
    char *text = NULL;
    struct tok_ids ids = {0};
    struct tok_ctx *tc = NULL;
    if (rc == 0) rc = render(a, &text, e);
    if (rc == 0 && !(tc = tok_ctx_new(tok))) rc = err_set(e, VELA_ENOMEM, "out of memory");
    if (rc == 0) rc = tok_encode(tc, text, strlen(text), 0, &ids, e);
    struct mmp_tokens tk;
    mmp_tokens_from_config(&tk, &f->cfg);
    if (rc == 0)
        rc = mmp_build(mp, ids.ids, (int32_t)ids.n, &tk, media, n, e);
    else
        for (int32_t i = 0; i < n; i++) mmp_media_deinit(&media[i]);
    tok_ids_free(&ids);
    tok_ctx_free(tc);
    free(text);
    return rc;
}

struct printer {
    struct detok d;
    struct tok_text txt;
    struct stop_matcher stop; /* --stop strings over the detokenized text */
    const struct sampling_params *sp;
    int rc;
    bool stopped;   /* a stop string matched: the request was aborted */
    double t_first; /* when the first token arrived (0 before): ends the prompt's time */
    struct err e;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Prints what the stop matcher releases of p->txt; true when a stop string matched. */
static bool print_text(struct printer *p) {
    struct stop_out o;
    if (p->rc == 0) p->rc = stop_feed(&p->stop, p->txt.p, p->txt.n, &o, &p->e);
    if (p->rc != 0) return false;
    if (o.n_text) fwrite(o.text, 1, o.n_text, stdout), fflush(stdout);
    return o.hit >= 0;
}

/* A nonzero return makes solo_run abort the request (its blocks go back to the pool). */
static int print_token(void *ctx, int32_t id) {
    struct printer *p = ctx;
    if (p->t_first == 0) p->t_first = now_s();
    for (int32_t i = 0; !p->sp->ignore_eos && i < p->sp->n_eos_token_ids; i++)
        if (p->sp->eos_token_ids[i] == id) return 0; /* the stop itself is not text */
    p->txt.n = 0;
    if (p->rc == 0) p->rc = detok_feed(&p->d, id, &p->txt, &p->e);
    if (p->rc == 0 && p->txt.n && print_text(p)) p->stopped = true;
    return p->rc != 0 || p->stopped;
}

/* The lm, tower and loop for a prompt of n_prompt tokens plus max_new, images as in mp. */
struct mm_run {
    struct be *b;
    struct lm *m;
    struct vit *v;
    struct solo *s;
};

static int setup(struct mm_run *r, const struct gen_mm_args *a, const struct lm_files *f,
                 const struct mm_prompt *mp, int64_t total, struct err *e) {
    int32_t bs = 16, n_blocks = (int32_t)((total + bs - 1) / bs);
    int32_t chunk = (int32_t)(a->chunk < total ? a->chunk : total);
    int64_t max_rows = 4, enc_tokens = 0, max_tokens = 1;
    for (int32_t i = 0; i < mp->n_media; i++) {
        if (mp->media[i].pv.n_rows > max_rows) max_rows = mp->media[i].pv.n_rows;
        if (mp->media[i].n_tokens > max_tokens) max_tokens = mp->media[i].n_tokens;
        enc_tokens += mp->media[i].n_tokens;
    }
    struct lm_options lo = {.max_tokens = chunk,
                            .max_seqs = 1,
                            .n_blocks = n_blocks,
                            .block_size = bs,
                            .kv_dtype = a->kv_dtype,
                            .logit_rows = 1};
    struct vit_options vo = {.max_patches = max_rows};
    struct solo_opts so = {.seed = 0};
    sched_config_defaults(&so.sched);
    so.sched.n_blocks = n_blocks;
    so.sched.block_size = bs;
    so.sched.max_num_batched_tokens = chunk;
    so.sched.max_num_seqs = 1;
    so.sched.max_model_len = (int32_t)total;
    so.sched.encoder_cache_tokens = (int32_t)enc_tokens;
    so.sched.encoder_budget_tokens = (int32_t)max_tokens;
    int rc = be_device_open(a->device, (int)a->threads, &r->b, e);
    if (rc == 0) rc = lm_new(&r->m, r->b, &f->cfg, f->w, &lo, e);
    if (rc == 0) rc = vit_new(&r->v, r->b, &f->cfg, f->w, &vo, e);
    if (rc == 0) rc = solo_new(&r->s, r->m, r->v, &so, e);
    return rc;
}

static void teardown(struct mm_run *r) {
    solo_free(r->s);
    vit_free(r->v);
    lm_free(r->m);
    be_free(r->b);
}

int gen_mm_run(const struct gen_mm_args *a, const struct lm_files *f, const struct tokenizer *tok,
               const struct sampling_params *sp0, struct err *e) {
    if (!f->cfg.has_vision)
        return err_set(e, VELA_EUNSUP, "%s: the model has no vision tower", a->model);
    struct mm_prompt *mp = NULL;
    double t0 = now_s();
    int rc = build_prompt(a, f, tok, &mp, e);
    if (rc != 0) return rc;
    int64_t limit = a->max_model_len ? a->max_model_len : f->cfg.max_position_embeddings;
    for (int32_t i = 0; rc == 0 && i < mp->n_ids; i++)
        if (mp->ids[i] < 0 || mp->ids[i] >= f->cfg.vocab_size)
            rc = err_set(e, VELA_EINVAL, "prompt token %d has id %d, outside the vocabulary", i,
                         mp->ids[i]);
    if (rc == 0 && mp->n_ids >= limit)
        rc = err_set(e, VELA_ELIMIT,
                     "the prompt with its images has %d tokens; the model's limit is %lld (see "
                     "--max-model-len, --max-pixels)",
                     mp->n_ids, (long long)limit);
    struct sampling_params sp = *sp0;
    if (sp.max_tokens > limit - mp->n_ids) sp.max_tokens = (int32_t)(limit - mp->n_ids);
    struct mm_run r = {0};
    if (rc == 0) rc = setup(&r, a, f, mp, mp->n_ids + sp.max_tokens, e);
    struct printer p = {.sp = &sp};
    detok_init(&p.d, tok, true);
    if (rc == 0) rc = stop_init(&p.stop, a->stops, a->n_stops, a->include_stop, e);
    struct request *req = rc == 0 ? solo_request(0, mp, &sp, e) : NULL;
    if (rc == 0 && !req) rc = e->code ? e->code : VELA_ENOMEM;
    double t1 = now_s();
    struct solo_result res = {0};
    if (rc == 0) rc = solo_run(r.s, req, print_token, &p, NULL, &res, e);
    if (rc == 0 && p.rc != 0) *e = p.e, rc = p.rc;
    p.txt.n = 0;
    if (!p.stopped && detok_flush(&p.d, &p.txt, &p.e) == 0 && p.txt.n) print_text(&p);
    struct stop_out so;
    stop_finish(&p.stop, &so);
    if (so.n_text) fwrite(so.text, 1, so.n_text, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    double t2 = now_s(), t_first = p.t_first > 0 ? p.t_first : t2;
    char desc[64];
    if (rc == 0)
        fprintf(stderr,
                "prompt: %d tokens with %d images/videos (read and preprocessed in %.3f s), "
                "vision encoder and prefill in %.3f s (%.1f tokens/s); generation: %d tokens in "
                "%.3f s (%.2f tokens/s) over %d steps; %s\n",
                mp->n_ids, mp->n_media, t1 - t0, t_first - t1, mp->n_ids / (t_first - t1),
                res.n_output, t2 - t_first,
                res.n_output > 1 ? (res.n_output - 1) / (t2 - t_first) : 0.0, res.n_steps,
                be_device_describe(r.b, (int)a->threads, desc, sizeof desc));
    tok_text_free(&p.txt);
    stop_deinit(&p.stop);
    detok_deinit(&p.d);
    teardown(&r);
    mmp_unref(mp);
    return rc;
}

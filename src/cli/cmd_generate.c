/* cmd_generate: `vela generate --model DIR --prompt TEXT [options]`: one prompt through the
 * language model on the CPU, the text streamed to stdout as it is produced (incremental
 * detokenizer), then one line of timings on stderr (prompt and generation tokens/s).
 *
 * Flow: tokenize (after the chat template with --chat) -> check the prompt (empty, longer
 * than the model's limit, ids outside the vocabulary) -> prefill in chunks of --max-num-
 * batched-tokens -> sample / detokenize / decode until max tokens, an eos id (from
 * generation_config.json, else config.json; unless --ignore-eos), the context limit or a
 * --stop string (matched on the detokenized text by server/stop.c, held-back text included;
 * on the image path the hit aborts the engine request).
 * Logits with NaN or Inf are reported as an error, never sampled.
 * Sampling defaults come from generation_config.json (as vLLM's generation_config="auto"),
 * then the flags override them. With --image / --video-frames the prompt goes through the
 * chat template with image parts and runs on the engine's scheduler and runner with the
 * vision tower (cli/gen_mm.c). Main thread only. */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/gen_mm.h"
#include "backend/device.h"
#include "engine/params.h"
#include "engine/sampler.h"
#include "model/batch.h"
#include "model/lm.h"
#include "model/mrope.h"
#include "server/stop.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/detok.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prefill chunk and scratch rows: 512 keeps the activations of the real sizes small (the
 * MLP rows of the 72B at 512 tokens are 120 MB) while a chunk still reuses each weight. */
#define GEN_DEFAULT_CHUNK 512

struct gen_args {
    const char *model, *prompt;
    int64_t max_tokens, top_k, threads, max_model_len, chunk;
    double temperature, top_p, rep_penalty;
    uint64_t seed;
    bool has_seed, has_temp, has_top_p, has_top_k, has_rep, chat, ignore_eos, no_mmap;
    enum be_dtype kv_dtype;
    struct gen_mm_args mm; /* images, video frames, pixel budget */
};

static const char USAGE[] =
    "usage: vela generate --model DIR --prompt TEXT [--max-tokens N] [--temperature T]\n"
    "         [--top-p P] [--top-k K] [--repetition-penalty R] [--seed S] [--chat]\n"
    "         [--ignore-eos] [--threads N] [--max-model-len N] [--max-num-batched-tokens N]\n"
    "         [--kv-cache-dtype bf16|f32] [--stop STR]... [--include-stop-str-in-output]\n"
    "         [--image FILE]... [--video-frames F1,F2,...] [--min-pixels N] [--max-pixels N]\n"
    "         [--no-mmap] [--device auto|cpu|cuda]\n"
    "Streams the generated text to stdout; timings go to stderr. With images (or a video given\n"
    "as frame files) the prompt is one chat message: the images, the video, then the text.\n"
    "--no-mmap reads the weights into memory backed by 2 MB pages instead of mapping the\n"
    "files: slower to start, faster to decode.\n";

static int parse_flag(struct gen_args *a, int argc, char **argv, int *i) {
    const char *v = NULL;
    static const char *const vf[] = {"--model",          "--prompt",
                                     "--max-tokens",     "--temperature",
                                     "--top-p",          "--top-k",
                                     "--seed",           "--threads",
                                     "--max-model-len",  "--max-num-batched-tokens",
                                     "--kv-cache-dtype", "--repetition-penalty",
                                     "--image",          "--video-frames",
                                     "--min-pixels",     "--max-pixels",
                                     "--device",         "--stop"};
    for (int f = 0; f < (int)(sizeof vf / sizeof vf[0]); f++) {
        int r = args_value(argc, argv, i, vf[f], &v);
        if (r < 0) return -1;
        if (r == 0) continue;
        int64_t s;
        switch (f) {
            case 0:
                a->model = v;
                return 0;
            case 1:
                a->prompt = v;
                return 0;
            case 2:
                return args_int(vf[f], v, 1, 1 << 24, &a->max_tokens);
            case 3:
                a->has_temp = true;
                return args_double(vf[f], v, 0, 100, &a->temperature);
            case 4:
                a->has_top_p = true;
                return args_double(vf[f], v, 0, 1, &a->top_p);
            case 5:
                a->has_top_k = true;
                return args_int(vf[f], v, -1, 1 << 24, &a->top_k);
            case 6:
                a->has_seed = true;
                if (args_int(vf[f], v, 0, INT64_MAX, &s) != 0) return -1;
                a->seed = (uint64_t)s;
                return 0;
            case 7:
                return args_int(vf[f], v, 1, 256, &a->threads);
            case 8:
                return args_int(vf[f], v, 1, 1 << 24, &a->max_model_len);
            case 9:
                return args_int(vf[f], v, 1, 1 << 16, &a->chunk);
            case 10:
                if (strcmp(v, "bf16") == 0 || strcmp(v, "auto") == 0)
                    a->kv_dtype = BE_BF16;
                else if (strcmp(v, "f32") == 0)
                    a->kv_dtype = BE_F32;
                else {
                    fprintf(stderr, "error: --kv-cache-dtype %s: expected bf16 or f32\n", v);
                    return -1;
                }
                return 0;
            case 11:
                a->has_rep = true;
                return args_double(vf[f], v, 0.01, 100, &a->rep_penalty);
            case 12:
                if (a->mm.n_images == GEN_MM_MAX_IMAGES) {
                    fprintf(stderr, "error: more than %d --image flags\n", GEN_MM_MAX_IMAGES);
                    return -1;
                }
                a->mm.images[a->mm.n_images++] = v;
                return 0;
            case 13: {
                struct err e = {0};
                if (gen_mm_set_frames(&a->mm, v, &e) == 0) return 0;
                fprintf(stderr, "error: %s\n", e.msg);
                return -1;
            }
            case 14:
                return args_int(vf[f], v, 1, INT64_MAX, &a->mm.min_pixels);
            case 15:
                return args_int(vf[f], v, 1, INT64_MAX, &a->mm.max_pixels);
            case 16: {
                struct err e = {0};
                if (be_device_parse(v, &a->mm.device, &e) == 0) return 0;
                fprintf(stderr, "error: %s\n", e.msg);
                return -1;
            }
            default:
                if (a->mm.n_stops == VELA_STOP_MAX_STRINGS) {
                    fprintf(stderr, "error: more than %d --stop flags\n", VELA_STOP_MAX_STRINGS);
                    return -1;
                }
                a->mm.stops[a->mm.n_stops++] = v;
                return 0;
        }
    }
    if (args_switch(argv, *i, "--chat"))
        a->chat = true;
    else if (args_switch(argv, *i, "--ignore-eos"))
        a->ignore_eos = true;
    else if (args_switch(argv, *i, "--include-stop-str-in-output"))
        a->mm.include_stop = true;
    else if (args_switch(argv, *i, "--no-mmap"))
        a->no_mmap = true;
    else {
        fprintf(stderr, "error: unknown argument %s\n", argv[*i]);
        return -1;
    }
    return 0;
}

static int parse_args(struct gen_args *a, int argc, char **argv) {
    *a = (struct gen_args){
        .max_tokens = 128, .threads = 2, .chunk = GEN_DEFAULT_CHUNK, .kv_dtype = BE_BF16};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return 1;
        }
        if (parse_flag(a, argc, argv, &i) != 0) return -1;
    }
    if (!a->model || !a->prompt) {
        fputs(USAGE, stderr);
        return -1;
    }
    return 0;
}

/* The prompt's ids: the text itself, or the chat template around it (one user message,
 * add_generation_prompt). */
static int prompt_ids(const struct gen_args *a, struct tok_ctx *tc, struct tok_ids *ids,
                      struct err *e) {
    char *text = NULL;
    if (a->chat) {
        struct chat_template *ct = NULL;
        int rc = ct_load(&ct, a->model, e);
        json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", a->prompt);
        struct ct_options o = {.add_generation_prompt = true};
        if (rc == 0 && !msgs) rc = err_set(e, VELA_ENOMEM, "out of memory");
        if (rc == 0) rc = ct_render(ct, msgs, &o, &text, e);
        json_decref(msgs);
        ct_free(ct);
        if (rc != 0) return rc;
    }
    const char *s = text ? text : a->prompt;
    int rc = tok_encode(tc, s, strlen(s), 0, ids, e);
    free(text);
    return rc;
}

/* Empty, too long, or ids the embedding does not have. */
static int check_prompt(const struct tok_ids *ids, int64_t max_len, int32_t vocab, struct err *e) {
    if (ids->n == 0) return err_set(e, VELA_EINVAL, "the prompt is empty (0 tokens)");
    if (ids->n >= max_len)
        return err_set(e, VELA_ELIMIT,
                       "the prompt has %lld tokens; the model's limit is %lld (prompt plus at "
                       "least one generated token; see --max-model-len)",
                       (long long)ids->n, (long long)max_len);
    for (int64_t i = 0; i < ids->n; i++)
        if (ids->ids[i] < 0 || ids->ids[i] >= vocab)
            return err_set(e, VELA_EINVAL,
                           "prompt token %lld has id %d, outside the vocabulary "
                           "[0, %d)",
                           (long long)i, (int)ids->ids[i], (int)vocab);
    return 0;
}

static int sampling(const struct gen_args *a, const struct lm_files *f, int64_t max_new,
                    struct sampling_params *sp, struct err *e) {
    sp_defaults(sp);
    sp_apply_gen_config(sp, &f->gen);
    if (sp->n_eos_token_ids == 0) /* no generation_config: config.json's eos ids */
        for (int32_t i = 0; i < f->cfg.n_eos_token_ids && i < VELA_CFG_MAX_EOS_IDS; i++)
            sp->eos_token_ids[sp->n_eos_token_ids++] = f->cfg.eos_token_ids[i];
    if (a->has_temp) sp->temperature = (float)a->temperature;
    if (a->has_top_p) sp->top_p = (float)a->top_p;
    if (a->has_top_k) sp->top_k = (int32_t)a->top_k;
    if (a->has_rep) sp->repetition_penalty = (float)a->rep_penalty;
    sp->seed = a->seed, sp->has_seed = a->has_seed;
    sp->ignore_eos = a->ignore_eos;
    sp->max_tokens = (int32_t)max_new;
    return sp_validate(sp, e);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Everything one generation holds. */
struct gen_run {
    struct lm *m;
    struct lm_batch_buf bb;
    struct sampler *smp;
    int32_t *table; /* block table: 0, 1, 2, ... (one sequence owns the whole cache) */
    int32_t n_table;
    float *logits; /* (V) */
    struct tok_ids out;
};

/* Prefill the prompt in chunks; the last chunk's last row leaves logits in r->logits. */
static int prefill(struct gen_run *r, const struct tok_ids *ids, int64_t chunk, struct err *e) {
    int32_t n = (int32_t)ids->n, delta = 0;
    int32_t *pos = malloc((size_t)n * 3 * sizeof *pos);
    if (!pos) return err_set(e, VELA_ENOMEM, "out of memory");
    int rc = mrope_prompt_positions(ids->ids, n, NULL, pos, &delta, e);
    for (int32_t p = 0; rc == 0 && p < n; p += (int32_t)chunk) {
        int32_t c = n - p < chunk ? n - p : (int32_t)chunk;
        lmb_reset(&r->bb);
        rc =
            lmb_add(&r->bb, ids->ids + p, c, p, pos + p, n, 0, r->table, r->n_table, p + c == n, e);
        if (rc == 0) rc = lm_forward(r->m, &r->bb.b, r->logits, e);
    }
    free(pos);
    return rc;
}

static int check_finite(const float *x, int32_t n, int64_t step, struct err *e) {
    for (int32_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return err_set(e, VELA_EINTERNAL,
                           "the model produced a non-finite logit (%g for id %d) "
                           "at generated token %lld: not sampled",
                           (double)x[i], (int)i, (long long)step);
    return 0;
}

static bool is_eos(const struct sampling_params *sp, int32_t id) {
    for (int32_t i = 0; i < sp->n_eos_token_ids; i++)
        if (sp->eos_token_ids[i] == id) return true;
    return false;
}

/* Prints the part of txt that stop matcher sm releases; *hit set when a stop string matched. */
static int print_text(struct stop_matcher *sm, const struct tok_text *txt, bool *hit,
                      struct err *e) {
    struct stop_out o;
    int rc = stop_feed(sm, txt->p, txt->n, &o, e);
    if (rc == 0 && o.n_text) fwrite(o.text, 1, o.n_text, stdout), fflush(stdout);
    *hit = rc == 0 && o.hit >= 0;
    return rc;
}

/* Sample, print, feed back: until max tokens, eos or a stop string (matched on the text by
 * sm, as the server does). *n_gen counts sampled tokens. */
static int decode(struct gen_run *r, const struct tok_ids *prompt, const struct sampling_params *sp,
                  const struct tokenizer *tok, struct stop_matcher *sm, int64_t *n_gen,
                  struct err *e) {
    struct detok d;
    struct tok_text txt = {0};
    struct smp_rng rng;
    smp_rng_init(&rng, sp, sp->seed, 0);
    detok_init(&d, tok, true);
    int32_t V = lm_vocab(r->m), n = (int32_t)prompt->n;
    int rc = 0;
    bool hit = false;
    for (*n_gen = 0; rc == 0 && !hit && *n_gen < sp->max_tokens;) {
        rc = check_finite(r->logits, V, *n_gen, e);
        struct smp_seq q = {.params = sp,
                            .prompt_ids = prompt->ids,
                            .n_prompt = n,
                            .output_ids = r->out.ids,
                            .n_output = (int32_t)r->out.n,
                            .rng = &rng};
        struct smp_out o;
        if (rc == 0) rc = smp_sample(r->smp, r->logits, 1, &q, &o, e);
        if (rc == 0) rc = tok_ids_push(&r->out, o.token) == 0 ? 0 : VELA_ENOMEM;
        if (rc != 0) break;
        ++*n_gen;
        if (!sp->ignore_eos && is_eos(sp, o.token)) break;
        txt.n = 0;
        rc = detok_feed(&d, o.token, &txt, e);
        if (rc == 0 && txt.n) rc = print_text(sm, &txt, &hit, e);
        if (rc != 0 || hit || *n_gen == sp->max_tokens) break;
        lmb_reset(&r->bb);
        rc = lmb_add(&r->bb, &o.token, 1, n + (int32_t)*n_gen - 1, NULL, 0, 0, r->table, r->n_table,
                     true, e);
        if (rc == 0) rc = lm_forward(r->m, &r->bb.b, r->logits, e);
    }
    txt.n = 0;
    struct err fe = {0};
    if (!hit && detok_flush(&d, &txt, &fe) == 0 && txt.n) print_text(sm, &txt, &hit, &fe);
    struct stop_out so;
    stop_finish(sm, &so);
    if (so.n_text) fwrite(so.text, 1, so.n_text, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    tok_text_free(&txt);
    detok_deinit(&d);
    return rc;
}

static int run_setup(struct gen_run *r, struct be *b, const struct lm_files *f, int64_t total,
                     const struct gen_args *a, struct err *e) {
    int32_t bs = 16;
    r->n_table = (int32_t)((total + bs - 1) / bs);
    r->table = malloc((size_t)r->n_table * sizeof *r->table);
    r->logits = malloc((size_t)f->cfg.vocab_size * sizeof *r->logits);
    if (!r->table || !r->logits) return err_set(e, VELA_ENOMEM, "out of memory");
    for (int32_t i = 0; i < r->n_table; i++) r->table[i] = i;
    int32_t chunk = (int32_t)(a->chunk < total ? a->chunk : total);
    struct lm_options o = {.max_tokens = chunk,
                           .max_seqs = 1,
                           .n_blocks = r->n_table,
                           .block_size = bs,
                           .kv_dtype = a->kv_dtype,
                           .logit_rows = 1};
    int rc = lm_new(&r->m, b, &f->cfg, f->w, &o, e);
    if (rc == 0) rc = lmb_init(&r->bb, chunk, 1, r->n_table, bs, e);
    if (rc == 0) rc = smp_new(&r->smp, 1, f->cfg.vocab_size, e);
    return rc;
}

static void run_free(struct gen_run *r) {
    lm_free(r->m);
    lmb_deinit(&r->bb);
    smp_free(r->smp);
    free(r->table);
    free(r->logits);
    tok_ids_free(&r->out);
}

/* --image / --video-frames: the engine path with the vision tower (cli/gen_mm.c). */
static int generate_mm(const struct gen_args *a, const struct lm_files *f,
                       const struct tokenizer *tok, struct err *e) {
    struct gen_mm_args m = a->mm;
    m.model = a->model, m.prompt = a->prompt;
    m.threads = a->threads, m.max_model_len = a->max_model_len, m.chunk = a->chunk;
    m.kv_dtype = a->kv_dtype;
    struct sampling_params sp;
    int rc = sampling(a, f, a->max_tokens, &sp, e); /* gen_mm_run bounds it by the context */
    if (rc == 0) rc = gen_mm_run(&m, f, tok, &sp, e);
    return rc;
}

static int generate(const struct gen_args *a, const struct lm_files *f, struct tokenizer *tok,
                    struct err *e) {
    char desc[64];
    if (a->mm.n_images > 0 || a->mm.n_frames > 0) return generate_mm(a, f, tok, e);
    struct tok_ctx *tc = tok_ctx_new(tok);
    struct tok_ids ids = {0};
    struct gen_run r = {0};
    struct sampling_params sp;
    struct be *b = NULL;
    int64_t limit = a->max_model_len ? a->max_model_len : f->cfg.max_position_embeddings;
    int rc = tc ? prompt_ids(a, tc, &ids, e) : err_set(e, VELA_ENOMEM, "out of memory");
    if (rc == 0) rc = check_prompt(&ids, limit, f->cfg.vocab_size, e);
    int64_t max_new = a->max_tokens < limit - ids.n ? a->max_tokens : limit - ids.n;
    if (rc == 0) rc = sampling(a, f, max_new, &sp, e);
    if (rc == 0) rc = be_device_open(a->mm.device, (int)a->threads, &b, e);
    if (rc == 0) rc = run_setup(&r, b, f, ids.n + max_new, a, e);
    double t0 = now_s(), t1 = t0, t2 = t0;
    int64_t n_gen = 0;
    if (rc == 0) rc = prefill(&r, &ids, a->chunk, e);
    t1 = now_s();
    struct stop_matcher sm = {0};
    if (rc == 0) rc = stop_init(&sm, a->mm.stops, a->mm.n_stops, a->mm.include_stop, e);
    if (rc == 0) rc = decode(&r, &ids, &sp, tok, &sm, &n_gen, e);
    stop_deinit(&sm);
    t2 = now_s();
    if (rc == 0)
        fprintf(stderr,
                "prompt: %lld tokens in %.3f s (%.1f tokens/s); generation: %lld tokens in "
                "%.3f s (%.2f tokens/s); %s\n",
                (long long)ids.n, t1 - t0, (double)ids.n / (t1 - t0), (long long)n_gen, t2 - t1,
                n_gen > 1 ? (double)(n_gen - 1) / (t2 - t1) : 0.0,
                be_device_describe(b, (int)a->threads, desc, sizeof desc));
    run_free(&r);
    be_free(b);
    tok_ids_free(&ids);
    tok_ctx_free(tc);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    struct gen_args a;
    int pr = parse_args(&a, argc, argv);
    if (pr != 0) {
        free(a.mm.frames_buf);
        return pr > 0 ? 0 : 2;
    }
    struct err e = {0};
    struct lm_files f = {0};
    struct tokenizer *tok = NULL;
    int rc = be_device_check(a.mm.device, &e); /* before loading the model */
    if (rc == 0)
        rc = lm_files_open_mode(&f, a.model, a.no_mmap ? FILE_MAP_READ : FILE_MAP_MMAP, &e);
    if (rc == 0) rc = tok_load(a.model, &tok, &e);
    if (rc == 0) rc = generate(&a, &f, tok, &e);
    if (rc != 0) fprintf(stderr, "error: %s\n", e.msg);
    tok_free(tok);
    lm_files_close(&f);
    free(a.mm.frames_buf);
    return rc == 0 ? 0 : 1;
}

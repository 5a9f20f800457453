/* cmd_inspect: `vela inspect MODEL_DIR [--max-model-len N] [--json]`.
 *
 * Prints a model's architecture, text and vision dimensions, parameter counts (vision tower
 * and language model apart, with thousands separators), BF16 bytes, KV-cache bytes per token
 * and the memory one sequence of --max-model-len tokens needs (KV plus weights).
 *
 * A folder with only config.json gives counts from the config. A folder with safetensors
 * gives counts from the tensors, after weights_load has checked every tensor against the
 * config (check-only: nothing is converted); a missing tensor, a wrong shape or counts that
 * differ from the config's are an error (exit 1). Main thread only. */
#include "cli/args.h"
#include "cli/commands.h"
#include "model/config.h"
#include "model/params.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "util/file.h"
#include "util/limits.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct inspect {
    struct model_config cfg;
    struct param_counts pc;
    bool from_tensors; /* counts checked against the checkpoint */
    int64_t n_unexpected;
    int64_t max_len;
    int64_t kv_seq_bytes, need_bytes;
};

/* 1234567 -> "1,234,567" */
static const char *commas(char *buf, size_t cap, int64_t v) {
    char raw[32];
    snprintf(raw, sizeof raw, "%" PRId64, v < 0 ? -v : v);
    size_t n = strlen(raw), o = 0;
    if (v < 0 && o + 1 < cap) buf[o++] = '-';
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
    return buf;
}

static double gib(int64_t b) {
    return (double)b / (1024.0 * 1024.0 * 1024.0);
}

static int usage(void) {
    fprintf(stderr, "usage: vela inspect MODEL_DIR [--max-model-len N] [--json]\n");
    return 2;
}

static bool has_checkpoint(const char *dir) {
    char p[4096];
    struct err e = {0};
    if (path_join(p, sizeof p, dir, "model.safetensors.index.json", &e) == 0 && file_exists(p))
        return true;
    return path_join(p, sizeof p, dir, "model.safetensors", &e) == 0 && file_exists(p);
}

/* Checks the checkpoint against the config and replaces the totals by the tensors' sums. */
static int count_tensors(struct inspect *in, const char *dir, struct err *e) {
    struct st_model *m = NULL;
    struct weights *w = NULL;
    int rc = st_model_open(&m, dir, e);
    if (rc == 0) rc = weights_load(&w, &in->cfg, m, WEIGHTS_CHECK_ONLY, e);
    if (rc == 0) {
        int64_t v = weights_params_vision(w), l = weights_params_lm(w);
        if (v != in->pc.vision_total || l != in->pc.lm_total)
            rc = err_set(e, VELA_EFORMAT,
                         "tensor counts (vision %" PRId64 ", language model %" PRId64
                         ") differ from the config's (%" PRId64 ", %" PRId64 ")",
                         v, l, in->pc.vision_total, in->pc.lm_total);
        in->pc.vision_total = v;
        in->pc.lm_total = l;
        in->pc.total = v + l;
        in->n_unexpected = weights_n_unexpected(w);
        in->from_tensors = true;
    }
    weights_free(w);
    st_model_close(m);
    return rc;
}

static void print_text(const struct inspect *in, const char *dir) {
    const struct model_config *c = &in->cfg;
    const struct param_counts *pc = &in->pc;
    char a[32], b[32], d[32], f[32];
    printf("model:            %s\n", dir);
    printf("architecture:     %s (%s)\n", c->architecture, cfg_arch_label(c->arch));
    printf("text:             hidden %d, intermediate %d, layers %d, heads %d, kv heads %d, "
           "head_dim %d\n",
           c->hidden_size, c->intermediate_size, c->num_hidden_layers, c->num_attention_heads,
           c->num_key_value_heads, c->head_dim);
    printf("                  vocab %d, max positions %d, rope_theta %g, rms_norm_eps %g, "
           "tied embeddings %s\n",
           c->vocab_size, c->max_position_embeddings, c->rope_theta, c->rms_norm_eps,
           c->tie_word_embeddings ? "yes" : "no");
    if (c->has_mrope)
        printf("                  mrope sections [%d, %d, %d]\n", c->mrope_section[0],
               c->mrope_section[1], c->mrope_section[2]);
    if (c->has_vision) {
        const struct vision_config *v = &c->vision;
        printf("vision:           depth %d, hidden %d, intermediate %d, heads %d, act %s\n",
               v->depth, v->hidden_size, v->intermediate_size, v->num_heads, v->hidden_act);
        printf("                  patch %d, temporal patch %d, merge %d, window %d, "
               "full-attention blocks %d, out %d\n",
               v->patch_size, v->temporal_patch_size, v->spatial_merge_size, v->window_size,
               v->n_fullatt, v->out_hidden_size);
    }
    printf("parameters (from %s):\n", in->from_tensors ? "tensors" : "config");
    printf("  vision tower:   %s\n", commas(a, sizeof a, pc->vision_total));
    printf("  language model: %s\n", commas(a, sizeof a, pc->lm_total));
    printf("  total:          %s\n", commas(a, sizeof a, pc->total));
    printf("  tensors:        %s", commas(a, sizeof a, pc->n_tensors));
    if (in->n_unexpected) printf(" (+%" PRId64 " unexpected, ignored)", in->n_unexpected);
    printf("\n");
    printf("bf16 bytes:       %s (%.2f GiB)\n", commas(a, sizeof a, 2 * pc->total),
           gib(2 * pc->total));
    printf("kv cache:         %s bytes per token\n", commas(a, sizeof a, pc->kv_bytes_per_token));
    printf("one sequence of %s tokens: kv %s (%.2f GiB) + weights %s = %s bytes (%.2f GiB)\n",
           commas(a, sizeof a, in->max_len), commas(b, sizeof b, in->kv_seq_bytes),
           gib(in->kv_seq_bytes), commas(d, sizeof d, 2 * pc->total),
           commas(f, sizeof f, in->need_bytes), gib(in->need_bytes));
}

static int print_json(const struct inspect *in, const char *dir) {
    const struct model_config *c = &in->cfg;
    const struct param_counts *pc = &in->pc;
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}, s:s, s:{s:I, s:I, s:I, s:I, "
        "s:I, s:I}, s:I, s:I, s:I, s:I, s:I}",
        "model", dir, "architecture", c->architecture, "label", cfg_arch_label(c->arch), "text",
        "hidden_size", (json_int_t)c->hidden_size, "intermediate_size",
        (json_int_t)c->intermediate_size, "num_hidden_layers", (json_int_t)c->num_hidden_layers,
        "num_attention_heads", (json_int_t)c->num_attention_heads, "num_key_value_heads",
        (json_int_t)c->num_key_value_heads, "head_dim", (json_int_t)c->head_dim, "vocab_size",
        (json_int_t)c->vocab_size, "tie_word_embeddings", c->tie_word_embeddings, "counts_from",
        in->from_tensors ? "tensors" : "config", "params", "vision", (json_int_t)pc->vision_total,
        "language_model", (json_int_t)pc->lm_total, "total", (json_int_t)pc->total, "tensors",
        (json_int_t)pc->n_tensors, "unexpected_tensors", (json_int_t)in->n_unexpected, "lm_head",
        (json_int_t)pc->lm_head, "bf16_bytes", (json_int_t)(2 * pc->total), "kv_bytes_per_token",
        (json_int_t)pc->kv_bytes_per_token, "max_model_len", (json_int_t)in->max_len,
        "kv_bytes_per_sequence", (json_int_t)in->kv_seq_bytes, "memory_bytes",
        (json_int_t)in->need_bytes);
    if (!o) return -1;
    if (c->has_vision) {
        const struct vision_config *v = &c->vision;
        json_t *vj =
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "depth", (json_int_t)v->depth,
                      "hidden_size", (json_int_t)v->hidden_size, "intermediate_size",
                      (json_int_t)v->intermediate_size, "num_heads", (json_int_t)v->num_heads,
                      "patch_size", (json_int_t)v->patch_size, "spatial_merge_size",
                      (json_int_t)v->spatial_merge_size, "window_size", (json_int_t)v->window_size,
                      "out_hidden_size", (json_int_t)v->out_hidden_size);
        if (!vj || json_object_set_new(o, "vision", vj) != 0) {
            json_decref(o);
            return -1;
        }
    }
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) return -1;
    printf("%s\n", s);
    free(s);
    return 0;
}

int cmd_inspect(int argc, char **argv) {
    const char *dir = NULL, *len_s = NULL;
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        int r = args_value(argc, argv, &i, "--max-model-len", &len_s);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (args_switch(argv, i, "--json")) {
            as_json = true;
        } else if (args_switch(argv, i, "--help") || args_switch(argv, i, "-h")) {
            printf("usage: vela inspect MODEL_DIR [--max-model-len N] [--json]\n");
            return 0;
        } else if (argv[i][0] == '-' || dir) {
            fprintf(stderr, "error: unexpected argument '%s'\n", argv[i]);
            return usage();
        } else {
            dir = argv[i];
        }
    }
    if (!dir) return usage();
    struct inspect in;
    memset(&in, 0, sizeof in);
    struct err e = {0};
    int rc = cfg_load(&in.cfg, dir, &e);
    if (rc == 0) {
        params_count(&in.cfg, &in.pc);
        in.max_len = in.cfg.max_position_embeddings;
        if (len_s && args_int("--max-model-len", len_s, 1, VELA_CFG_MAX_POSITIONS, &in.max_len))
            return 2;
        if (has_checkpoint(dir)) rc = count_tensors(&in, dir, &e);
    }
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", e.msg);
        return 1;
    }
    /* <= 2^24 tokens x a few MB per token: far inside int64. */
    in.kv_seq_bytes = in.max_len * in.pc.kv_bytes_per_token;
    in.need_bytes = in.kv_seq_bytes + 2 * in.pc.total;
    if (as_json) {
        if (print_json(&in, dir) != 0) {
            fprintf(stderr, "error: out of memory\n");
            return 1;
        }
    } else {
        print_text(&in, dir);
    }
    return 0;
}

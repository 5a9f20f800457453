/* Tests for `vela generate` (src/cli/cmd_generate.c), run as a process ($VELA_BIN): on the
 * tiny model, greedy generation on the FP32 path prints exactly the text of the reference's
 * greedy continuation (tests/fixtures/lm/tiny.safetensors, detokenized here) and a timing
 * line; --stop cuts the text as vLLM does; --chat runs; sampling with a seed is reproducible; bad
 * prompts and flags fail with a message. */
#include "model/generator.h"
#include "model/presets.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"
#include "util/file.h"
#include "t.h"
#include "cli_fixture.h"

#include <stdint.h>
#include <sys/wait.h>

static char g_dir[4200];

/* Runs `$VELA_BIN args`; stdout to out, stderr to errbuf. */
static int run_vela(const char *args, char *out, size_t cap, char *errbuf, size_t ecap) {
    return cli_run(g_dir, "", args, out, cap, errbuf, ecap);
}

static bool setup(void) {
    return cli_setup_tiny("generate", g_dir, sizeof g_dir);
}

/* Greedy without the generation_config repetition penalty, FP32 path, ignoring eos: the
 * reference's 32 greedy tokens of prompt 0, as text. */
static void test_greedy_matches_reference(void) {
    struct err e = {0};
    struct st_file *f = NULL;
    struct tokenizer *tok = NULL;
    char model[4300];
    snprintf(model, sizeof model, "%s/tiny", g_dir);
    int rc = st_open(&f, t_src("tests/fixtures/lm/tiny.safetensors"), &e);
    if (rc == 0) rc = tok_load(model, &tok, &e);
    T_RC(rc, &e);
    const struct st_tensor *g = f ? st_file_find(f, "greedy_0") : NULL;
    T_OK(g != NULL);
    struct tok_text want = {0};
    if (rc == 0 && g) T_RC(tok_decode(tok, g->data, g->n_elems, true, &want, &e), &e);
    static char out[1 << 16], errb[1 << 14];
    char args[5000];
    snprintf(args, sizeof args,
             "generate --model '%s' --prompt 'Hello world, this is a test.' --max-tokens 32 "
             "--temperature 0 --repetition-penalty 1 --ignore-eos --kv-cache-dtype f32 --threads 2",
             model);
    /* the FP32 path (avx2 keeps FP32 activations); portable on CPUs without AVX2 */
    char cmd[5100];
    snprintf(cmd, sizeof cmd, "%s", args);
    setenv("VELA_CPU_ISA", "portable", 1);
    T_EQ(run_vela(cmd, out, sizeof out, errb, sizeof errb), 0);
    unsetenv("VELA_CPU_ISA");
    if (want.p) {
        size_t n = strlen(out);
        T_CHECK_(n == want.n + 1 && memcmp(out, want.p, want.n) == 0 && out[n - 1] == '\n',
                 "greedy text differs:\n got  [%s]\n want [%s]", out, want.p);
    }
    T_OK(strstr(errb, "prompt: 16 tokens") != NULL);
    T_OK(strstr(errb, "generation: 32 tokens") != NULL);
    tok_text_free(&want);
    tok_free(tok);
    st_close(f);
}

/* --stop: a 3-byte piece of the greedy text (printable ASCII, no quote) cuts the output right
 * before its first occurrence, or right after it with --include-stop-str-in-output, and
 * generation ends early; an empty stop string is refused. */
static void test_stop(void) {
    struct err e = {0};
    struct st_file *f = NULL;
    struct tokenizer *tok = NULL;
    char model[4300];
    snprintf(model, sizeof model, "%s/tiny", g_dir);
    int rc = st_open(&f, t_src("tests/fixtures/lm/tiny.safetensors"), &e);
    if (rc == 0) rc = tok_load(model, &tok, &e);
    T_RC(rc, &e);
    const struct st_tensor *g = f ? st_file_find(f, "greedy_0") : NULL;
    struct tok_text want = {0};
    if (rc == 0 && g) T_RC(tok_decode(tok, g->data, g->n_elems, true, &want, &e), &e);
    size_t at = 0;
    for (size_t i = want.n / 2; want.p && at == 0 && i + 3 <= want.n; i++) {
        bool ok = true;
        for (size_t j = i; j < i + 3; j++)
            ok = ok && want.p[j] > ' ' && want.p[j] < 127 && want.p[j] != '\'' && want.p[j] != '\\';
        if (ok) at = i;
    }
    T_CHECK_(at > 0, "no ASCII piece in the greedy text [%s]", want.p ? want.p : "");
    if (at > 0) {
        char stop[4] = {want.p[at], want.p[at + 1], want.p[at + 2], 0};
        size_t first = (size_t)(strstr(want.p, stop) - want.p);
        static char out[1 << 16], errb[1 << 14];
        char args[5000];
        for (int inc = 0; inc < 2; inc++) {
            snprintf(
                args, sizeof args,
                "generate --model '%s' --prompt 'Hello world, this is a test.' --max-tokens 32 "
                "--temperature 0 --repetition-penalty 1 --ignore-eos --kv-cache-dtype f32 "
                "--threads 2 --stop zzzzqqq --stop '%s'%s",
                model, stop, inc ? " --include-stop-str-in-output" : "");
            setenv("VELA_CPU_ISA", "portable", 1);
            T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 0);
            unsetenv("VELA_CPU_ISA");
            size_t n = first + (inc ? 3 : 0);
            T_CHECK_(strlen(out) == n + 1 && memcmp(out, want.p, n) == 0 && out[n] == '\n',
                     "stop '%s' (include %d): got [%s] from [%s]", stop, inc, out, want.p);
            T_OK(strstr(errb, "generation: 32 tokens") == NULL);
        }
        snprintf(args, sizeof args, "generate --model '%s' --prompt x --stop ''", model);
        T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 1);
        T_OK(strstr(errb, "stop[0] is empty") != NULL);
    }
    tok_text_free(&want);
    tok_free(tok);
    st_close(f);
}

static void test_sampling_and_chat(void) {
    static char o1[1 << 16], o2[1 << 16], errb[1 << 14];
    char args[5000];
    snprintf(args, sizeof args,
             "generate --model '%s/tiny' --prompt 'Describe the picture.' --chat --max-tokens 12 "
             "--temperature 0.9 --top-p 0.95 --top-k 50 --seed 7 --ignore-eos",
             g_dir);
    T_EQ(run_vela(args, o1, sizeof o1, errb, sizeof errb), 0);
    T_OK(strstr(errb, "generation: 12 tokens") != NULL);
    T_EQ(run_vela(args, o2, sizeof o2, errb, sizeof errb), 0);
    T_STREQ(o1, o2); /* same seed, same text */
}

static void test_errors(void) {
    static char out[1 << 12], errb[1 << 14];
    char args[5000];
    snprintf(args, sizeof args, "generate --model '%s/tiny' --prompt ''", g_dir);
    T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 1);
    T_OK(strstr(errb, "empty") != NULL);
    snprintf(args, sizeof args,
             "generate --model '%s/tiny' --prompt 'one two three four' --max-model-len 3", g_dir);
    T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 1);
    T_OK(strstr(errb, "limit is 3") != NULL);
    snprintf(args, sizeof args, "generate --model '%s/tiny' --prompt x --top-p 2", g_dir);
    T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 2);
    snprintf(args, sizeof args, "generate --model '%s/tiny' --prompt x --bogus", g_dir);
    T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 2);
    snprintf(args, sizeof args, "generate --model '%s/nothing' --prompt x", g_dir);
    T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 1);
    T_OK(strstr(errb, "error:") != NULL);
    T_EQ(run_vela("generate --prompt x", out, sizeof out, errb, sizeof errb), 2);
}

/* A checkpoint whose final norm gain is NaN: the logits are non-finite, which is reported as
 * an error and never sampled. The folder is a copy of the tiny model with that tensor patched. */
static void test_nan_logits(void) {
    struct err e = {0};
    char src[4300], dst[4300], cmd[9000];
    snprintf(src, sizeof src, "%s/tiny", g_dir);
    snprintf(dst, sizeof dst, "%s/nan", g_dir);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", src, dst);
    T_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/model.safetensors", dst);
    char *buf = NULL;
    size_t n = 0;
    struct st_file *f = NULL;
    int rc = file_read_all(cmd, 64u << 20, &buf, &n, &e);
    if (rc == 0) rc = st_parse(&f, (const unsigned char *)buf, n, "nan", &e);
    T_RC(rc, &e);
    const struct st_tensor *t = f ? st_file_find(f, "model.norm.weight") : NULL;
    T_OK(t != NULL);
    if (t) {
        uint16_t *g = (uint16_t *)((char *)buf + ((const char *)t->data - buf));
        for (int64_t i = 0; i < t->n_elems; i++) g[i] = 0x7fc0; /* BF16 NaN */
        T_RC(file_write_all(cmd, buf, n, &e), &e);
    }
    st_close(f);
    free(buf);
    static char out[1 << 12], errb[1 << 14];
    char args[5000];
    snprintf(args, sizeof args, "generate --model '%s' --prompt 'Hello' --max-tokens 4", dst);
    T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 1);
    T_CHECK_(strstr(errb, "non-finite") != NULL, "stderr: %s", errb);
}

int main(void) {
    if (setup()) {
        T_RUN(test_greedy_matches_reference);
        T_RUN(test_stop);
        T_RUN(test_sampling_and_chat);
        T_RUN(test_errors);
        T_RUN(test_nan_logits);
    }
    return t_done();
}

/* Tests for `vela generate --image / --video-frames` (src/cli/gen_mm.c), run as a process
 * ($VELA_BIN) on the tiny model, FP32 path (VELA_CPU_ISA=portable, F32 KV cache):
 *   - one image (fixture prompt 0) and a two-frame video (prompt 3) print exactly the text
 *     of the transformers reference's 32 greedy tokens (tests/fixtures/vlm, detokenized
 *     here), at the reference's pixel budget;
 *   - a small prefill chunk (placeholders over several chunks) prints the same text;
 *   - --stop cuts the text and aborts the engine request early;
 *   - errors with a message: an unreadable file, a truncated image, an aspect ratio over 200,
 *     an empty --video-frames entry, a model without a vision tower is not needed here. */
#include "model/generator.h"
#include "model/presets.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"
#include "t.h"
#include "cli_fixture.h"

#include <png.h>
#include <stdint.h>
#include <sys/wait.h>

static char g_dir[4200];

/* Runs `$VELA_BIN args` on the FP32 path; stdout to out, stderr to errbuf. */
static int run_vela(const char *args, char *out, size_t cap, char *errbuf, size_t ecap) {
    return cli_run(g_dir, "VELA_CPU_ISA=portable", args, out, cap, errbuf, ecap);
}

static bool setup(void) {
    return cli_setup_tiny("generate_image", g_dir, sizeof g_dir);
}

/* The reference text of fixture prompt i. */
static int want_text(int i, struct tok_text *want) {
    struct err e = {0};
    struct st_file *f = NULL;
    struct tokenizer *tok = NULL;
    char model[4300], name[32];
    snprintf(model, sizeof model, "%s/tiny", g_dir);
    int rc = st_open(&f, t_src("tests/fixtures/vlm/tiny.safetensors"), &e);
    if (rc == 0) rc = tok_load(model, &tok, &e);
    T_RC(rc, &e);
    snprintf(name, sizeof name, "greedy_%d", i);
    const struct st_tensor *g = f ? st_file_find(f, name) : NULL;
    T_OK(g != NULL);
    if (rc == 0 && g) rc = tok_decode(tok, g->data, g->n_elems, true, want, &e);
    if (!g && rc == 0) rc = -1;
    tok_free(tok);
    st_close(f);
    return rc;
}

static void check_run(const char *media, const char *text, const char *extra, int ref) {
    static char out[1 << 16], errb[1 << 14];
    struct tok_text want = {0};
    if (want_text(ref, &want) != 0) return;
    char args[9000];
    snprintf(args, sizeof args,
             "generate --model '%s/tiny' %s --prompt '%s' --max-tokens 32 --temperature 0 "
             "--repetition-penalty 1 --ignore-eos --kv-cache-dtype f32 --threads 1 "
             "--min-pixels 3136 --max-pixels 12544 %s",
             g_dir, media, text, extra);
    T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 0);
    size_t n = strlen(out);
    T_CHECK_(n == want.n + 1 && memcmp(out, want.p, want.n) == 0 && out[n - 1] == '\n',
             "%s %s: greedy text differs:\n got  [%s]\n want [%s]\n stderr %s", media, extra, out,
             want.p, errb);
    T_OK(strstr(errb, "vision encoder and prefill in") != NULL);
    T_OK(strstr(errb, "generation: 32 tokens") != NULL);
    tok_text_free(&want);
}

static void test_reference(void) {
    char img[4300], frames[9000];
    const char *p = t_shared("testdata/images/chelsea.png");
    if (!p) return;
    snprintf(img, sizeof img, "--image '%s'", p);
    check_run(img, "Describe this image.", "", 0);
    check_run(img, "Describe this image.", "--max-num-batched-tokens 16", 0);
    snprintf(frames, sizeof frames, "--video-frames '%s,%s'", p,
             t_src("tests/fixtures/vlm/frame2.png"));
    check_run(frames, "What happens?", "", 3);
}

/* --stop on the engine path: the hit aborts the request (solo_run), the text is cut before
 * the first occurrence of a 3-byte piece of the reference text, and fewer than 32 tokens run. */
static void test_stop(void) {
    static char out[1 << 16], errb[1 << 14];
    const char *p = t_shared("testdata/images/chelsea.png");
    struct tok_text want = {0};
    if (!p || want_text(0, &want) != 0) return;
    size_t at = 0;
    for (size_t i = want.n / 2; at == 0 && i + 3 <= want.n; i++) {
        bool ok = true;
        for (size_t j = i; j < i + 3; j++)
            ok = ok && want.p[j] > ' ' && want.p[j] < 127 && want.p[j] != '\'' && want.p[j] != '\\';
        if (ok) at = i;
    }
    T_CHECK_(at > 0, "no ASCII piece in the reference text [%s]", want.p);
    if (at > 0) {
        char stop[4] = {want.p[at], want.p[at + 1], want.p[at + 2], 0}, args[9000];
        size_t first = (size_t)(strstr(want.p, stop) - want.p);
        snprintf(args, sizeof args,
                 "generate --model '%s/tiny' --image '%s' --prompt 'Describe this image.' "
                 "--max-tokens 32 --temperature 0 --repetition-penalty 1 --ignore-eos "
                 "--kv-cache-dtype f32 --threads 1 --min-pixels 3136 --max-pixels 12544 "
                 "--stop '%s'",
                 g_dir, p, stop);
        T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 0);
        T_CHECK_(strlen(out) == first + 1 && memcmp(out, want.p, first) == 0 && out[first] == '\n',
                 "stop '%s': got [%s] from [%s]", stop, out, want.p);
        T_OK(strstr(errb, "generation: 32 tokens") == NULL); /* stopped early */
        T_OK(strstr(errb, "generation: ") != NULL);
    }
    tok_text_free(&want);
}

/* A 1 x 201 PNG: aspect ratio 201. */
static int write_thin_png(const char *path) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = 201, im.height = 1, im.format = PNG_FORMAT_RGB;
    uint8_t px[201 * 3];
    memset(px, 90, sizeof px);
    return png_image_write_to_file(&im, path, 0, px, 0, NULL) ? 0 : -1;
}

static void test_errors(void) {
    static char out[1 << 12], errb[1 << 14];
    char args[9000], path[4400];
    snprintf(args, sizeof args, "generate --model '%s/tiny' --image '%s/none.png' --prompt x",
             g_dir, g_dir);
    T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 1);
    T_OK(strstr(errb, "none.png") != NULL);
    const char *tr = t_shared("testdata/images/truncated.jpg");
    if (tr) {
        snprintf(args, sizeof args, "generate --model '%s/tiny' --image '%s' --prompt x", g_dir,
                 tr);
        T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 1);
        T_OK(strstr(errb, "truncated.jpg") != NULL);
    }
    snprintf(path, sizeof path, "%s/thin.png", g_dir);
    T_EQ(write_thin_png(path), 0);
    snprintf(args, sizeof args, "generate --model '%s/tiny' --image '%s' --prompt x", g_dir, path);
    T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 1);
    T_CHECK_(strstr(errb, "absolute aspect ratio must be smaller than 200, got 201") != NULL,
             "stderr: %s", errb);
    snprintf(args, sizeof args, "generate --model '%s/tiny' --video-frames 'a.png,' --prompt x",
             g_dir);
    T_EQ(run_vela(args, out, sizeof out, errb, sizeof errb), 2);
    T_OK(strstr(errb, "empty file name") != NULL);
}

int main(void) {
    if (setup()) {
        T_RUN(test_reference);
        T_RUN(test_stop);
        T_RUN(test_errors);
    }
    return t_done();
}

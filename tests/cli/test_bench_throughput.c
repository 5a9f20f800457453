/* Tests for `vela bench throughput` (the offline benchmark): on the tiny model it runs every
 * request to its output length and prints vLLM's lines plus TTFT and TPOT; --load-format
 * dummy needs only config.json (a folder holding nothing else runs; without the flag the same
 * folder is an error); bad --device / --load-format values and
 * a GPU asked for where none exists are clear errors. */
#include "t.h"
#include "cli_fixture.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[4096];

static int run(const char *args, char *out, size_t cap, char *errbuf, size_t ecap) {
    return cli_run(g_dir, "", args, out, cap, errbuf, ecap);
}

static void test_tiny(void) {
    static char out[16384], err[16384], args[12000];
    snprintf(args, sizeof args,
             "bench throughput --model '%s/tiny' --input-len 24 --output-len 6 --num-prompts 5 "
             "--kv-cache-memory 4000000 --device cpu",
             g_dir);
    T_EQ(run(args, out, sizeof out, err, sizeof err), 0);
    T_OK(strstr(out, "Throughput: ") != NULL);
    T_OK(strstr(out, "for 5 requests (120 prompt + 30 output tokens)") != NULL);
    T_OK(strstr(out, "TTFT: mean ") != NULL && strstr(out, "TPOT: mean ") != NULL);
    T_OK(strstr(out, "Engine time: forward ") != NULL);
    T_OK(strstr(out, "(dummy weights)") == NULL);
}

static void test_dummy(void) {
    static char out[16384], err[16384], args[12000], cfg[4200], src[4300], dst[4300];
    snprintf(cfg, sizeof cfg, "%s/config-only", g_dir);
    T_OK(mkdir(cfg, 0755) == 0);
    snprintf(src, sizeof src, "%s/tiny/config.json", g_dir);
    snprintf(dst, sizeof dst, "%s/config.json", cfg);
    T_OK(link(src, dst) == 0);
    snprintf(args, sizeof args,
             "bench throughput --model '%s' --load-format dummy --input-len 24 --output-len 6 "
             "--num-prompts 3 --kv-cache-memory 4000000",
             cfg);
    T_EQ(run(args, out, sizeof out, err, sizeof err), 0);
    T_OK(strstr(out, "(dummy weights)") != NULL);
    T_OK(strstr(out, "for 3 requests (72 prompt + 18 output tokens)") != NULL);
    /* without --load-format dummy the same folder has no checkpoint */
    snprintf(args, sizeof args,
             "bench throughput --model '%s' --input-len 24 --output-len 6 --num-prompts 3", cfg);
    T_OK(run(args, out, sizeof out, err, sizeof err) != 0);
    T_OK(strstr(err, "error: ") != NULL);
}

static void test_errors(void) {
    static char out[16384], err[16384], args[12000];
    const char *bad[] = {"--device tpu", "--load-format gguf", "--gpu-memory-utilization 1.5"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args,
                 "bench throughput --model '%s/tiny' --input-len 8 --output-len 2 --num-prompts 1 "
                 "%s",
                 g_dir, bad[i]);
        T_EQ(run(args, out, sizeof out, err, sizeof err), 2);
        T_CHECK_(strstr(err, "error: ") != NULL, "%s: no error line", bad[i]);
    }
    /* a GPU asked for where there is none (or none built): a clear error, exit 1 */
    snprintf(args, sizeof args,
             "bench throughput --model '%s/tiny' --input-len 8 --output-len 2 --num-prompts 1 "
             "--device cuda",
             g_dir);
    int rc = run(args, out, sizeof out, err, sizeof err);
    if (rc == 0) return; /* this machine has a GPU after all */
    T_EQ(rc, 1);
    T_OK(strstr(err, "--device cuda: ") != NULL);
}

int main(void) {
    if (!cli_setup_tiny("bench_tp", g_dir, sizeof g_dir)) return t_done();
    T_RUN(test_tiny);
    T_RUN(test_dummy);
    T_RUN(test_errors);
    return t_done();
}

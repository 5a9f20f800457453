/* Tests for engine/kv_plan.c: block bytes from the config (tiny and the real 3B shape, spec
 * §1.2), an explicit byte budget, a fraction of memory minus weights and activations, the
 * cap at one full-length request, vLLM's concurrency figure, the start-up lines, and
 * MemAvailable from /proc/meminfo. */
#include "engine/kv_plan.h"
#include "model/config.h"
#include "t.h"

#include <string.h>

static struct model_config tiny_cfg(void) {
    struct model_config c;
    memset(&c, 0, sizeof c);
    c.vocab_size = 704, c.hidden_size = 128, c.intermediate_size = 256;
    c.num_hidden_layers = 2, c.num_attention_heads = 4, c.num_key_value_heads = 2;
    c.head_dim = 32;
    return c;
}

static void test_block_bytes(void) {
    struct model_config c = tiny_cfg();
    /* K and V x 2 layers x 16 tokens x 2 heads x 32 dims x 4 bytes */
    T_EQ(kv_block_bytes(&c, 16, 4), 2 * 2 * 16 * 2 * 32 * 4);
    T_EQ(kv_block_bytes(&c, 16, 2), 8192);
    /* 3B: 36 layers, 2 KV heads of 128: 36 KiB per token in BF16, 576 KiB per block */
    struct model_config b3 = c;
    b3.num_hidden_layers = 36, b3.num_key_value_heads = 2, b3.head_dim = 128;
    T_EQ(kv_block_bytes(&b3, 16, 2), 589824);
    /* scratch: ids + h, x + q, att + k, v + gate, up per row; xs + lg + sids per logit row */
    size_t row = 1 + 2 * 128 + 2 * 128 + 2 * 64 + 2 * 256, lrow = 128 + 704 + 1;
    T_EQ(kv_scratch_bytes(&c, 32, 4), 4 * (32 * row + 4 * lrow));
}

static struct kv_plan_in base_in(const struct model_config *c) {
    return (struct kv_plan_in){.cfg = c,
                               .block_size = 16,
                               .kv_dtype_bytes = 2,
                               .max_model_len = 512,
                               .max_num_batched_tokens = 32,
                               .max_num_seqs = 4};
}

static void test_explicit_budget(void) {
    struct model_config c = tiny_cfg();
    struct kv_plan p;
    struct err e = {0};
    struct kv_plan_in in = base_in(&c);
    in.kv_cache_bytes = 1 << 20; /* 1 MiB / 8 KiB = 128 blocks */
    T_RC(kv_plan_compute(&in, &p, &e), &e);
    T_EQ(p.n_blocks, 128);
    T_EQ(p.kv_bytes, 1 << 20);
    T_EQ(p.n_tokens, 2048);
    T_NEAR(p.max_concurrency, 4.0, 1e-12); /* 2048 tokens / 512 per request */
    in.max_model_len = 500; /* vLLM v1 counts whole blocks: 128 / ceil(500 / 16) = 4.0 */
    T_RC(kv_plan_compute(&in, &p, &e), &e);
    T_NEAR(p.max_concurrency, 4.0, 1e-12);
    in.max_model_len = 512;
    in.kv_cache_bytes = (1 << 20) + 8191; /* never rounded up */
    T_RC(kv_plan_compute(&in, &p, &e), &e);
    T_EQ(p.n_blocks, 128);
    char buf[256];
    kv_plan_describe(&p, 16, 512, buf, sizeof buf);
    T_OK(strstr(buf, "KV cache: 128 blocks of 16 tokens (1.0 MiB), 2048 tokens") != NULL);
    T_OK(strstr(buf, "Maximum concurrency for 512 tokens per request: 4.00x") != NULL);
    /* too small for one request of max_model_len (32 blocks needed) */
    in.kv_cache_bytes = 31 * 8192;
    T_FAILS(kv_plan_compute(&in, &p, &e), VELA_ELIMIT, &e);
    T_OK(strstr(e.msg, "max-model-len") != NULL);
    in.kv_cache_bytes = 32 * 8192;
    T_RC(kv_plan_compute(&in, &p, &e), &e);
    T_NEAR(p.max_concurrency, 1.0, 1e-12);
}

static void test_fraction_budget(void) {
    struct model_config c = tiny_cfg();
    struct kv_plan p;
    struct err e = {0};
    struct kv_plan_in in = base_in(&c);
    size_t scratch = kv_scratch_bytes(&c, 32, 4);
    in.mem_fraction = 0.5;
    in.total_bytes = 8u << 20;
    in.weights_bytes = 1u << 20;
    T_RC(kv_plan_compute(&in, &p, &e), &e);
    T_EQ(p.n_blocks, (int32_t)(((4u << 20) - (1u << 20) - scratch) / 8192));
    T_EQ(p.scratch_bytes, scratch);
    /* weights past the share: refused, naming the numbers */
    in.weights_bytes = 5u << 20;
    T_FAILS(kv_plan_compute(&in, &p, &e), VELA_ELIMIT, &e);
    T_OK(strstr(e.msg, "weights") != NULL);
    in.weights_bytes = 0;
    in.mem_fraction = 0;
    T_FAILS(kv_plan_compute(&in, &p, &e), VELA_EINVAL, &e);
    in.mem_fraction = 1.5;
    T_FAILS(kv_plan_compute(&in, &p, &e), VELA_EINVAL, &e);
    in.mem_fraction = 1;
    in.block_size = 0;
    T_FAILS(kv_plan_compute(&in, &p, &e), VELA_EINVAL, &e);
    /* the block count is capped at VELA_KV_MAX_BLOCKS whatever the budget */
    in.block_size = 16;
    in.kv_cache_bytes = (size_t)1 << 62;
    T_RC(kv_plan_compute(&in, &p, &e), &e);
    T_EQ(p.n_blocks, 1 << 24);
}

static void test_meminfo(void) {
    size_t avail = 0;
    struct err e = {0};
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) {
        T_SKIP("no /proc/meminfo on this system");
        return;
    }
    fclose(f);
    T_RC(kv_mem_available(&avail, &e), &e);
    T_OK(avail > (16u << 20)); /* any machine running the tests has 16 MiB free */
}

int main(void) {
    T_RUN(test_block_bytes);
    T_RUN(test_explicit_budget);
    T_RUN(test_fraction_budget);
    T_RUN(test_meminfo);
    return t_done();
}

/* fuzz_config: arbitrary bytes as config.json, generation_config.json and
 * preprocessor_config.json. Each parser must accept or reject with a message; an accepted
 * model config must survive cfg_to_json and re-parse to the identical struct, and its
 * parameter counts must agree with the tensor list. */
#include "model/config.h"
#include "model/params.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_model(const struct model_config *c) {
    struct err e = {0};
    if (cfg_validate(c, &e) != 0) abort(); /* cfg_parse validated it */
    struct param_counts pc;
    params_count(c, &pc);
    if (pc.total <= 0 || pc.total != pc.vision_total + pc.lm_total) abort();
    if (pc.n_tensors <= 20000) { /* keep each run fast; the limits allow ~30k */
        struct param_tensor *ts = NULL;
        int64_t n = 0;
        if (params_tensors(c, &ts, &n, &e) != 0) {
            if (e.code != VELA_ENOMEM) abort();
        } else {
            int64_t sum = 0;
            for (int64_t i = 0; i < n; i++) sum += params_n_elems(&ts[i]);
            if (n != pc.n_tensors || sum != pc.total) abort();
        }
        free(ts);
    }
    char *js = NULL;
    if (cfg_to_json(c, &js, &e) != 0) {
        /* Only a Qwen2-VL MLP width that embed_dim * mlp_ratio cannot express is refused. */
        if (!(c->arch == ARCH_QWEN2_VL && c->vision.intermediate_size % c->vision.hidden_size))
            abort();
        return;
    }
    struct model_config back;
    if (cfg_parse(&back, js, strlen(js), "round-trip", &e) != 0) abort();
    if (memcmp(&back, c, sizeof back) != 0) abort();
    free(js);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    struct err e = {0};
    struct model_config c;
    if (cfg_parse(&c, s, size, "fuzz", &e) == 0)
        check_model(&c);
    else if (e.msg[0] == '\0')
        abort(); /* every failure must say why */
    struct gen_config g;
    err_clear(&e);
    if (gen_config_parse(&g, s, size, "fuzz", &e) != 0 && e.msg[0] == '\0') abort();
    struct preproc_config p;
    err_clear(&e);
    if (preproc_config_parse(&p, s, size, "fuzz", &e) == 0) {
        if (p.min_pixels < 1 || p.min_pixels > p.max_pixels) abort();
    } else if (e.msg[0] == '\0') {
        abort();
    }
    return 0;
}

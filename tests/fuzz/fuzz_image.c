/* fuzz_image: arbitrary bytes -> img_decode -> img_preprocess (small pixel budget), the path
 * every client-supplied image takes. Each call must succeed or fail with a code and a
 * message, leave nothing allocated on failure, and produce pixel_values whose shape agrees
 * with grid_thw. Limits are tightened so each input stays fast under the sanitizers. */
#include "util/limits.h"
#include "vision/decode.h"
#include "vision/preprocess.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct img_limits lim;
    img_limits_default(&lim);
    lim.max_side = 4096;
    lim.max_pixels = 1 << 21; /* 2M pixels: a few ms per decode */
    struct image im = {0};
    struct err e = {0};
    int rc = img_decode(&im, data, size, &lim, &e);
    if (rc != 0) {
        if (rc > 0 || im.rgb || e.msg[0] == '\0') abort();
        return 0;
    }
    if (im.width < 1 || im.height < 1 || im.width > lim.max_side || im.height > lim.max_side)
        abort();
    struct preproc_params p;
    preproc_params_default(&p);
    p.max_pixels = 28 * 28 * 64; /* 64 tokens */
    struct pixel_values pv = {0};
    rc = img_preprocess(&im, &p, &pv, &e);
    if (rc == 0) {
        if (pv.grid_t != 1 || pv.grid_h % 2 || pv.grid_w % 2 ||
            pv.n_rows != pv.grid_h * pv.grid_w || pv.row_len != 1176 ||
            pv.n_tokens * 4 != pv.n_rows)
            abort();
    } else if (rc != VELA_EINVAL || pv.data) { /* only the aspect-ratio rule may refuse */
        abort();
    }
    pixel_values_deinit(&pv);
    img_deinit(&im);
    return 0;
}

/* Tests for vision/preprocess.c against transformers' Qwen2VLImageProcessorPil: smart_resize
 * (spec §3.3 table, §12 table, 300 random sizes and the aspect-ratio error text), and for
 * every reference case grid_thw exactly and pixel_values bit for bit (crc32 of the float32
 * bytes), with sums and one full row compared within 1e-5 so a failure shows its size. Plus
 * the layout rules of §3.6 (duplicated frame, video padding and row order). */
#include "img_fixture.h"
#include "model/config.h"
#include "t.h"
#include "util/limits.h"
#include "vision/decode.h"
#include "vision/preprocess.h"

static void check_smart(int64_t h, int64_t w, int64_t mn, int64_t mx, int32_t eh, int32_t ew) {
    int32_t rh = 0, rw = 0;
    struct err e = {0};
    int rc = img_smart_resize(h, w, 28, mn, mx, &rh, &rw, &e);
    T_CHECK_(rc == 0 && rh == eh && rw == ew,
             "smart_resize(%lld, %lld, %lld, %lld) = %dx%d, "
             "want %dx%d (%s)",
             (long long)h, (long long)w, (long long)mn, (long long)mx, rh, rw, eh, ew, e.msg);
}

/* Model spec §3.3 examples and the §12 shared-image table (H x W). */
static void test_smart_resize_spec(void) {
    const int64_t D0 = 3136, D1 = 12845056, S1 = 1003520;
    check_smart(1080, 1920, D0, D1, 1092, 1932);
    check_smart(1080, 1920, D0, S1, 728, 1316);
    check_smart(480, 640, D0, D1, 476, 644);
    check_smart(224, 224, D0, D1, 224, 224);
    check_smart(42, 70, D0, D1, 56, 56);
    check_smart(3, 5, D0, D1, 56, 84);
    check_smart(10, 10, D0, D1, 56, 56);
    check_smart(700, 500, 200704, S1, 700, 504);
    check_smart(4096, 4096, D0, D1, 3584, 3584);
    check_smart(4096, 4096, D0, S1, 980, 980);
    check_smart(512, 512, D0, D1, 504, 504);
    check_smart(300, 451, D0, D1, 308, 448);
    check_smart(400, 600, D0, D1, 392, 588);
    check_smart(427, 640, D0, D1, 420, 644);
    check_smart(872, 1000, D0, D1, 868, 1008);
    check_smart(172, 448, D0, D1, 168, 448);
    check_smart(200, 200, D0, D1, 196, 196);
    struct preproc_params p;
    preproc_params_default(&p);
    int64_t n = 0;
    struct err e = {0};
    T_RC(img_count_tokens(1080, 1920, &p, &n, &e), &e);
    T_EQ(n, 2691);
    T_RC(img_count_tokens(4096, 4096, &p, &n, &e), &e);
    T_EQ(n, 16384);
    p.max_pixels = S1;
    T_RC(img_count_tokens(4096, 4096, &p, &n, &e), &e);
    T_EQ(n, 1225);
    T_RC(img_count_tokens(3, 5, &p, &n, &e), &e);
    T_EQ(n, 6);
}

/* The reference's table: 318 sizes, errors included (message byte for byte). */
static void test_smart_resize_reference(void) {
    json_t *doc = fx_load_reference();
    if (!doc) return;
    size_t i;
    json_t *c;
    int n = 0, n_err = 0;
    json_array_foreach(json_object_get(doc, "smart_resize"), i, c) {
        int32_t rh = 0, rw = 0;
        struct err e = {0};
        int rc = img_smart_resize(fx_int(c, "h"), fx_int(c, "w"), 28, fx_int(c, "min_pixels"),
                                  fx_int(c, "max_pixels"), &rh, &rw, &e);
        const char *want_err = json_string_value(json_object_get(c, "error"));
        if (want_err) {
            T_CHECK_(rc == VELA_EINVAL && strcmp(e.msg, want_err) == 0,
                     "%lldx%lld: got %d "
                     "\"%s\", want \"%s\"",
                     (long long)fx_int(c, "h"), (long long)fx_int(c, "w"), rc, e.msg, want_err);
            n_err++;
        } else {
            T_CHECK_(rc == 0 && rh == fx_int(c, "rh") && rw == fx_int(c, "rw"),
                     "%lldx%lld [%lld, %lld]: %dx%d, want %lldx%lld", (long long)fx_int(c, "h"),
                     (long long)fx_int(c, "w"), (long long)fx_int(c, "min_pixels"),
                     (long long)fx_int(c, "max_pixels"), rh, rw, (long long)fx_int(c, "rh"),
                     (long long)fx_int(c, "rw"));
        }
        n++;
    }
    T_OK(n > 300);
    T_OK(n_err >= 5);
    json_decref(doc);
}

/* One case: decode, preprocess with its budget, compare with the reference. */
static void check_case(const json_t *c, const uint8_t *buf, size_t n, double *max_diff) {
    const char *file = json_string_value(json_object_get(c, "file"));
    struct preproc_params p;
    preproc_params_default(&p);
    p.min_pixels = fx_int(c, "min_pixels");
    p.max_pixels = fx_int(c, "max_pixels");
    struct image im = {0};
    struct pixel_values pv = {0};
    struct err e = {0};
    int rc = img_decode(&im, buf, n, NULL, &e);
    if (rc == 0) rc = img_preprocess(&im, &p, &pv, &e);
    const char *want_err = json_string_value(json_object_get(c, "error"));
    if (want_err && !json_object_get(c, "width")) { /* not decodable: checked in test_decode */
        T_CHECK_(rc == VELA_EFORMAT, "%s: %d (%s)", file, rc, e.msg);
    } else if (want_err) {
        T_CHECK_(rc == VELA_EINVAL && strcmp(e.msg, want_err) == 0, "%s: \"%s\" want \"%s\"", file,
                 e.msg, want_err);
    } else if (rc != 0) {
        T_CHECK_(0, "%s: %s", file, e.msg);
    } else {
        const json_t *g = json_object_get(c, "grid_thw");
        T_CHECK_(pv.grid_t == json_integer_value(json_array_get(g, 0)) &&
                     pv.grid_h == json_integer_value(json_array_get(g, 1)) &&
                     pv.grid_w == json_integer_value(json_array_get(g, 2)),
                 "%s: grid (%lld, %lld, %lld)", file, (long long)pv.grid_t, (long long)pv.grid_h,
                 (long long)pv.grid_w);
        T_EQ(pv.n_tokens, fx_int(c, "n_tokens"));
        T_EQ(pv.row_len, 1176);
        size_t n_f = (size_t)pv.n_rows * (size_t)pv.row_len;
        T_CHECK_(fx_crc(pv.data, n_f * sizeof(float)) == (uint32_t)fx_int(c, "pv_crc32"),
                 "%s [%lld]: pixel_values not bit-identical to the reference", file,
                 (long long)p.max_pixels);
        double s = 0, s2 = 0;
        for (size_t k = 0; k < n_f; k++) s += pv.data[k], s2 += (double)pv.data[k] * pv.data[k];
        /* Sums over up to 77M values: relative 1e-9 is far above summation-order noise. */
        T_NEAR(s, fx_num(c, "pv_sum"), 1e-5 + 1e-9 * (double)n_f);
        T_NEAR(s2, fx_num(c, "pv_sumsq"), 1e-5 + 1e-9 * (double)n_f);
        const char *key;
        json_t *row;
        json_object_foreach(json_object_get(c, "rows"), key, row) {
            long r = atol(key);
            T_OK(r >= 0 && r < pv.n_rows && json_array_size(row) == 1176);
            for (size_t k = 0; r >= 0 && r < pv.n_rows && k < json_array_size(row); k++) {
                /* rows hold float32 values in shortest decimal form: (float) is exact */
                float ref = (float)json_number_value(json_array_get(row, k));
                double d = fabs((double)pv.data[(size_t)r * 1176 + k] - (double)ref);
                if (d > *max_diff) *max_diff = d;
            }
        }
    }
    pixel_values_deinit(&pv);
    img_deinit(&im);
}

static void test_reference_cases(void) {
    json_t *doc = fx_load_reference();
    if (!doc) return;
    size_t i;
    json_t *c;
    int n_cases = 0;
    double max_diff = 0;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        size_t n = 0;
        uint8_t *buf = fx_read_image(c, &n);
        if (!buf) continue;
        check_case(c, buf, n, &max_diff);
        free(buf);
        n_cases++;
    }
    printf("reference cases: %d, largest |pixel_values - reference| on stored rows: %g\n", n_cases,
           max_diff);
    T_OK(n_cases >= 60);
    T_OK(max_diff <= 1e-5);
    json_decref(doc);
}

static int solid(struct image *im, int32_t w, int32_t h, uint8_t r, uint8_t g, uint8_t b) {
    struct err e = {0};
    if (img_alloc(im, w, h, &e) != 0) return -1;
    for (size_t k = 0; k < (size_t)w * h; k++)
        im->rgb[3 * k] = r, im->rgb[3 * k + 1] = g, im->rgb[3 * k + 2] = b;
    return 0;
}

/* Spec §12: R = 183 -> 0.8792; the two frames of an image are equal; layout of one patch. */
static void test_layout_image(void) {
    struct image im = {0};
    T_OK(solid(&im, 56, 84, 183, 0, 255) == 0);
    for (int32_t y = 0; y < 84; y++) /* mark pixel rows with their index in G */
        for (int32_t x = 0; x < 56; x++) im.rgb[((size_t)y * 56 + x) * 3 + 1] = (uint8_t)y;
    struct preproc_params p;
    preproc_params_default(&p);
    struct pixel_values pv = {0};
    struct err e = {0};
    T_RC(img_preprocess(&im, &p, &pv, &e), &e);
    T_EQ(pv.grid_h, 6);
    T_EQ(pv.grid_w, 4);
    T_EQ(pv.n_rows, 24);
    T_EQ(pv.n_tokens, 6);
    T_NEAR(pv.data[0], 0.8792, 1e-4);
    int bad = 0;
    for (int64_t r = 0; r < pv.n_rows; r++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 196; k++)
                bad += pv.data[r * 1176 + c * 392 + k] != pv.data[r * 1176 + c * 392 + 196 + k];
    T_EQ(bad, 0);
    /* Row r = ((bh * 2 + bw) * 2 + mh) * 2 + mw covers pixel rows (2 bh + mh) * 14 + py:
     * row 5 is bh 0, bw 1, mh 0, mw 1 -> pixel rows 0..13; row 10 is bh 1, bw 0, mh 1 -> 42.. */
    float g0 = pv.data[5 * 1176 + 392 + 3 * 14];    /* G, tp 0, py 3 -> pixel row 3 */
    float g1 = pv.data[10 * 1176 + 392 + 196 + 14]; /* G, tp 1, py 1 -> pixel row 43 */
    float want0 = ((float)(3 * (1.0 / 255)) - p.image_mean[1]) / p.image_std[1];
    float want1 = ((float)(43 * (1.0 / 255)) - p.image_mean[1]) / p.image_std[1];
    T_NEAR(g0, want0, 1e-7);
    T_NEAR(g1, want1, 1e-7);
    pixel_values_deinit(&pv);
    img_deinit(&im);
}

/* Video: 3 frames pad to 4 (last repeated), grid_t 2, frame f in group f/2 slot f%2. */
static void test_layout_video(void) {
    struct image fr[3] = {{0}};
    for (int f = 0; f < 3; f++) T_OK(solid(&fr[f], 28, 28, (uint8_t)(f * 100), 0, 0) == 0);
    struct preproc_params p;
    preproc_params_default(&p);
    p.do_normalize = false;
    struct pixel_values pv = {0};
    struct err e = {0};
    T_RC(img_preprocess_frames(fr, 3, &p, &pv, &e), &e);
    /* 28x28 is below min_pixels 3136: smart_resize takes it to 56x56. */
    T_EQ(pv.grid_t, 2);
    T_EQ(pv.grid_h, 4);
    T_EQ(pv.n_rows, 32);
    T_EQ(pv.n_tokens, 8);
    if (pv.data) {
        T_NEAR(pv.data[0], 0.0, 1e-7);                          /* row 0: gt 0, tp 0 = frame 0 */
        T_NEAR(pv.data[196], (float)(100 / 255.0), 1e-7);       /* tp 1 = frame 1 */
        T_NEAR(pv.data[16 * 1176], (float)(200 / 255.0), 1e-7); /* gt 1, tp 0 = frame 2 */
        T_NEAR(pv.data[16 * 1176 + 196], (float)(200 / 255.0), 1e-7); /* padding = frame 2 */
    }
    pixel_values_deinit(&pv);
    T_FAILS(img_preprocess_frames(fr, 0, &p, &pv, &e), VELA_EINVAL, &e);
    T_FAILS(img_preprocess_frames(fr, VELA_IMG_MAX_FRAMES + 1, &p, &pv, &e), VELA_EINVAL, &e);
    /* 768 frames of 1792x1792 (4096 tokens each) would be 7.4G values: ELIMIT, no allocation. */
    struct image *many = calloc(VELA_IMG_MAX_FRAMES, sizeof *many);
    struct image big = {0};
    if (many && solid(&big, 1792, 1792, 0, 0, 0) == 0) {
        for (int f = 0; f < VELA_IMG_MAX_FRAMES; f++) many[f] = big; /* borrowed views */
        T_FAILS(img_preprocess_frames(many, VELA_IMG_MAX_FRAMES, &p, &pv, &e), VELA_ELIMIT, &e);
        T_OK(pv.data == NULL);
    }
    img_deinit(&big);
    free(many);
    struct image odd = {0};
    T_OK(solid(&odd, 30, 28, 0, 0, 0) == 0);
    struct image mixed[2] = {fr[0], odd};
    T_FAILS(img_preprocess_frames(mixed, 2, &p, &pv, &e), VELA_EINVAL, &e);
    T_OK(pv.data == NULL);
    img_deinit(&odd);
    for (int f = 0; f < 3; f++) img_deinit(&fr[f]);
}

static void test_params(void) {
    struct preproc_params p, q;
    preproc_params_default(&p);
    struct preproc_config cfg;
    preproc_config_defaults(&cfg);
    preproc_params_from_config(&q, &cfg);
    T_OK(memcmp(&p, &q, sizeof p) == 0);
    struct err e = {0};
    T_RC(preproc_params_check(&p, &e), &e);
    q.max_pixels = q.min_pixels - 1;
    T_FAILS(preproc_params_check(&q, &e), VELA_EINVAL, &e);
    q = p;
    q.patch_size = 0;
    T_FAILS(preproc_params_check(&q, &e), VELA_EINVAL, &e);
    q = p;
    q.image_std[2] = 0.0f;
    T_FAILS(preproc_params_check(&q, &e), VELA_EINVAL, &e);
    /* Without resizing, sizes must already be multiples of 28. */
    struct image im = {0};
    struct pixel_values pv = {0};
    T_OK(solid(&im, 56, 30, 1, 2, 3) == 0);
    q = p;
    q.do_resize = false;
    T_FAILS(img_preprocess(&im, &q, &pv, &e), VELA_EINVAL, &e);
    img_deinit(&im);
    T_OK(solid(&im, 56, 28, 1, 2, 3) == 0);
    T_RC(img_preprocess(&im, &q, &pv, &e), &e);
    T_EQ(pv.n_rows, 8);
    pixel_values_deinit(&pv);
    pixel_values_deinit(&pv);
    pixel_values_deinit(NULL);
    img_deinit(&im);
    /* Aspect ratio: 1x201 -> Python's message with "201.0". */
    int32_t rh, rw;
    T_FAILS(img_smart_resize(1, 201, 28, 3136, 12845056, &rh, &rw, &e), VELA_EINVAL, &e);
    T_STREQ(e.msg, "absolute aspect ratio must be smaller than 200, got 201.0");
    T_RC(img_smart_resize(1, 200, 28, 3136, 12845056, &rh, &rw, &e), &e);
    T_FAILS(img_smart_resize(0, 200, 28, 3136, 12845056, &rh, &rw, &e), VELA_EINVAL, &e);
}

int main(void) {
    T_RUN(test_smart_resize_spec);
    T_RUN(test_smart_resize_reference);
    T_RUN(test_reference_cases);
    T_RUN(test_layout_image);
    T_RUN(test_layout_video);
    T_RUN(test_params);
    return t_done();
}
